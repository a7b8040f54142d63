"""The Python clients of the end-to-end client matrix (contract: base.py): the newest
azure-identity from PyPI in a virtual environment, Debian's python3-azure, and Debian's Azure CLI.
scripts/install-deps.sh installs their Debian packages."""

import hashlib
import os
import re
import shutil
import subprocess

from base import Client, ClientUnavailable

HERE = os.path.dirname(os.path.abspath(__file__))
PY_DIR = os.path.join(HERE, "python")
CLIENT = os.path.join(PY_DIR, "client.py")
SYSTEM_PYTHON = "/usr/bin/python3"
REQUIREMENTS = os.path.join(PY_DIR, "requirements.txt")
APT_HINT = "scripts/install-deps.sh"


def pinned_version(package):
    with open(REQUIREMENTS) as f:
        m = re.search(rf"^{re.escape(package)}==(\S+)", f.read(), re.M)
    return m.group(1)


def _run(argv, what, **kwargs):
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    if cp.returncode != 0:
        raise RuntimeError(f"{what} failed (registry unreachable?):\n{cp.stdout}{cp.stderr}")
    return cp


def _system_python_or_skip():
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise ClientUnavailable(f"{SYSTEM_PYTHON} is missing: apt-get install python3")


def prepare_pypi(build_dir):
    """A venv of Debian's python3 under <build_dir>/e2e-python with requirements.txt installed
    (--require-hashes), once per requirements content."""
    _system_python_or_skip()
    venv = os.path.join(os.path.abspath(build_dir), "e2e-python")
    with open(REQUIREMENTS, "rb") as f:
        req_hash = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(venv, ".installed-requirements-sha256")
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(stamp) and open(stamp).read() == req_hash and os.access(python, os.X_OK):
        return [python, CLIENT]
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, venv"], capture_output=True)
    if probe.returncode != 0:
        raise ClientUnavailable("python3 -m venv needs Debian's python3-venv: "
                                "apt-get install python3-venv")
    shutil.rmtree(venv, ignore_errors=True)
    _run([SYSTEM_PYTHON, "-m", "venv", venv], "python3 -m venv")
    _run([python, "-m", "pip", "install", "--quiet", "--no-input", "--require-hashes",
          "--no-deps", "--only-binary", ":all:", "-r", REQUIREMENTS],
         "pip install --require-hashes", env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    with open(stamp, "w") as f:
        f.write(req_hash)
    return [python, CLIENT]


def debian_azure_identity_version():
    cp = subprocess.run([SYSTEM_PYTHON, "-c", "import azure.identity as a; print(a.__version__)"],
                        capture_output=True, text=True) if os.access(SYSTEM_PYTHON, os.X_OK) else None
    return cp.stdout.strip() if cp is not None and cp.returncode == 0 else None


def prepare_debian(_build_dir):
    _system_python_or_skip()
    if debian_azure_identity_version() is None:
        raise ClientUnavailable("Debian's azure-identity is missing: apt-get install python3-azure")
    return [SYSTEM_PYTHON, CLIENT]


def az_version():
    cp = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "azure-cli"],
                        capture_output=True, text=True) if shutil.which("dpkg-query") else None
    return cp.stdout.strip() if cp is not None and cp.returncode == 0 else "not installed"


def prepare_az(_build_dir):
    _system_python_or_skip()
    if shutil.which("az", path="/usr/bin:/bin") is None:
        raise ClientUnavailable("install azure-cli: apt-get install azure-cli")
    if shutil.which("openssl", path="/usr/bin:/bin") is None:
        raise ClientUnavailable("the CLI's ARM stand-in needs openssl: apt-get install openssl")
    return [SYSTEM_PYTHON, os.path.join(PY_DIR, "az_client.py")]


CLIENTS = [
    Client(name="python-azure-identity-latest", language="Python",
           package="azure-identity (PyPI)", version=pinned_version("azure-identity"),
           selectors=frozenset({"none", "client_id", "object_id", "resource_id"}),
           default_chain=True, prepare=prepare_pypi),
    Client(name="python-azure-identity-debian", language="Python",
           package="python3-azure (Debian)", version=debian_azure_identity_version() or "missing",
           selectors=frozenset({"none", "client_id", "object_id", "resource_id"}),
           default_chain=True, prepare=prepare_debian),
    Client(name="azure-cli", language="Azure CLI", package="azure-cli (Debian)",
           version=az_version(),
           selectors=frozenset({"none", "client_id", "object_id", "resource_id"}),
           default_chain=False, prepare=prepare_az),
]
