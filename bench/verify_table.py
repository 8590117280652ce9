"""Writes bench/verify_results.md from the raw outputs of scripts/bench_verify.sh (its work folder)."""
import json
import os
import sys

ROUTES = [
    ("gradient_mp100", "`gradient --precision mp100`"),
    ("verify", "`verify --jobs 1`"),
    ("verify_jobs", "`verify` (one thread per core)"),
    ("verify_projections", "`verify --projections`"),
    ("verify_full", "`verify --full`"),
    ("gradcheck_fast", "gradcheck fast (float64)"),
    ("gradcheck_full", "gradcheck full (float64)"),
]
TIMED_OUT = (124, 137)


def read_run(work):
    run = {}
    with open(os.path.join(work, "run.txt")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            run[key] = value
    return run


def read_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text.splitlines()[-1]) if text else None
    except (OSError, ValueError):
        return None


def read_time(path):
    """(wall seconds, peak RSS KB, exit status) or None when the route was not run."""
    try:
        with open(path) as f:
            parts = f.read().split()
        return float(parts[0]), int(parts[1]), int(parts[2])
    except (OSError, ValueError, IndexError):
        return None


def first_line(path, limit=120):
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    return line[:limit]
    except OSError:
        pass
    return ""


def seconds(s):
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def model_summary(path):
    with open(path) as f:
        model = json.load(f)
    names = []
    for layer in model["layers"]:
        t = layer["type"]
        if t == "dense":
            t = f"dense {layer['units']}"
        elif t == "conv2d":
            k = layer["kernel"]
            t = f"conv2d {layer['channels']}→{layer['out_channels']} k{k} p{layer.get('padding', 0)}"
        elif t in ("max_pool2d", "avg_pool2d"):
            t = f"{t} {layer['kernel']}"
        elif t == "multi_head_attention":
            t = f"attention L={layer['sequence']} h={layer['heads']}"
        names.append(t)
    loss = model["loss"] if isinstance(model["loss"], str) else model["loss"]["type"]
    return f"{model['input_size']} → " + " → ".join(names) + f", {loss}"


