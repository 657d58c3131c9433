#!/usr/bin/env python3
"""Idle cost of a server holding many workflows (issue 21): CPU of an idle
`flowctl serve` with WORKFLOWS workflows, SCHEDULES of them on an hourly
schedule (nothing fires while it is measured) and WEBHOOKS with a webhook
trigger; on PostgreSQL also the database's transactions per second (every
query the idle node sends is one). Loopback only; everything it starts is
stopped on exit.

  python3 scripts/idle_bench.py target/release/flowctl
  python3 scripts/idle_bench.py target/release/flowctl --postgres postgres://flowctl@127.0.0.1:55432/flowctl

Knobs (environment): WORKFLOWS (10000), SCHEDULES (1000), WEBHOOKS (1000),
SETTLE (10 s after the last apply), MEASURE (20 s), CLIENTS (8 concurrent applies).
Then DELIVERIES (200) webhook deliveries one after another to random webhook
paths: the first (after the quiet, when an index may be stale) and the
median and p99 latency of all.
Prints one JSON line: idle CPU in % of one core, queries/s on PostgreSQL, and
webhook answer times in ms.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

WORKFLOWS = int(os.environ.get("WORKFLOWS", 10000))
SCHEDULES = int(os.environ.get("SCHEDULES", 1000))
WEBHOOKS = int(os.environ.get("WEBHOOKS", 1000))
SETTLE = float(os.environ.get("SETTLE", 10))
MEASURE = float(os.environ.get("MEASURE", 20))
CLIENTS = int(os.environ.get("CLIENTS", 8))
DELIVERIES = int(os.environ.get("DELIVERIES", 200))


def definition(i):
    d = {"id": f"wf_idle_{i:05d}", "name": f"Idle {i}",
         "steps": [{"id": "t", "type": "transform", "config": {"mapping": {"i": i}}}]}
    if i < SCHEDULES:
        d["trigger"] = {"type": "schedule", "cron": f"{i % 60} * * * *"}
    elif i < SCHEDULES + WEBHOOKS:
        d["trigger"] = {"type": "webhook", "path": f"hooks/idle-{i}", "provider": "standard",
                        "verifySignature": False}
    return d


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_transactions(url):
    out = subprocess.run(
        ["psql", url, "-Atc", "SELECT pg_stat_force_next_flush(); "
         "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"],
        capture_output=True, text=True, check=True).stdout.split()
    return int(out[-1])


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    pg_url = sys.argv[sys.argv.index("--postgres") + 1] if "--postgres" in sys.argv else None
    tmp = tempfile.TemporaryDirectory(prefix="flowctl-idle-")
    env = dict(os.environ, HOME=tmp.name, XDG_CONFIG_HOME=f"{tmp.name}/config",
               XDG_DATA_HOME=f"{tmp.name}/data")
    env.pop("RUST_LOG", None)
    # Applying 10 000 workflows is far beyond the default write limit.
    args = [binary, "serve", "--listen", "127.0.0.1:0", "--db", f"{tmp.name}/flowctl.db",
            "--rate-limit-write", "0"]
    if pg_url:
        args += ["--database-url", pg_url]
    log = open(f"{tmp.name}/serve.log", "w+")
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        url = None
        for _ in range(600):
            log.seek(0)
            m = re.search(r"flowctl listening on (http://\S+)", log.read())
            if m:
                url = m.group(1)
                break
            if server.poll() is not None:
                raise SystemExit("server exited; see " + log.name)
            time.sleep(0.05)
        key = json.load(open(f"{tmp.name}/config/flowctl/credentials.json"))["apiKey"]

        def apply(ids):
            for i in ids:
                req = urllib.request.Request(
                    f"{url}/api/v1/workflows", data=json.dumps(definition(i)).encode(),
                    headers={"x-api-key": key, "Content-Type": "application/json"}, method="POST")
                urllib.request.urlopen(req, timeout=30).read()

        started, apply_cpu0 = time.time(), cpu_seconds(server.pid)
        threads = [threading.Thread(target=apply, args=(range(c, WORKFLOWS, CLIENTS),))
                   for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        applied_s = time.time() - started
        apply_cpu = cpu_seconds(server.pid) - apply_cpu0
        time.sleep(SETTLE)
        cpu0, t0 = cpu_seconds(server.pid), time.time()
        q0 = pg_transactions(pg_url) if pg_url else None
        time.sleep(MEASURE)
        cpu1, t1 = cpu_seconds(server.pid), time.time()
        q1 = pg_transactions(pg_url) if pg_url else None
        result = {
            "store": "postgres" if pg_url else "sqlite",
            "workflows": WORKFLOWS, "schedules": SCHEDULES, "webhooks": WEBHOOKS,
            "apply_seconds": round(applied_s, 1),
            # The server's CPU for all the applies: less sensitive to a busy
            # machine than their wall time.
            "apply_cpu_seconds": round(apply_cpu, 1),
            "idle_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        }
        if pg_url:
            # Two of the counted transactions are this script's own reads.
            result["queries_per_second"] = round((q1 - q0 - 2) / (t1 - t0), 1)
        if WEBHOOKS and DELIVERIES:
            rng = random.Random(7)
            times = []
            for n in range(DELIVERIES):
                i = SCHEDULES + rng.randrange(WEBHOOKS)
                req = urllib.request.Request(
                    f"{url}/webhooks/hooks/idle-{i}", data=json.dumps({"n": n}).encode(),
                    headers={"Content-Type": "application/json"}, method="POST")
                t = time.perf_counter()
                urllib.request.urlopen(req, timeout=30).read()
                times.append(1000 * (time.perf_counter() - t))
            first, times = times[0], sorted(times)
            result["webhook_ms"] = {
                "first": round(first, 2),
                "p50": round(times[len(times) // 2], 2),
                "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            }
        print(json.dumps(result))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
