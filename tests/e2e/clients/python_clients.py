"""The Python clients of the end-to-end client matrix (contract: base.py): the newest
azure-identity from PyPI in a virtual environment, Debian's python3-azure, and Debian's Azure CLI.
scripts/install-deps.sh installs their Debian packages."""

import os
import re
import shutil
import subprocess

from base import (Client, ClientUnavailable, fresh_dir, installed, lock_digest, mark_installed,
                  run_install)

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


def _system_python_or_skip():
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise ClientUnavailable(f"{SYSTEM_PYTHON} is missing: apt-get install python3")


def prepare_pypi(build_dir):
    """A venv of Debian's python3 under <build_dir>/e2e-python with requirements.txt installed
    (--require-hashes), once per requirements content."""
    _system_python_or_skip()
    venv = os.path.join(os.path.abspath(build_dir), "e2e-python")
    digest = lock_digest([REQUIREMENTS])
    python = os.path.join(venv, "bin", "python")
    if installed(venv, digest) and os.access(python, os.X_OK):
        return [python, CLIENT]
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, venv"], capture_output=True)
    if probe.returncode != 0:
        raise ClientUnavailable("python3 -m venv needs Debian's python3-venv: "
                                "apt-get install python3-venv")
    fresh_dir(venv)
    run_install("python3 -m venv", [SYSTEM_PYTHON, "-m", "venv", venv])
    run_install("pip install --require-hashes",
                [python, "-m", "pip", "install", "--quiet", "--no-input", "--require-hashes",
                 "--no-deps", "--only-binary", ":all:", "-r", REQUIREMENTS],
                env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    mark_installed(venv, digest)
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
