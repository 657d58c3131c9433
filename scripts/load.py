#!/usr/bin/env python3
"""Load test (bounded, loopback only): KEYS API keys each trigger as fast as
they can for SECONDS seconds against the default execute limit (500/min per
key). Checks: every answer is 202 or the expected 429 (with the seed's body),
and every accepted run exists and finishes (no run lost)."""
import http.client, json, os, signal, socket, sqlite3, subprocess, sys, tempfile, threading, time

KEYS = int(os.environ.get("KEYS", "20"))
SECONDS = float(os.environ.get("SECONDS_", os.environ.get("LOAD_SECONDS", "60")))
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/flowctl"

home = tempfile.mkdtemp(prefix="flowctl-load-")
env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/config", XDG_DATA_HOME=home + "/data")
db = home + "/load.db"
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", db],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
for line in server.stderr:
    if "listening on" in line:
        break
threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
admin = json.load(open(home + "/config/flowctl/credentials.json"))["apiKey"]

def call(key, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"x-api-key": key, "content-type": "application/json"})
    r = c.getresponse(); data = json.loads(r.read()); c.close()
    return r.status, data

wf = {"name": "Load", "steps": [{"id": "total", "type": "transform",
      "config": {"mapping": {"total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"}}}]}
assert call(admin, "POST", "/api/v1/workflows", wf)[0] in (200, 201)
keys = []
for i in range(KEYS):
    out = subprocess.run([BIN, "keys", "create", "--name", f"load-{i}", "--scopes", "workflows:execute", "--db", db],
                         env=env, capture_output=True, text=True, check=True)
    keys.append(out.stdout.strip())

results = {}
lock = threading.Lock()
def hammer(key):
    ok = limited = other = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.time() + SECONDS
    body = json.dumps({"input": {"items": [{"quantity": 2, "price": 1999}]}})
    while time.time() < end:
        conn.request("POST", "/api/v1/workflows/wf_load/run", body=body,
                     headers={"x-api-key": key, "content-type": "application/json"})
        r = conn.getresponse(); data = json.loads(r.read())
        if r.status == 202:
            ok += 1
        elif r.status == 429 and data["error"]["message"] == "Rate limit exceeded. Limit: 500 requests per minute." \
                and r.getheader("retry-after"):
            limited += 1
        else:
            other += 1
            print("unexpected", r.status, data, file=sys.stderr)
    with lock:
        results[key] = (ok, limited, other)

started = time.time()
threads = [threading.Thread(target=hammer, args=(k,)) for k in keys]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.time() - started
accepted = sum(r[0] for r in results.values())
limited = sum(r[1] for r in results.values())
other = sum(r[2] for r in results.values())

deadline = time.time() + 120
while time.time() < deadline:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    left = c.execute("SELECT COUNT(*) FROM runs WHERE status IN ('pending','running')").fetchone()[0]
    total = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    completed = c.execute("SELECT COUNT(*) FROM runs WHERE status = 'completed'").fetchone()[0]
    c.close()
    if left == 0:
        break
    time.sleep(0.5)
status, health = call(admin, "GET", "/healthz")
server.send_signal(signal.SIGTERM); server.wait(timeout=30)

per_key = sorted(r[0] for r in results.values()) or [0]
print(f"load: {KEYS} keys x {SECONDS:.0f}s: {accepted + limited + other} requests in {elapsed:.1f}s "
      f"({(accepted + limited + other) / elapsed:.0f}/s); 202: {accepted}, 429: {limited}, other: {other}")
print(f"load: accepted per key min {per_key[0]} / max {per_key[-1]} (limit 500/min, GCRA burst 500)")
print(f"load: runs stored {total}, completed {completed}; /healthz {status}")
checks = {
    "no answer but 202 and the expected 429": other == 0,
    "no run lost (stored == accepted)": total == accepted,
    "every run completed": completed == accepted,
    "each key held to its limit": per_key[-1] <= 500 + int(500 * SECONDS / 60) + 5,
    "healthy afterwards": status == 200,
}
for name, ok in checks.items():
    print(("PASS " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
