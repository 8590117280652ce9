#!/usr/bin/env bash
# Installs dependencies, configures and builds everything into build/ (or $BPCHECK_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BPCHECK_BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"
# ccache, when the machine has it, makes rebuilds after small edits quick; it is optional. Paths are
# hashed relative to the checkout, so a fresh clone in another folder still hits the cache.
launcher=()
command -v ccache >/dev/null && launcher=("-DCMAKE_CXX_COMPILER_LAUNCHER=env;CCACHE_BASEDIR=$root;ccache")
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
