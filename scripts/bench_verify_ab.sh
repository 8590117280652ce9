#!/usr/bin/env bash
# Two bpcheck programs side by side on the same verifications: `verify --jobs 1` on the bench models,
# the programs alternating run by run, so that both see the same machine. Prints a markdown table of
# the median CPU seconds of each and their ratio. A benchmark to run by hand, never a test.
#   scripts/bench_verify_ab.sh BEFORE AFTER [ROUNDS] [MODEL ...]
# ROUNDS: runs of each program per model (default 3); MODEL: names in bench/models/ without .json
# (default: the four models of the verification goals). Parameters and data come from the seed (42).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { echo "usage: scripts/bench_verify_ab.sh BEFORE AFTER [ROUNDS] [MODEL ...]" >&2; exit 2; }
before="$1" after="$2"
rounds="${3:-3}"
shift 2; [ $# -gt 0 ] && shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp_32_64_64_8 mlp_784_128_10 conv_16x16 attention_8x32)
for b in "$before" "$after"; do [ -x "$b" ] || { echo "bench_verify_ab.sh: no program $b" >&2; exit 2; }; done
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# CPU seconds (user + system) of one run, which a machine shared with other work disturbs far less than
# wall time; the exit code of verify is its verdict, not an error here.
seconds() {
  /usr/bin/python3 -c '
import resource, subprocess, sys
subprocess.run([sys.argv[1], "verify", "--model", sys.argv[2], "--jobs", "1", "--no-timings"],
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' "$1" "$2"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "| model | before CPU s | after CPU s | after / before |"
echo "|---|---:|---:|---:|"
for m in "${models[@]}"; do
  spec="$root/bench/models/$m.json"
  [ -f "$spec" ] || { echo "bench_verify_ab.sh: no model $spec" >&2; exit 2; }
  b=() a=()
  for _ in $(seq "$rounds"); do
    b+=("$(seconds "$before" "$spec")")
    a+=("$(seconds "$after" "$spec")")
  done
  mb=$(printf '%s\n' "${b[@]}" | median) ma=$(printf '%s\n' "${a[@]}" | median)
  awk -v m="$m" -v b="$mb" -v a="$ma" 'BEGIN {printf "| %s | %.3f | %.3f | %.2f |\n", m, b, a, a / b}'
done
