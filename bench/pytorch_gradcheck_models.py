"""The PyTorch side of scripts/bench_verify.sh: the same network, parameters and data as `bpcheck`.

  pytorch_gradcheck_models.py generate MODEL.json SEED BATCH OUT_DIR
      writes OUT_DIR/params.json and OUT_DIR/data.json in bpcheck's formats (README "File formats"):
      PyTorch's default initialisation under torch.manual_seed(SEED), then every bias, layer-norm γ/β and
      attention bias drawn away from PyTorch's constant start (0 or 1) so that no block is trivial;
      inputs uniform in ±1 and targets as bpcheck's generate_batch draws them (rows in [0, 1) for mse,
      class indices for cross_entropy). Values are JSON numbers, i.e. the shortest decimal of a double:
      double and PyTorch's float64 hold the same number, mp100 the decimal (within one ulp of it).
  pytorch_gradcheck_models.py compare MODEL.json PARAMS.json DATA.json GRADIENT.json
      PyTorch's float64 gradient of the loss against `bpcheck gradient --precision double`'s: prints JSON
      {"max_rel_error": max over blocks of ‖g_torch − g_bpcheck‖ / ‖g_bpcheck‖, "loss_torch", "loss_bpcheck"}.
      This is what shows that the module built here is bpcheck's network.
  pytorch_gradcheck_models.py gradcheck MODEL.json PARAMS.json DATA.json fast|full
      torch.autograd.gradcheck in float64, one thread, with respect to the inputs and every parameter
      (as bench/pytorch_gradcheck.py), fast_mode True (random projections) or False (full Jacobians).
      Prints JSON {"seconds" (wall, gradcheck alone), "cpu_seconds", "passed", "error"}.

Every bpcheck layer becomes a module that reads and writes one flat vector per sample, bpcheck's column:
images in PyTorch's contiguous (C, H, W) order, attention tokens as (L, E) row-major, so that a layer
reshapes on the way in and flattens on the way out, and the layouts agree by construction.
"""
import json
import os
import sys
import time

import torch
from torch.autograd.gradcheck import GradcheckError

import pytorch_common  # noqa: F401  (one thread)

# The layouts are the PyTorch bridge's (tools/torch_bridge.py), which maps the other way.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_bridge import bpcheck_layout, pair  # noqa: E402

F = torch.nn.functional


class Flat(torch.nn.Module):
    """One bpcheck layer: (batch, features) in, (batch, features) out."""

    def __init__(self, kind, module=None, shape=None, fn=None, blocks=None):
        super().__init__()
        self.kind = kind
        self.m = module
        self.shape = shape  # per-sample input shape the inner module wants
        self.fn = fn
        self.blocks = blocks or {}  # bpcheck block name -> (parameter name under m, reshape to torch)

    def forward(self, x):
        b = x.shape[0]
        if self.shape is not None:
            x = x.reshape(b, *self.shape)
        if self.fn is not None:
            y = self.fn(self.m, x) if self.m is not None else self.fn(x)
        else:
            y = self.m(x)
        return y.reshape(b, -1)


ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "mish": F.mish,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
}


class Unsupported(Exception):
    pass


