"""Opens a connection, then sends one token request only when told to (run in a pod namespace
with /usr/bin/python3). Models a client whose request follows its connect by a while (a busy
pod, a slow first write): the connection is accepted, the request is not sent yet.
Usage: hold_connection.py URL CONNECTED_FILE GO_FILE RESULT_FILE
Writes CONNECTED_FILE once connected, waits (<= 30 s) for GO_FILE, sends the request and writes
{"status": ..., "connection": ..., "token": bool} or {"error": ...} to RESULT_FILE."""

import http.client
import json
import os
import sys
import time
import urllib.parse

url, connected_file, go_file, result_file = sys.argv[1:5]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
conn.connect()
open(connected_file, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go_file) and time.monotonic() < deadline:
    time.sleep(0.01)
try:
    conn.request("GET", f"{u.path}?{u.query}", headers={"Metadata": "true"})
    resp = conn.getresponse()
    body = resp.read()
    result = {"status": resp.status, "connection": resp.getheader("Connection"),
              "token": b"access_token" in body}
except Exception as e:  # noqa: BLE001 - reported to the test
    result = {"error": f"{type(e).__name__}: {e}"}
with open(result_file, "w") as f:
    json.dump(result, f)
