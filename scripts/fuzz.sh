#!/usr/bin/env bash
# Runs each libFuzzer target (model, parameters, data, command_line, chain) for SECONDS seconds (default 60)
# from its committed seed corpus in fuzz/corpus/<target>/, after building them with scripts/sanitize.sh's
# configuration into build-sanitize/ (or $BPCHECK_SANITIZE_BUILD_DIR).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# New interesting inputs go to a scratch folder, never into the committed corpus. A finding stops with
# the failing input saved as build-sanitize/fuzz-findings/<target>-crash-…: add it to
# fuzz/corpus/<target>/ (replayed by ctest in the sanitizer build) and as a case in
# checks/hostile_input_test.cpp, then fix the code.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_SANITIZE_BUILD_DIR:-$root/build-sanitize}"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model parameters data command_line chain)

"$root/scripts/setup.sh" --sanitize
source "$root/scripts/sanitizer_env.sh"
if [ ! -f "$build/build.ninja" ]; then
  BPCHECK_BUILD_DIR="$build" "$root/scripts/build.sh" -DCMAKE_CXX_COMPILER=clang++ -DBPCHECK_FUZZ=ON
else
  cmake --build "$build" --target fuzz_targets
fi

findings="$build/fuzz-findings"
mkdir -p "$findings"
status=0
for t in "${targets[@]}"; do
  scratch="$(mktemp -d)"
  echo "fuzz: $t for ${seconds} s" >&2
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: the readers' own budget is 256 MiB.
  if ! "$build/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$findings/$t-" "$scratch" "$root/fuzz/corpus/$t" \
      2> "$findings/$t.log"; then
    echo "fuzz: $t found a problem; input saved under $findings/, log $findings/$t.log:" >&2
    tail -n 40 "$findings/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$findings/$t.log" | sed "s/^/fuzz: $t: /" >&2
  fi
  rm -rf "$scratch"
done
exit "$status"
