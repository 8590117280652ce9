"""PyTorch's 16-bit gradients judged by `bpcheck compare --precision bf16 --accumulate float` through
bpcheck_torch.check_gradients and tools/torch_bridge.py, on the bridge's models (an MLP, convolutions,
attention):

- bf16 parameters and inputs (PyTorch's bf16 matrix products sum in float, its other operations round
  each result to bf16) pass at bf16's bound;
- torch.autocast("cpu", dtype=torch.bfloat16) with float32 parameters and inputs, as mixed-precision
  training runs (autocast=True, --autocast): the float32 gradient passes at bf16's bound and fails at
  float's, and the documents hold the float32 parameters PyTorch differentiated;
- a tanh whose backward has its sign flipped is WRONG, in both, at the parameters before it and not at
  those after it;
- fp16 is refused (exit 2) where PyTorch has no float16 kernels (its CPU kernels in 1.13), and so is
  autocast to fp16 on the CPU.

  /usr/bin/python3 -m pytest checks/torch_bf16_test.py

Needs Debian's python3-torch and python3-pytest, and the bpcheck program in $BPCHECK_CLI (CTest sets it).
Without torch this fails at the import: the tests are never skipped.
"""
import decimal
import json
import os
import subprocess
import sys
import tempfile

import pytest

from torch_runner import BPCHECK, HERE, MODELS, TOOLS, run_judged, tb, torch

import bpcheck_torch  # noqa: E402  (tools/, on sys.path from torch_runner)
from torch_bridge_models import SignFlippedTanh  # noqa: E402

nn = torch.nn

# The models PyTorch 1.13 runs in bf16 on the CPU: its bf16 mse_loss has no CPU kernel, so the pure bf16
# runs take the cross-entropy models.
BF16 = ["mlp_tanh", "conv1d_pools", "embedding_attention"]
AUTOCAST = ["mlp_tanh", "relu_leaky_sigmoid", "conv1d_pools", "conv2d_pools", "batch_norm_train", "embedding_attention"]


def with_wrong_tanh(name, seed=1):
    """The model with a SignFlippedTanh: in place of its tanh, or after the attention. Returns (model, loss,
    batch, the parameter right before it (wrong), one after it (right))."""
    model, loss, batch = MODELS[name](seed)
    if name == "mlp_tanh":
        model[1] = SignFlippedTanh()
        return model, loss, batch, "0.weight", "2.weight"
    if name == "conv1d_pools":
        model[4] = SignFlippedTanh()
        return model, loss, batch, "3.weight", "7.weight"
    if name == "conv2d_pools":
        model[1] = SignFlippedTanh()
        return model, loss, batch, "0.bias", "7.weight"
    if name == "embedding_attention":
        model.insert(2, SignFlippedTanh())
        return model, loss, batch, "1.attn.out_proj.weight", "4.weight"
    raise KeyError(name)


def check(model, loss, batch, autocast, **kwargs):
    return bpcheck_torch.check_gradients(model, loss, batch, precision="bf16", autocast=autocast, bpcheck=BPCHECK,
                                         **kwargs)


# ---- right gradients pass --------------------------------------------------------------------------

@pytest.mark.parametrize("name", BF16)
def test_bf16_gradient_passes_at_the_bf16_bound(name):
    model, loss, batch = MODELS[name](1)
    r = check(model, loss, batch, autocast=False)
    assert r.passed and r.returncode == 0, r.report()
    assert sorted(b.parameter for b in r.blocks) == sorted(n for n, _ in model.named_parameters())
    assert r.json["bound"]["unit_roundoff"] == 2.0 ** -8
    assert "PyTorch's bfloat16 gradient" in r.report()


@pytest.mark.parametrize("name", AUTOCAST)
def test_autocast_gradient_passes_at_the_bf16_bound(name):
    model, loss, batch = MODELS[name](1)
    with tempfile.TemporaryDirectory() as d:
        r = check(model, loss, batch, autocast=True, out=d)
        with open(os.path.join(d, "params.json")) as f:
            params = json.load(f)
        with open(os.path.join(d, "gradient.json")) as f:
            gradient = json.load(f)
    assert r.passed and r.returncode == 0, r.report()
    assert r.autocast and r.precision == "bf16" and r.json["bound"]["unit_roundoff"] == 2.0 ** -8
    assert "PyTorch's float32 (autocast to bfloat16) gradient" in r.report()
    assert sorted(b.parameter for b in r.blocks) == sorted(n for n, _ in model.named_parameters())
    # the truth is taken at the float32 parameters PyTorch differentiated, not at their bf16 roundings
    weights = next(layer for layer in params["layers"] if layer)
    values = [decimal.Decimal(v) for row in next(iter(weights.values())) for v in row]
    p32 = torch.tensor([float(v) for v in values], dtype=torch.float32)
    assert [decimal.Decimal(v) for v in p32.tolist()] == values  # float32 numbers, every digit
    assert not torch.equal(p32, p32.bfloat16().float())
    assert gradient["precision"] == "bf16"


