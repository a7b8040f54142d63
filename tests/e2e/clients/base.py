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
from typing import Callable, FrozenSet, List

SELECTORS = ("none", "client_id", "object_id", "resource_id")


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
