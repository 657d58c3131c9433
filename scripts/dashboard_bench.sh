#!/usr/bin/env bash
# Dashboard pages on a large history: fills a stopped server's database with
# ROWS finished runs (one recursive-CTE INSERT, two steps each), starts
# `flowctl serve` on it, logs in to the dashboard and times each page with curl.
# Loopback only; everything it starts is stopped on exit.
#
#   scripts/dashboard_bench.sh            # 1 000 000 runs, 20 requests per page
#   scripts/dashboard_bench.sh --smoke    # 10 000 runs, 3 requests per page (CI)
#
# Knobs: ROWS, REPS, FLOWCTL_BIN (default target/release/flowctl, else target/debug/flowctl),
# KEEP_TMP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then : "${ROWS:=10000}" "${REPS:=3}"; fi
ROWS=${ROWS:-1000000}
REPS=${REPS:-20}
BIN=${FLOWCTL_BIN:-}
if [ -z "$BIN" ]; then
  if [ -x target/release/flowctl ]; then BIN=target/release/flowctl; else BIN=target/debug/flowctl; fi
fi
[ -x "$BIN" ] || { echo "no flowctl binary at $BIN: cargo build first" >&2; exit 1; }
TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ "${KEEP_TMP:-0}" = 1 ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
export HOME=$TMP XDG_CONFIG_HOME=$TMP/config XDG_DATA_HOME=$TMP/data
unset FLOWCTL_API_KEY FLOWCTL_URL RUST_LOG
DB=$TMP/flowctl.db

start_server() {
  "$BIN" serve --listen 127.0.0.1:0 --db "$DB" 2>"$TMP/server.log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    URL=$(sed -n 's/.*flowctl listening on \(http[^ ]*\).*/\1/p' "$TMP/server.log" | head -1)
    [ -n "$URL" ] && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$TMP/server.log" >&2; exit 1
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }

start_server   # creates and migrates the database, and the admin key
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiKey"])' "$TMP/config/flowctl/credentials.json")
for wf in a b; do
  curl -sf "$URL/api/v1/workflows" -H "x-api-key: $KEY" -H 'content-type: application/json' -d \
    "{\"id\":\"wf_bench_$wf\",\"name\":\"Bench $wf\",\"steps\":[{\"id\":\"one\",\"type\":\"transform\",\"config\":{\"mapping\":{\"x\":\"1\"}}},{\"id\":\"two\",\"type\":\"transform\",\"config\":{\"mapping\":{\"y\":\"2\"}}}]}" >/dev/null
done
stop_server

echo "filling $ROWS runs…" >&2
python3 - "$DB" "$ROWS" <<'EOF'
import sqlite3, sys, time
db, rows = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
t0 = time.monotonic()
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=OFF"); c.execute("PRAGMA synchronous=OFF"); c.execute("PRAGMA cache_size=-262144")
c.execute("BEGIN")
# One run every 600 ms up to now (about a week for a million): 2 % failed, 1 % cancelled,
# a fifth with an idempotency key, trigger types api / schedule / webhook.
c.execute("""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO runs (seq, id, workflow_id, workflow_version, status, input, output, error, idempotency_key,
                  created_at, started_at, completed_at, ready, trigger_type)
SELECT i, printf('run_%024d', i), CASE i % 2 WHEN 0 THEN 'wf_bench_a' ELSE 'wf_bench_b' END, 1,
       CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
       '{"customer":"cus_bench","items":[1,2,3]}',
       CASE WHEN i % 50 = 0 OR i % 97 = 0 THEN NULL ELSE '{"x":"1","y":"2"}' END,
       CASE WHEN i % 50 = 0 THEN '{"code":"STEP_ERROR","message":"step ''two'' failed","stepId":"two"}'
            WHEN i % 97 = 0 THEN '{"code":"CANCELLED","message":"Run was cancelled"}' END,
       CASE WHEN i % 5 = 0 THEN 'key-' || i END,
       ?2 - (?1 - i) * 600, ?2 - (?1 - i) * 600 + 5, ?2 - (?1 - i) * 600 + 5 + i % 200, 0,
       CASE i % 10 WHEN 3 THEN 'schedule' WHEN 7 THEN 'webhook' ELSE 'api' END
FROM n""", (rows, now))
c.execute("""
INSERT INTO steps (run_seq, idx, step_id, status, output, attempts, started_at, completed_at)
SELECT seq, 0, 'one', 'completed', '{"x":"1"}', 1, started_at, started_at + 1 FROM runs
UNION ALL
SELECT seq, 1, 'two', CASE status WHEN 'failed' THEN 'failed' ELSE 'completed' END,
       CASE status WHEN 'failed' THEN NULL ELSE '{"y":"2"}' END, 1, started_at + 1, completed_at FROM runs""")
c.execute("COMMIT")
c.execute("PRAGMA journal_mode=WAL")
print(f"filled {rows} runs and {2 * rows} steps in {time.monotonic() - t0:.1f} s", file=sys.stderr)
EOF

start_server
COOKIE=$(curl -s -o /dev/null -D - "$URL/ui/login" -H "origin: $URL" -H 'sec-fetch-site: same-origin' \
  --data-urlencode "key=$KEY" | sed -n 's/^set-cookie: \(flowctl_session=[^;]*\).*/\1/ip')
[ -n "$COOKIE" ] || { echo "dashboard login failed" >&2; exit 1; }
MID=$((ROWS / 2))
MID_KEY=$(( (MID / 5) * 5 ))
printf '%-62s %9s %9s %6s\n' "page (ROWS=$ROWS, $REPS requests each)" "median ms" "max ms" "status"
for path in \
  "/ui/runs" \
  "/ui/runs?status=failed" \
  "/ui/runs?status=timed_out" \
  "/ui/runs?workflowId=wf_bench_b" \
  "/ui/runs?triggerType=webhook" \
  "/ui/runs?workflowId=wf_bench_a&status=cancelled&triggerType=webhook" \
  "/ui/runs?q=key-$MID_KEY" \
  "/ui/runs?q=$(printf 'run_%024d' "$MID")" \
  "/ui/runs?cursor=$MID" \
  "/ui/runs/$(printf 'run_%024d' "$MID")" \
  "/ui/runs/$(printf 'run_%024d' "$ROWS")" \
  "/ui/overview"; do
  times=()
  code=0
  for _ in $(seq 1 "$REPS"); do
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "cookie: $COOKIE" "$URL$path")
    code=${out% *}
    times+=("${out#* }")
  done
  [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
  printf '%s\n' "${times[@]}" | sort -n | awk -v p="$path" -v c="$code" '
    { t[NR] = $1 * 1000 } END { printf "%-62s %9.1f %9.1f %6s\n", p, t[int((NR + 1) / 2)], t[NR], c }'
done
