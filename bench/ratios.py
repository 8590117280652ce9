"""Writes bench/results.md from one run's results folder (scripts/bench.sh): Google Benchmark JSON
of the C++ side, the PyTorch scripts' JSON, and optionally the build times. Standard library only.
Usage: ratios.py RESULTS_DIR COMMIT"""
import json
import os
import platform
import sys
from datetime import datetime, timezone

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_text(folder, name):
    """A one-line text file's content, or "" when absent."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read().strip()


def gbench(folder, name):
    """name → {"cpu": seconds, "real": seconds, "counters"} for every benchmark of one program."""
    data = load(folder, name)
    if data is None:
        return {}, {}
    rows = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            rows[b["name"]] = {"error": b.get("error_message", "error")}
            continue
        scale = UNIT[b["time_unit"]]
        rows[b["name"]] = {"cpu": b["cpu_time"] * scale, "real": b["real_time"] * scale, "b": b}
    return rows, data.get("context", {})


def ms(seconds):
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.2f} s"


def verdict(ok):
    return "met" if ok else "**not met**"


def main(folder, commit):
    out = []
    mlp, context = gbench(folder, "bench_mlp.json")
    routes, _ = gbench(folder, "bench_gradient_routes.json")
    mp, _ = gbench(folder, "bench_mp100.json")
    verify, _ = gbench(folder, "bench_verify.json")
    torch_mlp = load(folder, "pytorch_mlp.json")
    gradcheck = load(folder, "pytorch_gradcheck.json")
    build = load(folder, "build_times.json")

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = context.get("num_cpus", "?")
    mhz = context.get("mhz_per_cpu", "?")
    load_avg = ", ".join(f"{x:.2f}" for x in context.get("load_avg", []))
    out.append(f"Measured {now} at commit `{commit}` on {platform.node()} ({cpu} CPUs at {mhz} MHz, "
               f"{platform.machine()}), load average at the start {load_avg or '?'}. Times are CPU time of one "
               "thread (the machine is shared: wall time includes waiting for a core), median of repetitions "
               "for PyTorch, Google Benchmark's mean for the C++ side.")
    out.append("")
    out.append("What `bpcheck verify` costs per model (wall time, peak memory, the ratio to one mp100 backprop, "
               "PyTorch's gradcheck beside it) is in [verify_results.md](verify_results.md), written by "
               "`scripts/bench.sh --verify` or `scripts/bench_verify.sh` alone.")
    out.append("")
    if torch_mlp:
        c = torch_mlp["config"]
        out.append(f"PyTorch {c['torch']}, {c['threads']} thread, BLAS mapped: `{c['blas_loaded']}`; a plain 512×512 "
                   f"matmul reaches {c['matmul_512_gflops_float']:.1f} GFLOP/s in float, "
                   f"{c['matmul_512_gflops_double']:.1f} in double.")
        out.append("")
    detected = read_text(folder, "openblas_core_detected.txt")
    chosen = read_text(folder, "openblas_coretype.txt")
    if chosen:
        out.append(f"OpenBLAS kernels: `{chosen}`, set by `OPENBLAS_CORETYPE` (OpenBLAS's own detection chose "
                   f"`{detected or '?'}` from this CPU's model name).")
        out.append("")
    elif detected:
        out.append(f"OpenBLAS kernels: `{detected}`, OpenBLAS's own choice.")
        out.append("")

    out.append("**1. Backprop, MLP 784-512-512-10 (tanh, mse), batch 64**")
    out.append("")
    out.append("| | float | double | goal |")
    out.append("|---|---|---|---|")
    cells = {}
    for t in ("float", "double"):
        cells[t] = {
            "f": mlp.get(f"mlp/forward/{t}", {}).get("cpu"),
            "fb": mlp.get(f"mlp/forward_backward/{t}", {}).get("cpu"),
            "fbx": mlp.get(f"mlp/forward_backward_input/{t}", {}).get("cpu"),
            "g": mlp.get(f"mlp/gemm_limit/{t}"),
            "gx": mlp.get(f"mlp/gemm_limit_input/{t}"),
            "tf": torch_mlp[t]["forward_s"] if torch_mlp else None,
            "tfb": torch_mlp[t]["forward_backward_s"] if torch_mlp else None,
            "tfbx": torch_mlp[t].get("forward_backward_input_s") if torch_mlp else None,
        }

    def row(label, fn, goal=""):
        vals = []
        for t in ("float", "double"):
            try:
                vals.append(fn(cells[t]))
            except (TypeError, KeyError, ZeroDivisionError):
                vals.append("–")
        out.append(f"| {label} | {vals[0]} | {vals[1]} | {goal} |")

    def gflops(g):
        return f"{ms(g['cpu'])}, {g['b']['flops'] / 1e9:.1f} GFLOP/s"

    row("forward, bpcheck", lambda c: ms(c["f"]))
    row("forward, PyTorch", lambda c: ms(c["tf"]))
    # A training step: dθ only. PyTorch forms no gradient for an input that does not require one, and
    # Network::gradient with InputGradient::skip does the same (8 matrix products).
    row("forward+backward, bpcheck, `gradient(X, t, out, InputGradient::skip)` reusing `out`",
        lambda c: ms(c["fb"]))
    row("forward+backward, PyTorch", lambda c: ms(c["tfb"]))
    row("forward+backward, bpcheck / PyTorch",
        lambda c: f"{c['fb'] / c['tfb']:.2f}×  ({verdict(c['fb'] / c['tfb'] <= 0.9)})", "≤ 0.9")
    # With dℓ/dX too: one more product (the largest, 784×512) on both sides.
    row("forward+backward with the input's gradient, bpcheck, `gradient(X, t, out)`", lambda c: ms(c["fbx"]))
    row("forward+backward with the input's gradient, PyTorch", lambda c: ms(c["tfbx"]))
    row("forward+backward with the input's gradient, bpcheck / PyTorch", lambda c: f"{c['fbx'] / c['tfbx']:.2f}×")
    row("(forward+backward) / forward, bpcheck",
        lambda c: f"{c['fb'] / c['f']:.2f}  ({verdict(c['fb'] / c['f'] <= 3.0)})", "≤ 3.0")
    row("(forward+backward) / forward, PyTorch", lambda c: f"{c['tfb'] / c['tf']:.2f}")
    row("GEMM limit: the 8 products of forward+backward alone, OpenBLAS", lambda c: gflops(c["g"]))
    row("GEMM limit with the input's gradient: the 9 products alone", lambda c: gflops(c["gx"]))
    # The plain call, a fresh Gradient per step, alone and with glibc told to keep freed memory.
    padded, _ = gbench(folder, "bench_mlp_top_pad.json")
    for label, rows in (("plain `gradient(X, t, InputGradient::skip)`", mlp),
                        ("the same, glibc keeping freed memory (`MALLOC_TOP_PAD_=64MiB`)", padded)):
        if not rows:
            continue
        for t in ("float", "double"):
            cells[t]["p"] = rows.get(f"mlp/forward_backward_plain/{t}", {}).get("cpu")
        row(f"forward+backward, bpcheck, {label}",
            lambda c: f"{ms(c['p'])}: {c['p'] / c['tfb']:.2f}× PyTorch, {c['p'] / c['f']:.2f}× forward, "
                      f"{c['g']['cpu'] / c['p']:.0%} of the GEMM limit")
    row("fraction of the GEMM limit reached by forward+backward",
        lambda c: f"{c['g']['cpu'] / c['fb']:.0%}  ({verdict(c['g']['cpu'] / c['fb'] >= 0.8)})", "≥ 80%")
    row("the same with the input's gradient (9 products)", lambda c: f"{c['gx']['cpu'] / c['fbx']:.0%}")
    out.append("")

    if routes:
        out.append("**2. Backprop against the explicit Jacobian product** (double, batch 4, `depth` × (dense(width) → "
                   "tanh) → dense(width), mse)")
        out.append("")
        out.append("| depth | width | backprop | explicit product | explicit / backprop |")
        out.append("|---|---|---|---|---|")
        for name, r in routes.items():
            if not name.startswith("routes/backprop/"):
                continue
            args = name[len("routes/backprop/"):]
            e = routes.get("routes/explicit/" + args)
            depth, width = (a.split(":")[1] for a in args.split("/"))
            if "cpu" in r and e and "cpu" in e:
                out.append(f"| {depth} | {width} | {ms(r['cpu'])} | {ms(e['cpu'])} | {e['cpu'] / r['cpu']:.0f}× |")
        out.append("")

    if mp:
        out.append("**3. mp100, MLP 32-64-64-8 (tanh, mse), batch 8**")
        out.append("")
        fb = mp.get("mp100/forward_backward/real_time/threads:1", {})
        fb2 = mp.get("mp100/forward_backward/real_time/threads:2", {})
        gm = mp.get("mp100/gemms/mpfr", {})
        gc = mp.get("mp100/gemms/cpp_bin_float", {})
        tm = mp.get("mp100/tanh/mpfr", {})
        tc = mp.get("mp100/tanh/cpp_bin_float", {})
        out.append("| | time | ratio | goal |")
        out.append("|---|---|---|---|")
        if "cpu" in fb and "cpu" in gm:
            out.append(f"| forward+backward (`Network<mp100>::gradient`) / its 9 matrix products alone | "
                       f"{ms(fb['cpu'])} / {ms(gm['cpu'])} | {fb['cpu'] / gm['cpu']:.2f}×  "
                       f"({verdict(fb['cpu'] / gm['cpu'] <= 1.5)}) | ≤ 1.5× |")
        if "cpu" in gc and "cpu" in gm:
            out.append(f"| the 9 products: cpp_bin_float_100 / mpfr_float_100 | {ms(gc['cpu'])} / {ms(gm['cpu'])} | "
                       f"{gc['cpu'] / gm['cpu']:.2f}× | |")
        if "cpu" in tc and "cpu" in tm:
            out.append(f"| tanh of the hidden entries: cpp_bin_float_100 / mpfr_float_100 | {ms(tc['cpu'])} / "
                       f"{ms(tm['cpu'])} | {tc['cpu'] / tm['cpu']:.2f}× | |")
        if "real" in fb and "real" in fb2:
            # Google Benchmark divides the wall time of a multithreaded run by the steps of all threads.
            out.append(f"| forward+backward on both cores (one network per thread): throughput over one core | "
                       f"{ms(fb2['real'])} of wall time per step, both threads together | "
                       f"{fb['real'] / fb2['real']:.2f}× | |")
        out.append("")

    if verify or gradcheck:
        out.append("**4. Verification, MLP 32-64-64-8 (tanh, mse; 6 856 parameters), batch 2, every input and "
                   "parameter**")
        out.append("")
        out.append("| | time | ratio to gradcheck | goal |")
        out.append("|---|---|---|---|")
        slow = gradcheck["slow"]["seconds"] if gradcheck else None
        fast = gradcheck["fast"]["seconds"] if gradcheck else None
        if gradcheck:
            out.append(f"| PyTorch `gradcheck`, float64, fast_mode=False | {ms(slow)} | | |")
            out.append(f"| PyTorch `gradcheck`, float64, fast_mode=True | {ms(fast)} | | |")
        lf = verify.get("verify/loss/full:1/iterations:1", {})
        lp = verify.get("verify/loss/full:0/iterations:1", {})
        nf = verify.get("verify/network/full:1/iterations:1", {})
        np_ = verify.get("verify/network/full:0/iterations:1", {})
        if "cpu" in lf and slow:
            out.append(f"| bpcheck, the loss with full Jacobians (float, double, mp100 verdict) | {ms(lf['cpu'])} | "
                       f"gradcheck slow is {slow / lf['cpu']:.2f}× this ({verdict(slow / lf['cpu'] >= 10)}) | "
                       "≥ 10× faster |")
        if "cpu" in lp and fast:
            out.append(f"| bpcheck, the loss by random projections (float, double, mp100 verdict) | {ms(lp['cpu'])} | "
                       f"{lp['cpu'] / fast:.1f}× gradcheck fast ({verdict(lp['cpu'] <= fast)}) | ≤ 1× |")
        padded_verify, _ = gbench(folder, "bench_verify_top_pad.json")
        lpp = padded_verify.get("verify/loss/full:0/iterations:1", {}) if padded_verify else {}
        if "cpu" in lpp and fast:
            out.append(f"| the same, glibc keeping freed memory (`MALLOC_TOP_PAD_=64MiB`, as the `bpcheck` program "
                       f"sets it) | {ms(lpp['cpu'])} | {lpp['cpu'] / fast:.1f}× gradcheck fast | |")
        ff = verify.get("verify/floor/mp100_forward", {})
        fg = verify.get("verify/floor/mp100_gradient", {})
        if "cpu" in ff and fast:
            out.append(f"| floor: one forward of the network in mp100 | {ms(ff['cpu'])} | "
                       f"{ff['cpu'] / fast:.2f}× gradcheck fast | |")
        if "cpu" in fg and fast:
            out.append(f"| floor: one backprop (`gradient`) in mp100 | {ms(fg['cpu'])} | "
                       f"{fg['cpu'] / fast:.2f}× gradcheck fast | |")
        if "cpu" in ff and slow:
            columns = 6920  # 64 inputs (32 × batch 2) + 6 856 parameters
            out.append(f"| floor of a full Jacobian in mp100: {columns} columns × one mp100 forward | "
                       f"{ms(columns * ff['cpu'])} | {columns * ff['cpu'] / slow:.2f}× gradcheck slow | |")
        if "cpu" in np_:
            out.append(f"| `bpcheck verify` scope (the loss and each layer), projections | {ms(np_['cpu'])} | | |")
        npp = padded_verify.get("verify/network/full:0/iterations:1", {}) if padded_verify else {}
        if "cpu" in npp:
            out.append(f"| the same, glibc keeping freed memory (as the `bpcheck` program runs it) | {ms(npp['cpu'])} | | |")
        if "cpu" in nf:
            out.append(f"| `bpcheck verify` scope, full Jacobians (the default) | {ms(nf['cpu'])} | | |")
        for name, r in verify.items():
            if "error" in r:
                out.append(f"| {name} | error: {r['error']} | | |")
        out.append("")

    if build:
        out.append("**5. Build and tests** (2 cores, no ccache, measured once)")
        out.append("")
        out.append("| | time | goal |")
        out.append("|---|---|---|")
        b, t = build["clean_build_s"], build["test_command_s"]
        out.append(f"| clean build, `scripts/build.sh` | {b / 60:.1f} min ({verdict(b <= 300)}) | < 5 min |")
        out.append(f"| tests, `ctest -j2` on that build (passed: {build['tests_passed']}) | {t / 60:.1f} min "
                   f"({verdict(t <= 180)}) | < 3 min |")
        loads = []
        for name in ("load_before_build.txt", "load_before_tests.txt"):
            p = os.path.join(folder, name)
            if os.path.exists(p):
                loads.append(open(p).read().strip().split("load average:")[-1].strip())
        if loads:
            out.append(f"| load average before the build / before the tests | {' / '.join(loads)} | |")
        log = os.path.join(folder, "ninja_log.txt")
        if os.path.exists(log):
            units = []
            for line in open(log):
                if line.startswith("#"):
                    continue
                start, end, _, target, _ = line.rstrip("\n").split("\t")
                if target.endswith(".o"):
                    units.append(((int(end) - int(start)) / 1000, os.path.basename(target)[: -len(".o")]))
            units.sort(reverse=True)
            heaviest = ", ".join(f"`{name}` {s:.0f} s" for s, name in units[:8])
            out.append(f"| heaviest units (wall, from `.ninja_log`) | {heaviest} | |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "?")
