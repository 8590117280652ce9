#!/usr/bin/env bash
# What `bpcheck verify` costs next to one mp100 backprop and PyTorch's gradcheck, on the models in
# bench/models/, and writes bench/verify_results.md. A benchmark to run by hand, never a test.
#   scripts/bench_verify.sh [MODEL ...]       MODEL: a name in bench/models/ without .json (default: all)
# Environment:
#   BPCHECK_BIN            the bpcheck program (default build/reports/bpcheck; copy it elsewhere when a
#                          build may replace it during the run)
#   BENCH_VERIFY_TIMEOUT   seconds per route (default 120); a route that runs longer is recorded "> N s"
#   BENCH_VERIFY_SEED      seed of the parameters and data (default 1)
#   BENCH_VERIFY_BATCH     samples in the data (default 2, verify's own batch)
#   BENCH_VERIFY_WORK      folder for parameters, data and raw outputs (default $TMPDIR/bench_verify)
#   BENCH_VERIFY_OUT       the markdown file (default bench/verify_results.md)
# For every model, with the same parameters and data (written once by bench/pytorch_gradcheck_models.py
# in bpcheck's formats, since the CLI has no command that writes its generated ones):
#   bpcheck gradient --precision mp100, bpcheck verify, verify --projections, verify --full (when the
#   program has the flag), each under /usr/bin/time (wall seconds, peak RSS) and a timeout; PyTorch's
#   float64 gradient against `bpcheck gradient --precision double` (that the module is the same network);
#   torch.autograd.gradcheck fast and full. One thread everywhere (verify --jobs 1), and verify once more
#   with its default of one thread per core.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BPCHECK_BIN:-$root/build/reports/bpcheck}"
limit="${BENCH_VERIFY_TIMEOUT:-120}"
seed="${BENCH_VERIFY_SEED:-1}"
batch="${BENCH_VERIFY_BATCH:-2}"
work="${BENCH_VERIFY_WORK:-${TMPDIR:-/tmp}/bench_verify}"
out_md="${BENCH_VERIFY_OUT:-$root/bench/verify_results.md}"
python=/usr/bin/python3  # Debian's, which has python3-torch; not a pyenv shim
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp_32_64_64_8 mlp_784_128_10 conv_16x16 attention_8x32 mlp_784_512_512_10 conv_3x32x32)

for m in "${models[@]}"; do
  [ -f "$root/bench/models/$m.json" ] || { echo "bench_verify.sh: no model bench/models/$m.json" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "bench_verify.sh: no bpcheck program at $bin (set BPCHECK_BIN)" >&2; exit 2; }
case "$limit" in '' | *[!0-9]*) echo "bench_verify.sh: BENCH_VERIFY_TIMEOUT must be whole seconds" >&2; exit 2 ;; esac
[ -x /usr/bin/time ] || { echo "bench_verify.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

# shellcheck source=bench_python.sh
source "$root/scripts/bench_python.sh"
bench_python_setup bench_verify.sh

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
# As scripts/bench.sh: a generic CPU model name gives OpenBLAS's SSE3 kernels; choose by the CPU's flags.
core="$(OPENBLAS_VERBOSE=2 "$python" -c 'import numpy; numpy.ones((64, 64)) @ numpy.ones((64, 64))' 2>&1 |
  sed -n 's/^Core: //p' | head -n 1)"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && { [ "$core" = Prescott ] || [ "$core" = Katmai ] || [ "$core" = Core2 ]; }; then
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  case "$cpu_flags" in
    *" avx512f "*) export OPENBLAS_CORETYPE=SkylakeX ;;
    *" avx2 "*) export OPENBLAS_CORETYPE=Haswell ;;
    *" avx "*) export OPENBLAS_CORETYPE=Sandybridge ;;
  esac
fi

