#!/usr/bin/env bash
# The main job: builds bpcheck, then writes the error-analysis report of the built-in default set
# (report.json, one CSV per sweep, index.html) to build/report/ and prints where to open it.
# Extra arguments go to `bpcheck report` (e.g. --quick, --model M.json, --out DIR, --jobs N).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh" >&2
"$build/reports/bpcheck" report --out "$build/report" "$@"
