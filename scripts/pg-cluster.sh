#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster on loopback for the tests and prints its URL.
#   scripts/pg-cluster.sh start DIR [PORT]   -> prints postgres://flowctl@127.0.0.1:PORT/flowctl
#   scripts/pg-cluster.sh stop DIR
# Needs Debian's postgresql package (initdb, pg_ctl under /usr/lib/postgresql/*/bin).
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data directory}; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    as "$bin/initdb" -D "$dir" -U flowctl --auth=trust -E UTF8 >"$dir.initdb.log" 2>&1
  fi
  as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >/dev/null
  as "$bin/createdb" -h 127.0.0.1 -p "$port" -U flowctl flowctl 2>/dev/null || true
  echo "postgres://flowctl@127.0.0.1:$port/flowctl"
  ;;
stop)
  as "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
