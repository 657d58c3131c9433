#!/usr/bin/env bash
# Load (bounded, loopback only): 20 keys hammer the execute limit for 60 s;
# see scripts/load.py for the checks. KEYS and LOAD_SECONDS override.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-release.sh
exec python3 scripts/load.py target/release/flowctl
