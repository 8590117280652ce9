#!/usr/bin/env bash
# Runs every benchmark in one go and writes bench/results.md, a table of ratios from that run.
#   scripts/bench.sh                 benchmarks 1–4 (build-bench/, -DBPCHECK_BENCH=ON), single thread
#   scripts/bench.sh --build-times   also benchmark 5: a clean build without ccache (build-clean/) and
#                                    the test command on it, each timed once (about 15–30 min on 2 cores)
#   scripts/bench.sh --long          also `verify` with full Jacobians: the loss alone (over 10 min of
#                                    CPU) and the whole network as the command line runs it (about 20 min)
#   scripts/bench.sh --verify        also scripts/bench_verify.sh: `bpcheck verify` on the models of
#                                    bench/models/ against one mp100 backprop and gradcheck, written to
#                                    bench/verify_results.md (about 15 min)
# Installs what the benchmarks need: python3-torch, and OpenBLAS, which Debian's torch must reach
# through the libblas.so.3 alternative (the reference BLAS is about 20× slower).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_BENCH_BUILD_DIR:-$root/build-bench}"
out="$build/results"
build_times=0 long=0 verify_models=0
for arg in "$@"; do
  case "$arg" in
    --build-times) build_times=1 ;;
    --long) long=1 ;;
    --verify) verify_models=1 ;;
    *) echo "bench.sh: unknown option $arg (use --build-times, --long, --verify)" >&2; exit 2 ;;
  esac
done

"$root/scripts/setup.sh"
# shellcheck source=bench_python.sh
source "$root/scripts/bench_python.sh"
bench_python_setup bench.sh

launcher=()
# As scripts/build.sh: the library's objects then come from ccache when the test build made them.
command -v ccache >/dev/null && launcher=("-DCMAKE_CXX_COMPILER_LAUNCHER=env;CCACHE_BASEDIR=$root;ccache")
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPCHECK_BENCH=ON -DBPCHECK_BUILD_TESTS=OFF \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target bench_mlp bench_gradient_routes bench_mp100 bench_verify

# One thread everywhere unless a benchmark says otherwise (mp100's two-thread row).
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$out" && mkdir -p "$out"

# OpenBLAS chooses its kernels from the CPU's model name. A virtual machine that reports a generic model
# ("Intel(R) Xeon(R) Processor") gets the SSE3 kernels ('Prescott'): 34 GFLOP/s in float on a machine
# where the AVX-512 kernels reach 149. bpcheck and PyTorch load the same OpenBLAS, so both are affected
# alike; the GEMM limit, though, would not be the machine's. When OpenBLAS falls back so, choose the
# kernels by the instruction sets the CPU reports, and say so in results.md.
core="$(OPENBLAS_VERBOSE=2 "$build/bench/bench_mlp" --benchmark_list_tests 2>&1 >/dev/null | sed -n 's/^Core: //p')"
echo "${core:-unknown}" >"$out/openblas_core_detected.txt"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && { [ "$core" = Prescott ] || [ "$core" = Katmai ] || [ "$core" = Core2 ]; }; then
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  case "$cpu_flags" in
    *" avx512f "*) export OPENBLAS_CORETYPE=SkylakeX ;;
    *" avx2 "*) export OPENBLAS_CORETYPE=Haswell ;;
    *" avx "*) export OPENBLAS_CORETYPE=Sandybridge ;;
  esac
  if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    echo "bench.sh: OpenBLAS detected '$core'; using OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" >&2
  fi
fi
echo "${OPENBLAS_CORETYPE:-}" >"$out/openblas_coretype.txt"
verify_filter='verify/((loss|network)/full:0|floor/)'
[ "$long" = 1 ] && verify_filter='verify/'
for b in bench_mlp bench_gradient_routes bench_mp100 bench_verify; do
  filter='.'
  [ "$b" = bench_verify ] && filter="$verify_filter"
  echo "bench.sh: $b" >&2
  "$build/bench/$b" --benchmark_filter="$filter" --benchmark_format=json --benchmark_out="$out/$b.json" \
    --benchmark_out_format=json >/dev/null
done
# The plain gradient(X, t) with glibc told to keep freed memory (MALLOC_TOP_PAD_): its fresh buffers then
# reuse pages instead of faulting them in again after each step returned them to the system.
MALLOC_TOP_PAD_=67108864 "$build/bench/bench_mlp" --benchmark_filter=forward_backward_plain --benchmark_format=json \
  --benchmark_out="$out/bench_mlp_top_pad.json" --benchmark_out_format=json >/dev/null
# Verification as the `bpcheck` program runs it, which sets the same pad (reports/main.cpp).
MALLOC_TOP_PAD_=67108864 "$build/bench/bench_verify" --benchmark_filter="$verify_filter" --benchmark_format=json \
  --benchmark_out="$out/bench_verify_top_pad.json" --benchmark_out_format=json >/dev/null
echo "bench.sh: PyTorch" >&2
(cd "$root/bench" && /usr/bin/python3 pytorch_mlp.py >"$out/pytorch_mlp.json" &&
  /usr/bin/python3 pytorch_gradcheck.py >"$out/pytorch_gradcheck.json")

if [ "$build_times" = 1 ]; then
  clean="$root/build-clean"
  rm -rf "$clean"
  uptime >"$out/load_before_build.txt"
  start=$(date +%s.%N)
  CCACHE_DISABLE=1 BPCHECK_BUILD_DIR="$clean" "$root/scripts/build.sh" >/dev/null
  build_s=$(echo "$(date +%s.%N) - $start" | bc)
  uptime >"$out/load_before_tests.txt"
  start=$(date +%s.%N)
  ctest --test-dir "$clean" -j "$(nproc)" >"$out/ctest.txt" 2>&1 && tests_ok=true || tests_ok=false
  tests_s=$(echo "$(date +%s.%N) - $start" | bc)
  cp "$clean/.ninja_log" "$out/ninja_log.txt"
  printf '{"clean_build_s": %s, "test_command_s": %s, "tests_passed": %s}\n' "$build_s" "$tests_s" "$tests_ok" \
    >"$out/build_times.json"
fi

/usr/bin/python3 "$root/bench/ratios.py" "$out" "$(git -C "$root" rev-parse --short HEAD)" >"$root/bench/results.md"
echo "bench.sh: wrote bench/results.md" >&2

if [ "$verify_models" = 1 ]; then
  # The program as the README builds it (scripts/build.sh), copied so that a build during the run
  # cannot replace it.
  "$root/scripts/build.sh" >/dev/null
  program="$(mktemp "${TMPDIR:-/tmp}/bpcheck.XXXXXX")"
  cp "${BPCHECK_BUILD_DIR:-$root/build}/reports/bpcheck" "$program"
  BPCHECK_BIN="$program" "$root/scripts/bench_verify.sh"
  rm -f "$program"
fi
