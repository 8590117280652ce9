"""bpcheck_torch.check_gradients (tools/bpcheck_torch.py) on models written as plain nn.Modules: a ResNet
with BasicBlocks, a MobileNetV2 inverted-residual stack, a pre-LN transformer encoder on token ids and an
MLP with residual adds and a concatenation. PyTorch's float64 and float32 gradients pass; a wrong custom
autograd.Function inside each is WRONG with its PyTorch parameter and worst entry named; calls with no
bpcheck counterpart are refused by graph node and source line.

  /usr/bin/python3 -m pytest checks/bpcheck_torch_test.py

Needs Debian's python3-torch and python3-pytest, and the bpcheck program in $BPCHECK_CLI (CTest sets it;
otherwise the build tree's). Without torch this fails at the import: the tests are never skipped.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from torch_runner import HERE, TOOLS, torch

import bpcheck_torch  # noqa: E402  (tools/, on sys.path from torch_runner)
from torch_bridge_models import SignFlippedTanh, linear_with_dx, random_batch, spread_biases  # noqa: E402

nn = torch.nn
F = torch.nn.functional


# ---- wrong backwards, each a subclass of the module it claims to be ----------------------------------

class _MasklessReLU(torch.autograd.Function):
    """relu (or relu6) whose backward forgets the mask: dX = dY everywhere."""

    @staticmethod
    def forward(ctx, x, top):
        return x.clamp(0, top)

    @staticmethod
    def backward(ctx, dy):
        return dy, None


class WrongReLU(nn.ReLU):
    def forward(self, x):
        return _MasklessReLU.apply(x, None)


class WrongReLU6(nn.ReLU6):
    def forward(self, x):
        return _MasklessReLU.apply(x, 6.0)


# y = x Wᵀ + b whose dX is summed over the batch and broadcast back to every sample.
BatchSummedLinear = linear_with_dx("BatchSummedLinear",
                                   lambda dy, x, weight: (dy @ weight).sum(0, keepdim=True).expand_as(x))


# ---- the models -----------------------------------------------------------------------------------

class ResidualMLP(nn.Module):
    """Residual adds, a concatenation, functional activations."""

    def __init__(self, act=nn.Tanh):
        super().__init__()
        self.inp = nn.Linear(5, 6)
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 6)
        self.act = act()
        self.side = nn.Linear(6, 4)
        self.out = nn.Linear(10, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = h + F.gelu(self.fc1(h))
        h = h + self.act(self.fc2(h))
        h = torch.cat([h, torch.sigmoid(self.side(h))], dim=1)
        return self.out(F.silu(h))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, act=nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act = act()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.short(x)
        return torch.relu(out)


class ResNet(nn.Module):
    """A CIFAR-style ResNet, small: an identity block and a downsampling block, trained (batch statistics)."""

    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.layer1 = nn.Sequential(BasicBlock(3, 3, act=act))
        self.layer2 = nn.Sequential(BasicBlock(3, 4, stride=2))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = torch.flatten(self.pool(out), 1)
        return self.fc(out)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, act=nn.ReLU6):
        super().__init__()
        h = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), act(inplace=True),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(inplace=True),
            nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        if self.use_res:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """Inverted residuals with depthwise convolutions, in eval mode (running statistics)."""

    def __init__(self, act=nn.ReLU6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1, bias=False), nn.BatchNorm2d(3), nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(InvertedResidual(3, 3, 1, 2, act=act), InvertedResidual(3, 4, 2, 2),
                                    InvertedResidual(4, 4, 1, 2))
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4, 3))

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


class Encoder(nn.Module):
    """A pre-LN transformer encoder on token ids: a learned position embedding, the mean over tokens."""

    def __init__(self, head=nn.Linear, vocab=7, tokens=3, d=4, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.3 * torch.randn(1, tokens, d))
        layer = nn.TransformerEncoderLayer(d, 2, 6, dropout=0.1, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = head(d, classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos
        x = self.encoder(x)
        return self.head(self.norm(x).mean(dim=1))


def images(seed, shape=(2, 6, 6), classes=3):
    return random_batch(seed, 2, shape, classes=classes)


def make(name, seed=1, wrong=False):
    """(model, loss, batch) for a model; wrong puts the wrong custom backward inside it."""
    torch.manual_seed(seed)
    ce = nn.CrossEntropyLoss()
    if name == "residual_mlp":
        batch = random_batch(seed, 2, (5,), outputs=3)
        return spread_biases(ResidualMLP(SignFlippedTanh if wrong else nn.Tanh), seed), nn.MSELoss(), batch
    if name == "resnet":
        return spread_biases(ResNet(WrongReLU if wrong else nn.ReLU), seed).train(), ce, images(seed)
    if name == "mobilenet_v2":
        return spread_biases(MobileNetV2(WrongReLU6 if wrong else nn.ReLU6), seed).eval(), ce, images(seed)
    if name == "transformer":
        g = torch.Generator().manual_seed(seed + 1000)
        batch = (torch.randint(0, 7, (2, 3), generator=g), torch.randint(0, 3, (2,), generator=g))
        return spread_biases(Encoder(BatchSummedLinear if wrong else nn.Linear), seed).eval(), ce, batch
    raise KeyError(name)


MODELS = ["residual_mlp", "resnet", "mobilenet_v2", "transformer"]
# For each model: the parameter right before the wrong backward (its gradient is wrong) and one after it
# (still right).
WRONG_AND_RIGHT = {
    "residual_mlp": ("fc2.weight", "out.weight"),
    "resnet": ("layer1.0.bn1.weight", "fc.weight"),
    "mobilenet_v2": ("blocks.0.conv.1.weight", "head.1.weight"),
    "transformer": ("norm.weight", "head.weight"),
}
WRONG_CASES = [
    ("residual_mlp", None, "double"), ("residual_mlp", None, "float"),
    ("resnet", "eval", "double"), ("resnet", "eval", "float"),
    ("resnet", "train", "double"), ("resnet", "train", "float"),
    ("mobilenet_v2", None, "double"), ("mobilenet_v2", None, "float"),
    ("transformer", None, "double"), ("transformer", None, "float"),
]


# ---- correct gradients pass -----------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["double", "float"])
@pytest.mark.parametrize("name", MODELS)
def test_pytorch_gradient_passes(name, precision):
    model, loss, batch = make(name)
    r = bpcheck_torch.check_gradients(model, loss, batch, precision)
    assert r.passed, r.report()
    assert r.verdict == "pass" and r.precision == precision
    # every trainable parameter is judged, under its PyTorch name and shape
    params = dict(model.named_parameters())
    assert sorted(b.parameter for b in r.blocks) == sorted(params)
    for b in r.blocks:
        assert b.shape == tuple(params[b.parameter].shape)
        assert b.verdict == "pass"
    assert "verdict: pass" in r.report()


# ---- a wrong custom backward is WRONG, named ------------------------------------------------------

@pytest.mark.parametrize("name, mode, precision", WRONG_CASES)
def test_wrong_custom_backward_is_wrong_with_block_and_entry(name, mode, precision):
    model, loss, batch = make(name, wrong=True)
    if mode:
        model.train(mode == "train")
    wrong, right = WRONG_AND_RIGHT[name]
    r = bpcheck_torch.check_gradients(model, loss, batch, precision)
    text = r.report()
    assert not r.passed, text
    assert r.verdict == "wrong", text
    assert r.returncode == 1
    assert r.block(wrong).verdict == "wrong", text
    assert r.block(right).verdict == "pass", text
    # the worst entry in PyTorch's indexing, inside the parameter's shape
    b = r.block(wrong)
    assert len(b.worst_index) == len(b.shape)
    assert all(0 <= i < s for i, s in zip(b.worst_index, b.shape))
    assert f"{wrong} is wrong: worst entry {b.worst_entry}: given" in text
    assert "verdict: WRONG" in text


def test_worst_entry_is_translated_to_pytorch_index():
    """bpcheck holds a conv weight (O, I, kh, kw) as O rows of I·kh·kw; entry [1, 13] of a (2, 3, 3, 3)
    weight is weight[1, 1, 1, 1]."""
    entry = {"layer": 0, "type": "conv2d", "name": "W", "shape": [2, 27], "verdict": "wrong", "digits": 0.0,
             "ratio": 5.0, "worst": [{"row": 1, "col": 13, "given": "1", "exact": "0", "abs_error": 1.0,
                                      "bound": 0.1}]}
    b = bpcheck_torch.BlockVerdict("conv.weight", (2, 3, 3, 3), entry)
    assert b.worst_index == (1, 1, 1, 1)
    assert b.worst_entry == "conv.weight[1,1,1,1]"
    vector = dict(entry, shape=[5], worst=[{"row": 4, "col": 0}])
    assert bpcheck_torch.BlockVerdict("b", (5,), vector).worst_index == (4,)
    position = dict(entry, shape=[3, 4], worst=[{"row": 2, "col": 1}])  # a (1, T, F) parameter held as (T, F)
    assert bpcheck_torch.BlockVerdict("pos", (1, 3, 4), position).worst_index == (0, 2, 1)


# ---- refusals name the node and its line ----------------------------------------------------------

def line_of(marker):
    with open(__file__) as f:
        for number, text in enumerate(f, 1):
            if marker in text and "line_of(" not in text:
                return number
    raise AssertionError(marker)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = self.fc(x)
        return h * torch.sigmoid(h)  # refused: a product of two values


class Tangled(nn.Module):
    """x feeds two branches, and a value inside one branch feeds the other: not branches that share only x."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        a = torch.tanh(self.a(x))  # refused: its value feeds two branches
        b = self.b(x) + a
        return self.c(a) + b


