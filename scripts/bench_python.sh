#!/usr/bin/env bash
# Sourced by the benchmark scripts: installs Debian's python3-torch and python3-numpy when missing and
# checks that the libblas.so.3 alternative is OpenBLAS (the reference BLAS would make PyTorch about
# 20× slower); sets blas_link to the library it points to. $1 names the calling script in messages.
bench_python_setup() {
  local who="$1" missing=() p
  for p in python3-torch python3-numpy libopenblas0-pthread; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  blas_link="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu | sed -n 's/^Value: //p')"
  case "$blas_link" in
    *openblas*) ;;
    *) echo "$who: libblas.so.3 points to '$blas_link', not OpenBLAS; run" \
            "update-alternatives --auto libblas.so.3-x86_64-linux-gnu" >&2; exit 1 ;;
  esac
}
