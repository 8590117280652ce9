"""PyTorch's Hessian-vector products through `bpcheck compare --hvp` (tools/torch_bridge.py: torch_hvp,
export_hvp, compare_hvp): PyTorch's double backward (create_graph=True) on the bridge's test models
passes in float64 and float32; a custom autograd.Function whose backward reads an intermediate saved on
ctx (detached from the graph) has a right gradient, passes gradcheck, and gets WRONG with its block named.

  /usr/bin/python3 -m pytest checks/torch_hvp_test.py

Needs Debian's python3-torch and python3-pytest and the bpcheck program in $BPCHECK_CLI (CTest sets it).
"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from torch_runner import BPCHECK, HERE, MODELS, TOOLS, run_judged, tb, torch

import bpcheck_torch  # noqa: E402  (tools/, on sys.path from torch_runner)

nn = torch.nn


def judge_hvp(model, loss, batch, precision, seed=0, tamper=None):
    """Exports PyTorch's H V, runs compare --hvp: (exit code, compare's JSON or None, its output)."""
    return run_judged(lambda d: tb.export_hvp(model, loss, batch, d, precision, seed=seed),
                      lambda paths, out: tb.compare_hvp(paths, precision, BPCHECK, json_out=out), "hvp", tamper)


@pytest.mark.parametrize("precision", ["double", "float"])
@pytest.mark.parametrize("name", ["mlp_tanh", "gelu_silu_mish", "softmax_mse"])
def test_double_backward_passes(name, precision):
    for seed in (0, 1):
        code, result, text = judge_hvp(*MODELS[name](seed), precision, seed=seed)
        assert code == 0, text
        assert result["verdict"] == "pass", text
        assert result["subject"].startswith("Hessian-vector product"), text
        assert result["format"] == "bpcheck compare --hvp" and result["bound"]["terms"] == "sum |H_ij v_j|", text


def test_hvp_changed_in_its_fourth_digit_is_wrong_in_double():
    def tamper(doc):
        block = doc["hvp"][2]  # layer 2 (the second Linear) W
        block["values"][1][3] = repr(float(block["values"][1][3]) * 1.001)

    code, result, text = judge_hvp(*MODELS["mlp_tanh"](0), "double", tamper=tamper)
    assert code == 1, text
    bad = [b for b in result["blocks"] if b["verdict"] != "pass"]
    assert [(b["layer"], b["name"]) for b in bad] == [(2, "W")], text
    assert result["worst"]["where"] == "W[1,3]", text


class SavedTanhFunction(torch.autograd.Function):
    """tanh whose backward uses 1 − t² from t = tanh(x) kept on ctx: an intermediate, neither input nor
    output (the output is a copy). The first derivative is right; the backward's own graph treats t as a
    constant, so the double backward misses tanh''."""

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.t = t
        return t.clone()

    @staticmethod
    def backward(ctx, dy):
        return dy * (1 - ctx.t * ctx.t)


class SavedTanh(nn.Tanh):
    def forward(self, x):
        return SavedTanhFunction.apply(x)


def saved_tanh_model(seed):
    model, loss, batch = MODELS["mlp_tanh"](seed)
    assert isinstance(model[1], nn.Tanh)
    model[1] = SavedTanh()
    return model, loss, batch


def test_saved_intermediate_first_order_is_right():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SavedTanhFunction.apply, (x,))
    # its second derivative is not: PyTorch's own gradgradcheck sees it too
    assert not torch.autograd.gradgradcheck(SavedTanhFunction.apply, (x,), raise_exception=False)
    with tempfile.TemporaryDirectory() as d:
        paths = tb.export(*saved_tanh_model(0), d, "double")
        r = tb.compare(paths, "double", BPCHECK)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("precision", ["double", "float"])
def test_saved_intermediate_double_backward_is_wrong_with_block_named(precision):
    code, result, text = judge_hvp(*saved_tanh_model(0), precision)
    assert code == 1, text
    assert result["verdict"] == "wrong", text
    wrong = {(b["layer"], b["name"]) for b in result["blocks"] if b["verdict"] == "wrong"}
    assert (0, "W") in wrong, text  # the Linear before the tanh: its H V needs tanh''
    assert all(k == 0 for k, _ in wrong), text
    assert "layer 0 dense W is WRONG" in text, text


def test_hvp_command_round_trip_and_refusal():
    with tempfile.TemporaryDirectory() as d:
        model_file = os.path.join(d, "model.py")
        with open(model_file, "w") as f:
            f.write("import sys\nsys.path.insert(0, %r)\nfrom torch_hvp_test import saved_tanh_model\n"
                    "model, loss, batch = saved_tanh_model(0)\n" % HERE)
        cmd = [sys.executable, os.path.join(TOOLS, "torch_bridge.py"), "hvp", model_file, "--bpcheck", BPCHECK]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "layer 0 dense W is WRONG" in r.stdout
        with open(model_file, "w") as f:
            f.write("import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GLU())\n"
                    "loss = torch.nn.MSELoss()\nbatch = (torch.rand(4, 3), torch.rand(4, 2))\n")
        refused = subprocess.run(cmd, capture_output=True, text=True)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "torch_bridge: error: module '1' (GLU): no bpcheck layer" in refused.stderr


# ---- bpcheck_torch.check_hvp: the pytest API ---------------------------------------------------------

@pytest.mark.parametrize("precision", ["double", "float"])
def test_check_hvp_passes_a_correct_model(precision):
    model, loss, batch = MODELS["mlp_tanh"](0)
    r = bpcheck_torch.check_hvp(model, loss, batch, precision=precision)
    assert r.passed, r.report()
    assert isinstance(r, bpcheck_torch.HvpCheck) and r.verdict == "pass"
    assert [b.parameter for b in r.blocks] == [n for n, _ in model.named_parameters()]
    text = r.report()
    assert "Hessian-vector product of Sequential" in text and text.endswith("verdict: pass"), text


def test_check_hvp_names_the_parameter_a_saved_intermediate_gets_wrong():
    model, loss, batch = saved_tanh_model(0)
    r = bpcheck_torch.check_hvp(model, loss, batch, precision="double")
    assert not r.passed and r.verdict == "wrong", r.report()
    wrong = [b.parameter for b in r.failed()]
    assert "0.weight" in wrong and all(p.startswith("0.") for p in wrong), r.report()
    text = r.report()
    assert "0.weight is wrong: worst entry 0.weight[" in text and "verdict: WRONG" in text, text


def test_check_hvp_takes_a_vector_by_parameter_name():
    model, loss, batch = MODELS["mlp_tanh"](1)
    g = torch.Generator().manual_seed(3)
    vector = {n: torch.rand(p.shape, generator=g, dtype=torch.float64) - 0.5 for n, p in model.named_parameters()}
    with tempfile.TemporaryDirectory() as d:
        r = bpcheck_torch.check_hvp(model, loss, batch, vector=vector, precision="double", out=d)
        assert r.passed, r.report()
        with open(os.path.join(d, "vector.json")) as f:
            first = json.load(f)["gradients"][0]
    name = next(iter(vector))
    assert float(first["values"][0][0]) == vector[name][0, 0].item()  # the V given is the V judged
    # the saved-intermediate model is wrong along the given V too
    model, loss, batch = saved_tanh_model(1)
    assert not bpcheck_torch.check_hvp(model, loss, batch, vector=vector, precision="double").passed
    with pytest.raises(ValueError, match="no tensor for parameter"):
        bpcheck_torch.check_hvp(model, loss, batch, vector={name: vector[name]})
    with pytest.raises(ValueError, match="has shape"):
        bpcheck_torch.check_hvp(model, loss, batch, vector={**vector, name: vector[name].t()})
    with pytest.raises(ValueError, match="precision"):
        bpcheck_torch.check_hvp(model, loss, batch, precision="half")
