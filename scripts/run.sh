#!/usr/bin/env bash
# The main job: builds bpcheck, then runs the built-in example in float, double and mp100.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh" >&2
"$build/reports/bpcheck" example "$@"
