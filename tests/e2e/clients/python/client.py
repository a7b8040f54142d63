"""The Python azure-identity client of the end-to-end client matrix (contract: ../base.py).

Run with whichever interpreter carries the azure-identity under test: Debian's /usr/bin/python3
(python3-azure) or the virtual environment of requirements.txt (the newest from PyPI). The SDK
is used as an application would: nothing is patched.

  client.py --mode mi|default [--client-id X | --object-id X | --resource-id X] --resource R
"""

import argparse
import json
import sys

import azure.identity
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential


def resource_id_key():
    """identity_config's key for a resource id in the installed azure-identity. 1.13 sends
    identity_config's items to IMDS verbatim, so the key is IMDS's msi_res_id; 1.27 accepts only
    object_id/resource_id/client_id (managed_identity.py validate_identity_config) and maps
    resource_id to msi_res_id, silently dropping an msi_res_id key: such a request names no
    identity. Checked for these two versions against a capturing server; the boundary between
    them is not known here."""
    major, minor = (int(x) for x in azure.identity.__version__.split(".")[:2])
    return "resource_id" if (major, minor) >= (1, 27) else "msi_res_id"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("mi", "default"), required=True)
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--client-id")
    sel.add_argument("--object-id")
    sel.add_argument("--resource-id")
    p.add_argument("--resource", required=True)
    a = p.parse_args()
    print(f"azure-identity {azure.identity.__version__} (python {sys.version.split()[0]})",
          file=sys.stderr)
    if a.mode == "default":
        if a.object_id or a.resource_id:
            p.error("--mode default takes --client-id only")
        # The chain's environment, workload-identity and CLI credentials find nothing in the
        # pod's clean environment; the managed-identity one probes IMDS, then asks for the token.
        credential = DefaultAzureCredential(managed_identity_client_id=a.client_id)
    elif a.object_id:
        credential = ManagedIdentityCredential(identity_config={"object_id": a.object_id})
    elif a.resource_id:
        credential = ManagedIdentityCredential(identity_config={resource_id_key(): a.resource_id})
    else:
        credential = ManagedIdentityCredential(client_id=a.client_id)
    token = credential.get_token(a.resource + "/.default")
    print(json.dumps({"token": token.token, "expires_on": int(token.expires_on)}))


if __name__ == "__main__":
    main()
