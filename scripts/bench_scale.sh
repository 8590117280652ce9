#!/usr/bin/env bash
# The scale targets side by side in one run: ResNet-20 for CIFAR and a 2-layer pre-LN transformer
# encoder (bench/scale/*.py, plain nn.Modules) through tools/torch_bridge.py, then `bpcheck gradient
# --precision mp100` and `bpcheck verify` on their exports. A benchmark to run by hand, never a test.
#   scripts/bench_scale.sh [MODEL ...]     MODEL: resnet20, transformer2 (default: both)
# Environment:
#   BPCHECK_BIN        the bpcheck program (default build/reports/bpcheck; copy it elsewhere when a build
#                      may replace it during the run)
#   BENCH_SCALE_WORK   folder for the exports and raw outputs (default $TMPDIR/bench_scale)
#   BENCH_SCALE_JOBS   verify's --jobs (default 1: one thread, as the mp100 gradient)
# Prints one markdown table (wall and CPU seconds, peak RSS, verify's ratio to one mp100 gradient) and,
# per model, where verify's time went (its checks' seconds summed by check and rung, and by subject).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BPCHECK_BIN:-$root/build/reports/bpcheck}"
work="${BENCH_SCALE_WORK:-${TMPDIR:-/tmp}/bench_scale}"
jobs="${BENCH_SCALE_JOBS:-1}"
python=/usr/bin/python3  # Debian's, which has python3-torch; not a pyenv shim
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet20 transformer2)
for m in "${models[@]}"; do
  [ -f "$root/bench/scale/$m.py" ] || { echo "bench_scale.sh: no model bench/scale/$m.py" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "bench_scale.sh: no bpcheck program at $bin (set BPCHECK_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_scale.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
# shellcheck source=bench_python.sh
source "$root/scripts/bench_python.sh"
bench_python_setup bench_scale.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 BPCHECK_CLI="$bin"
mkdir -p "$work"

# run NAME COMMAND...: runs under GNU time; NAME.out, NAME.err, NAME.time ("wall user sys maxrss_kB rc").
run() {
  local name="$1" rc=0
  shift
  /usr/bin/time -o "$work/$name.time" -f "%e %U %S %M" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  echo "$(cat "$work/$name.time" | tail -n 1) $rc" >"$work/$name.time"
}

echo "bench_scale.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD)," \
     "$(getconf _NPROCESSORS_ONLN) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start" >"$work/header.txt"
for m in "${models[@]}"; do
  run "$m.check" "$python" "$root/tools/torch_bridge.py" check "$root/bench/scale/$m.py" --bpcheck "$bin"
  run "$m.export" "$python" "$root/tools/torch_bridge.py" export "$root/bench/scale/$m.py" --out "$work/$m"
  docs=(--model "$work/$m/model.json" --params "$work/$m/params.json" --data "$work/$m/data.json")
  run "$m.gradient" "$bin" gradient "${docs[@]}" --precision mp100
  run "$m.verify" "$bin" verify "${docs[@]}" --jobs "$jobs" --time-limit 0 --json "$work/$m/verify.json"
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$work/header.txt"
"$python" "$root/bench/scale_table.py" "$work" "${models[@]}"
