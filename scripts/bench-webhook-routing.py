#!/usr/bin/env python3
"""Webhook answer latency with many workflows: starts `flowctl serve` (the
binary given) on a fresh SQLite database, applies N workflows of which every
tenth listens on its own webhook path, then times unsigned deliveries to one
path and requests to an unknown path over one keep-alive connection.

  scripts/bench-webhook-routing.py target/release/flowctl [N=10000]
"""
import http.client, json, os, subprocess, sys, tempfile, time, statistics
from concurrent.futures import ThreadPoolExecutor

binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
home = tempfile.mkdtemp()
env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/cfg", XDG_DATA_HOME=home + "/data")
server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--db", home + "/f.db",
                           "--rate-limit-write", "0", "--rate-limit-webhook", "0"],
                          env=env, stderr=subprocess.PIPE, text=True)
for line in server.stderr:
    if line.startswith("flowctl listening on "):
        port = int(line.rsplit(":", 1)[1])
        break
key = json.load(open(home + "/cfg/flowctl/credentials.json"))["apiKey"]

def apply(i):
    c = http.client.HTTPConnection("127.0.0.1", port)
    wf = {"id": f"wf_{i:05d}", "name": f"w{i}",
          "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"ok": True}}}]}
    if i % 10 == 0:
        wf["trigger"] = {"type": "webhook", "path": f"hook-{i}", "verifySignature": False,
                         "events": ["never"]}
    c.request("POST", "/api/v1/workflows", json.dumps(wf), {"x-api-key": key, "content-type": "application/json"})
    assert c.getresponse().status in (200, 201)
    c.close()

started = time.time()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(apply, range(n)))
print(f"applied {n} workflows ({n // 10} webhooks) in {time.time() - started:.1f} s")

def timed(path, count=300):
    c = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for _ in range(count):
        t = time.perf_counter()
        c.request("POST", path, "{}", {"content-type": "application/json"})
        r = c.getresponse(); r.read()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]

for label, path in [("known path (filtered event)", f"/webhooks/hook-{(n // 20) * 10}"),
                    ("unknown path (404)", "/webhooks/nobody-here")]:
    p50, p99 = timed(path)
    print(f"{label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
server.terminate(); server.wait()
