#!/usr/bin/env bash
# flowctl's main job on the embedded default: start `flowctl serve` on the
# default SQLite file (unless one is already answering; it keeps running
# afterwards), apply workflows/, run the order-total example and print its
# output. FLOWCTL_URL=http://127.0.0.1:PORT picks another port.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-$HOME/.local}
if [ -n "${FLOWCTL:-}" ]; then :
elif [ -x "$PREFIX/bin/flowctl" ]; then FLOWCTL="$PREFIX/bin/flowctl"
elif command -v flowctl >/dev/null; then FLOWCTL=$(command -v flowctl)
else FLOWCTL=target/release/flowctl
fi
URL=${FLOWCTL_URL:-http://localhost:3000}

healthy() { curl -sf "$URL/healthz" >/dev/null 2>&1; }

started=""
if ! healthy; then
  # The server outlives the demo (the README's next steps use it): its log
  # goes to a file, and the last lines say how to stop it.
  log=${TMPDIR:-/tmp}/flowctl-demo.log
  nohup "$FLOWCTL" serve --listen "${URL#http://}" >"$log" 2>&1 &
  server=$!
  started=yes
  for _ in $(seq 1 200); do
    healthy && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "flowctl serve exited; see its message above" >&2; exit 3; }
    sleep 0.05
  done
fi

"$FLOWCTL" --url "$URL" apply workflows/ >&2
"$FLOWCTL" --url "$URL" run wf_order_total --input @workflows/order_total.input.json --wait
if [ -n "$started" ]; then
  echo "flowctl serve keeps running at $URL (pid $server, log $log); stop it with: kill $server" >&2
fi
echo "dashboard: $URL/ui (log in with the one-time link of: flowctl open)" >&2
