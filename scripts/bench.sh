#!/usr/bin/env bash
# flowctl benchmark (issue 7): trigger throughput and latency, end-to-end
# completions, memory, CPU per run, and start-up / lookups with many stored runs.
# Loopback only, bounded in time; everything it starts is stopped on exit.
#
#   scripts/bench.sh            # full run (about 6-8 minutes after the build)
#   scripts/bench.sh --smoke    # every phase for a few seconds (CI); asserts no targets
#   scripts/bench.sh --postgres [URL]   # SQLite and PostgreSQL with 1, 2, 3 nodes (scripts/bench-pg.sh)
#
# Knobs (environment): BENCH_SECONDS (10) per trigger/lookup repetition, REPS (3),
# PHASES (all, or a comma list of main, bare, http, subworkflow, ratelimit, big),
# BENCH_BIN (measure this flowctl binary, no build; for a quick look, e.g.
#   PHASES=subworkflow BENCH_BIN=target/debug/flowctl scripts/bench.sh --smoke),
# E2E_SECONDS (60), E2E_RATE (5250 offered triggers/s: the 5000 target + 5%), E2E_CONNS (64),
# ROWS (1000000 finished runs for the large-database phase), STARTUP_REPS (5),
# DRAIN_MAX (30 s to wait for a backlog between phases), WRK_THREADS (2),
# KEEP_TMP=1 keeps the temporary directory (databases, logs, raw results).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SMOKE=0
PG_MODE=0 PG_URL="" # --postgres [URL]: the PostgreSQL mode (scripts/bench-pg.sh) instead of the phases below
prev=""
for arg in "$@"; do
  if [ "$prev" = --postgres ] && [[ "$arg" == postgres://* || "$arg" == postgresql://* ]]; then
    PG_URL=$arg; prev=""; continue
  fi
  prev=$arg
  case "$arg" in
    --postgres) PG_MODE=1 ;;
    --postgres=*) PG_MODE=1 PG_URL=${arg#--postgres=} ;;
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  : "${BENCH_SECONDS:=2}" "${REPS:=1}" "${E2E_SECONDS:=4}" "${ROWS:=10000}"
  : "${STARTUP_REPS:=2}" "${DRAIN_MAX:=5}"
fi
BENCH_SECONDS=${BENCH_SECONDS:-10}
REPS=${REPS:-3}
E2E_SECONDS=${E2E_SECONDS:-60}
E2E_RATE=${E2E_RATE:-5250}
E2E_CONNS=${E2E_CONNS:-64}
ROWS=${ROWS:-1000000}
STARTUP_REPS=${STARTUP_REPS:-5}
DRAIN_MAX=${DRAIN_MAX:-30}
WRK_THREADS=${WRK_THREADS:-2}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PHASES=${PHASES:-all}
want() { [ "$PHASES" = all ] || [[ ",$PHASES," == *",$1,"* ]]; }
if [ "$PG_MODE" = 1 ] && [ -n "${PG_BIN:-}" ]; then
  log "measuring $PG_BIN (PG_BIN): no build"
elif [ -n "${BENCH_BIN:-}" ]; then
  log "measuring $BENCH_BIN (BENCH_BIN): no build"
else
  log "building the release binary"
  scripts/build-release.sh --bin flowctl --example bare_durable # static, at target/release/flowctl
fi
BIN=$ROOT/target/release/flowctl
[ -n "${BENCH_BIN:-}" ] && [ "$PG_MODE" = 0 ] && BIN=$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")
BARE=$ROOT/target/$(rustc -vV | sed -n 's/^host: //p')/release/examples/bare_durable

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowctl-bench.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A home of its own: the first start writes the admin key here, not in ~.
export HOME=$TMP/home XDG_CONFIG_HOME=$TMP/home/.config XDG_DATA_HOME=$TMP/home/.local/share
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
CREDS=$XDG_CONFIG_HOME/flowctl/credentials.json
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# Rate-limit flags (docs/cli.md) if this build has them.
RL_OFF=()
if "$BIN" serve --help 2>/dev/null | grep -q -- '--rate-limit-execute'; then
  HAVE_RL=1
  RL_OFF=(--rate-limit-execute 0 --rate-limit-read 0 --rate-limit-write 0)
else
  HAVE_RL=0
  log "note: this build's 'flowctl serve' has no --rate-limit-* flags; measuring without them"
fi

# ---------------------------------------------------------------- helper (python)
PY=$TMP/bench.py
cat >"$PY" <<'PYEOF'
import json, os, signal, sqlite3, statistics, subprocess, sys, threading, time, urllib.request

CHILDREN = []
def _term(*_):
    for c in CHILDREN:
        try: c.kill()
        except Exception: pass
    sys.exit(143)
signal.signal(signal.SIGTERM, _term)

TICK = os.sysconf("SC_CLK_TCK")
OTHERS = ("pending", "running", "failed", "cancelled", "timed_out")

def db_counts(db):
    """Runs by status, cheaply: small statuses by index, total by MAX(seq) (nothing is deleted)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        out = {s: c.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (s,)).fetchone()[0] for s in OTHERS}
        total = c.execute("SELECT COALESCE(MAX(seq), 0) FROM runs").fetchone()[0]
    finally:
        c.close()
    out["total"] = total
    out["completed"] = total - sum(out[s] for s in OTHERS)
    return out

def proc(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / TICK
    mem = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                mem[k] = int(v.split()[0]) / 1024
    io = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, _, v = line.partition(":")
                io[k] = int(v)
    except OSError:
        pass
    return {"cpu_s": cpu, "rss_mib": mem.get("VmRSS", 0), "hwm_mib": mem.get("VmHWM", 0),
            "wchar": io.get("wchar", 0), "syscw": io.get("syscw", 0)}

def threads(pid):
    """CPU seconds per thread name (tokio workers, the DB writer, blocking readers)."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1: raw.rindex(")")]
        st = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(st[11]) + int(st[12])) / TICK
    return out

def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / TICK

def snap(db, pid):
    s = proc(pid); s["t"] = time.monotonic(); s["threads"] = threads(pid); s["busy"] = machine_busy()
    if db: s["runs"] = db_counts(db)
    return s

def record(obj):
    with open(os.environ["RESULTS"], "a") as f:
        f.write(json.dumps(obj) + "\n")