rm -rf "$work" && mkdir -p "$work"
full_flag=0
verify_help="$("$bin" verify --help 2>&1 || true)"
grep -qE -- '(^|[ ,])--full([ ,=]|$)' <<<"$verify_help" && full_flag=1
verify_points="$(sed -n 's/.*--points [^=]*=\([0-9][0-9]*\).*/\1/p' <<<"$verify_help" | head -n 1)"

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$root" rev-parse --short HEAD)"
  echo "dirty=$(git -C "$root" status --porcelain --untracked-files=no -- lib reports | wc -l)"
  echo "nproc=$(getconf _NPROCESSORS_ONLN)"
  echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bin=$bin"
  echo "bin_mtime=$(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC')"
  echo "bin_sha=$(sha256sum "$bin" | cut -c1-12)"
  echo "timeout=$limit"
  echo "seed=$seed"
  echo "batch=$batch"
  echo "full_flag=$full_flag"
  echo "verify_points=${verify_points:-?}"
  echo "openblas_core=${core:-unknown}"
  echo "openblas_coretype=${OPENBLAS_CORETYPE:-}"
  echo "blas=$blas_link"
  echo "torch=$("$python" -c 'import torch; print(torch.__version__)')"
  echo "models=${models[*]}"
  repro=""
  for v in BPCHECK_BIN BENCH_VERIFY_TIMEOUT BENCH_VERIFY_SEED BENCH_VERIFY_BATCH; do
    if [ -n "${!v:-}" ]; then repro+="$v=${!v} "; fi
  done
  echo "command=${repro}scripts/bench_verify.sh${*:+ $*}"
} >"$work/run.txt"

# timed NAME DIR CMD...: runs CMD under the timeout and /usr/bin/time; writes DIR/NAME.out, .err and
# .time ("wall_s rss_kb exit", exit 124 or 137 when the timeout stopped it). The wall time is taken from
# bash's clock around the call (microseconds; time's %e has 10 ms steps), the peak RSS from time's %M.
timed() {
  local name="$1" dir="$2" start end
  shift 2
  echo "bench_verify.sh: $(basename "$dir"): $name" >&2
  start=$EPOCHREALTIME
  /usr/bin/time -o "$dir/$name.rawtime" -f "%e %M %x" timeout --kill-after=10 "$limit" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" || true
  end=$EPOCHREALTIME
  read -r _ rss status < <(tail -n 1 "$dir/$name.rawtime")
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }') $rss $status" >"$dir/$name.time"
  rm -f "$dir/$name.rawtime"
}

for m in "${models[@]}"; do
  model="$root/bench/models/$m.json"
  dir="$work/$m"
  mkdir -p "$dir"
  (cd "$root/bench" && "$python" pytorch_gradcheck_models.py generate "$model" "$seed" "$batch" "$dir" >"$dir/generate.json")
  p=(--model "$model" --params "$dir/params.json" --data "$dir/data.json")
  # Not timed: that the module PyTorch checks is bpcheck's network, on these parameters and data.
  "$bin" gradient "${p[@]}" --precision double >"$dir/gradient_double.json"
  (cd "$root/bench" && "$python" pytorch_gradcheck_models.py compare "$model" "$dir/params.json" "$dir/data.json" \
    "$dir/gradient_double.json" >"$dir/compare.json") || true
  # The denominator of every ratio: one mp100 backprop, run three times when it is short (under 2 s) so
  # that the table's median is not one noisy sample.
  timed gradient_mp100 "$dir" "$bin" gradient "${p[@]}" --precision mp100
  if awk '{ exit !($1 < 2 && $3 == 0) }' "$dir/gradient_mp100.time"; then
    for k in 2 3; do timed "gradient_mp100.$k" "$dir" "$bin" gradient "${p[@]}" --precision mp100; done
  fi
  timed verify "$dir" "$bin" verify "${p[@]}" --jobs 1
  timed verify_jobs "$dir" "$bin" verify "${p[@]}"
  timed verify_projections "$dir" "$bin" verify "${p[@]}" --projections --jobs 1
  if [ "$full_flag" = 1 ]; then timed verify_full "$dir" "$bin" verify "${p[@]}" --full --jobs 1; fi
  for mode in fast full; do
    (cd "$root/bench" && timed "gradcheck_$mode" "$dir" "$python" pytorch_gradcheck_models.py gradcheck "$model" \
      "$dir/params.json" "$dir/data.json" "$mode")
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/run.txt"

"$python" "$root/bench/verify_table.py" "$work" >"$out_md"
echo "bench_verify.sh: wrote ${out_md#"$root"/} (raw outputs in $work)" >&2
