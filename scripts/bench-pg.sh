# shellcheck shell=bash
# The PostgreSQL mode of scripts/bench.sh (`scripts/bench.sh --postgres [URL]`), sourced by
# it after its helpers (BIN, TMP, PIDS, log/die, write_trigger_lua, api_key, apply_workflow,
# start_server/stop_server, the workflow and INPUT) are defined.
#
# For SQLite (one node) and for PostgreSQL with 1, 2 and 3 `flowctl serve` nodes on one
# database, each on a fresh database: wrk offers triggers on PG_CONNS connections spread over
# the nodes (one wrk, its threads pinned to the nodes in turn) for PG_SECONDS, then the script
# waits until every run has finished. Figures per repetition:
#   triggers/s  accepted triggers per second of the wrk window (and its p99)
#   e2e runs/s  runs completed (three steps each) per second from the start of the wrk window
#               until the backlog was empty again: end to end, drain included
# plus the CPU seconds per run of the nodes and of PostgreSQL (all of the cluster's processes,
# when the script started the cluster). Medians of PG_REPS repetitions.
#
# Without a URL the script starts a throw-away cluster (scripts/pg-cluster.sh, port PG_PORT)
# in its temporary directory. With a URL it creates (and drops) databases named
# flowctl_bench_<n> on that server, so the URL's role needs CREATEDB.
# Knobs: PG_SECONDS (10), PG_REPS (3), PG_CONNS (32), PG_NODES ("1 2 3"), PG_PORT (55490),
# PG_SQLITE (1: also measure SQLite the same way), PG_BIN (the flowctl binary to measure).

PG_SECONDS=${PG_SECONDS:-$([ "$SMOKE" = 1 ] && echo 2 || echo 10)}
PG_REPS=${PG_REPS:-$([ "$SMOKE" = 1 ] && echo 1 || echo 3)}
PG_CONNS=${PG_CONNS:-32}
PG_NODES=${PG_NODES:-1 2 3}
PG_PORT=${PG_PORT:-55490}
PG_SQLITE=${PG_SQLITE:-1}
BIN=${PG_BIN:-$BIN} # another build to measure (e.g. the commit before a change)
command -v psql >/dev/null || die "the PostgreSQL mode needs psql (apt-get install postgresql-client)"

PG_CLUSTER=""
if [ -z "$PG_URL" ]; then
  # Outside $TMP (mode 0700): as root the cluster runs as the postgres user.
  PG_CLUSTER=$(mktemp -d "${TMPDIR:-/tmp}/flowctl-bench-pg.XXXXXX")
  chmod 755 "$PG_CLUSTER"
  PG_CLUSTER=$PG_CLUSTER/data
  log "postgres: starting a throw-away cluster on port $PG_PORT"
  PG_URL=$(bash "$ROOT/scripts/pg-cluster.sh" start "$PG_CLUSTER" "$PG_PORT")
  pg_cluster_stop() {
    bash "$ROOT/scripts/pg-cluster.sh" stop "$PG_CLUSTER"
    rm -rf "$(dirname "$PG_CLUSTER")"
  }
  trap 'rc=$?; pg_stop_nodes; pg_cluster_stop; (exit $rc); cleanup' EXIT
fi
# postgres://user@host:port/db?params -> the same URL naming database $1
pg_url_db() { python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"; }
pg_admin() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qAtc "$1" >/dev/null; }
psql "$PG_URL" -qAtc 'SELECT 1' >/dev/null || die "cannot reach PostgreSQL at $PG_URL"

PGPY=$TMP/bench_pg.py
cat >"$PGPY" <<'PYEOF'
import json, os, statistics, subprocess, sys, time, sqlite3
TICK = os.sysconf("SC_CLK_TCK")

def q_sqlite(store, sql):
    c = sqlite3.connect(f"file:{store[7:]}?mode=ro", uri=True, timeout=10)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()

def q_pg(store, sql):
    return int(subprocess.run(["psql", store, "-qAtc", sql], check=True, capture_output=True,
                              text=True).stdout.strip())

def backlog(store):
    """Runs not finished yet (the queue: pending, running, parked)."""
    if store.startswith("sqlite:"):
        return q_sqlite(store, "SELECT COUNT(*) FROM runs WHERE status IN ('pending', 'running')")
    return q_pg(store, "SELECT COUNT(*) FROM run_queue")

def counts(store):
    """(created, backlog, failed): nothing is deleted meanwhile, so MAX(seq) counts runs."""
    q = q_sqlite if store.startswith("sqlite:") else q_pg
    return (q(store, "SELECT COALESCE(MAX(seq), 0) FROM runs"), backlog(store),
            q(store, "SELECT COUNT(*) FROM runs WHERE status NOT IN ('pending', 'running', 'completed')"))