def run_wrk(conns, secs, script, url):
    args = ["wrk", f"-t{min(int(os.environ.get('WRK_THREADS', 2)), conns)}", f"-c{conns}",
            f"-d{secs}s", "--timeout", "10s", "-s", script, url]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    CHILDREN.append(p)
    return p

def wrk_result(p):
    out, _ = p.communicate()
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise SystemExit("wrk printed no result:\n" + out)

def cmd_load(a):
    """load NAME REP CONNS SECS SCRIPT URL PID DB SAMPLE_DB(0/1)"""
    name, rep, conns, secs, script, url, pid, db, sample_db = a
    conns, secs, pid, sample_db = int(conns), float(secs), int(pid), sample_db == "1"
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = snap(db, pid)
    p = run_wrk(conns, int(secs), script, url)
    samples, peak = [], before["rss_mib"]
    while p.poll() is None:
        time.sleep(1.0 if sample_db else 0.5)
        try:
            s = proc(pid)
        except OSError:
            break
        peak = max(peak, s["rss_mib"])
        if sample_db:
            c = db_counts(db)
            samples.append({"t": round(time.monotonic() - before["t"], 2),
                            "backlog": c["pending"] + c["running"], "completed": c["completed"]})
    w = wrk_result(p)
    after = snap(db, pid)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = after["t"] - before["t"]
    rb, ra = before.get("runs"), after.get("runs")
    res = {"name": name, "rep": int(rep), "conns": conns, "secs": secs, "wall": wall,
           "requests": w["requests"], "rps": w["requests"] / (w["duration_us"] / 1e6),
           "ok_rps": (w["requests"] - w["non2xx"] - w["errors"]) / (w["duration_us"] / 1e6),
           "non2xx": w["non2xx"], "errors": w["errors"],
           "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000, "max_ms": w["max_us"] / 1000,
           "cpu_s": after["cpu_s"] - before["cpu_s"], "rss_peak_mib": peak,
           "wrk_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
           "machine_busy_cores": (after["busy"] - before["busy"]) / wall,
           # Cores busy with anything but this server and wrk: noise from other work on the machine.
           "other_cores": (after["busy"] - before["busy"]) / wall - (after["cpu_s"] - before["cpu_s"]) / wall
                          - ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / wall, "hwm_mib": after["hwm_mib"],
           "threads": {k: round(v - before["threads"].get(k, 0), 2) for k, v in after["threads"].items()
                       if v - before["threads"].get(k, 0) > 0.005}}
    if rb and ra:
        res["created"] = ra["total"] - rb["total"]
        res["completed"] = ra["completed"] - rb["completed"]
        res["failed"] = ra["failed"] - rb["failed"]
        res["backlog_start"] = rb["pending"] + rb["running"]
        res["backlog_end"] = ra["pending"] + ra["running"]
        res["completed_per_s"] = res["completed"] / wall
        res["cpu_ms_per_run"] = 1000 * res["cpu_s"] / max(res["completed"], 1)
        # Bytes the server wrote (WAL frames, checkpoints) per run created.
        res["write_kib_per_run"] = (after["wchar"] - before["wchar"]) / 1024 / max(res["created"], 1)
    if samples:
        res["samples"] = samples
        # Backlog trend over the second half (first half may still be warming up).
        half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2]
        if len(half) >= 2:
            dt = half[-1]["t"] - half[0]["t"]
            res["backlog_growth_per_s"] = (half[-1]["backlog"] - half[0]["backlog"]) / dt if dt else 0
            res["completed_per_s_2nd_half"] = (half[-1]["completed"] - half[0]["completed"]) / dt if dt else 0
    record(res)
    line = (f"{name} #{rep}: {res['rps']:.0f} req/s ({res['ok_rps']:.0f} ok), p50 {res['p50_ms']:.2f} ms, "
            f"p99 {res['p99_ms']:.2f} ms, non-2xx {res['non2xx']}, errors {res['errors']}, "
            f"server cpu {res['cpu_s']:.1f} s, wrk cpu {res['wrk_cpu_s']:.1f} s, machine busy "
            f"{res['machine_busy_cores']:.2f}/{os.cpu_count()} cores (other work {res['other_cores']:.2f}), "
            f"rss peak {peak:.1f} MiB")
    if "completed" in res:
        line += (f", completed {res['completed']} ({res['completed_per_s']:.0f}/s), backlog "
                 f"{res['backlog_start']}->{res['backlog_end']}, cpu/run {res['cpu_ms_per_run']:.3f} ms")
    print(line, file=sys.stderr)
    busy = sorted(res["threads"].items(), key=lambda kv: -kv[1])[:6]
    print("    cpu by thread: " + ", ".join(f"{k} {v:.1f}s" for k, v in busy), file=sys.stderr)

def cmd_drain(a):
    """drain DB PID MAX_SECONDS: wait for pending+running to reach 0; record the drain rate."""
    db, pid, maxs = a[0], int(a[1]), float(a[2])
    t0 = time.monotonic(); c0 = db_counts(db); p0 = proc(pid)
    c = c0
    while c["pending"] + c["running"] > 0 and time.monotonic() - t0 < maxs:
        time.sleep(0.25)
        c = db_counts(db)
    dt = time.monotonic() - t0
    done = c["completed"] - c0["completed"]
    left = c["pending"] + c["running"]
    if c0["pending"] + c0["running"] > 0:
        res = {"name": "drain", "backlog_start": c0["pending"] + c0["running"], "backlog_end": left,
               "seconds": dt, "completed": done, "completed_per_s": done / dt if dt else 0,
               "cpu_s": proc(pid)["cpu_s"] - p0["cpu_s"]}
        record(res)
        print(f"drain: {res['backlog_start']} -> {left} in {dt:.1f} s ({res['completed_per_s']:.0f} completed/s, "
              f"cpu {res['cpu_s']:.1f} s)", file=sys.stderr)

def cmd_counts(a):
    print(json.dumps(db_counts(a[0])))

def cmd_mem(a):
    """mem NAME PID: record RSS now."""
    s = proc(int(a[1]))
    record({"name": a[0], "rss_mib": s["rss_mib"], "hwm_mib": s["hwm_mib"]})
    print(f"{a[0]}: VmRSS {s['rss_mib']:.1f} MiB, VmHWM {s['hwm_mib']:.1f} MiB", file=sys.stderr)

