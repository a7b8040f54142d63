"""Dockerfile: built with the README's scripts, runtime has what nmid runs, and every file it
copies exists (and is not excluded by .dockerignore)."""

import glob
import os
import re
import shlex
import unittest

import deploylib as d

DOCKERFILE = os.path.join(d.ROOT, "Dockerfile")


def run_commands(stage):
    return [ins.args for ins in stage["body"] if ins.keyword == "RUN"]


def pattern_regex(pattern):
    """Docker's .dockerignore glob as a regex: `**` spans directories (zero or more), `*` and
    `?` stay within one path element, `[...]` is a character class."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif c == "*":
            out, i = out + "[^/]*", i + 1
        elif c == "?":
            out, i = out + "[^/]", i + 1
        elif c == "[":
            end = pattern.index("]", i + 1)
            out, i = out + "[" + pattern[i + 1:end].replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(c), i + 1
    return re.compile(out + r"\Z")


def ignored(relpath, patterns):
    """Whether .dockerignore excludes `relpath`: a pattern excludes a path when it matches the
    path or one of its parent directories; `!` re-includes; the last match wins."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = pattern_regex(os.path.normpath((pattern[1:] if negate else pattern).strip("/")))
        if any(regex.match(c) for c in candidates):
            result = not negate
    return result


class Dockerfile(unittest.TestCase):
    def setUp(self):
        self.stages = d.parse_dockerfile(DOCKERFILE)
        self.build, self.runtime = self.stages[0], self.stages[-1]

    def test_two_stages_on_debian_12(self):
        self.assertEqual(len(self.stages), 2, self.stages)
        self.assertEqual(self.build["image"], "debian:12")
        self.assertEqual(self.build["name"], "build")
        self.assertEqual(self.runtime["image"], "debian:12-slim")

    def test_build_stage_uses_the_readme_scripts(self):
        runs = run_commands(self.build)
        deps = [r for r in runs if "scripts/install-deps.sh" in r]
        builds = [r for r in runs if "scripts/build.sh" in r]
        self.assertEqual(len(deps), 1, runs)
        self.assertEqual(len(builds), 1, runs)
        self.assertLess(runs.index(deps[0]), runs.index(builds[0]))
        words = shlex.split(builds[0])
        at = words.index("scripts/build.sh")
        build_dir = words[at + 1]
        self.assertTrue(build_dir.startswith("/"), "build.sh takes the build dir first")
        self.assertIn("-DNMID_BUILD_TESTS=OFF", words[at + 2:])
        # The binary taken from the build is the one build.sh put in <dir>/bin.
        self.assertIn(f"{build_dir}/bin/nmid", " ".join(runs))
        for script in ("install-deps.sh", "build.sh"):
            path = os.path.join(d.ROOT, "scripts", script)
            self.assertTrue(os.access(path, os.X_OK), f"{path} must be executable")

    def test_runtime_stage_installs_what_nmid_runs(self):
        runs = run_commands(self.runtime)
        installs = [r for r in runs if "apt-get install" in r]
        self.assertEqual(len(installs), 1, runs)
        words = shlex.split(installs[0])
        for package in ("iptables", "conntrack", "ca-certificates"):
            self.assertIn(package, words)
        self.assertIn("--no-install-recommends", words)
        self.assertIn("-y", words)
        self.assertRegex(installs[0], r"apt-get update")
        self.assertRegex(installs[0], r"rm -rf /var/lib/apt/lists/\*")
        entry = [i for i in self.runtime["body"] if i.keyword == "ENTRYPOINT"]
        self.assertEqual([i.args for i in entry], ['["/usr/local/bin/nmid"]'])
        copies = [d.copy_sources(i) for i in self.runtime["body"] if i.keyword == "COPY"]
        self.assertIn((["--from=build"], ["/out/nmid"], "/usr/local/bin/nmid"), copies)

    def test_every_copied_file_exists_and_reaches_the_context(self):
        patterns = d.dockerignore_patterns()
        stage_names = {s["name"] for s in self.stages if s["name"]}
        checked = 0
        for stage in self.stages:
            for ins in stage["body"]:
                if ins.keyword not in ("COPY", "ADD"):
                    continue
                flags, sources, _ = d.copy_sources(ins)
                if any(f.startswith("--from=") for f in flags):
                    self.assertIn(flags[0].split("=", 1)[1], stage_names, ins)
                    continue
                for source in sources:
                    matches = glob.glob(os.path.join(d.ROOT, source))
                    self.assertTrue(matches, f"{ins}: {source} does not exist")
                    for m in matches:
                        rel = os.path.relpath(m, d.ROOT)
                        if rel != ".":
                            self.assertFalse(ignored(rel, patterns),
                                             f"{ins}: .dockerignore excludes {rel}")
                    checked += 1
        self.assertGreaterEqual(checked, 2)

    def test_dockerignore_keeps_build_outputs_out_and_sources_in(self):
        patterns = d.dockerignore_patterns()
        for path in ("build", "build-asan", "build-kube/bin/nmid", ".git", ".git/HEAD"):
            self.assertTrue(ignored(path, patterns), path)
        for path in ("CMakeLists.txt", "scripts/build.sh", "scripts/install-deps.sh",
                     "daemon/app/main.cpp", "include/nmid/core/errc.hpp", "iptables",
                     "tests/CMakeLists.txt", "bench", "deploy/00-crds.yaml"):
            self.assertFalse(ignored(path, patterns), path)

    def test_ignore_matcher(self):
        self.assertTrue(ignored("a/__pycache__/x.pyc", ["**/__pycache__"]))
        self.assertTrue(ignored("__pycache__", ["**/__pycache__"]))
        self.assertFalse(ignored("scripts/build.sh", ["build*"]))
        self.assertFalse(ignored("build-x", ["build*", "!build-x"]))
        self.assertTrue(ignored("build/bin/nmid", ["build*"]))
        self.assertFalse(ignored("a/build", ["build*"]))
        self.assertTrue(ignored("a/b/c.o", ["a/**/*.o"]))
        self.assertTrue(ignored("a/c.o", ["a/**/*.o"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