def build(model):
    """torch.nn.Sequential of Flat layers for a bpcheck model spec (the layers this benchmark uses)."""
    n = int(model["input_size"])
    layers = []
    for spec in model["layers"]:
        kind = spec["type"]
        if kind == "dense":
            units = int(spec["units"])
            lin = torch.nn.Linear(n, units, dtype=torch.float64)
            layers.append(Flat(kind, lin, blocks={"W": "weight", "b": "bias"}))
            n = units
        elif kind in ACTIVATIONS:
            layers.append(Flat(kind, fn=ACTIVATIONS[kind]))
        elif kind == "leaky_relu":
            slope = float(spec.get("negative_slope", 0.01))
            layers.append(Flat(kind, fn=lambda x, s=slope: F.leaky_relu(x, s)))
        elif kind == "gelu":
            approx = spec.get("approximate", "none")
            layers.append(Flat(kind, fn=lambda x, a=approx: F.gelu(x, approximate=a)))
        elif kind == "flatten":
            layers.append(Flat(kind, fn=lambda x: x))
        elif kind == "conv2d":
            c, h, w = int(spec["channels"]), int(spec["height"]), int(spec["width"])
            out = int(spec["out_channels"])
            k, s = pair(spec["kernel"]), pair(spec.get("stride", 1))
            p, d = pair(spec.get("padding", 0)), pair(spec.get("dilation", 1))
            conv = torch.nn.Conv2d(c, out, k, stride=s, padding=p, dilation=d, dtype=torch.float64)
            layers.append(Flat(kind, conv, shape=(c, h, w), blocks={"W": "weight", "b": "bias"}))
            ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
            n = out * ho * wo
        elif kind in ("max_pool2d", "avg_pool2d"):
            c, h, w = int(spec["channels"]), int(spec["height"]), int(spec["width"])
            k = pair(spec["kernel"])
            s, p = pair(spec.get("stride", k)), pair(spec.get("padding", 0))
            cls = torch.nn.MaxPool2d if kind == "max_pool2d" else torch.nn.AvgPool2d
            layers.append(Flat(kind, cls(k, stride=s, padding=p), shape=(c, h, w)))
            n = c * ((h + 2 * p[0] - k[0]) // s[0] + 1) * ((w + 2 * p[1] - k[1]) // s[1] + 1)
        elif kind == "layer_norm":
            # bpcheck normalises over all features of a sample: LayerNorm on the flat vector.
            ln = torch.nn.LayerNorm(n, eps=float(spec.get("eps", 1e-5)), dtype=torch.float64)
            layers.append(Flat(kind, ln, blocks={"weight": "weight", "bias": "bias"}))
        elif kind == "multi_head_attention":
            seq, heads = int(spec["sequence"]), int(spec["heads"])
            e = n // seq
            attn = torch.nn.MultiheadAttention(e, heads, bias=True, batch_first=True, dtype=torch.float64)
            mask = None
            if spec.get("causal", False):
                mask = torch.triu(torch.full((seq, seq), float("-inf"), dtype=torch.float64), diagonal=1)

            def self_attention(m, x, mask=mask):
                return m(x, x, x, need_weights=False, attn_mask=mask)[0]

            layers.append(Flat(kind, attn, shape=(seq, e), fn=self_attention,
                               blocks={"in_proj_weight": "in_proj_weight", "in_proj_bias": "in_proj_bias",
                                       "out_proj.weight": "out_proj.weight", "out_proj.bias": "out_proj.bias"}))
        else:
            raise Unsupported(f"layer '{kind}' is not mapped to PyTorch by this benchmark")
    return torch.nn.Sequential(*layers)


def loss_fn(model):
    loss = model["loss"]
    name = loss if isinstance(loss, str) else loss["type"]
    if name == "mse":
        return F.mse_loss
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "bce_with_logits":
        return F.binary_cross_entropy_with_logits
    raise Unsupported(f"loss '{name}' is not mapped to PyTorch by this benchmark")


def classes_target(model):
    loss = model["loss"]
    return (loss if isinstance(loss, str) else loss["type"]) in ("cross_entropy", "nll")


def blocks(net):
    """(layer index, bpcheck block name, torch parameter) in bpcheck's order."""
    out = []
    for k, layer in enumerate(net):
        for name, torch_name in layer.blocks.items():
            out.append((k, name, layer.m.get_parameter(torch_name)))
    return out


def to_bpcheck(t):
    """A torch tensor in bpcheck's JSON: vectors as lists, matrices as rows, conv weights as weight.reshape(out, -1)."""
    return bpcheck_layout(t).tolist()


def load(model_path, params_path, data_path):
    model = json.load(open(model_path))
    net = build(model)
    params = json.load(open(params_path))["layers"]
    with torch.no_grad():
        for k, name, p in blocks(net):
            p.copy_(torch.tensor(params[k][name], dtype=torch.float64).reshape(p.shape))
    data = json.load(open(data_path))
    x = torch.tensor(data["inputs"], dtype=torch.float64)
    if classes_target(model):
        t = torch.tensor(data["targets"], dtype=torch.long)
    else:
        t = torch.tensor(data["targets"], dtype=torch.float64)
    return model, net, x, t


def generate(model_path, seed, batch, out_dir):
    model = json.load(open(model_path))
    torch.manual_seed(seed)
    net = build(model)
    gen = torch.Generator().manual_seed(seed + 1)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, dtype=torch.float64, generator=gen)

    with torch.no_grad():
        for layer in net:
            if layer.kind == "layer_norm":
                layer.m.weight.copy_(uniform(layer.m.weight.shape, 0.5, 1.5))
                layer.m.bias.copy_(uniform(layer.m.bias.shape, -0.5, 0.5))
            elif layer.kind == "multi_head_attention":
                layer.m.in_proj_bias.copy_(uniform(layer.m.in_proj_bias.shape, -0.1, 0.1))
                layer.m.out_proj.bias.copy_(uniform(layer.m.out_proj.bias.shape, -0.1, 0.1))
    params = [dict() for _ in net]
    for k, name, p in blocks(net):
        params[k][name] = to_bpcheck(p)
    x = uniform((batch, int(model["input_size"])), -1.0, 1.0)
    with torch.no_grad():
        outputs = net(x).shape[1]
    if classes_target(model):
        targets = [min(int(u * outputs), outputs - 1) for u in uniform((batch,), 0.0, 1.0).tolist()]
    else:
        targets = uniform((batch, outputs), 0.0, 1.0).tolist()
    with open(f"{out_dir}/params.json", "w") as f:
        json.dump({"layers": params}, f)
    with open(f"{out_dir}/data.json", "w") as f:
        json.dump({"inputs": x.tolist(), "targets": targets}, f)
    count = sum(p.numel() for _, _, p in blocks(net))
    print(json.dumps({"parameters": count, "inputs": x.numel(), "batch": batch}))