def refusal(model):
    x = torch.rand(2, 4, dtype=torch.float64)
    with pytest.raises(bpcheck_torch.Unmappable) as e:
        bpcheck_torch.check_gradients(model, nn.MSELoss(), (x, torch.rand(2, 4, dtype=torch.float64)))
    return str(e.value)


def test_unsupported_call_is_refused_by_node_and_source_line():
    text = refusal(Gated())
    assert "node 'mul' (operator.mul)" in text
    assert f"{os.path.basename(__file__)}:{line_of('# refused: a product')}" in text
    assert "h * torch.sigmoid(h)" in text
    assert "no bpcheck layer computes it" in text


def test_branches_that_share_a_value_are_refused_by_node():
    text = refusal(Tangled())
    assert f"{os.path.basename(__file__)}:{line_of('# refused: its value feeds')}" in text
    assert "bpcheck's branches share nothing but their input" in text


def test_unmapped_module_is_refused_with_its_qualified_name():
    class WithGLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 8)
            self.gate = nn.GLU()

        def forward(self, x):
            return self.gate(self.fc(x))

    text = refusal(WithGLU())
    assert "module 'gate' (GLU)" in text
    assert "self.gate(self.fc(x))" in text


def test_forward_arguments_after_the_input_keep_their_defaults():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, mask=None, scale=1.0):
            if mask is not None:
                x = x.masked_fill(mask, 0.0)
            return self.fc(x) if scale == 1.0 else scale * self.fc(x)

    x = torch.rand(2, 4, dtype=torch.float64)
    r = bpcheck_torch.check_gradients(Masked(), nn.MSELoss(), (x, torch.rand(2, 4, dtype=torch.float64)))
    assert r.passed, r.report()
    assert [b.parameter for b in r.blocks] == ["fc.weight", "fc.bias"]

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, y):
            return self.fc(x) + y

    assert "node 'y': the forward takes a second input" in refusal(TwoInputs())


