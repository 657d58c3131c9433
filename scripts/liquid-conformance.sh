#!/usr/bin/env bash
# Liquid conformance: runs an outside collection of Liquid cases written in flowctl's
# template syntax (its run.py and cases.json live in DIR) against a built binary, in both
# modes: the cases expected to pass, and (--deliberate) the documented differences.
#
#   scripts/liquid-conformance.sh DIR          # FLOWCTL_BIN defaults to target/release/flowctl
#
# A few recorded expectations contradict flowctl's documented behaviour (docs/templates.md:
# arithmetic on null fails; default knows allow_false). tests/data/liquid_differences.json
# lists them with the reason; they are checked against flowctl's own expectation there, in
# --deliberate mode, on a copy of the cases in a temporary directory. Every other case is
# judged exactly as recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: scripts/liquid-conformance.sh DIR}
export FLOWCTL_BIN=${FLOWCTL_BIN:-target/release/flowctl}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowctl-liquid.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 - "$DIR/cases.json" tests/data/liquid_differences.json "$TMP/cases.json" <<'PY'
import json, sys
cases, diffs, out = sys.argv[1:]
data = json.load(open(cases, encoding="utf-8"))
by_id = {c["id"]: c for c in data["cases"]}
n = 0
for d in json.load(open(diffs, encoding="utf-8"))["differences"]:
    for i in d["ids"]:
        if i not in by_id:
            sys.exit(f"liquid_differences.json names a case that is not there: {i!r}")
        c = by_id[i]
        c["deliberate"] = d["reason"]
        c["spec_expect"] = c["expect"] if d["expect"] == "liquid" else d["expect"]
        n += 1
json.dump(data, open(out, "w", encoding="utf-8"), ensure_ascii=False)
print(f"liquid conformance: {len(data['cases'])} cases, {n} judged by tests/data/liquid_differences.json")
PY
python3 "$DIR/run.py" --cases "$TMP/cases.json"
python3 "$DIR/run.py" --cases "$TMP/cases.json" --deliberate