def compare(model_path, params_path, data_path, gradient_path):
    model, net, x, t = load(model_path, params_path, data_path)
    loss = loss_fn(model)(net(x), t)
    loss.backward()
    theirs = json.load(open(gradient_path))
    by_key = {(g["layer"], g["name"]): g for g in theirs["gradients"]}
    worst = 0.0
    worst_block = None
    for k, name, p in blocks(net):
        g = by_key.get((k, name))
        if g is None:
            raise SystemExit(f"bpcheck's gradient has no block {name} at layer {k}")
        ref = torch.tensor([float(v) for v in _flat(g["values"])], dtype=torch.float64)
        mine = p.grad.reshape(p.shape[0], -1).reshape(-1) if p.dim() > 1 else p.grad
        if ref.numel() != mine.numel():
            raise SystemExit(f"block {name} at layer {k}: {ref.numel()} values in bpcheck, {mine.numel()} in PyTorch")
        denom = ref.norm().item()
        err = (mine - ref).norm().item() / denom if denom > 0 else (mine - ref).norm().item()
        if err > worst or worst_block is None:
            worst, worst_block = err, f"layer {k} {name}"
    print(json.dumps({"max_rel_error": worst, "worst_block": worst_block, "loss_torch": loss.item(),
                      "loss_bpcheck": float(theirs["loss"])}))


def _flat(values):
    for v in values:
        if isinstance(v, list):
            yield from _flat(v)
        else:
            yield v


def gradcheck(model_path, params_path, data_path, mode):
    model, net, x, t = load(model_path, params_path, data_path)
    lf = loss_fn(model)
    names = [name for name, _ in net.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    x = x.clone().requires_grad_()
    try:
        from torch.func import functional_call
    except ImportError:  # torch < 2.0
        from torch.nn.utils.stateless import functional_call

    def loss(x, *ps):
        return lf(functional_call(net, dict(zip(names, ps)), (x,)), t)

    result = {"mode": mode, "inputs_checked": x.numel() + sum(p.numel() for p in params)}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result["passed"] = bool(torch.autograd.gradcheck(loss, (x, *params), fast_mode=(mode == "fast")))
    except GradcheckError as e:  # raise_exception=True: a mismatch
        result["passed"] = False
        result["error"] = str(e).splitlines()[0][:200]
    except Exception as e:  # noqa: BLE001  (reported in the table, not fatal)
        result["passed"] = False
        result["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    result["seconds"] = time.perf_counter() - wall
    result["cpu_seconds"] = time.process_time() - cpu
    print(json.dumps(result))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "generate":
            generate(args[0], int(args[1]), int(args[2]), args[3])
        elif cmd == "compare":
            compare(*args)
        elif cmd == "gradcheck":
            gradcheck(*args)
        else:
            raise SystemExit(f"unknown command {cmd} (generate, compare, gradcheck)")
    except Unsupported as e:
        print(json.dumps({"unsupported": str(e)}))
        sys.exit(3)
