#!/usr/bin/env bash
# Installs what bpcheck needs from Debian 12's packages (with --sanitize, also what the sanitizer and
# fuzz builds need). Idempotent: quick when all are present.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libeigen3-dev libboost1.81-dev libmpfr-dev libgmp-dev
  catch2 librapidcheck-dev libcli11-dev nlohmann-json3-dev libfmt-dev
  libopenblas-dev libsleef-dev libbenchmark-dev
  gnuplot-nox
  chromium
  python3-torch python3-numpy python3-pytest
)
# chromium: the report test renders a generated page headless, as a browser shows it.
# scripts/sanitize.sh and scripts/fuzz.sh also need clang, its sanitizer and libFuzzer runtimes, and
# llvm-symbolizer for stacks with file:line.
if [ "${1:-}" = "--sanitize" ]; then
  packages+=(clang libclang-rt-14-dev llvm-14)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