def cmd_fill(a):
    """fill DB ROWS WORKFLOW_ID VERSION: ROWS completed runs with three completed steps each."""
    db, rows, wf, version = a[0], int(a[1]), a[2], int(a[3])
    t0 = time.monotonic()
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=OFF"); c.execute("PRAGMA synchronous=OFF")
    c.execute("PRAGMA cache_size=-262144")
    base = c.execute("SELECT COALESCE(MAX(seq), 0) FROM runs").fetchone()[0]
    now = int(time.time() * 1000) - rows - 10_000  # within retention, all in the past
    inp = json.dumps({"customerId": "cus_bench", "currency": "usd", "items": [
        {"product": "Widget", "quantity": 2, "price": 19.99},
        {"product": "Gadget", "quantity": 1, "price": 5},
        {"product": "Gizmo", "quantity": 3, "price": 7.5}]}, separators=(",", ":"))
    out = json.dumps({"subtotal": 67.48, "tax": 5.3984, "total": 72.8784, "due": 65.59,
                      "summary": "3 item(s), due 65.59 USD"}, separators=(",", ":"))
    step_out = [json.dumps({"subtotal": 67.48, "tax": 5.3984, "total": 72.8784}, separators=(",", ":")),
                json.dumps({"discount": 7.29, "due": 65.59}, separators=(",", ":")),
                json.dumps({"line": "3 item(s), due 65.59 USD", "itemCount": 3}, separators=(",", ":"))]
    step_ids = ["calculate-total", "apply-discount", "summarize"]
    c.execute("BEGIN")
    def runs():
        for i in range(1, rows + 1):
            t = now + i
            yield (base + i, "run_%024d" % i, wf, version, "completed", inp, out, t, t, t + 3, 0)
    c.executemany("INSERT INTO runs (seq, id, workflow_id, workflow_version, status, input, output, "
                  "created_at, started_at, completed_at, ready) VALUES (?,?,?,?,?,?,?,?,?,?,?)", runs())
    def steps():
        for i in range(1, rows + 1):
            t = now + i
            for k in range(3):
                yield (base + i, k, step_ids[k], "completed", step_out[k], 1, t + k, t + k + 1)
    c.executemany("INSERT INTO steps (run_seq, idx, step_id, status, output, attempts, started_at, "
                  "completed_at) VALUES (?,?,?,?,?,?,?,?)", steps())
    c.execute("COMMIT")
    c.execute("PRAGMA journal_mode=WAL")
    c.close()
    dt = time.monotonic() - t0
    size = os.path.getsize(db) / 2**20
    record({"name": "fill", "rows": rows, "seconds": dt, "db_mib": size})
    print(f"fill: {rows} runs + {3 * rows} steps in {dt:.1f} s, database {size:.0f} MiB", file=sys.stderr)

