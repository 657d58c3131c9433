#!/usr/bin/env bash
# flowctl's main job on the embedded default: start `flowctl serve` on the
# default SQLite file (unless one is already answering), apply workflows/,
# run the order-total example and print its output.
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

if ! healthy; then
  "$FLOWCTL" serve --listen "${URL#http://}" &
  server=$!
  trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 1 200); do
    healthy && break
    kill -0 "$server" 2>/dev/null || { echo "flowctl serve exited; see its message above" >&2; exit 3; }
    sleep 0.05
  done
fi

"$FLOWCTL" --url "$URL" apply workflows/ >&2
"$FLOWCTL" --url "$URL" run wf_order_total --input @workflows/order_total.input.json --wait
