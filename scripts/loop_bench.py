#!/usr/bin/env python3
"""The 10 000-item loop figure: one run whose `loop` step runs a one-transform body
per item, timed from the trigger to the run's completion, with the server's peak RSS
and the most queued item runs seen (sampled from `GET /api/v1/runs`).

    scripts/loop_bench.py                         # 10 000 items at maxConcurrency 50, SQLite
    scripts/loop_bench.py --concurrency 1         # the in-order figure
    scripts/loop_bench.py --database-url URL      # PostgreSQL (one node)
    FLOWCTL_BIN=target/debug/flowctl scripts/loop_bench.py --items 1000

Everything it starts is stopped on exit; the database lives in a temporary directory.
Targets (BENCHMARKS.md): ≤ 5 s on SQLite and ≤ 15 s on PostgreSQL at concurrency 50,
≤ 30 s on SQLite at concurrency 1; peak RSS ≤ 100 MiB.
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def req(url, key, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, method=method,
                               headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=60) as resp:
        return json.loads(resp.read() or b"null")


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--database-url")
    ap.add_argument("--workers", type=int, default=None, help="serve --workers (default: the server's)")
    args = ap.parse_args()
    binp = os.environ.get("FLOWCTL_BIN", os.path.join(ROOT, "target/release/flowctl"))
    if not os.access(binp, os.X_OK):
        sys.exit(f"no flowctl binary at {binp}: build it (scripts/build-release.sh) or set FLOWCTL_BIN")
    tmp = tempfile.TemporaryDirectory(prefix="loop-bench-")
    home = tmp.name
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=f"{home}/config", XDG_DATA_HOME=f"{home}/data")
    for k in ("FLOWCTL_URL", "FLOWCTL_API_KEY", "FLOWCTL_DB", "FLOWCTL_DATABASE_URL"):
        env.pop(k, None)
    cmd = [binp, "serve", "--listen", "127.0.0.1:0", "--db", f"{home}/flowctl.db"]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in server.stderr:
            if "flowctl listening on " in line:
                url = line.split("flowctl listening on ", 1)[1].strip().split()[0]
                break
        if not url:
            sys.exit("the server did not start")
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        with open(f"{home}/config/flowctl/credentials.json") as f:
            key = json.load(f)["apiKey"]
        req(f"{url}/api/v1/workflows", key, "POST", {
            "name": "Loop Bench",
            "steps": [{"id": "each", "type": "loop", "config": {
                "collection": "{{ input.items }}", "maxIterations": 10000,
                "maxConcurrency": args.concurrency,
                "steps": [{"id": "double", "type": "transform", "config": {"mapping": {"v": "{{ item | times: 2 }}"}}}],
                "output": "{{ steps.double.output.v }}"}}]})
        items = list(range(args.items))
        peak_rss, peak_queued, stop = [0.0], [0], [False]

        def sample():
            while not stop[0]:
                peak_rss[0] = max(peak_rss[0], rss_mib(server.pid))
                time.sleep(0.05)

        def queued(run_id):
            # Item runs waiting for a worker, a few times a second.
            while not stop[0]:
                pending = req(f"{url}/api/v1/runs?parentRunId={run_id}&status=pending&limit=100", key)["data"]
                peak_queued[0] = max(peak_queued[0], len(pending))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        t0 = time.monotonic()
        run_id = req(f"{url}/api/v1/workflows/wf_loop_bench/run", key, "POST", {"input": {"items": items}})["data"]["runId"]
        threading.Thread(target=queued, args=(run_id,), daemon=True).start()
        while True:
            run = req(f"{url}/api/v1/runs/{run_id}?wait=5", key)["data"]
            if run["status"] not in ("pending", "running"):
                break
        elapsed = time.monotonic() - t0
        stop[0] = True
        out = run["steps"][0]["output"] if run.get("steps") else {}
        ok = run["status"] == "completed" and out.get("count") == args.items and out.get("items", [None])[-1] == 2 * (args.items - 1)
        load = os.getloadavg()
        store = "postgresql" if args.database_url else "sqlite"
        print(json.dumps({
            "store": store, "items": args.items, "maxConcurrency": args.concurrency,
            "status": run["status"], "correct": ok, "seconds": round(elapsed, 2),
            "items_per_s": round(args.items / elapsed, 1), "peak_rss_mib": round(peak_rss[0], 1),
            "peak_pending_item_runs_seen": peak_queued[0], "loadavg": [round(x, 1) for x in load],
            "binary": binp,
        }))
        if not ok:
            sys.exit(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