def cmd_startup(a):
    """startup NAME BIN DB REPS [serve flags...]: time from exec to the first 200 from /healthz."""
    name, binp, db, reps, flags = a[0], a[1], a[2], int(a[3]), a[4:]
    for rep in range(1, reps + 1):
        errlog = open(os.path.join(os.environ["TMP"], f"startup-{rep}.log"), "w+")
        t0 = time.monotonic()
        p = subprocess.Popen([binp, "serve", "--listen", "127.0.0.1:0", "--db", db] + flags,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        CHILDREN.append(p)
        url = None
        for line in p.stderr:
            errlog.write(line)
            if line.startswith("flowctl listening on "):
                url = line.split()[-1]; break
        if url is None:
            raise SystemExit("server exited before listening; see " + errlog.name)
        t_listen = time.monotonic() - t0
        threading.Thread(target=lambda: [errlog.write(l) for l in p.stderr], daemon=True).start()
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                    if r.status == 200: break
            except Exception:
                pass
            if time.monotonic() - t0 > 60:
                raise SystemExit("no healthy /healthz within 60 s")
            time.sleep(0.001)
        t_ready = time.monotonic() - t0
        rss = proc(p.pid)["rss_mib"]
        p.send_signal(signal.SIGTERM)
        try: p.wait(timeout=20)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        record({"name": name, "rep": rep, "healthy_ms": t_ready * 1000, "listening_ms": t_listen * 1000,
                "rss_mib": rss})
        print(f"{name} #{rep}: first healthy /healthz after {t_ready * 1000:.1f} ms "
              f"(listening line after {t_listen * 1000:.1f} ms), RSS {rss:.1f} MiB", file=sys.stderr)

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def cmd_report(a):
    rows = [json.loads(l) for l in open(os.environ["RESULTS"]) if l.strip()]
    by = {}
    for r in rows: by.setdefault(r["name"], []).append(r)
    def m(name, key):
        return med([r.get(key) for r in by.get(name, [])])
    def n(name): return len(by.get(name, []))
    def fmt(v, unit="", d=1):
        if v is None: return "-"
        return f"{v:,.{d}f}{unit}"
    lines = []  # (figure, value, target, verdict)
    def row(fig, val, target="", ok=None):
        lines.append((fig, val, target, "" if ok is None else ("met" if ok else "NOT met")))
    for c in (32, 128):
        nm = f"trigger-c{c}"
        rps, p50, p99 = m(nm, "rps"), m(nm, "p50_ms"), m(nm, "p99_ms")
        bad = sum(r["non2xx"] + r["errors"] for r in by.get(nm, []))
        t = c == 32
        row(f"triggers/s, {c} conns (median of {n(nm)})", fmt(rps, "", 0) + (f"  [{bad} non-2xx/errors]" if bad else ""),
            "≥ 10,000" if t else "", (rps or 0) >= 10000 if t else None)
        row(f"  p50 / p99 latency, {c} conns", f"{fmt(p50, ' ms', 2)} / {fmt(p99, ' ms', 2)}",
            "p99 ≤ 15 ms" if t else "", (p99 or 1e9) <= 15 if t else None)
        row(f"  server CPU per accepted trigger (incl. runs executed meanwhile), {c} conns",
            fmt(med([1000 * r["cpu_s"] / max(r["requests"] - r["non2xx"] - r["errors"], 1) for r in by.get(nm, [])]), " ms", 3))
    e = by.get("e2e", [])
    if e:
        r = e[-1]
        row(f"end to end: offered triggers/s ({r['secs']:.0f} s at {r['conns']} conns)", fmt(r["ok_rps"], "", 0))
        cps, cps2 = r.get("completed_per_s"), r.get("completed_per_s_2nd_half")
        row("  runs completed/s (3 steps), whole window", fmt(cps, "", 0))
        row("  runs completed/s, second half (steady state)", fmt(cps2, "", 0), "≥ 5,000", (cps2 or 0) >= 5000)
        g = r.get("backlog_growth_per_s")
        grows = g is not None and g > 0.02 * max(r["ok_rps"], 1) and r["backlog_end"] > 1000
        row("  backlog (pending+running) start → end", f"{r['backlog_start']:,} → {r['backlog_end']:,}"
            + (f"  (2nd half {g:+,.0f}/s)" if g is not None else ""), "no growth", not grows)
        row("  server CPU per completed run", fmt(r.get("cpu_ms_per_run"), " ms", 3))
        row("  bytes written (WAL + checkpoints) per run", fmt(r.get("write_kib_per_run"), " KiB"))
        row("  server RSS under load (peak VmRSS)", fmt(r["rss_peak_mib"], " MiB"), "≤ 100 MiB", r["rss_peak_mib"] <= 100)
    dr = by.get("drain", [])
    if dr:
        row(f"worker-only drain rate (median of {len(dr)})", fmt(med([d["completed_per_s"] for d in dr]), " runs/s", 0))
    idle = m("rss-idle", "rss_mib")
    row("server RSS idle (fresh, workflow applied)", fmt(idle, " MiB"), "≤ 20 MiB", idle is not None and idle <= 20)
    after = m("rss-idle-after-load", "rss_mib")
    if after is not None:
        row("server RSS idle after the load phases", fmt(after, " MiB"))
    peak = max([r.get("hwm_mib", 0) for r in rows if r.get("hwm_mib") is not None] or [0])
    row("server VmHWM over all load phases", fmt(peak, " MiB"))
    rl = by.get("ratelimit-on-c32", [])
    if rl:
        r = rl[0]
        row("rate limits ON (defaults), 32 conns: answers/s", f"{r['rps']:,.0f} ({r['ok_rps']:,.0f}/s 2xx, {r['non2xx']:,} non-2xx)")
        row("  p50 / p99 with limits on", f"{r['p50_ms']:.2f} ms / {r['p99_ms']:.2f} ms")
    else:
        row("rate limits on (defaults)", os.environ.get("RL_NOTE", "not measured"))
    rows_n = by.get("fill", [{}])[0].get("rows")
    su = m("startup-big", "healthy_ms")
    row(f"start → first healthy /healthz, {rows_n:,} runs (median of {n('startup-big')})" if rows_n else "start → healthy",
        fmt(su, " ms"), "≤ 200 ms", su is not None and su <= 200)
    su0 = m("startup-empty", "healthy_ms")
    if su0 is not None:
        row(f"  same on an empty database (median of {n('startup-empty')})", fmt(su0, " ms"))
    for gc in (32, 4):
        nm = f"get-run-c{gc}"
        g99, g50, grps = m(nm, "p99_ms"), m(nm, "p50_ms"), m(nm, "rps")
        row(f"GET /api/v1/runs/{{id}} p99, {gc} conns (median of {n(nm)})", fmt(g99, " ms", 2), "≤ 5 ms",
            g99 is not None and g99 <= 5)
        row(f"  GET p50, rate, {gc} conns", f"{fmt(g50, ' ms', 2)}, {fmt(grps, ' req/s', 0)}")
    noise = [r["other_cores"] for r in rows if "other_cores" in r]
    if noise:
        row("noise: cores busy with other work (median / max over load phases)",
            f"{med(noise):.2f} / {max(noise):.2f}")
    w = [max(len(x[i]) for x in lines + [("figure", "value", "target", "")]) for i in range(4)]
    print()
    print(f"{'figure':<{w[0]}}  {'value':<{w[1]}}  {'target':<{w[2]}}  verdict")
    print("-" * (sum(w) + 6 + 7))
    for f_, v, t, ok in lines:
        print(f"{f_:<{w[0]}}  {v:<{w[1]}}  {t:<{w[2]}}  {ok}")
    print()

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](sys.argv[2:])
PYEOF
export RESULTS TMP WRK_THREADS
# In the background + wait, so that a signal reaches the trap at once (the
# helper stops its own wrk / server children on SIGTERM).
py() { python3 "$PY" "$@" & local p=$!; PIDS+=("$p"); wait "$p"; }

# ---------------------------------------------------------------- workloads
WF_ID=wf_bench_order
cat >"$TMP/workflow.json" <<'EOF'
{
  "id": "wf_bench_order",
  "name": "Bench Order",
  "description": "issue 7 benchmark: the seed's calculate-total mapping plus two transforms on its output",
  "trigger": { "type": "api" },
  "inputSchema": {
    "type": "object",
    "required": ["items"],
    "properties": {
      "customerId": { "type": "string" },
      "items": {
        "type": "array",
        "minItems": 1,
        "items": {
          "type": "object",
          "required": ["quantity", "price"],
          "properties": {
            "product": { "type": "string" },
            "quantity": { "type": "number", "minimum": 1 },
            "price": { "type": "number", "minimum": 0 }
          }
        }
      },
      "currency": { "type": "string", "default": "usd" }
    }
  },
  "steps": [
    {
      "id": "calculate-total",
      "type": "transform",
      "name": "Calculate Order Total",
      "config": {
        "mapping": {
          "subtotal": "{{input.items | map: 'quantity * price' | sum}}",
          "tax": "{{input.items | map: 'quantity * price' | sum | times: 0.08}}",
          "total": "{{input.items | map: 'quantity * price' | sum | times: 1.08}}"
        }
      }
    },
    {
      "id": "apply-discount",
      "type": "transform",
      "config": {
        "mapping": {
          "discount": "{{steps.calculate-total.output.total | times: 0.1 | round: 2}}",
          "due": "{{steps.calculate-total.output.total | times: 0.9 | round: 2}}"
        }
      }
    },
    {
      "id": "summarize",
      "type": "transform",
      "config": {
        "mapping": {
          "itemCount": "{{input.items | size}}",
          "line": "{{input.items | size}} item(s), due {{steps.apply-discount.output.due}} {{input.currency | upcase}} (total {{steps.calculate-total.output.total}})"
        }
      }
    }
  ],
  "output": {
    "total": "{{steps.calculate-total.output.total}}",
    "due": "{{steps.apply-discount.output.due}}",
    "summary": "{{steps.summarize.output.line}}"
  }
}
EOF
INPUT='{"input":{"customerId":"cus_bench","items":[{"product":"Widget","quantity":2,"price":19.99},{"product":"Gadget","quantity":1,"price":5},{"product":"Gizmo","quantity":3,"price":7.5}]}}'

