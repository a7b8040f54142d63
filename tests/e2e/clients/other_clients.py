"""The JavaScript, Java and Go clients of the end-to-end client matrix (contract: base.py).

Each client is an unmodified SDK, pinned by a lock file under this folder, driven by a small program:
  - JavaScript: @azure/identity, newest and 4.8.0 (node-latest/, node-4.8/: package.json +
    package-lock.json), one program node/client.js;
  - Java: com.azure:azure-identity through the Azure SDK BOM (java/pom.xml), java/src/.../Main.java,
    run with Debian's JDK from a plain classpath (offline after prepare);
  - Go: github.com/Azure/azure-sdk-for-go/sdk/azidentity (go/go.mod + go/go.sum), go/main.go.

prepare(build_dir) installs into build_dir/<client name> once per content of the files that pin it
(base.py's lock_digest and stamp). A missing toolchain raises
ClientUnavailable naming what to install (scripts/install-deps.sh installs Debian's); a
registry failure raises RuntimeError (CI reaches the registries, so that is a failure, not a skip).
"""

import json
import os
import re
import shutil
import subprocess
from typing import List

from base import (Client, ClientUnavailable, fresh_dir, installed, lock_digest, mark_installed,
                  run_install)

HERE = os.path.dirname(os.path.abspath(__file__))
# Where a toolchain installed outside Debian's packages usually lives (the CI machine may have them
# in /usr/local while the test runner's PATH lacks that folder).
EXTRA_BIN_DIRS = ("/usr/local/bin", "/usr/local/go/bin", "/usr/lib/go/bin")


def _which(name):
    found = shutil.which(name)
    if found is None:
        for d in EXTRA_BIN_DIRS:
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                found = p
                break
    return os.path.realpath(found) if found else None


# ---- JavaScript: @azure/identity --------------------------------------------------------------

def _locked_version(lock_dir, package):
    with open(os.path.join(HERE, lock_dir, "package-lock.json")) as f:
        return json.load(f)["packages"][f"node_modules/{package}"]["version"]


def _node_prepare(lock_dir):
    def prepare(build_dir) -> List[str]:
        node, npm = _which("node"), _which("npm")
        if node is None or npm is None:
            raise ClientUnavailable("node and npm are not installed "
                                    "(apt-get install nodejs npm; scripts/install-deps.sh)")
        src = os.path.join(HERE, lock_dir)
        files = [os.path.join(src, n) for n in ("package.json", "package-lock.json")]
        dst = os.path.join(build_dir, lock_dir)
        digest = lock_digest(files)
        if not installed(dst, digest):
            fresh_dir(dst)
            for p in files:
                shutil.copy(p, dst)
            run_install("npm ci", [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], dst)
            mark_installed(dst, digest)
        return [node, os.path.join(HERE, "node", "client.js"), dst]
    return prepare


# ---- Java: com.azure:azure-identity through the Azure SDK BOM ---------------------------------

JAVA_DIR = os.path.join(HERE, "java")
JAVA_MAIN = os.path.join(JAVA_DIR, "src", "main", "java", "nmid", "Main.java")


def _java_bom():
    """The azure-sdk-bom version pom.xml imports."""
    with open(os.path.join(JAVA_DIR, "pom.xml")) as f:
        pom = f.read()
    bom = re.search(r"<artifactId>azure-sdk-bom</artifactId>\s*<version>([^<]+)</version>", pom)
    return bom.group(1)


# The azure-identity version azure-sdk-bom JAVA_BOM pins (checked by prepare against the jar it
# resolves, so a BOM bump without updating this line fails loudly).
JAVA_BOM = _java_bom()
JAVA_IDENTITY = "1.19.0"


def _java_prepare(build_dir) -> List[str]:
    java, javac, mvn = _which("java"), _which("javac"), _which("mvn")
    if java is None or javac is None or mvn is None:
        raise ClientUnavailable("a JDK and Maven are not installed (apt-get install "
                                "default-jdk-headless maven; scripts/install-deps.sh)")
    dst = os.path.join(build_dir, "java-azure-identity")
    pom = os.path.join(JAVA_DIR, "pom.xml")
    digest = lock_digest([pom, JAVA_MAIN])
    lib, classes = os.path.join(dst, "lib"), os.path.join(dst, "classes")
    if not installed(dst, digest):
        fresh_dir(dst)
        shutil.copy(pom, dst)
        # The BOM-pinned jars, copied from Maven Central (through ~/.m2) into lib/ ...
        run_install("mvn dependency:copy-dependencies",
             [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={lib}",
              "-DincludeScope=runtime"], dst)
        jar = os.path.join(lib, f"azure-identity-{JAVA_IDENTITY}.jar")
        if not os.path.exists(jar):
            raise RuntimeError(f"azure-sdk-bom {JAVA_BOM} did not resolve azure-identity "
                               f"{JAVA_IDENTITY} (update JAVA_IDENTITY): {sorted(os.listdir(lib))}")
        # ... and Main.java compiled against them: the run is a plain offline `java -cp`.
        run_install("javac", [javac, "-d", classes, "-cp", os.path.join(lib, "*"), JAVA_MAIN], dst)
        mark_installed(dst, digest)
    return [java, "-cp", f"{classes}:{os.path.join(lib, '*')}", "nmid.Main"]


