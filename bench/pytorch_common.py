"""Shared by the PyTorch side of the benchmarks: one thread, the BLAS torch links, a timer."""
import os
import subprocess
import time

import torch

torch.set_num_threads(1)


def blas_library():
    """The BLAS shared object torch's process has mapped (Debian links it through alternatives)."""
    with open(f"/proc/{os.getpid()}/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return ", ".join(sorted(paths)) or "none mapped"


def timed(fn, min_time=0.5, min_reps=3):
    """Median CPU seconds (the process's, one thread) per call over at least min_reps calls and min_time seconds, after one warm-up."""
    fn()
    times = []
    start = time.process_time()
    while len(times) < min_reps or time.process_time() - start < min_time:
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    times.sort()
    return times[len(times) // 2], len(times)


def matmul_gflops(dtype, n=512):
    a = torch.rand(n, n, dtype=dtype)
    b = torch.rand(n, n, dtype=dtype)
    seconds, _ = timed(lambda: torch.mm(a, b))
    return 2 * n**3 / seconds / 1e9


def configuration():
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas_loaded": blas_library(),
        "matmul_512_gflops_float": matmul_gflops(torch.float32),
        "matmul_512_gflops_double": matmul_gflops(torch.float64),
    }


def mlp(widths, dtype):
    """dense → tanh → … → dense, PyTorch's Linear initialisation."""
    layers = []
    for k in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[k], widths[k + 1], dtype=dtype))
        if k + 2 < len(widths):
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)
