"""PyTorch's bfloat16 gradients judged by `bpcheck compare --precision bf16 --accumulate float` through
bpcheck_torch.check_gradients: bf16 parameters and inputs (PyTorch's bf16 matrix products sum in float,
its other operations round each result to bf16) pass at bf16's bound; a wrong custom backward in bf16
is WRONG.

  /usr/bin/python3 -m pytest checks/torch_bf16_test.py

Needs Debian's python3-torch and python3-pytest, and the bpcheck program in $BPCHECK_CLI (CTest sets it;
otherwise the build tree's). Without torch this fails at the import: the tests are never skipped.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import torch  # noqa: E402  (a missing python3-torch fails here, loudly)

import bpcheck_torch  # noqa: E402

nn = torch.nn


class _SignFlippedTanh(torch.autograd.Function):
    """tanh whose backward has its sign flipped: −(1 − y²)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return -dy * (1 - y * y)


class WrongTanh(nn.Tanh):
    def forward(self, x):
        return _SignFlippedTanh.apply(x)


def mlp(tanh=nn.Tanh):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)


def cnn():
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def image_batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(4, 2, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g)


def test_bf16_mlp_gradient_passes_at_the_bf16_bound():
    r = bpcheck_torch.check_gradients(mlp(), nn.CrossEntropyLoss(), batch(), precision="bf16")
    assert r.passed, r.report()
    assert r.returncode == 0


def test_bf16_conv_gradient_passes_at_the_bf16_bound():
    r = bpcheck_torch.check_gradients(cnn(), nn.CrossEntropyLoss(), image_batch(), precision="bf16")
    assert r.passed, r.report()


def test_bf16_gradient_with_a_wrong_backward_is_wrong():
    r = bpcheck_torch.check_gradients(mlp(WrongTanh), nn.CrossEntropyLoss(), batch(), precision="bf16")
    assert not r.passed, r.report()
    assert r.returncode == 1
    assert r.verdict == "wrong"
    assert any(not b.passed for b in r.blocks)