# ---- Go: azidentity ---------------------------------------------------------------------------

GO_DIR = os.path.join(HERE, "go")


def _go_mod():
    with open(os.path.join(GO_DIR, "go.mod")) as f:
        mod = f.read()
    need = re.search(r"^go (\d+(?:\.\d+)*)\s*$", mod, re.M).group(1)
    ver = re.search(r"github.com/Azure/azure-sdk-for-go/sdk/azidentity (v\S+)", mod).group(1)
    return need, ver


GO_NEEDS, GO_AZIDENTITY = _go_mod()


def _version_tuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def _go_prepare(build_dir) -> List[str]:
    go = _which("go")
    unavailable = (f"Go {GO_NEEDS} or newer is needed to build azidentity {GO_AZIDENTITY} "
                   f"(tests/e2e/clients/go/go.mod); Debian 12's golang is 1.19")
    if go is None:
        raise ClientUnavailable(unavailable + ": no `go` found")
    # GOTOOLCHAIN=local: never let the go command fetch another toolchain for the go line.
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false")
    have = subprocess.run([go, "env", "GOVERSION"], env=env, capture_output=True, text=True,
                          timeout=60).stdout.strip()
    if not have.startswith("go") or _version_tuple(have) < _version_tuple(GO_NEEDS):
        raise ClientUnavailable(unavailable + f": `{go}` is {have or 'unknown'}")
    dst = os.path.join(build_dir, "go-azidentity")
    files = [os.path.join(GO_DIR, n) for n in ("go.mod", "go.sum", "main.go")]
    digest = lock_digest(files) + have
    binary = os.path.join(dst, "client")
    if not installed(dst, digest):
        fresh_dir(dst)
        # Built from the source folder: go.sum pins every module (-mod=readonly refuses changes).
        run_install("go build", [go, "build", "-trimpath", "-o", binary, "."], GO_DIR, env)
        mark_installed(dst, digest)
    return [binary]


ALL_SELECTORS = frozenset({"none", "client_id", "object_id", "resource_id"})

CLIENTS: List[Client] = [
    Client(name="js-azure-identity-latest", language="JavaScript", package="@azure/identity (npm)",
           version=_locked_version("node-latest", "@azure/identity"),
           selectors=ALL_SELECTORS, default_chain=True, prepare=_node_prepare("node-latest")),
    Client(name="js-azure-identity-4.8", language="JavaScript", package="@azure/identity (npm)",
           version=_locked_version("node-4.8", "@azure/identity"),
           selectors=ALL_SELECTORS, default_chain=True, prepare=_node_prepare("node-4.8")),
    Client(name="java-azure-identity", language="Java",
           package=f"com.azure:azure-identity (Maven Central, azure-sdk-bom {JAVA_BOM})",
           version=JAVA_IDENTITY, selectors=ALL_SELECTORS, default_chain=True,
           prepare=_java_prepare),
    # azidentity's DefaultAzureCredential takes no client id option (only AZURE_CLIENT_ID, which
    # the matrix never sets): go/main.go refuses --mode default with a selector.
    Client(name="go-azidentity", language="Go",
           package="github.com/Azure/azure-sdk-for-go/sdk/azidentity (Go module proxy)",
           version=GO_AZIDENTITY, selectors=ALL_SELECTORS, default_chain=True,
           prepare=_go_prepare),
]


# Cases these SDKs are known not to pass, read by client_matrix_test.py (format there).
EXPECTED_FAILURES = {
    # azidentity v1.15.0's DefaultAzureCredentialOptions has no managed-identity client id: the
    # chain takes one only from AZURE_CLIENT_ID, which the matrix never sets (an unmodified pod
    # has none). The client program exits 1 without asking nmid.
    ("go-azidentity", "default_client_id"): ("DefaultAzureCredential takes no identity selector",
                                             None,
                                             "azidentity's default chain has no client id option"),
}