@pytest.mark.parametrize("name", ["mlp_tanh", "conv2d_pools", "embedding_attention"])
def test_autocast_gradient_is_beyond_the_float32_bound(name):
    """The same document judged as a float32 gradient: less accurate in every block, so autocast computed in
    bf16 and bf16's bound is what passes it."""
    def as_float(doc):
        doc["precision"] = "float"

    model, loss, batch = MODELS[name](1)
    code, result, text = run_judged(lambda d: tb.export(model, loss, batch, d, "bf16", autocast=True),
                                    lambda paths, out: tb.compare(paths, "float", BPCHECK, json_out=out),
                                    "gradient", as_float)
    assert code == 1 and result["verdict"] == "less_accurate", text
    assert all(b["verdict"] != "pass" and b["ratio"] > 10 for b in result["blocks"]), text


def test_models_autocast_cannot_run_are_refused_with_the_kernel_named():
    """Every test model either passes under autocast or is refused, naming what PyTorch lacks: never a
    traceback, never a wrong verdict."""
    refused = {}
    for name, make in MODELS.items():
        try:
            r = check(*make(1), autocast=True)
        except bpcheck_torch.Unsupported as e:
            refused[name] = str(e)
            continue
        assert r.passed, r.report()
    assert not set(AUTOCAST) & set(refused)
    for name, why in refused.items():
        assert f"PyTorch {torch.__version__} cannot compute this model's gradient in bf16 under autocast on cpu" in why
    # PyTorch 1.13 has no bf16 CPU kernel for mish, and autocast leaves LayerNorm after a Linear with mixed dtypes
    assert "gelu_silu_mish" in refused and "mish_cpu" in refused["gelu_silu_mish"], refused


# ---- a wrong backward is WRONG, its parameter named ----------------------------------------------------

WRONG = ["mlp_tanh", "conv1d_pools", "conv2d_pools", "embedding_attention"]


@pytest.mark.parametrize("name, autocast", [(n, False) for n in WRONG if n in BF16] + [(n, True) for n in WRONG])
def test_wrong_backward_is_wrong_with_its_parameter_named(name, autocast):
    model, loss, batch, wrong, right = with_wrong_tanh(name)
    r = check(model, loss, batch, autocast)
    text = r.report()
    assert not r.passed and r.returncode == 1 and r.verdict == "wrong", text
    assert r.block(wrong).verdict == "wrong", text
    assert r.block(right).verdict == "pass", text
    assert f"{wrong} is wrong: worst entry {r.block(wrong).worst_entry}: given" in text
    assert text.endswith("verdict: WRONG"), text


# ---- the command line ----------------------------------------------------------------------------------

def run_check(model_lines, *args):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.py")
        with open(path, "w") as f:
            f.write(f"import sys\nsys.path.insert(0, {HERE!r})\n" + model_lines)
        return subprocess.run([sys.executable, os.path.join(TOOLS, "torch_bridge.py"), "check", path, *args,
                               "--bpcheck", BPCHECK], capture_output=True, text=True)


def test_command_autocast_passes_and_a_wrong_backward_exits_1():
    right = run_check("from torch_runner import MODELS\nmodel, loss, batch = MODELS['conv2d_pools'](1)\n",
                      "--precision", "bf16", "--autocast")
    assert right.returncode == 0, right.stdout + right.stderr
    assert "PyTorch's float32 (autocast to bfloat16) gradient of Sequential" in right.stdout
    assert right.stdout.rstrip().endswith("verdict: pass")
    wrong = run_check("from torch_bf16_test import with_wrong_tanh\n"
                      "model, loss, batch, _, _ = with_wrong_tanh('conv2d_pools')\n", "--precision", "bf16", "--autocast")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "0.bias is wrong: worst entry 0.bias[" in wrong.stdout and "verdict: WRONG" in wrong.stdout


MLP = "from torch_runner import MODELS\nmodel, loss, batch = MODELS['mlp_tanh'](1)\n"


def test_command_refuses_fp16_on_the_cpu_with_exit_2():
    r = run_check(MLP, "--precision", "fp16")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert f"torch_bridge: error: precision fp16: PyTorch {torch.__version__} on cpu has no float16 kernels" in r.stderr
    assert "not implemented for 'Half'" in r.stderr and "use bf16" in r.stderr
    r = run_check(MLP, "--precision", "fp16", "--autocast")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "torch_bridge: error: autocast to fp16: PyTorch" in r.stderr and "on the CPU use bf16" in r.stderr


def test_command_refuses_autocast_outside_16_bits_with_exit_2():
    r = run_check(MLP, "--precision", "float", "--autocast")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--autocast computes in bf16 or fp16: give --precision bf16 (not float)" in r.stderr


def test_api_refusals():
    model, loss, batch = MODELS["mlp_tanh"](1)
    with pytest.raises(bpcheck_torch.Unsupported, match="precision fp16: PyTorch .* has no float16 kernels"):
        bpcheck_torch.check_gradients(model, loss, batch, precision="fp16", bpcheck=BPCHECK)
    with pytest.raises(bpcheck_torch.Unsupported, match="autocast to fp16"):
        bpcheck_torch.check_gradients(model, loss, batch, precision="fp16", autocast=True, bpcheck=BPCHECK)
    with pytest.raises(ValueError, match="autocast with precision 'double'"):
        bpcheck_torch.check_gradients(model, loss, batch, precision="double", autocast=True, bpcheck=BPCHECK)
    with pytest.raises(ValueError, match="precision 'half'"):
        bpcheck_torch.check_gradients(model, loss, batch, precision="half", bpcheck=BPCHECK)
