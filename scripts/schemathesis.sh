#!/usr/bin/env bash
# Schemathesis (from PyPI) against the server's own /api/v1/openapi.json:
# a fresh `flowctl serve` on loopback with a temporary database and home, the
# example workflows applied, then a bounded run (few examples per operation,
# hard time limit) that fails on any 5xx, any answer that breaks its documented
# status, content type, headers or schema, or a crash. The server is killed at
# the end whatever happens.
#
#   scripts/schemathesis.sh            # builds and uses target/debug/flowctl
#   FLOWCTL_BIN=path scripts/schemathesis.sh
#   ST_MAX_EXAMPLES=50 ST_HARD_LIMIT=240 scripts/schemathesis.sh
#   ST_SEED=<seed printed by a failed run> scripts/schemathesis.sh   # reproduce
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SCHEMATHESIS_VERSION=4.32.5
max_examples=${ST_MAX_EXAMPLES:-30}
hard_limit=${ST_HARD_LIMIT:-180} # seconds; then `timeout` stops it: well under 5 minutes

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "schemathesis==$SCHEMATHESIS_VERSION"
python=$(python3 -c 'import sys; print(sys.executable)') # before HOME changes (pyenv shims)

if [ -z "${FLOWCTL_BIN:-}" ]; then
    cargo build --locked --quiet # a no-op after `cargo test`; never a stale binary
fi
bin=${FLOWCTL_BIN:-${CARGO_TARGET_DIR:-target}/debug/flowctl}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE # so that EXIT runs: the server never outlives us

# The server writes its admin key into this home; nothing touches the real one.
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/config XDG_DATA_HOME=$tmp/home/data
unset FLOWCTL_URL FLOWCTL_API_KEY FLOWCTL_DB FLOWCTL_LISTEN RUST_LOG
mkdir -p "$HOME"
: >"$tmp/server.log" # exists before the server writes to it: polled below

# Loopback only: fuzzed workflows must not reach the network, so the server's
# outgoing HTTP goes to a proxy address where nothing listens. Rate limits stay
# on (their headers are checked) but high, so the fuzzer reaches the handlers
# rather than a wall of 429s (tests/it/openapi.rs checks the 429 answer).
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 NO_PROXY= \
    "$bin" serve --listen 127.0.0.1:0 --db "$tmp/flowctl.db" \
    --rate-limit-execute 1000000 --rate-limit-read 1000000 --rate-limit-write 1000000 \
    2>"$tmp/server.log" &
server_pid=$!

url=
for _ in $(seq 1 300); do # up to 30 s for the "listening" line
    url=$(sed -n 's/^flowctl listening on //p' "$tmp/server.log")
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "schemathesis.sh: the server did not start; its log:" >&2
    cat "$tmp/server.log" >&2
    exit 1
fi
case $url in
http://127.0.0.1:*) ;;
*) echo "schemathesis.sh: refusing a non-loopback URL: $url" >&2; exit 1 ;;
esac
key=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiKey"])' \
    "$XDG_CONFIG_HOME/flowctl/credentials.json")

"$bin" --url "$url" --api-key "$key" apply "$repo/workflows/" >/dev/null

# One worker: some CPython versions (3.11.7 here) fail Hypothesis with "AST constructor
# recursion depth mismatch" when several threads build strategies at once.
echo "schemathesis $SCHEMATHESIS_VERSION against $url (max $max_examples examples per operation, at most ${hard_limit}s)"
status=0
(cd "$tmp" && timeout --kill-after=10 "$hard_limit" "$python" -m schemathesis.cli run "$url/api/v1/openapi.json" \
    --header "x-api-key: $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,ignored_auth,missing_required_header \
    --max-examples "$max_examples" \
    --request-timeout 65 \
    --workers 1 \
    --generation-database none \
    ${ST_SEED:+--seed "$ST_SEED"} \
    --no-color) || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "schemathesis.sh: the server died during the run; its log:" >&2
    tail -n 50 "$tmp/server.log" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "schemathesis.sh: failed (exit $status); last server log lines:" >&2
    tail -n 20 "$tmp/server.log" >&2
fi
exit "$status"
