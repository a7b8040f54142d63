"""Continuous token requests from inside a pod namespace (run with /usr/bin/python3).

Usage: load_client.py URL STATUS_FILE STOP_FILE NEW_THREADS KEEPALIVE_THREADS
  NEW_THREADS:       a new TCP connection per request (what most SDK calls do after an idle
                     period);
  KEEPALIVE_THREADS: one persistent connection per thread. A request on a reused connection that
                  the server closed before sending any byte is retried once on a new connection,
                  as urllib3 (Python SDK) and Node's agent do for idempotent GETs; such retries
                  are counted separately, never hidden.
Every request must answer 200 with an access_token within 5 s; anything else is a failure.
Writes {"ok": n, "failed": n, "retried_stale": n, "errors": [...]} to STATUS_FILE every 50
requests and when STOP_FILE appears (then exits).
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

url, status_file, stop_file, new_threads, keepalive_threads = sys.argv[1:6]
u = urllib.parse.urlsplit(url)
path = u.path + ("?" + u.query if u.query else "")
lock = threading.Lock()
state = {"ok": 0, "failed": 0, "retried_stale": 0, "errors": []}


def write_status():
    with lock:
        tmp = status_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, status_file)


def record(ok, error=None):
    with lock:
        if ok:
            state["ok"] += 1
        else:
            state["failed"] += 1
            if len(state["errors"]) < 20:
                state["errors"].append(f"{time.time():.3f} {error}")
        n = state["ok"] + state["failed"]
    if n % 50 == 0:
        write_status()


def check(resp):
    body = resp.read()
    if resp.status != 200:
        return f"status {resp.status}: {body[:200]!r}"
    if b"access_token" not in body:
        return f"no access_token: {body[:200]!r}"
    return None


def one_new():
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
    try:
        c.request("GET", path, headers={"Metadata": "true"})
        err = check(c.getresponse())
        record(err is None, err)
    except Exception as e:  # noqa: BLE001 - every failure is counted
        record(False, f"{type(e).__name__}: {e}")
    finally:
        c.close()


def worker(mode):
    conn = None
    while not os.path.exists(stop_file):
        if mode == "new":
            one_new()
            continue
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
        try:
            conn.request("GET", path, headers={"Metadata": "true"})
            resp = conn.getresponse()
            err = check(resp)
            record(err is None, err)
            if resp.will_close:
                conn.close()
                conn = None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            conn.close()
            conn = None
            if reused:
                with lock:
                    state["retried_stale"] += 1
                one_new()
            else:
                record(False, f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001
            record(False, f"{type(e).__name__}: {e}")
            conn.close()
            conn = None


ts = [threading.Thread(target=worker, args=("new",), daemon=True) for _ in range(int(new_threads))]
ts += [threading.Thread(target=worker, args=("keepalive",), daemon=True)
       for _ in range(int(keepalive_threads))]
for t in ts:
    t.start()
for t in ts:
    t.join()
write_status()