# ---- the command line over the same API -----------------------------------------------------------

def run_check(path, *args):
    cmd = [sys.executable, os.path.join(TOOLS, "torch_bridge.py"), "check", path, *args]
    if os.environ.get("BPCHECK_CLI"):
        cmd += ["--bpcheck", os.environ["BPCHECK_CLI"]]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_model_file_importing_torch_bridge_maps_its_self_attention(tmp_path):
    """The script runs as __main__; the model file's `from torch_bridge import SelfAttention` must be the class
    it maps."""
    path = tmp_path / "attention_model.py"
    path.write_text(textwrap.dedent("""\
        import torch
        from torch_bridge import SelfAttention
        torch.manual_seed(0)
        model = torch.nn.Sequential(SelfAttention(4, 2, causal=True), torch.nn.Flatten(), torch.nn.Linear(12, 2))
        loss = torch.nn.MSELoss()
        batch = (torch.rand(2, 3, 4, dtype=torch.float64), torch.rand(2, 2, dtype=torch.float64))
        """))
    r = run_check(str(path), "--precision", "float")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0.attn.in_proj_weight" in r.stdout
    assert "verdict: pass" in r.stdout


def test_command_prints_the_report_with_pytorch_names_and_exits_1_on_wrong(tmp_path):
    path = tmp_path / "wrong_model.py"
    path.write_text(textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {HERE!r})
        from bpcheck_torch_test import make
        model, loss, batch = make("residual_mlp", wrong=True)
        """))
    r = run_check(str(path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fc2.weight is wrong: worst entry fc2.weight[" in r.stdout
    assert "verdict: WRONG" in r.stdout
