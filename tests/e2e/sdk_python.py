"""An unmodified azure.identity ManagedIdentityCredential (Debian's python3-azure), run inside
a pod namespace with /usr/bin/python3. Prints {"token": ..., "expires_on": ...} as JSON.
Usage: sdk_python.py CLIENT_ID RESOURCE"""

import json
import sys

from azure.identity import ManagedIdentityCredential

client_id, resource = sys.argv[1:3]
credential = ManagedIdentityCredential(client_id=client_id)
token = credential.get_token(resource + "/.default")
print(json.dumps({"token": token.token, "expires_on": token.expires_on}))
