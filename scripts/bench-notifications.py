#!/usr/bin/env python3
"""Outbound notifications under load (bounded, loopback only).

Two phases on fresh SQLite databases with the same binary: RUNS runs of a
one-step workflow with notifications off (no endpoint), then with two
endpoints subscribed to every event (2 events per run each: 4 x RUNS
deliveries) answered by a local receiver that checks every signature with a
plain HMAC. Reports end-to-end run throughput of both phases (first trigger to
last run finished, from /metrics), their ratio (the target is >= 0.8), when the
last delivery arrived, and checks that no event was lost and that each run's
events reached each endpoint in `sequence` order.

    scripts/bench-notifications.py [BIN]     # BIN: target/release/flowctl
Knobs (environment): RUNS (5000), CONNS (16 trigger threads).
"""
import base64, hashlib, hmac, http.client, http.server, json, os, re, socket
import subprocess, sys, tempfile, threading, time

RUNS = int(os.environ.get("RUNS", "5000"))
CONNS = int(os.environ.get("CONNS", "16"))
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/flowctl"
WF = {"id": "wf_bench", "name": "Bench", "steps": [{"id": "total", "type": "transform",
      "config": {"mapping": {"total": "{{input.n | times: 2}}"}}}]}


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Receiver:
    """Records (endpoint, run, sequence, event id) of every verified delivery."""

    def __init__(self):
        self.secrets, self.got, self.bad, self.lock = {}, [], 0, threading.Lock()
        self.last_at = 0.0
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                name = self.path.strip("/")
                key = base64.b64decode(me.secrets[name][len("whsec_"):])
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
                mac = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                ok = any(hmac.compare_digest(s, "v1," + mac) for s in self.headers["webhook-signature"].split())
                e = json.loads(body)
                with me.lock:
                    if ok:
                        me.got.append((name, e["data"]["id"], e["sequence"], e["id"]))
                        me.last_at = time.time()
                    else:
                        me.bad += 1
                self.send_response(204 if ok else 401); self.send_header("content-length", "0"); self.end_headers()

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def phase(endpoints, receiver):
    home = tempfile.mkdtemp(prefix="flowctl-notify-bench-")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/config", XDG_DATA_HOME=home + "/data")
    env.pop("FLOWCTL_DATABASE_URL", None)
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--db", home + "/b.db",
                               "--rate-limit-execute", "0", "--rate-limit-write", "0", "--rate-limit-read", "0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        if "listening on" in line:
            break
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    key = json.load(open(home + "/config/flowctl/credentials.json"))["apiKey"]

    def call(c, method, path, body=None):
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"x-api-key": key, "content-type": "application/json"})
        r = c.getresponse(); data = r.read()
        return r.status, data

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    assert call(c, "POST", "/api/v1/workflows", WF)[0] in (200, 201)
    for name in endpoints:
        st, data = call(c, "POST", "/api/v1/webhook-endpoints", {"url": f"http://127.0.0.1:{receiver.port}/{name}"})
        assert st == 201, data
        receiver.secrets[name] = json.loads(data)["data"]["secret"]

    def completed():
        st, data = call(c, "GET", "/metrics")
        m = re.search(rb'flowctl_runs\{status="completed"\} (\d+)', data)
        return int(m.group(1)) if m else 0

    counter = iter(range(RUNS)); lock = threading.Lock(); errors = []

    def trigger():
        tc = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            st, data = call(tc, "POST", "/api/v1/workflows/wf_bench/run", {"input": {"n": i}})
            if st != 202:
                errors.append((st, data[:200]))

    start = time.time()
    threads = [threading.Thread(target=trigger) for _ in range(CONNS)]
    [t.start() for t in threads]; [t.join() for t in threads]
    triggered = time.time() - start
    while completed() < RUNS:
        time.sleep(0.2)
    done = time.time() - start
    expected = 2 * RUNS * len(endpoints)
    deadline = time.time() + 600
    while endpoints and len(receiver.got) < expected and time.time() < deadline:
        time.sleep(0.2)
    drained = (receiver.last_at - start) if endpoints else 0.0
    server.terminate(); server.wait()
    return {"errors": len(errors), "triggered_s": triggered, "done_s": done,
            "throughput": RUNS / done, "drained_s": drained}


def main():
    rx = Receiver()
    off = phase([], rx)
    print(f"notifications off: {RUNS} runs finished in {off['done_s']:.1f} s "
          f"({off['throughput']:.0f} runs/s; triggers took {off['triggered_s']:.1f} s; {off['errors']} trigger errors)")
    on = phase(["a", "b"], rx)
    print(f"notifications on (2 endpoints, all events): {RUNS} runs finished in {on['done_s']:.1f} s "
          f"({on['throughput']:.0f} runs/s; {on['errors']} trigger errors); "
          f"last delivery {on['drained_s']:.1f} s after the first trigger")
    ratio = on["throughput"] / off["throughput"]
    expected = 4 * RUNS
    ids = {(g[0], g[3]) for g in rx.got}
    lost = expected - len(ids)
    dupes = len(rx.got) - len(ids)
    out_of_order = 0
    last = {}
    for name, run, seq, _ in rx.got:
        if seq < last.get((name, run), 0):
            out_of_order += 1
        last[(name, run)] = max(seq, last.get((name, run), 0))
    print(f"deliveries: {len(ids)} distinct of {expected} expected (lost {lost}, repeated {dupes}), "
          f"bad signatures {rx.bad}, out of order {out_of_order}; throughput ratio on/off {ratio:.2f}")
    ok = lost == 0 and rx.bad == 0 and out_of_order == 0 and off["errors"] == 0 and on["errors"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
