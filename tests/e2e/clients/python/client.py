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
        credential = ManagedIdentityCredential(identity_config={"msi_res_id": a.resource_id})
    else:
        credential = ManagedIdentityCredential(client_id=a.client_id)
    token = credential.get_token(a.resource + "/.default")
    print(json.dumps({"token": token.token, "expires_on": int(token.expires_on)}))


if __name__ == "__main__":
    main()
