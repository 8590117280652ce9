#!/bin/sh
# The report's speed on the LeNet-5-sized model (docs/report.md, "Speed and scale"): exports
# bench/report/lenet5.py with tools/torch_bridge.py (Debian's /usr/bin/python3 and python3-torch), then
# times `bpcheck report` with its default options on 2 threads. Prints wall and CPU seconds and the load,
# since the machine may be shared: CPU/2 estimates the wall time on 2 idle cores.
#   bench/report/lenet5_time.sh [BPCHECK] [WORKDIR] [REPORT OPTION...]
# Options after the first two arguments go to `bpcheck report` (e.g. --precision float,double,bf16,fp16).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/build/reports/bpcheck}
work=${2:-$(mktemp -d)}
[ $# -ge 2 ] && shift 2 || shift $#
/usr/bin/python3 "$root/tools/torch_bridge.py" export "$root/bench/report/lenet5.py" --out "$work/lenet5" >/dev/null
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "wall %e s, CPU %U s user + %S s system" "$bin" report --jobs 2 --out "$work/report" \
  --model "$work/lenet5/model.json" --params "$work/lenet5/params.json" --data "$work/lenet5/data.json" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
