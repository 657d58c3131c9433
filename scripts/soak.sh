#!/usr/bin/env bash
# Soak (bounded, loopback only): 10 000 runs while killing and restarting the
# server at random five times; see scripts/soak.py for the checks.
# RUNS, KILLS, WORKERS and SOAK_SECONDS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-release.sh
exec python3 scripts/soak.py target/release/flowctl
