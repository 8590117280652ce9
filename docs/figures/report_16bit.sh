#!/usr/bin/env bash
# Makes docs/figures/report_16bit_depth.svg: the digits-against-depth chart of `bpcheck report` on a small
# tanh MLP (report_16bit_model.json) in float, double, bf16 and fp16, taken from the page the report writes.
#   docs/figures/report_16bit.sh [path/to/bpcheck]     (default: build/reports/bpcheck)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bpcheck="${1:-$here/../../build/reports/bpcheck}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$bpcheck" report --model "$here/report_16bit_model.json" --precision float,double,bf16,fp16 --quick --seed 42 \
  --jobs 2 --out "$out" >/dev/null
# The layer-by-layer chart is the page's first figure; as a file of its own it needs the SVG namespace.
python3 - "$out/index.html" "$here/report_16bit_depth.svg" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
start = page.index("<svg", page.index('id="layerwise"'))
svg = page[start:page.index("</svg>", start) + len("</svg>")]
if "xmlns=" not in svg[:400]:
    svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
open(sys.argv[2], "w", encoding="utf-8").write('<?xml version="1.0" encoding="utf-8"?>\n' + svg + "\n")
PY
echo "wrote $here/report_16bit_depth.svg"
