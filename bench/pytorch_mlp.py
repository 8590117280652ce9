"""Benchmark 1, PyTorch side: MLP 784-512-512-10 (tanh, mse), batch 64, one thread, float and double.
Prints JSON: torch's configuration and per dtype the median seconds of forward and of
forward+backward (gradients set to None between steps, as optimizer.zero_grad() does), once for the
parameters only (torch's usual training step, the work of bpcheck's Network::gradient with
InputGradient::skip) and once with the input's gradient too (InputGradient::compute, its default)."""
import json
import sys

import torch

from pytorch_common import configuration, mlp, timed


def measure(dtype):
    torch.manual_seed(42)
    net = mlp([784, 512, 512, 10], dtype)
    x = torch.rand(784, 64, dtype=dtype).T * 2 - 1
    t = torch.rand(64, 10, dtype=dtype)
    loss_fn = torch.nn.MSELoss()

    def forward():
        with torch.no_grad():
            net(x)

    def forward_backward():
        for p in net.parameters():
            p.grad = None
        loss_fn(net(x), t).backward()

    x_leaf = x.detach().clone().requires_grad_(True)

    def forward_backward_input():
        for p in net.parameters():
            p.grad = None
        x_leaf.grad = None
        loss_fn(net(x_leaf), t).backward()

    fwd, n_fwd = timed(forward)
    fwd_bwd, n_fwd_bwd = timed(forward_backward)
    fwd_bwd_input, n_fwd_bwd_input = timed(forward_backward_input)
    return {"forward_s": fwd, "forward_backward_s": fwd_bwd, "forward_backward_input_s": fwd_bwd_input,
            "reps": [n_fwd, n_fwd_bwd, n_fwd_bwd_input]}


if __name__ == "__main__":
    result = {"config": configuration(), "float": measure(torch.float32), "double": measure(torch.float64)}
    json.dump(result, sys.stdout, indent=1)
    print()
