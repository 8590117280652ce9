"""Detection power and false alarms of `bpcheck compare` on PyTorch gradients (tools/torch_bridge.py).

For each model of the bridge's tests (tools/torch_bridge_models.py) and for a 784-256-64-10 MLP (218k
parameters): the smallest systematic relative error of one block (its first weight block scaled by
1 + ε, ε on a ladder of 10^(-k/2)) that compare catches, in float32 and float64; and the false alarms on
PyTorch's correct gradients over seeds and batch sizes (every model, both precisions). Prints a markdown
table (docs/compare.md, "Detection power").

  /usr/bin/python3 bench/compare_power.py [--seeds N] [--bpcheck PATH]

Run after scripts/build.sh; about 5 minutes on 2 shared cores.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import torch  # noqa: E402

import torch_bridge as tb  # noqa: E402
from torch_bridge_models import MODELS  # noqa: E402

nn = torch.nn
torch.set_num_threads(1)


def mlp_218k(seed):
    """784-256-64-10 with SiLU, LayerNorm, ELU, log-softmax and NLL, 16 samples."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.SiLU(), nn.LayerNorm(256), nn.Linear(256, 64), nn.ELU(),
                          nn.Linear(64, 10), nn.LogSoftmax(dim=1))
    g = torch.Generator().manual_seed(seed + 1000)
    return model, nn.NLLLoss(), (torch.rand((16, 784), dtype=torch.float64, generator=g),
                                 torch.randint(0, 10, (16,), generator=g))


def compare(paths, precision, bpcheck):
    out = paths["gradient"] + ".compare.json"
    r = subprocess.run([bpcheck, "compare", "--model", paths["model"], "--params", paths["params"], "--data",
                        paths["data"], "--gradient", paths["gradient"], "--precision", precision, "--json", out],
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise RuntimeError(r.stdout + r.stderr)
    with open(out) as f:
        return r.returncode, json.load(f)


def scaled(doc, block, eps):
    """The gradient document with block `block` times (1 + eps), each value computed in float64."""
    doc = json.loads(json.dumps(doc))
    values = doc["gradients"][block]["values"]
    doc["gradients"][block]["values"] = [[repr(float(v) * (1 + eps)) for v in row] if isinstance(row, list)
                                         else repr(float(row) * (1 + eps)) for row in values]
    return doc


def smallest_caught(model, loss, batch, precision, bpcheck, d):
    """(the smallest ε caught on the first weight block, the largest error/bound of the correct gradient)."""
    paths = tb.export(model, loss, batch, d, precision)
    with open(paths["gradient"]) as f:
        doc = json.load(f)
    code, result = compare(paths, precision, bpcheck)
    if code != 0:
        raise RuntimeError(f"a correct {precision} gradient failed: {result['verdict']}")
    worst = max(b["ratio"] for b in result["blocks"])
    block = next(i for i, g in enumerate(doc["gradients"]) if len(g["shape"]) == 2)
    ladder = [10 ** (-k / 2) for k in range(2, 17 if precision == "float" else 31)]
    caught = None
    for eps in ladder:  # from large to small: stop at the first miss
        with open(paths["gradient"], "w") as f:
            json.dump(scaled(doc, block, eps), f)
        code, _ = compare(paths, precision, bpcheck)
        if code == 0:
            break
        caught = eps
    return caught, worst


def false_alarms(seeds, bpcheck, d):
    """Runs of PyTorch's correct gradients (every model, both precisions, seeds, batches cut to 2..all
    samples) and how many of them compare failed; the largest error/bound seen."""
    runs = alarms = 0
    worst = 0.0
    for name, make in MODELS.items():
        for seed in range(1, seeds + 1):
            model, loss, (x, t) = make(seed)
            n = 2 + (seed - 1) % (x.shape[0] - 1)  # batch sizes 2 … all samples, by seed
            for precision in ("float", "double"):
                paths = tb.export(model, loss, (x[:n], t[:n]), d, precision)
                code, result = compare(paths, precision, bpcheck)
                runs += 1
                alarms += code != 0
                if code != 0:
                    b = max(result["blocks"], key=lambda b: b["ratio"])
                    print(f"false alarm: {name}, seed {seed}, {n} samples, {precision}: layer {b['layer']} {b['name']} "
                          f"{b['verdict']} at error/bound {b['ratio']:.3g}", file=sys.stderr, flush=True)
                worst = max(worst, max(b["ratio"] for b in result["blocks"]))
    return runs, alarms, worst


def fmt_eps(e):
    return "–" if e is None else f"{e:.0e}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=7)
    p.add_argument("--bpcheck", default=None)
    p.add_argument("--alarms-only", action="store_true", help="only the false-alarm runs")
    a = p.parse_args()
    bpcheck = tb.find_bpcheck(a.bpcheck)
    if a.alarms_only:
        with tempfile.TemporaryDirectory() as d:
            runs, alarms, worst = false_alarms(a.seeds, bpcheck, d)
        print(f"False alarms: {alarms} of {runs} runs; largest error/bound {worst:.2g}.")
        return
    start = time.time()
    models = dict(MODELS)
    models["mlp_218k (784-256-64-10)"] = mlp_218k
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, make in models.items():
            model, loss, batch = make(1)
            params = sum(p.numel() for p in model.parameters())
            cells = [name, str(params)]
            for precision in ("float", "double"):
                caught, worst = smallest_caught(model, loss, batch, precision, bpcheck, d)
                cells += [fmt_eps(caught), f"{worst:.2g}"]
            rows.append(cells)
            print(" | ".join(cells), file=sys.stderr, flush=True)
        runs, alarms, worst = false_alarms(a.seeds, bpcheck, d)
    print("| model | parameters | float32: smallest ε caught | float32: error/bound of the correct gradient "
          "| float64: smallest ε caught | float64: error/bound of the correct gradient |")
    print("|---|---|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print()
    print(f"False alarms: {alarms} of {runs} runs of PyTorch's correct gradients ({len(MODELS)} models, "
          f"{a.seeds} seeds, batches of 2 to all samples, float32 and float64); largest error/bound {worst:.2g}. "
          f"{time.time() - start:.0f} s.")


if __name__ == "__main__":
    main()
