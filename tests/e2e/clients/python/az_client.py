"""The Azure CLI client of the end-to-end client matrix (contract: ../base.py), run with
Debian's /usr/bin/python3 next to Debian's unmodified `az`:

    az login --identity [--username <client id | object id | resource id>] --allow-no-subscriptions
    az account get-access-token --resource R

`az login --identity` gets a management token from IMDS, then lists the identity's subscriptions
from Azure Resource Manager. A pod of the test has no route to ARM (nor should it), so this
program serves ARM's subscription list (empty: a tenant-level account, as for an identity with no
role assignment) over TLS on the pod's loopback and registers it as the resource-manager endpoint
of a custom cloud in a throw-away AZURE_CONFIG_DIR. Every token request still goes to IMDS's
address, i.e. through nmid's DNAT.

  az_client.py --mode mi [--client-id X | --object-id X | --resource-id X] --resource R
"""

import argparse
import datetime
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading


class Arm(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"value": []}).encode()  # /subscriptions and /tenants alike
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("arm: " + fmt % args, file=sys.stderr)


def serve_arm(workdir):
    cert, key = os.path.join(workdir, "arm.pem"), os.path.join(workdir, "arm.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Arm)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{server.server_address[1]}/", cert


# One az command takes 2-3 s, 15 s when IMDS throttles; az's MSI client retries an answer it
# deems transient up to 12 times with random waits of up to minutes (msrestazure
# _retrieve_token_from_imds_with_retry), so a command still retrying after this is given up.
AZ_TIMEOUT = 45


def az(env, *args):
    try:
        cp = subprocess.run(["az", *args, "--only-show-errors", "--output", "json"], env=env,
                            capture_output=True, text=True, timeout=AZ_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"az {' '.join(args)} still retrying after {AZ_TIMEOUT}s: given up")
    sys.stderr.write(cp.stderr)
    if cp.returncode != 0:
        sys.exit(f"az {' '.join(args)} exited {cp.returncode}")
    return cp.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("mi",), required=True)
    sel = p.add_mutually_exclusive_group()
    for flag in ("--client-id", "--object-id", "--resource-id"):
        sel.add_argument(flag)
    p.add_argument("--resource", required=True)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="az-") as workdir:
        arm, cert = serve_arm(workdir)
        env = dict(os.environ, AZURE_CONFIG_DIR=workdir, REQUESTS_CA_BUNDLE=cert,
                   AZURE_CORE_COLLECT_TELEMETRY="false", AZURE_CORE_NO_COLOR="true")
        az(env, "cloud", "register", "--name", "nmide2e", "--endpoint-resource-manager", arm,
           "--endpoint-active-directory", "https://login.microsoftonline.com",
           "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
           "--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/")
        az(env, "cloud", "set", "--name", "nmide2e")
        login = ["login", "--identity", "--allow-no-subscriptions"]
        username = a.client_id or a.object_id or a.resource_id
        if username:
            login += ["--username", username]
        az(env, *login)
        got = json.loads(az(env, "account", "get-access-token", "--resource", a.resource))
    expires_on = got.get("expires_on")
    if expires_on is None:
        # az 2.45 prints only expiresOn, datetime.fromtimestamp(expires_on) formatted as
        # "%Y-%m-%d %H:%M:%S.%f" (azure/cli/core/_profile.py get_raw_token): local time, read
        # back here in the same environment.
        expires_on = datetime.datetime.strptime(got["expiresOn"], "%Y-%m-%d %H:%M:%S.%f").timestamp()
    print(json.dumps({"token": got["accessToken"], "expires_on": int(expires_on)}))


if __name__ == "__main__":
    main()
