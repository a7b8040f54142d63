"""The contract every SDK client of the end-to-end client matrix follows
(tests/e2e/client_matrix_test.py runs them).

A client is an unmodified SDK driven by a small program of ours. The program is run inside a pod
namespace, with a clean environment (no IDENTITY_*, MSI_*, AZURE_* or proxy variables), as

    <argv prefix> --mode mi|default [--client-id X | --object-id X | --resource-id X]
                  --resource R

- `--mode mi`: the language's ManagedIdentityCredential (or its equivalent), given the selector
  when one is passed, none otherwise;
- `--mode default`: the language's DefaultAzureCredential chain (the SDK's IMDS probe path);
  only `--client-id` is passed with it (as the chain's managed-identity client id option);
- it asks for a token for scope `R + "/.default"` (or resource R where the SDK takes resources),
  prints one JSON line as its LAST line of stdout and exits 0:
      {"token": "<access token>", "expires_on": <int unix seconds>}
  On failure it exits non-zero with the error on stderr.

Each language module (clients/python_clients.py, clients/other_clients.py) exposes
`CLIENTS: list[Client]`.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
from typing import Callable, FrozenSet, List

SELECTORS = ("none", "client_id", "object_id", "resource_id")
HERE = os.path.dirname(os.path.abspath(__file__))
INSTALL_TIMEOUT = 600


class ClientUnavailable(Exception):
    """The client's toolchain is missing: the message names what to install (a skip)."""


@dataclasses.dataclass(frozen=True)
class Client:
    name: str                      # e.g. "python-azure-identity-latest"
    language: str                  # "Python", "JavaScript", "Java", "Go", "Azure CLI"
    package: str                   # e.g. "azure-identity (PyPI)"
    version: str                   # the pinned version the lock file installs
    selectors: FrozenSet[str]      # subset of SELECTORS the SDK can send
    default_chain: bool            # supports --mode default
    # prepare(build_dir) -> argv prefix. Installs from the lock file into build_dir (once per
    # lock content, a stamp file of the lock's sha256); raises ClientUnavailable
    # when the toolchain is missing, RuntimeError when an install from a registry fails.
    prepare: Callable[[str], List[str]]


# ---- installing a client once per content of its lock files (every prepare() uses these) ----

def lock_digest(paths):
    """sha256 of the files that pin a client (their paths under clients/ and contents)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.relpath(p, HERE).encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


def installed(dst, digest):
    """Whether `dst` holds an install of exactly `digest`."""
    stamp = os.path.join(dst, ".installed-sha256")
    return os.path.exists(stamp) and open(stamp).read() == digest


def mark_installed(dst, digest):
    with open(os.path.join(dst, ".installed-sha256"), "w") as f:
        f.write(digest)


def fresh_dir(dst):
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)


def run_install(what, argv, cwd=None, env=None):
    """Runs an install step; RuntimeError (a failure, not a skip: CI reaches the registries)."""
    try:
        cp = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took more than {INSTALL_TIMEOUT} s: {' '.join(argv)}") from None
    if cp.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(argv)}), registry unreachable?\n"
                           f"{cp.stdout[-4000:]}{cp.stderr[-4000:]}")
    return cp