write_trigger_lua() { # FILE KEY [RATE_PER_S]: POST trigger bodies; with RATE, paced per wrk thread
  cat >"$1" <<EOF
wrk.method = "POST"
wrk.path = "/api/v1/workflows/$WF_ID/run"
wrk.body = '$INPUT'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "$2"
EOF
  if [ -n "${3:-}" ]; then
    cat >>"$1" <<EOF
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_ts; int clock_gettime(int, bench_ts *); ]]
local ts = ffi.new("bench_ts")
local function now_ms() ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 end
local interval = 1000 * $WRK_THREADS / $3   -- ms between requests of this thread
local slot = 0
function delay()
  local now = now_ms()
  if slot == 0 then slot = now end
  slot = math.max(slot + interval, now - 500)  -- catch up after a stall, within 500 ms
  return math.max(0, slot - now)
end
EOF
  fi
  write_done_lua >>"$1"
}
write_done_lua() {
  cat <<'EOF'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
EOF
}
write_get_lua() { # FILE KEY ROWS: random stored run ids (run_%024d, as the fill writes them)
  cat >"$1" <<EOF
wrk.headers["x-api-key"] = "$2"
local rows = $3
math.randomseed(os.time())
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(seed or os.time()) end
function request()
  return wrk.format("GET", string.format("/api/v1/runs/run_%024d", math.random(1, rows)))
end
EOF
  write_done_lua >>"$1"
}

