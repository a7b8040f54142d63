"""Dockerfile: the build stage installs only what building nmid needs and builds only nmid,
stamped; it relies on no SHELL (podman's OCI format ignores it); the runtime stage has what nmid
runs and the OCI labels; every file it copies exists (and is not excluded by .dockerignore)."""

import glob
import os
import re
import shlex
import unittest

import deploylib as d

DOCKERFILE = os.path.join(d.ROOT, "Dockerfile")


def run_commands(stage):
    return [ins.args for ins in stage["body"] if ins.keyword == "RUN"]


def global_args():
    """The ARG defaults declared before the first FROM (the base images)."""
    args = {}
    with open(DOCKERFILE, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if words and words[0].upper() == "FROM":
                break
            if len(words) == 2 and words[0].upper() == "ARG" and "=" in words[1]:
                name, value = words[1].split("=", 1)
                args[name] = value
    return args


def base_image(stage):
    """The stage's FROM image, with a global ARG's default substituted."""
    image = stage["image"]
    m = re.fullmatch(r"\$\{?(\w+)\}?", image)
    return global_args()[m.group(1)] if m else image


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
        self.assertEqual(base_image(self.build), "debian:12")
        self.assertEqual(self.build["name"], "build")
        self.assertEqual(base_image(self.runtime), "debian:12-slim")
        # Both replaceable (a locally made base: scripts/make-debian-base.sh).
        self.assertEqual(self.build["image"], "${BUILD_IMAGE}")
        self.assertEqual(self.runtime["image"], "${RUNTIME_IMAGE}")

    def test_no_shell_and_no_unchecked_pipes(self):
        """podman's default OCI format ignores SHELL, which would silently drop a pipefail set
        there: none may be relied on, so no SHELL and no pipe in a shell-form RUN unless it
        runs `bash -o pipefail -c` itself."""
        for stage in self.stages:
            keywords = [i.keyword for i in stage["body"]]
            self.assertNotIn("SHELL", keywords)
            for run in run_commands(stage):
                if run.startswith("["):
                    continue
                unquoted = re.sub(r"'[^']*'", "", run).replace("||", "")
                if "|" in unquoted:
                    self.assertTrue(run.startswith("bash -o pipefail -c "), run)
        script = os.path.join(d.ROOT, "scripts", "runtime-packages.sh")
        with open(script, encoding="utf-8") as f:
            self.assertIn("set -euo pipefail", f.read())

    def test_build_stage_installs_build_deps_and_builds_only_nmid(self):
        runs = run_commands(self.build)
        deps = [r for r in runs if "scripts/install-deps.sh" in r]
        self.assertEqual(len(deps), 1, runs)
        self.assertIn("scripts/install-deps.sh --build-only", deps[0])
        builds = [r for r in runs if "cmake --build" in r]
        self.assertEqual(len(builds), 1, runs)
        self.assertLess(runs.index(deps[0]), runs.index(builds[0]))
        words = shlex.split(builds[0])
        build_dir = words[words.index("-B") + 1]
        self.assertTrue(build_dir.startswith("/"), build_dir)
        for flag in ("-DCMAKE_BUILD_TYPE=Release", "-DNMID_BUILD_TESTS=OFF",
                     "-DNMID_BUILD_BENCH=OFF", "-DNMID_VERSION=${NMID_VERSION}",
                     "-DNMID_COMMIT=${NMID_COMMIT}", "-DNMID_BUILD_DATE=${NMID_BUILD_DATE}"):
            self.assertIn(flag, words)
        self.assertEqual(words[words.index("--target") + 1], "nmid")
        declared = {i.args.split("=")[0] for i in self.build["body"] if i.keyword == "ARG"}
        self.assertLessEqual({"NMID_VERSION", "NMID_COMMIT", "NMID_BUILD_DATE"}, declared)
        # The binary taken from the build is the one cmake put in <dir>/bin, stripped.
        self.assertIn(f"strip --strip-debug -o /out/nmid {build_dir}/bin/nmid", " ".join(runs))
        self.assertIn("scripts/runtime-packages.sh /out/nmid", " ".join(runs))
        for script in ("install-deps.sh", "runtime-packages.sh", "build-image.sh"):
            path = os.path.join(d.ROOT, "scripts", script)
            self.assertTrue(os.access(path, os.X_OK), f"{path} must be executable")

    def test_runtime_stage_is_labelled(self):
        labels = " ".join(i.args for i in self.runtime["body"] if i.keyword == "LABEL")
        for name, value in (("title", '"nmid"'), ("version", '"${NMID_VERSION:-unknown}"'),
                            ("revision", '"${NMID_COMMIT}"'), ("created", '"${NMID_BUILD_DATE}"'),
                            ("source", '"${NMID_SOURCE}"')):
            self.assertIn(f"org.opencontainers.image.{name}={value}", labels)
        declared = {i.args.split("=")[0] for i in self.runtime["body"] if i.keyword == "ARG"}
        self.assertLessEqual({"NMID_VERSION", "NMID_COMMIT", "NMID_BUILD_DATE", "NMID_SOURCE"},
                             declared)
        # The image's own check that the binary starts (every shared library present).
        self.assertIn('["/usr/local/bin/nmid", "--version"]', run_commands(self.runtime))

    def test_runtime_stage_installs_what_nmid_runs(self):
        runs = run_commands(self.runtime)
        installs = [r for r in runs if "apt-get install" in r]
        self.assertEqual(len(installs), 1, runs)
        words = shlex.split(installs[0])
        # Minimal: those three and the libraries' packages found in the build stage, nothing else.
        at = words.index("--no-install-recommends")
        self.assertEqual(words[at + 1:words.index("&&", at)],
                         ["iptables", "conntrack", "ca-certificates", "$(cat",
                          "/tmp/runtime-packages)"])
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
        for path in ("build", "build-asan", "build-kube/bin/nmid", ".git", ".git/HEAD",
                     ".venv-cel/bin/python3", "tests/e2e/clients/node-latest/node_modules/x/index.js"):
            self.assertTrue(ignored(path, patterns), path)
        for path in ("CMakeLists.txt", "scripts/runtime-packages.sh", "scripts/install-deps.sh",
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