def cpu(pids):
    s = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            s += (int(st[11]) + int(st[12])) / TICK
        except OSError:
            pass
    return s

def pg_pids(cluster):
    """The postmaster and its children (backends, WAL writer, checkpointer...)."""
    if not cluster:
        return []
    with open(os.path.join(cluster, "postmaster.pid")) as f:
        pm = int(f.readline())
    kids = [pm]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pm:
                        kids.append(int(d))
            except OSError:
                pass
    return kids

def wrk_json(out):
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise SystemExit("wrk printed no result:\n" + out)

def cmd_run(a):
    """run LABEL NODES REP STORE CLUSTER SECS DRAIN_MAX NODE_PIDS(,) -- wrk args..."""
    label, nodes, rep, store, cluster, secs, drain_max, pids = a[:8]
    wrk = a[a.index("--") + 1:]
    nodes, secs, drain_max = int(nodes), float(secs), float(drain_max)
    pids = [int(p) for p in pids.split(",")]
    pg = pg_pids(cluster) if not store.startswith("sqlite:") else []
    c0 = counts(store); n0, p0 = cpu(pids), cpu(pg)
    t0 = time.monotonic()
    w = wrk_json(subprocess.run(wrk, check=True, capture_output=True, text=True).stdout)
    t_wrk = time.monotonic() - t0
    while backlog(store) > 0 and time.monotonic() - t0 < secs + drain_max:
        time.sleep(0.2)
    t_all = time.monotonic() - t0
    n1 = cpu(pids)
    p1 = cpu(pg_pids(cluster)) if pg else 0  # backends opened meanwhile count from their start
    c = counts(store)
    created = c[0] - c0[0]
    done = created - (c[1] - c0[1]) - (c[2] - c0[2])
    ok = w["requests"] - w["non2xx"] - w["errors"]
    res = {"name": "pg-mode", "label": label, "nodes": nodes, "rep": int(rep),
           "triggers_per_s": ok / (w["duration_us"] / 1e6), "p50_ms": w["p50_us"] / 1000,
           "p99_ms": w["p99_us"] / 1000, "non2xx": w["non2xx"], "errors": w["errors"],
           "created": created, "completed": done, "failed": c[2] - c0[2], "backlog_end": c[1],
           "wrk_s": t_wrk, "until_drained_s": t_all, "e2e_per_s": done / t_all,
           "node_cpu_ms_per_run": 1000 * (n1 - n0) / max(done, 1),
           "pg_cpu_ms_per_run": 1000 * (p1 - p0) / max(done, 1) if pg else None}
    with open(os.environ["RESULTS"], "a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"{label} x{nodes} #{rep}: {res['triggers_per_s']:.0f} triggers/s (p99 {res['p99_ms']:.2f} ms, "
          f"non-2xx {w['non2xx']}, errors {w['errors']}), {done} completed in {t_all:.1f} s = "
          f"{res['e2e_per_s']:.0f} runs/s end to end, backlog left {c[1]}, failed {res['failed']}, cpu/run "
          f"nodes {res['node_cpu_ms_per_run']:.3f} ms" + (f", PostgreSQL {res['pg_cpu_ms_per_run']:.3f} ms" if pg else ""),
          file=sys.stderr)

def cmd_report(a):
    rows = [json.loads(l) for l in open(os.environ["RESULTS"]) if l.strip()]
    rows = [r for r in rows if r.get("name") == "pg-mode"]
    groups = {}
    for r in rows:
        groups.setdefault((r["label"], r["nodes"]), []).append(r)
    med = lambda rs, k: statistics.median([r[k] for r in rs]) if all(r[k] is not None for r in rs) else None
    one = med(groups.get(("postgres", 1), []), "e2e_per_s") if ("postgres", 1) in groups else None
    print()
    print(f"{'store':<9} {'nodes':>5} {'triggers/s':>11} {'p99 ms':>7} {'e2e runs/s':>11} {'vs 1 node':>9} "
          f"{'node ms/run':>11} {'pg ms/run':>9}  e2e runs/s per repetition")
    for (label, nodes), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0])):
        e2e = med(rs, "e2e_per_s")
        rel = f"{100 * e2e / one:.0f} %" if one and label == "postgres" else ""
        pgc = med(rs, "pg_cpu_ms_per_run")
        print(f"{label:<9} {nodes:>5} {med(rs, 'triggers_per_s'):>11,.0f} {med(rs, 'p99_ms'):>7.2f} {e2e:>11,.0f} "
              f"{rel:>9} {med(rs, 'node_cpu_ms_per_run'):>11.3f} {'-' if pgc is None else f'{pgc:.3f}':>9}  "
              + ", ".join(f"{r['e2e_per_s']:.0f}" for r in rs))
    print("targets: PostgreSQL 1 node >= 3,000 e2e runs/s; 3 nodes within 20 % of 1 node")
    print()

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](sys.argv[2:])
PYEOF