SERVER_PID=""
URL=""
listening_url() { # PID LOG PREFIX NAME: the URL a server prints on its "PREFIX http://..." line
  local pid=$1 logf=$2 prefix=$3 name=$4 url=""
  for _ in $(seq 1 600); do
    url=$(sed -n "s/^$prefix \\(http:[^ ]*\\).*/\\1/p" "$logf" | tail -n1)
    [ -n "$url" ] && { echo "$url"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$logf" >&2; die "$name exited"; }
    sleep 0.05
  done
  die "$name did not report its address (see $logf)"
}
start_server() { # DB LOG [extra serve flags...]
  local db=$1 logf=$2; shift 2
  "$BIN" serve --listen 127.0.0.1:0 --db "$db" "$@" 2>"$logf" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  URL=$(listening_url "$SERVER_PID" "$logf" "flowctl listening on" "flowctl serve")
  curl -sf "$URL/healthz" >/dev/null || die "$URL/healthz is not healthy"
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
api_key() { # the key of the server at $URL (the file holds one entry per server)
  python3 -c 'import json,sys
f = json.load(open(sys.argv[1])); url = sys.argv[2].rstrip("/")
print(next(e["apiKey"] for e in f["servers"] if e["url"].rstrip("/") == url))' "$CREDS" "$URL"
}
apply_workflow() { # KEY
  curl -sf -X POST "$URL/api/v1/workflows" -H "x-api-key: $1" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/workflow.json" >"$TMP/apply.json" || die "applying the workflow failed: $(cat "$TMP/apply.json")"
}

# ---------------------------------------------------------------- PostgreSQL mode (its own file)
if [ "$PG_MODE" = 1 ]; then
  # shellcheck source=scripts/bench-pg.sh
  . "$ROOT/scripts/bench-pg.sh"
  exit 0
fi

# ---------------------------------------------------------------- phase 1: triggers, end to end, memory
main_phase() {
log "phase 1: fresh database, rate limits $([ "$HAVE_RL" = 1 ] && echo 'off (0)' || echo 'absent in this build')"
DB=$TMP/main.db
start_server "$DB" "$TMP/server-main.log" "${RL_OFF[@]}"
KEY=$(api_key)
apply_workflow "$KEY"
# One run end to end, checked, before any load.
curl -sf -X POST "$URL/api/v1/workflows/$WF_ID/run?wait=10" -H "x-api-key: $KEY" \
  -H 'Content-Type: application/json' --data-binary "$INPUT" >"$TMP/first-run.json" \
  || die "first run failed: $(cat "$TMP/first-run.json")"
python3 - "$TMP/first-run.json" <<'EOF' || die "the benchmark workflow did not complete as expected"
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert d["status"] == "completed", d
assert d["output"]["summary"].startswith("3 item(s), due 65.59 USD"), d["output"]
EOF
sleep 1
py mem rss-idle "$SERVER_PID"

write_trigger_lua "$TMP/trigger.lua" "$KEY"
for c in 32 128; do
  for rep in $(seq 1 "$REPS"); do
    py drain "$DB" "$SERVER_PID" "$DRAIN_MAX"
    py load "trigger-c$c" "$rep" "$c" "$BENCH_SECONDS" "$TMP/trigger.lua" "$URL" "$SERVER_PID" "$DB" 0
  done
done

py drain "$DB" "$SERVER_PID" "$DRAIN_MAX"
log "end to end: offering $E2E_RATE triggers/s for $E2E_SECONDS s on $E2E_CONNS connections"
write_trigger_lua "$TMP/trigger-paced.lua" "$KEY" "$E2E_RATE"
py load e2e 1 "$E2E_CONNS" "$E2E_SECONDS" "$TMP/trigger-paced.lua" "$URL" "$SERVER_PID" "$DB" 1
py drain "$DB" "$SERVER_PID" "$DRAIN_MAX"
sleep 1
py mem rss-idle-after-load "$SERVER_PID"
py counts "$DB" >"$TMP/main-counts.json"
log "runs in the main database: $(cat "$TMP/main-counts.json")"
stop_server
}
if want main; then main_phase; fi

# ---------------------------------------------------------------- flowctl against the bare program
# examples/bare_durable.rs does the same durable work as a three-step run with
# nothing else: axum, one SQLite writer thread with group commit (WAL,
# synchronous=FULL), an insert per trigger and three durable step updates.
# Both programs get the same wrk load in the same sitting, alternating per
# repetition on fresh databases, so the ratios hold even on a busy machine.
CMP_PY=$TMP/bench_cmp.py
cat >"$CMP_PY" <<'PYEOF'
"""flowctl against the bare program: runs completed end to end, triggers accepted."""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B

def roots_completed(db):
    """Completed runs started from outside (a parent, not its child runs); one scan."""
    c = B.sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        cols = [r[1] for r in c.execute("PRAGMA table_info(runs)")]
        where = " AND parent_run_id IS NULL" if "parent_run_id" in cols else ""
        return c.execute("SELECT COUNT(*) FROM runs WHERE status = 'completed'" + where).fetchone()[0]
    finally:
        c.close()

def cmd_e2e(a):
    """e2e NAME REP CONNS SECS SCRIPT URL PID DB DRAIN_MAX [EXTRA_PID]: wrk for SECS, then wait
    for the backlog to drain. Records the load (NAME) and NAME-e2e: runs completed per second
    over load + drain, server CPU per run and by thread (EXTRA_PID: a helper server's CPU)."""
    name, rep, conns, secs, script, url, pid, db, maxs = a[:9]
    extra = int(a[9]) if len(a) > 9 else None
    pid = int(pid)
    t0 = time.monotonic(); c0 = B.db_counts(db); p0 = B.snap(None, pid); r0 = roots_completed(db)
    x0 = B.proc(extra)["cpu_s"] if extra else 0
    B.cmd_load([name, rep, conns, secs, script, url, str(pid), db, "0"])
    c = B.db_counts(db)
    while c["pending"] + c["running"] > 0 and time.monotonic() - t0 < float(secs) + float(maxs):
        time.sleep(0.05)
        c = B.db_counts(db)
    dt = time.monotonic() - t0
    p1 = B.snap(None, pid)
    done = c["completed"] - c0["completed"]
    res = {"name": name + "-e2e", "rep": int(rep), "seconds": dt, "completed": done,
           "created": c["total"] - c0["total"], "failed": c["failed"] - c0["failed"],
           "left": c["pending"] + c["running"], "completed_per_s": done / dt if dt else 0,
           "cpu_s": p1["cpu_s"] - p0["cpu_s"], "cpu_ms_per_run": 1000 * (p1["cpu_s"] - p0["cpu_s"]) / max(done, 1),
           "write_kib_per_run": (p1["wchar"] - p0["wchar"]) / 1024 / max(done, 1),
           "rss_mib": p1["rss_mib"],
           "threads": {k: round(v - p0["threads"].get(k, 0), 2) for k, v in p1["threads"].items()
                       if v - p0["threads"].get(k, 0) > 0.005}}
    if extra:
        res["helper_cpu_s"] = B.proc(extra)["cpu_s"] - x0
    roots = roots_completed(db) - r0
    res["roots_completed"] = roots
    res["roots_completed_per_s"] = roots / dt if dt else 0
    B.record(res)
    print(f"{name} end to end #{rep}: {done} completed in {dt:.1f} s ({res['completed_per_s']:.0f}/s), "
          f"{res['failed']} failed, {res['left']} left, cpu/run {res['cpu_ms_per_run']:.3f} ms, "
          f"{res['write_kib_per_run']:.1f} KiB written/run; runs without a parent completed: {roots} "
          f"({res['roots_completed_per_s']:.0f}/s)", file=sys.stderr)

def cmd_report(a):
    rows = [json.loads(l) for l in open(os.environ["RESULTS"]) if l.strip()]
    by = {}
    for r in rows: by.setdefault(r["name"], []).append(r)
    med = B.med
    m = lambda name, key: B.med([r.get(key) for r in by.get(name, [])])
    n = lambda name: len(by.get(name, []))
    figs = [("runs completed/s end to end (32 conns, wrk + drain)", "e2e", "completed_per_s", 0, True),
            ("triggers accepted/s, 32 conns (runs executing meanwhile)", "", "ok_rps", 0, True),
            ("  trigger p50, 32 conns (ms)", "", "p50_ms", 2, False),
            ("  trigger p99, 32 conns (ms)", "", "p99_ms", 2, False),
            ("server CPU per completed run (ms)", "e2e", "cpu_ms_per_run", 3, False),
            ("bytes written per run (KiB)", "e2e", "write_kib_per_run", 1, False),
            ("RSS after the run (MiB)", "e2e", "rss_mib", 1, False)]
    if by.get("cmp-flowctl-e2e"):
        print(f"\nflowctl against the bare program (examples/bare_durable.rs), same sitting, median of "
              f"{n('cmp-flowctl')} / {n('cmp-bare')} repetitions")
        print(f"{'figure':<58}  {'flowctl':>10}  {'bare':>10}  {'ratio':>6}  target")
        print("-" * 102)
        for label, suffix, key, d, ratio_target in figs:
            f, b = (m(f"cmp-{p}" + (f"-{suffix}" if suffix else ""), key) for p in ("flowctl", "bare"))
            ratio = f / b if f is not None and b else None
            target, verdict = "", ""
            if ratio_target:
                target = "≥ 0.5× bare"; verdict = "met" if ratio is not None and ratio >= 0.5 else "NOT met"
            if key == "p99_ms":
                target = "flowctl ≤ 10 ms"; verdict = "met" if f is not None and f <= 10 else "NOT met"
            fmt = lambda v: "-" if v is None else f"{v:,.{d}f}"
            print(f"{label:<58}  {fmt(f):>10}  {fmt(b):>10}  {'-' if ratio is None else f'{ratio:.2f}':>6}  {target} {verdict}")
    h = by.get("http-flowctl-e2e", [])
    if h:
        r = h[-1]
        busy = sorted(r["threads"].items(), key=lambda kv: -kv[1])[:5]
        print(f"\nhttp.request workflow (transform → GET a local axum server → transform), 32 conns: "
              f"{m('http-flowctl-e2e', 'completed_per_s'):,.0f} runs/s end to end "
              f"({sum(x['failed'] for x in h)} failed), triggers {m('http-flowctl', 'ok_rps'):,.0f}/s "
              f"p99 {m('http-flowctl', 'p99_ms'):.2f} ms, flowctl CPU/run {m('http-flowctl-e2e', 'cpu_ms_per_run'):.3f} ms, "
              f"target server CPU/run {1000 * r.get('helper_cpu_s', 0) / max(r['completed'], 1):.3f} ms; "
              f"flowctl CPU by thread: " + ", ".join(f"{k} {v:.1f}s" for k, v in busy))
    if by.get("sub-parent-e2e"):
        plain, parent = m("sub-plain-e2e", "roots_completed_per_s"), m("sub-parent-e2e", "roots_completed_per_s")
        ratio = parent / plain if plain else None
        failed = sum(x["failed"] for x in by["sub-parent-e2e"]) + sum(x["failed"] for x in by.get("sub-plain-e2e", []))
        left = sum(x["left"] for x in by["sub-parent-e2e"])
        cpu_parent = med([1000 * x["cpu_s"] / max(x["roots_completed"], 1) for x in by["sub-parent-e2e"]])
        print(f"\nsub-workflow (a parent whose one `workflow` step calls the three-step workflow), 32 conns, "
              f"same sitting, median of {n('sub-parent-e2e')}:")
        print(f"  plain three-step runs completed/s    {plain or 0:>9,.0f}")
        print(f"  parent runs completed/s              {parent or 0:>9,.0f}   (each with its child run: "
              f"{m('sub-parent-e2e', 'completed_per_s') or 0:,.0f} runs/s in all)")
        print(f"  ratio parent / plain                 {'-' if ratio is None else f'{ratio:.2f}':>9}   target ≥ 0.4×  "
              f"{'met' if ratio is not None and ratio >= 0.4 else 'NOT met'}"
              f"{f'  [{failed} failed, {left} left unfinished]' if failed or left else ''}")
        print(f"  triggers accepted/s: plain {m('sub-plain', 'ok_rps') or 0:,.0f}, parent {m('sub-parent', 'ok_rps') or 0:,.0f}; "
              f"server CPU per parent (with its child) {cpu_parent or 0:.3f} ms, per plain run "
              f"{m('sub-plain-e2e', 'cpu_ms_per_run') or 0:.3f} ms")
    print()

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](sys.argv[2:])
PYEOF
cmp_py() { python3 "$CMP_PY" "$@" & local p=$!; PIDS+=("$p"); wait "$p"; }

BARE_PID=""
BARE_URL=""
start_bare() { # DB LOG
  "$BARE" "$1" bare-key 2>"$2" &
  BARE_PID=$!
  PIDS+=("$BARE_PID")
  BARE_URL=$(listening_url "$BARE_PID" "$2" "bare listening on" "the bare program")
}
stop_bare() {
  [ -n "$BARE_PID" ] || return 0
  kill -TERM "$BARE_PID" 2>/dev/null || true
  wait "$BARE_PID" 2>/dev/null || true
  BARE_PID=""
}

bare_comparison() {
  log "flowctl against the bare program: $REPS × (wrk 32 conns ${BENCH_SECONDS} s + drain), alternating, fresh databases"
  local rep
  for rep in $(seq 1 "$REPS"); do
    start_server "$TMP/cmp-flowctl-$rep.db" "$TMP/server-cmp-$rep.log" "${RL_OFF[@]}"
    KEY=$(api_key)
    apply_workflow "$KEY"
    write_trigger_lua "$TMP/trigger-cmp.lua" "$KEY"
    cmp_py e2e cmp-flowctl "$rep" 32 "$BENCH_SECONDS" "$TMP/trigger-cmp.lua" "$URL" "$SERVER_PID" \
      "$TMP/cmp-flowctl-$rep.db" "$DRAIN_MAX"
    stop_server
    start_bare "$TMP/cmp-bare-$rep.db" "$TMP/bare-$rep.log"
    write_trigger_lua "$TMP/trigger-bare.lua" bare-key
    sed -i "s#^wrk.path = .*#wrk.path = \"/run\"#" "$TMP/trigger-bare.lua"
    cmp_py e2e cmp-bare "$rep" 32 "$BENCH_SECONDS" "$TMP/trigger-bare.lua" "$BARE_URL" "$BARE_PID" \
      "$TMP/cmp-bare-$rep.db" "$DRAIN_MAX"
    stop_bare
  done
}

# A workflow closer to real use: a transform, an http.request to a fast local
# server (the bare program's GET /item), a transform of its answer.
http_workflow_phase() {
  log "http.request workflow: wrk 32 conns ${BENCH_SECONDS} s + drain"
  start_bare "$TMP/http-target.db" "$TMP/http-target.log"
  start_server "$TMP/http.db" "$TMP/server-http.log" "${RL_OFF[@]}"
  KEY=$(api_key)
  sed -e "s#\"wf_bench_order\"#\"wf_bench_http\"#" "$TMP/workflow.json" | python3 -c '
import json, sys
wf = json.load(sys.stdin)
wf["name"] = "Bench HTTP"
wf["steps"] = [wf["steps"][0], {
    "id": "lookup", "type": "action", "action": "http.request",
    "config": {"url": sys.argv[1] + "/item", "query": {"n": "{{input.items | size}}"}, "timeoutMs": 5000}},
  {"id": "price", "type": "transform", "config": {"mapping": {
    "price": "{{steps.lookup.output.body.price}}",
    "due": "{{steps.calculate-total.output.total | times: 0.9 | round: 2}}",
    "stock": "{{steps.lookup.output.body.stock}}"}}}]
wf["output"] = {"due": "{{steps.price.output.due}}"}
json.dump(wf, sys.stdout)' "$BARE_URL" >"$TMP/workflow-http.json"
  curl -sf -X POST "$URL/api/v1/workflows" -H "x-api-key: $KEY" -H 'Content-Type: application/json' \
    --data-binary @"$TMP/workflow-http.json" >"$TMP/apply-http.json" \
    || die "applying the http workflow failed: $(cat "$TMP/apply-http.json")"
  curl -sf -X POST "$URL/api/v1/workflows/wf_bench_http/run?wait=10" -H "x-api-key: $KEY" \
    -H 'Content-Type: application/json' --data-binary "$INPUT" >"$TMP/first-http.json" \
    || die "first http run failed: $(cat "$TMP/first-http.json")"
  grep -q '"status":"completed"' "$TMP/first-http.json" || die "the http workflow did not complete: $(cat "$TMP/first-http.json")"
  write_trigger_lua "$TMP/trigger-http.lua" "$KEY"
  sed -i "s#/workflows/$WF_ID/run#/workflows/wf_bench_http/run#" "$TMP/trigger-http.lua"
  cmp_py e2e http-flowctl 1 32 "$BENCH_SECONDS" "$TMP/trigger-http.lua" "$URL" "$SERVER_PID" \
    "$TMP/http.db" "$DRAIN_MAX" "$BARE_PID"
  stop_server
  stop_bare
}
# A parent whose one `workflow` step calls the three-step workflow, beside the
# plain three-step workflow in the same sitting (alternating per repetition, fresh
# databases, the same wrk load): parent runs completed per second (each with its
# child run) against plain runs completed per second.
subworkflow_phase() {
  log "sub-workflow: $REPS × (plain three-step, then a parent calling it): wrk 32 conns ${BENCH_SECONDS} s + drain"
  python3 - >"$TMP/workflow-parent.json" <<'EOF'
import json, sys
json.dump({"id": "wf_bench_parent", "name": "Bench Parent",
  "description": "issue 23 benchmark: one workflow step calling the three-step benchmark workflow",
  "steps": [{"id": "order", "type": "workflow", "config": {"workflowId": "wf_bench_order",
    "input": {"customerId": "{{input.customerId}}", "items": "{{input.items}}"}}}],
  "output": {"due": "{{steps.order.output.due}}", "summary": "{{steps.order.output.summary}}"}}, sys.stdout)
EOF
  local rep
  for rep in $(seq 1 "$REPS"); do
    start_server "$TMP/sub-plain-$rep.db" "$TMP/server-sub-plain-$rep.log" "${RL_OFF[@]}"
    KEY=$(api_key)
    apply_workflow "$KEY"
    write_trigger_lua "$TMP/trigger-sub-plain.lua" "$KEY"
    cmp_py e2e sub-plain "$rep" 32 "$BENCH_SECONDS" "$TMP/trigger-sub-plain.lua" "$URL" "$SERVER_PID" \
      "$TMP/sub-plain-$rep.db" "$DRAIN_MAX"
    stop_server
    start_server "$TMP/sub-parent-$rep.db" "$TMP/server-sub-parent-$rep.log" "${RL_OFF[@]}"
    KEY=$(api_key)
    apply_workflow "$KEY"
    curl -sf -X POST "$URL/api/v1/workflows" -H "x-api-key: $KEY" -H 'Content-Type: application/json' \
      --data-binary @"$TMP/workflow-parent.json" >"$TMP/apply-parent.json" \
      || die "applying the parent workflow failed: $(cat "$TMP/apply-parent.json")"
    if [ "$rep" = 1 ]; then # one parent end to end, checked, before any load
      curl -sf -X POST "$URL/api/v1/workflows/wf_bench_parent/run?wait=10" -H "x-api-key: $KEY" \
        -H 'Content-Type: application/json' --data-binary "$INPUT" >"$TMP/first-parent.json" \
        || die "first parent run failed: $(cat "$TMP/first-parent.json")"
      python3 - "$TMP/first-parent.json" <<'EOF' || die "the parent did not complete with its child's output"
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert d["status"] == "completed", d
assert d["output"]["summary"].startswith("3 item(s), due 65.59 USD"), d["output"]
EOF
    fi
    write_trigger_lua "$TMP/trigger-sub-parent.lua" "$KEY"
    sed -i "s#/workflows/$WF_ID/run#/workflows/wf_bench_parent/run#" "$TMP/trigger-sub-parent.lua"
    cmp_py e2e sub-parent "$rep" 32 "$BENCH_SECONDS" "$TMP/trigger-sub-parent.lua" "$URL" "$SERVER_PID" \
      "$TMP/sub-parent-$rep.db" "$DRAIN_MAX"
    stop_server
  done
}
if want bare; then bare_comparison; fi
if want http; then http_workflow_phase; fi
if want subworkflow; then subworkflow_phase; fi

# ---------------------------------------------------------------- phase 2: rate limits on
if [ "$HAVE_RL" = 1 ] && want ratelimit; then
  log "phase 2: default rate limits on (expect mostly 429)"
  start_server "$TMP/rl.db" "$TMP/server-rl.log"
  KEY=$(api_key)
  apply_workflow "$KEY"
  write_trigger_lua "$TMP/trigger-rl.lua" "$KEY"
  py load ratelimit-on-c32 1 32 "$BENCH_SECONDS" "$TMP/trigger-rl.lua" "$URL" "$SERVER_PID" "$TMP/rl.db" 0
  stop_server
  export RL_NOTE=""
else
  export RL_NOTE="not measured: 'flowctl serve' has no --rate-limit-* flags yet (docs/cli.md)"
fi

# ---------------------------------------------------------------- phase 3: many stored runs
big_phase() {
log "phase 3: $ROWS finished runs in the database"
BIG=$TMP/big.db
py startup startup-empty "$BIN" "$TMP/empty.db" "$STARTUP_REPS" "${RL_OFF[@]}"
start_server "$BIG" "$TMP/server-big-init.log" "${RL_OFF[@]}"   # migrations run here
KEY=$(api_key)
apply_workflow "$KEY"
stop_server
py fill "$BIG" "$ROWS" "$WF_ID" 1
py startup startup-big "$BIN" "$BIG" "$STARTUP_REPS" "${RL_OFF[@]}"
start_server "$BIG" "$TMP/server-big.log" "${RL_OFF[@]}"
write_get_lua "$TMP/get.lua" "$KEY" "$ROWS"
curl -sf "$URL/api/v1/runs/$(printf 'run_%024d' "$ROWS")" -H "x-api-key: $KEY" >/dev/null \
  || die "GET of a stored run failed"
for c in 32 4; do
  for rep in $(seq 1 "$REPS"); do
    py load "get-run-c$c" "$rep" "$c" "$BENCH_SECONDS" "$TMP/get.lua" "$URL" "$SERVER_PID" "" 0
  done
done
stop_server
}
if want big; then big_phase; fi

# ---------------------------------------------------------------- summary
{
  echo "flowctl benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -h | awk '/^Mem:/{print $2}') RAM, kernel $(uname -r)"
  echo "settings: BENCH_SECONDS=$BENCH_SECONDS REPS=$REPS E2E_SECONDS=$E2E_SECONDS E2E_RATE=$E2E_RATE E2E_CONNS=$E2E_CONNS ROWS=$ROWS PHASES=$PHASES$([ -n "${BENCH_BIN:-}" ] && echo " BENCH_BIN=$BENCH_BIN")$([ "$SMOKE" = 1 ] && echo ' (smoke: figures are not meaningful)')"
  if want main; then py report; fi
  cmp_py report
}
cp "$RESULTS" "$ROOT/target/bench-last.jsonl" 2>/dev/null || true
log "raw results: target/bench-last.jsonl"
