#!/usr/bin/env bash
# Soak (bounded, loopback only): 10 000 runs while killing and restarting the
# server at random five times; see scripts/soak.py for the checks.
#   scripts/soak.sh                      one server on SQLite
#   scripts/soak.sh --pg [URL]           3 nodes on PostgreSQL: the cluster at URL (a fresh
#                                        database on it), else a throw-away cluster of its own
#   scripts/soak.sh --pg [URL] --smoke   300 runs, one kill (CI)
# RUNS, KILLS, WORKERS, NODES and SOAK_SECONDS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
pg=0; url=""; smoke=0
while [ $# -gt 0 ]; do
  case $1 in
    --pg) pg=1; if [ $# -gt 1 ] && [[ $2 == postgres* ]]; then url=$2; shift; fi ;;
    --smoke) smoke=1 ;;
    *) echo "usage: $0 [--pg [URL]] [--smoke]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  export RUNS=${RUNS:-300} KILLS=${KILLS:-1} SOAK_SECONDS=${SOAK_SECONDS:-60}
fi
scripts/build-release.sh
if [ "$pg" = 1 ]; then
  if [ -z "$url" ]; then
    dir=$(mktemp -d /tmp/flowctl-soak-pg.XXXXXX) && chmod 755 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    trap 'bash scripts/pg-cluster.sh stop "$dir/data"; rm -rf "$dir"' EXIT
    url=$(bash scripts/pg-cluster.sh start "$dir/data" "$port")
  fi
  export DATABASE_URL=$url NODES=${NODES:-3}
fi
python3 scripts/soak.py target/release/flowctl