# wrk with its threads spread over the nodes' addresses (thread i -> node i mod N).
pg_mode_lua() { # FILE KEY PORT...
  local file=$1 key=$2; shift 2
  write_trigger_lua "$file" "$key"
  cat >>"$file" <<EOF
local ports = { $(printf '"%s",' "$@") }
local next_thread = 0
function setup(thread)
  thread.addr = wrk.lookup("127.0.0.1", ports[next_thread % #ports + 1])[1]
  next_thread = next_thread + 1
end
EOF
}

PG_NODE_PIDS=()
PG_NODE_PORTS=()
pg_start_node() { # DATABASE_URL LOG
  : >"$2" # exists before the loop below reads it
  "$BIN" serve --listen 127.0.0.1:0 --database-url "$1" "${RL_OFF[@]}" 2>"$2" &
  local pid=$! url
  PIDS+=("$pid")
  url=$(listening_url "$pid" "$2" "flowctl listening on" "flowctl serve")
  PG_NODE_PIDS+=("$pid")
  PG_NODE_PORTS+=("${url##*:}")
  URL=$url
}
pg_stop_nodes() {
  for p in "${PG_NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PG_NODE_PIDS[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PG_NODE_PIDS=()
  PG_NODE_PORTS=()
}
pg_first_run() { # KEY: one run end to end, checked, before any load
  curl -sf -X POST "$URL/api/v1/workflows/$WF_ID/run?wait=10" -H "x-api-key: $1" \
    -H 'Content-Type: application/json' --data-binary "$INPUT" | grep -q '"status":"completed"' \
    || die "the first run on $URL did not complete"
}
pg_measure() { # LABEL NODES STORE KEY
  local label=$1 nodes=$2 store=$3 key=$4 threads conns
  threads=$([ "$nodes" = 1 ] && echo 2 || echo "$nodes")
  conns=$(( (PG_CONNS + threads - 1) / threads * threads )) # wrk gives each thread conns/threads
  pg_mode_lua "$TMP/pg-trigger.lua" "$key" "${PG_NODE_PORTS[@]}"
  local pids
  pids=$(IFS=,; echo "${PG_NODE_PIDS[*]}")
  for rep in $(seq 1 "$PG_REPS"); do
    python3 "$PGPY" run "$label" "$nodes" "$rep" "$store" "$PG_CLUSTER" "$PG_SECONDS" "$DRAIN_MAX" "$pids" \
      -- wrk "-t$threads" "-c$conns" "-d${PG_SECONDS}s" --timeout 10s -s "$TMP/pg-trigger.lua" "$URL"
  done
}

if [ "$PG_SQLITE" = 1 ]; then
  log "postgres mode: SQLite, one node, for comparison"
  start_server "$TMP/pg-mode-sqlite.db" "$TMP/server-pg-mode-sqlite.log" "${RL_OFF[@]}"
  KEY=$(api_key)
  apply_workflow "$KEY"
  pg_first_run "$KEY"
  PG_NODE_PIDS=("$SERVER_PID"); PG_NODE_PORTS=("${URL##*:}")
  pg_measure sqlite 1 "sqlite:$TMP/pg-mode-sqlite.db" "$KEY"
  PG_NODE_PIDS=(); PG_NODE_PORTS=()
  stop_server
fi
for n in $PG_NODES; do
  db=flowctl_bench_$n
  pg_admin "DROP DATABASE IF EXISTS $db"
  pg_admin "CREATE DATABASE $db"
  dburl=$(pg_url_db "$db")
  log "postgres mode: $n node(s) on $db"
  pg_start_node "$dburl" "$TMP/server-pg-$n-1.log" # migrates and writes the admin key
  first_url=$URL
  KEY=$(api_key)
  for i in $(seq 2 "$n"); do pg_start_node "$dburl" "$TMP/server-pg-$n-$i.log"; done
  URL=$first_url
  apply_workflow "$KEY"
  pg_first_run "$KEY"
  pg_measure postgres "$n" "$dburl" "$KEY"
  pg_stop_nodes
  pg_admin "DROP DATABASE IF EXISTS $db"
done
{
  echo "flowctl benchmark, PostgreSQL mode — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "binary: $BIN"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $(psql "$PG_URL" -qAtc 'SHOW server_version')"
  echo "load average at the end (other work on the machine): $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: PG_SECONDS=$PG_SECONDS PG_REPS=$PG_REPS PG_CONNS=$PG_CONNS PG_NODES=\"$PG_NODES\" DRAIN_MAX=$DRAIN_MAX$([ "$SMOKE" = 1 ] && echo ' (smoke: figures are not meaningful)')"
  python3 "$PGPY" report
}
cp "$RESULTS" "$ROOT/target/bench-last.jsonl" 2>/dev/null || true