def mp100_time(work_dir):
    """(median wall, max RSS, exit, runs) over the runs of `gradient --precision mp100` (1 or 3)."""
    runs = [read_time(os.path.join(work_dir, name + ".time"))
            for name in ("gradient_mp100", "gradient_mp100.2", "gradient_mp100.3")]
    runs = [r for r in runs if r is not None]
    if not runs:
        return None
    if any(r[2] != 0 for r in runs):
        return runs[0] + (1,)
    walls = sorted(r[0] for r in runs)
    return walls[len(walls) // 2], max(r[1] for r in runs), 0, len(runs)


def route_cells(work_dir, route, run, limit, mp100_wall):
    """wall, RSS, ratio, outcome cells of one route."""
    if route == "gradient_mp100":
        t = mp100_time(work_dir)
        if t is None:
            return ["—", "—", "—", "not run"]
        wall, rss, status, runs = t
        if status in TIMED_OUT:
            return [f"> {limit} s", f"≥ {rss / 1024:.0f}", "—", "timed out"]
        if status != 0:
            return [seconds(wall), f"{rss / 1024:.0f}", "—",
                    f"error (exit {status}): " + first_line(os.path.join(work_dir, route + ".err"))]
        return [seconds(wall), f"{rss / 1024:.0f}", "1×", "ok" + (f" (median of {runs} runs)" if runs > 1 else "")]
    t = read_time(os.path.join(work_dir, route + ".time"))
    if t is None:
        if route == "verify_full" and run.get("full_flag") != "1":
            return ["—", "—", "—", "not run: this `bpcheck verify` has no `--full` flag"]
        return ["—", "—", "—", "not run"]
    wall, rss, status = t
    rss_cell = f"{rss / 1024:.0f}"
    verify = route.startswith("verify")
    if status in TIMED_OUT:
        wall_cell = f"> {limit} s"
        ratio = f"> {limit / mp100_wall:.0f}×" if verify and mp100_wall else "—"
        return [wall_cell, f"≥ {rss_cell}", ratio, "timed out"]
    ratio = f"{wall / mp100_wall:.1f}×" if verify and mp100_wall else "—"
    if route.startswith("gradcheck"):
        r = read_json(os.path.join(work_dir, route + ".out"))
        if r is None or "seconds" not in r:
            return [seconds(wall), rss_cell, "—", f"error (exit {status}): "
                    + first_line(os.path.join(work_dir, route + ".err"))]
        outcome = "passed" if r.get("passed") else "did not pass" + (f": {r['error']}" if r.get("error") else "")
        # The gradcheck call alone; the process (torch's import, reading the JSON) in parentheses.
        return [f"{seconds(r['seconds'])} ({seconds(wall)})", rss_cell, "—", outcome]
    if status == 0:
        outcome = "pass"
    elif status == 1:
        outcome = "FAIL (a gradient judged wrong)"
    else:
        outcome = f"error (exit {status}): " + first_line(os.path.join(work_dir, route + ".err"))
    return [seconds(wall), rss_cell, ratio, outcome]


def main(work):
    run = read_run(work)
    limit = int(run["timeout"])
    models = run["models"].split()
    out = []
    w = out.append
    w("# `bpcheck verify` against one mp100 backprop and PyTorch's gradcheck")
    w("")
    w(f"{run['date']}, commit {run['commit']}"
      + (f" ({run['dirty']} files with uncommitted changes in lib/ and reports/)" if run.get("dirty", "0") != "0" else "")
      + f"; {run['nproc']} cores, {run['cpu']}; load average {run['load_start']} at the start, "
      f"{run.get('load_end', '?')} at the end.")
    w("")
    w(f"Program: `{run['bin']}` (built {run['bin_mtime']}, sha256 {run['bin_sha']}). PyTorch {run['torch']}, "
      f"BLAS {run['blas']} (OpenBLAS core {run['openblas_core']}"
      + (f", forced to {run['openblas_coretype']}" if run.get("openblas_coretype") else "")
      + "), one thread on both sides (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)).")
    w("")
    w(f"Reproduce: `{run['command']}` (seed {run['seed']}, batch of {run['batch']}, timeout {limit} s per route).")
    w("")
    w("Every route reads the same parameters and data files (PyTorch's initialisation under the seed, written in "
      "bpcheck's formats by `bench/pytorch_gradcheck_models.py generate`). Wall seconds and peak RSS are the whole "
      "process's (`/usr/bin/time -f \"%e %M\"`), reading the JSON included; for gradcheck the first number is the "
      "`torch.autograd.gradcheck` call alone and the one in parentheses the process (Python and torch's import "
      "included). The ratio is a route's wall time over that of one `bpcheck gradient --precision mp100` (the "
      "median of three runs when one takes under 2 s). "
      "`verify` checks float, double and mp100 (its default) with its default number of points per layer ("
      + run.get("verify_points", "2") + " in this program); gradcheck checks float64 only, with respect to the "
      "inputs and every parameter. A route stopped by the timeout reads \"> N s\".")
    w("")
    w("## Models")
    w("")
    w("| model | network | parameters | numbers checked (x and θ) | PyTorch vs bpcheck double: max ‖Δg‖/‖g‖ over blocks |")
    w("|---|---|---:|---:|---|")
    for m in models:
        d = os.path.join(work, m)
        g = read_json(os.path.join(d, "generate.json")) or {}
        c = read_json(os.path.join(d, "compare.json")) or {}
        if "max_rel_error" in c:
            cmp_cell = f"{c['max_rel_error']:.1e} ({c['worst_block']})"
        elif "unsupported" in c:
            cmp_cell = f"not mapped: {c['unsupported']}"
        else:
            cmp_cell = "comparison failed: " + first_line(os.path.join(d, "compare.json"))
        params = g.get("parameters")
        checked = params + g["inputs"] if params is not None else None
        w(f"| {m} | {model_summary(os.path.join(os.path.dirname(__file__), 'models', m + '.json'))} | "
          f"{params if params is not None else '?'} | {checked if checked is not None else '?'} | {cmp_cell} |")
    w("")
    w("## Times")
    w("")
    w("| model | route | wall s | peak RSS MB | × one mp100 gradient | outcome |")
    w("|---|---|---:|---:|---:|---|")
    for m in models:
        d = os.path.join(work, m)
        t = mp100_time(d)
        mp100_wall = t[0] if t and t[2] == 0 and t[0] > 0 else None
        for route, label in ROUTES:
            cells = route_cells(d, route, run, limit, mp100_wall)
            w(f"| {m} | {label} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
