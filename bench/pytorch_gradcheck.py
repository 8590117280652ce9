"""Benchmark 4, PyTorch side: torch.autograd.gradcheck on an MLP 32-64-64-8 (tanh, mse), batch 2,
float64, one thread, with respect to the inputs and every parameter (6 920 numbers), fast_mode False
(the full numerical and analytical Jacobians) and True (random projections). Prints JSON seconds."""
import json
import sys
import time

import torch

from pytorch_common import configuration, mlp


def measure(fast_mode):
    torch.manual_seed(42)
    net = mlp([32, 64, 64, 8], torch.float64)
    x = (torch.rand(2, 32, dtype=torch.float64) * 2 - 1).requires_grad_()
    t = torch.rand(2, 8, dtype=torch.float64)
    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    names = [name for name, _ in net.named_parameters()]

    def loss(x, *ps):
        out = torch.func.functional_call(net, dict(zip(names, ps)), (x,)) if hasattr(torch, "func") else None
        if out is None:  # torch < 2.0
            from torch.nn.utils.stateless import functional_call
            out = functional_call(net, dict(zip(names, ps)), (x,))
        return torch.nn.functional.mse_loss(out, t)

    start = time.process_time()
    ok = torch.autograd.gradcheck(loss, (x, *params), fast_mode=fast_mode)
    return {"seconds": time.process_time() - start, "passed": bool(ok)}


if __name__ == "__main__":
    result = {"config": configuration(), "slow": measure(False), "fast": measure(True)}
    json.dump(result, sys.stdout, indent=1)
    print()
