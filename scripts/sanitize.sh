#!/usr/bin/env bash
# Builds bpcheck with clang under AddressSanitizer and UndefinedBehaviorSanitizer, together with the
# libFuzzer targets in fuzz/, into build-sanitize/ (or $BPCHECK_SANITIZE_BUILD_DIR), then runs every
# test there: checks/, the out-of-tree example, and one pass of each fuzz target over its seeds and
# past findings. Extra arguments go to ctest (e.g. -R io). Any sanitizer finding fails its test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_SANITIZE_BUILD_DIR:-$root/build-sanitize}"

"$root/scripts/setup.sh" --sanitize
source "$root/scripts/sanitizer_env.sh"
BPCHECK_BUILD_DIR="$build" "$root/scripts/build.sh" -DCMAKE_CXX_COMPILER=clang++ -DBPCHECK_FUZZ=ON
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
