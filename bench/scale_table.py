"""The markdown of scripts/bench_scale.sh from its raw outputs: python3 bench/scale_table.py WORK MODEL..."""
import json
import os
import sys
from collections import defaultdict


def timing(work, name):
    wall, user, system, rss, rc = open(os.path.join(work, name + ".time")).read().split()
    return float(wall), float(user) + float(system), int(rss) / 1024, int(rc)


def main(work, models):
    print(open(os.path.join(work, "header.txt")).read().strip().replace("\n", "; "))
    print()
    print("| model | parameters | route | wall s | CPU s | peak RSS MB | exit | × one mp100 gradient (wall, CPU) |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for m in models:
        params = json.load(open(os.path.join(work, m, "params.json")))
        count = 0
        stack = [params]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                stack.extend(x.values())
            elif isinstance(x, list):
                if x and not isinstance(x[0], (list, dict)):
                    count += len(x)
                else:
                    stack.extend(x)
        g_wall, g_cpu, _, _ = timing(work, m + ".gradient")
        for route, name in (("`torch_bridge check` (double)", "check"), ("`torch_bridge export`", "export"),
                            ("`gradient --precision mp100`", "gradient"), ("`verify --time-limit 0`", "verify")):
            wall, cpu, rss, rc = timing(work, f"{m}.{name}")
            ratio = f"{wall / g_wall:.1f}×, {cpu / g_cpu:.1f}×" if name in ("gradient", "verify") else "—"
            print(f"| {m} | {count} | {route} | {wall:.1f} | {cpu:.1f} | {rss:.0f} | {rc} | {ratio} |")
    for m in models:
        path = os.path.join(work, m, "verify.json")
        if not os.path.exists(path):
            continue
        report = json.load(open(path))
        by_check, by_subject = defaultdict(float), defaultdict(float)
        verdicts = defaultdict(int)
        for c in report["checks"]:
            s = c["seconds"] if isinstance(c["seconds"], (int, float)) else 0
            by_check[(c["check"], c["precision"])] += s
            by_subject[c["subject"]] += s
            verdicts[c["verdict"]] += 1
        total = sum(by_check.values())
        print()
        print(f"{m}: verify's checks sum to {total:.1f} s; verdicts {dict(verdicts)}; "
              f"not evaluated {report['not_evaluated']}")
        print()
        print("| check | rung | s | share |")
        print("|---|---|---:|---:|")
        for (check, rung), s in sorted(by_check.items(), key=lambda kv: -kv[1])[:8]:
            print(f"| {check} | {rung} | {s:.1f} | {100 * s / total:.0f}% |")
        print()
        print("| subject | s | share |")
        print("|---|---:|---:|")
        for subject, s in sorted(by_subject.items(), key=lambda kv: -kv[1])[:6]:
            print(f"| {subject} | {s:.1f} | {100 * s / total:.0f}% |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
