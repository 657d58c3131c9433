#!/usr/bin/env python3
"""Soak test (bounded, loopback only): trigger RUNS runs of a three-step
workflow (transform -> http.request to a local counter -> transform) while
killing flowctl serve with SIGKILL and restarting it KILLS times at random,
then check that every run finished, none is stuck, and that only steps in
flight at a kill ran twice. Prints a summary; exits 1 when a check fails."""
import http.client, http.server, json, os, random, signal, socket, sqlite3
import subprocess, sys, tempfile, threading, time

RUNS = int(os.environ.get("RUNS", "10000"))
KILLS = int(os.environ.get("KILLS", "5"))
WORKERS = int(os.environ.get("WORKERS", "32"))
CLIENTS = 16
DEADLINE = time.time() + int(os.environ.get("SOAK_SECONDS", "600"))
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/flowctl"

calls = {}
calls_lock = threading.Lock()

class Counter(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with calls_lock:
            calls[body["run"]] = calls.get(body["run"], 0) + 1
        out = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

home = tempfile.mkdtemp(prefix="flowctl-soak-")
env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/config", XDG_DATA_HOME=home + "/data")
env.pop("FLOWCTL_URL", None); env.pop("FLOWCTL_API_KEY", None)
db = home + "/soak.db"
port = free_port()
counter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
threading.Thread(target=counter.serve_forever, daemon=True).start()
server = None

def start():
    global server
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--workers", str(WORKERS),
                               "--rate-limit-execute", "0", "--rate-limit-read", "0", "--rate-limit-write", "0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        if "listening on" in line:
            break
    threading.Thread(target=lambda p=server: [None for _ in p.stderr], daemon=True).start()

def request(method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"x-api-key": key, "content-type": "application/json"})
    r = conn.getresponse(); data = json.loads(r.read()); conn.close()
    return r.status, data

start()
key = json.load(open(home + "/config/flowctl/credentials.json"))["apiKey"]
wf = {"name": "Soak", "steps": [
    {"id": "total", "type": "transform", "config": {"mapping": {"total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"}}},
    {"id": "call", "type": "action", "action": "http.request", "retryConfig": {"maxAttempts": 10, "initialDelayMs": 100},
     "config": {"method": "POST", "url": f"http://127.0.0.1:{counter.server_address[1]}/hit", "body": {"run": "{{runId}}"}}},
    {"id": "after", "type": "transform", "config": {"mapping": {"total": "{{steps.total.output.total}}", "status": "{{steps.call.output.status}}"}}}]}
assert request("POST", "/api/v1/workflows", wf)[0] in (200, 201)

accepted = set()
accepted_lock = threading.Lock()
next_index = iter(range(RUNS))
index_lock = threading.Lock()

def client():
    while True:
        with index_lock:
            i = next(next_index, None)
        if i is None:
            return
        body = {"input": {"items": [{"quantity": 2, "price": 1999}, {"quantity": 1, "price": 500}]}, "idempotencyKey": f"soak-{i}"}
        while time.time() < DEADLINE:
            try:
                status, data = request("POST", "/api/v1/workflows/wf_soak/run", body)
                if status in (200, 202):
                    with accepted_lock:
                        accepted.add(data["data"]["runId"])
                    break
                print("unexpected answer", status, data, file=sys.stderr)
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.05)  # server down: retry the same idempotency key

started = time.time()
clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
for c in clients:
    c.start()
def unfinished():
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    n = conn.execute("SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running')").fetchone()[0]
    conn.close()
    return n

# Kill at random moments while triggers arrive and while runs execute.
kills = 0
while kills < KILLS and time.time() < DEADLINE and (any(c.is_alive() for c in clients) or unfinished() > 0):
    time.sleep(random.uniform(0.3, 2.0))
    server.send_signal(signal.SIGKILL); server.wait(); kills += 1
    start()
for c in clients:
    c.join()
trigger_secs = time.time() - started

# Wait until nothing is pending or running.
while time.time() < DEADLINE and unfinished() > 0:
    time.sleep(0.5)
total_secs = time.time() - started

conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
by_status = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
run_ids = [r[0] for r in conn.execute("SELECT id FROM runs")]
unfinished_steps = conn.execute("SELECT COUNT(*) FROM steps WHERE status != 'completed'").fetchone()[0]
conn.close()
server.send_signal(signal.SIGTERM); server.wait(timeout=30)
counter.shutdown()

twice = sum(1 for n in calls.values() if n > 1)
never = sum(1 for r in run_ids if r not in calls)
checks = {
    f"{RUNS} runs accepted (one per idempotency key)": len(accepted) == RUNS and len(run_ids) == RUNS,
    "every run completed": by_status.get("completed", 0) == RUNS,
    "no run stuck pending/running": by_status.get("pending", 0) + by_status.get("running", 0) == 0,
    "every step recorded completed": unfinished_steps == 0,
    "every run's http step executed": never == 0,
    f"only steps in flight at a kill ran twice (<= {kills} x {WORKERS})": twice <= kills * WORKERS,
}
print(f"soak: {RUNS} runs, {kills} SIGKILL+restart, {WORKERS} workers, triggers took {trigger_secs:.1f}s, all finished after {total_secs:.1f}s")
print(f"soak: runs by status {by_status}; http step executed twice in {twice} run(s) (in flight at a kill)")
for name, ok in checks.items():
    print(("PASS " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
