#!/usr/bin/env python3
"""Soak test (bounded, loopback only): trigger RUNS runs of a three-step
workflow (transform -> http.request to a local counter -> transform) while
killing flowctl serve with SIGKILL and restarting it KILLS times at random,
then check that every run finished, none is stuck, and that only steps in
flight at a kill ran twice. Prints a summary; exits 1 when a check fails.

SQLite (default): one server on a temporary file. PostgreSQL (DATABASE_URL
set): NODES servers on a fresh database of that cluster; triggers are spread
over the nodes (a client whose node is down retries the same idempotency key
on the next one) and each kill hits a random node. FLOWCTL_LEASE_MS (3000
here) bounds how long a killed node's runs wait before a live node takes
them over."""
import http.client, http.server, json, os, random, signal, socket, sqlite3
import subprocess, sys, tempfile, threading, time

RUNS = int(os.environ.get("RUNS", "10000"))
KILLS = int(os.environ.get("KILLS", "5"))
WORKERS = int(os.environ.get("WORKERS", "32"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
NODES = int(os.environ.get("NODES", "3" if DATABASE_URL else "1"))
LEASE_MS = os.environ.get("FLOWCTL_LEASE_MS", "3000")
CLIENTS = 16
DEADLINE = time.time() + int(os.environ.get("SOAK_SECONDS", "600"))
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/flowctl"
SECRET = os.urandom(32).hex()

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
        try:
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the calling node was killed mid-request: it will run the step again
    def log_message(self, *a):
        pass

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def psql(url, sql):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()

root = tempfile.mkdtemp(prefix="flowctl-soak-")
db = root + "/soak.db"
pg_url = None
if DATABASE_URL:
    name = f"flowctl_soak_{os.getpid()}_{int(time.time())}"
    psql(DATABASE_URL, f"CREATE DATABASE {name}")
    head, _, query = DATABASE_URL.partition("?")
    pg_url = head.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")

def query(sql):
    """One row of one query on the store, as a tuple of strings/ints."""
    if pg_url:
        return [tuple(line.split("|")) for line in psql(pg_url, sql).splitlines()]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(sql).fetchall(); conn.close()
    return [tuple(str(c) for c in r) for r in rows]

counter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
threading.Thread(target=counter.serve_forever, daemon=True).start()

class Node:
    def __init__(self, i):
        self.home = f"{root}/node{i}"
        os.makedirs(self.home)
        self.port = free_port()
        self.proc = None
    def start(self):
        env = dict(os.environ, HOME=self.home, XDG_CONFIG_HOME=self.home + "/config",
                   XDG_DATA_HOME=self.home + "/data", FLOWCTL_SECRET_KEY=SECRET)
        for k in ("FLOWCTL_URL", "FLOWCTL_API_KEY", "FLOWCTL_DATABASE_URL", "DATABASE_URL"):
            env.pop(k, None)
        store = ["--db", db]
        if pg_url:
            store = ["--database-url", pg_url]
            env["FLOWCTL_LEASE_MS"] = LEASE_MS
        self.proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{self.port}", *store,
                                      "--workers", str(WORKERS), "--rate-limit-execute", "0",
                                      "--rate-limit-read", "0", "--rate-limit-write", "0"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            if "listening on" in line:
                break
        else:
            sys.exit(f"soak: node on port {self.port} did not start")
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stderr], daemon=True).start()
    def kill(self):
        self.proc.send_signal(signal.SIGKILL); self.proc.wait()

nodes = [Node(i) for i in range(NODES)]
for n in nodes:
    n.start()
key = json.load(open(nodes[0].home + "/config/flowctl/credentials.json"))["apiKey"]

def request(node, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=timeout)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"x-api-key": key, "content-type": "application/json"})
    r = conn.getresponse(); data = json.loads(r.read()); conn.close()
    return r.status, data

wf = {"name": "Soak", "steps": [
    {"id": "total", "type": "transform", "config": {"mapping": {"total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"}}},
    {"id": "call", "type": "action", "action": "http.request", "retryConfig": {"maxAttempts": 10, "initialDelayMs": 100},
     "config": {"method": "POST", "url": f"http://127.0.0.1:{counter.server_address[1]}/hit", "body": {"run": "{{runId}}"}}},
    {"id": "after", "type": "transform", "config": {"mapping": {"total": "{{steps.total.output.total}}", "status": "{{steps.call.output.status}}"}}}]}
assert request(nodes[0], "POST", "/api/v1/workflows", wf)[0] in (200, 201)

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
        attempt = 0
        while time.time() < DEADLINE:
            node = nodes[(i + attempt) % NODES]
            try:
                status, data = request(node, "POST", "/api/v1/workflows/wf_soak/run", body)
                if status in (200, 202):
                    with accepted_lock:
                        accepted.add(data["data"]["runId"])
                    break
                print("unexpected answer", status, data, file=sys.stderr)
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.05)  # node down: retry the same idempotency key on the next node
            attempt += 1

UNFINISHED = "SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running')"
def unfinished():
    return int(query(UNFINISHED)[0][0])

started = time.time()
clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
for c in clients:
    c.start()

# Kill at random moments while triggers arrive and while runs execute.
kills = 0
while kills < KILLS and time.time() < DEADLINE and (any(c.is_alive() for c in clients) or unfinished() > 0):
    # Shorter gaps for a short soak (the smoke), so its kill lands while runs are in flight.
    time.sleep(random.uniform(0.2, min(2.0, 0.3 + RUNS / 5000)))
    victim = random.choice(nodes)
    victim.kill(); kills += 1
    victim.start()
for c in clients:
    c.join()
trigger_secs = time.time() - started

# Wait until nothing is pending or running.
while time.time() < DEADLINE and unfinished() > 0:
    time.sleep(0.5)
total_secs = time.time() - started

by_status = {s: int(n) for s, n in query("SELECT status, COUNT(*) FROM runs GROUP BY status")}
run_ids = [r[0] for r in query("SELECT id FROM runs")]
unfinished_steps = int(query("SELECT COUNT(*) FROM steps WHERE status != 'completed'")[0][0])
for n in nodes:
    n.proc.send_signal(signal.SIGTERM)
for n in nodes:
    n.proc.wait(timeout=30)
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
where = f"PostgreSQL, {NODES} nodes, lease {LEASE_MS} ms" if pg_url else "SQLite"
print(f"soak ({where}): {RUNS} runs, {kills} SIGKILL+restart, {WORKERS} workers per node, triggers took {trigger_secs:.1f}s, all finished after {total_secs:.1f}s")
print(f"soak: runs by status {by_status}; http step executed twice in {twice} run(s) (in flight at a kill)")
for name, ok in checks.items():
    print(("PASS " if ok else "FAIL ") + name)
if pg_url and all(checks.values()):
    psql(DATABASE_URL, f"DROP DATABASE {pg_url.rsplit('/', 1)[1].split('?')[0]}")
sys.exit(0 if all(checks.values()) else 1)
