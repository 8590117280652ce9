"""PyTorch ↔ bpcheck: export a torch.nn.Sequential, its loss and a batch as bpcheck's documents, write
PyTorch's own gradient in bpcheck's gradient format, and let `bpcheck compare` judge it.

  python3 tools/torch_bridge.py check MODEL.py [--precision float|double] [--device cpu|cuda|auto]
                                     [--out DIR] [--strict] [--json FILE] [--bpcheck PATH]
      MODEL.py defines `model` (an nn.Sequential), `loss` (an nn loss module) and `batch`
      ((inputs, targets)). Exports them, computes PyTorch's gradient in the precision (float32 or
      float64), runs `bpcheck compare`, prints its verdict and exits with its code (0 right,
      1 wrong, 2 bad input; 2 also for a module that does not map, named with the reason).
  python3 tools/torch_bridge.py export MODEL.py --out DIR [--precision float|double] [--device ...]
      Writes DIR/model.json, params.json, data.json and gradient.json only.

Run with Debian's interpreter (/usr/bin/python3) and its python3-torch; nothing else is needed. The
mapping (module ↔ bpcheck layer, parameter names, layout) is in docs/compare.md. A module maps by its
class (isinstance), so a subclass whose forward calls a custom autograd.Function maps as its base
class: the function it claims to compute is bpcheck's, and its backward is what compare judges.

Parameters and data are written as exact decimals of the values the model holds in the chosen
precision, so bpcheck's truth is taken at exactly the point PyTorch computed at.
"""
import argparse
import copy
import decimal
import json
import math
import os
import runpy
import subprocess
import sys
import tempfile

import torch

nn = torch.nn


class Unmappable(Exception):
    """A module, loss or batch that has no bpcheck counterpart; the message names it and says why."""


class SelfAttention(nn.Module):
    """Self-attention as bpcheck's multi_head_attention computes it: nn.MultiheadAttention(E, heads,
    batch_first=True) called as attn(x, x, x), with the upper-triangular −∞ mask when causal. Takes and
    returns (batch, sequence, E). nn.MultiheadAttention itself takes (query, key, value) and returns a
    pair, so it cannot stand in a Sequential alone."""

    def __init__(self, embed_dim, num_heads, causal=False, **kwargs):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True, **kwargs)
        self.causal = causal

    def forward(self, x):
        mask = None
        if self.causal:
            seq = x.shape[1]
            mask = torch.triu(torch.full((seq, seq), float("-inf"), dtype=x.dtype, device=x.device), diagonal=1)
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]


def pair(v):
    """An int or a pair of ints as a pair (PyTorch's _pair)."""
    return tuple(int(a) for a in v) if isinstance(v, (list, tuple)) else (int(v), int(v))


def single(v):
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def bpcheck_layout(t):
    """A parameter (or its gradient) in bpcheck's JSON layout: vectors as lists, matrices as rows, conv
    weights as weight.reshape(out, -1) (row o = weight[o] flattened in (in, kh, kw) order)."""
    t = t.detach()
    return t if t.dim() <= 1 else t.reshape(t.shape[0], -1)


def exact_decimal(x):
    """The exact decimal value of a float (float32 values are exact in float64): bpcheck reads every
    digit into mp100, so its truth is taken at the very number PyTorch held."""
    if not math.isfinite(x):
        raise Unmappable(f"a parameter or input is {x}: bpcheck's documents hold finite numbers only")
    return str(decimal.Decimal(x))


def exact_rows(t):
    t = t.detach().cpu().double()
    if t.dim() == 1:
        return [exact_decimal(v) for v in t.tolist()]
    return [[exact_decimal(v) for v in row] for row in t.tolist()]


def value_text(v, precision="double"):
    """A gradient value with all its precision's digits (9 significant for float32, which read back to the
    same float, the shortest round trip for float64); NaN and ±Inf as the strings compare reads."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.9g}" if precision == "float" else repr(v)


def _refuse(k, m, why):
    raise Unmappable(f"layer {k} ({type(m).__name__}): {why}")


def _check_eval_free(k, m, p, what):
    if p and m.training:
        _refuse(k, m, f"{what} in training mode draws its mask from PyTorch's generator, which bpcheck does not "
                      "reproduce: call model.eval() (or use p=0)")


def map_module(k, m, shape, first):
    """(bpcheck layer spec, {block name: (parameter, layout)}) for module m taking per-sample `shape`."""
    n = math.prod(shape)
    flat = lambda t: t.reshape(-1)  # noqa: E731
    rows = bpcheck_layout
    if isinstance(m, nn.Linear):
        if len(shape) != 1:
            _refuse(k, m, f"on a {tuple(shape)} input it acts on the last dimension only; bpcheck's dense takes a "
                          "sample's whole feature vector: put nn.Flatten() before it")
        if m.bias is None:
            _refuse(k, m, "bias=False: bpcheck's dense always has b")
        return {"type": "dense", "units": m.out_features}, {"W": (m.weight, rows), "b": (m.bias, rows)}
    if isinstance(m, nn.ReLU):
        return {"type": "relu"}, {}
    if isinstance(m, nn.LeakyReLU):
        return {"type": "leaky_relu", "negative_slope": m.negative_slope}, {}
    if isinstance(m, nn.Sigmoid):
        return {"type": "sigmoid"}, {}
    if isinstance(m, nn.Tanh):
        return {"type": "tanh"}, {}
    if isinstance(m, nn.Softplus):
        if m.beta != 1:
            _refuse(k, m, f"beta={m.beta}: bpcheck's softplus is log(1 + e^x) (beta 1)")
        # PyTorch returns x itself above `threshold` (20), e^-20 ≈ 2e-9 from log(1 + e^x): in double that
        # shows as less accurate there (docs/compare.md).
        return {"type": "softplus"}, {}
    if isinstance(m, nn.GELU):
        return {"type": "gelu", "approximate": getattr(m, "approximate", "none")}, {}
    if isinstance(m, nn.SiLU):
        return {"type": "silu"}, {}
    if isinstance(m, nn.Mish):
        return {"type": "mish"}, {}
    if isinstance(m, nn.ELU):
        return {"type": "elu", "alpha": m.alpha}, {}
    if isinstance(m, nn.Hardtanh):
        return {"type": "hardtanh", "min_val": m.min_val, "max_val": m.max_val}, {}
    if isinstance(m, nn.Hardswish):
        return {"type": "hardswish"}, {}
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        kind = "softmax" if isinstance(m, nn.Softmax) else "log_softmax"
        if len(shape) != 1 or m.dim not in (1, -1):
            _refuse(k, m, f"dim={m.dim} on a {tuple(shape)} input: bpcheck's {kind} runs over a sample's whole "
                          "feature vector (a (batch, features) input with dim=1)")
        return {"type": kind}, {}
    if isinstance(m, nn.Dropout):
        _check_eval_free(k, m, m.p, "Dropout")
        # In eval mode (or with p = 0) dropout is the identity, and so is bpcheck's dropout with p = 0.
        return {"type": "dropout", "p": 0}, {}
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            _refuse(k, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}: bpcheck's flatten is "
                          "torch.flatten(x, 1)")
        return {"type": "flatten"}, {}
    if isinstance(m, nn.LayerNorm):
        if tuple(m.normalized_shape) != tuple(shape):
            _refuse(k, m, f"normalized_shape={tuple(m.normalized_shape)} on a {tuple(shape)} input: bpcheck's "
                          "layer_norm normalises over all features of a sample")
        if not m.elementwise_affine:
            _refuse(k, m, "elementwise_affine=False: bpcheck's layer_norm always has weight and bias")
        return {"type": "layer_norm", "eps": m.eps}, {"weight": (m.weight, flat), "bias": (m.bias, flat)}
    if isinstance(m, nn.BatchNorm1d):
        if len(shape) != 1:
            _refuse(k, m, f"on a {tuple(shape)} input it normalises per channel over the batch and the length; "
                          "bpcheck's batch_norm normalises each feature of a (batch, features) input")
        if not m.affine:
            _refuse(k, m, "affine=False: bpcheck's batch_norm always has weight and bias")
        if m.training or not m.track_running_stats:
            spec = {"type": "batch_norm", "mode": "train", "eps": m.eps}
        else:
            spec = {"type": "batch_norm", "mode": "eval", "eps": m.eps,
                    "running_mean": exact_rows(m.running_mean), "running_var": exact_rows(m.running_var)}
        return spec, {"weight": (m.weight, flat), "bias": (m.bias, flat)}
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        two = isinstance(m, nn.Conv2d)
        if len(shape) != (3 if two else 2):
            _refuse(k, m, f"takes a {'(C, H, W)' if two else '(C, L)'} sample, got {tuple(shape)}")
        if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str) and m.padding != "valid":
            _refuse(k, m, "groups, padding_mode or 'same' padding: bpcheck's convolutions have groups 1 and zero "
                          "padding given as numbers")
        if m.bias is None:
            _refuse(k, m, "bias=False: bpcheck's convolutions always have b")
        pad = (0, 0) if isinstance(m.padding, str) else m.padding
        if two:
            spec = {"type": "conv2d", "channels": shape[0], "height": shape[1], "width": shape[2],
                    "out_channels": m.out_channels, "kernel": list(pair(m.kernel_size)),
                    "stride": list(pair(m.stride)), "padding": list(pair(pad)), "dilation": list(pair(m.dilation))}
        else:
            spec = {"type": "conv1d", "channels": shape[0], "length": shape[1], "out_channels": m.out_channels,
                    "kernel": single(m.kernel_size), "stride": single(m.stride), "padding": single(pad),
                    "dilation": single(m.dilation)}
        return spec, {"W": (m.weight, rows), "b": (m.bias, rows)}
    pools = ((nn.MaxPool1d, "max_pool1d"), (nn.MaxPool2d, "max_pool2d"), (nn.AvgPool1d, "avg_pool1d"),
             (nn.AvgPool2d, "avg_pool2d"))
    for cls, kind in pools:
        if not isinstance(m, cls):
            continue
        two = kind.endswith("2d")
        if len(shape) != (3 if two else 2):
            _refuse(k, m, f"takes a {'(C, H, W)' if two else '(C, L)'} sample, got {tuple(shape)}")
        if m.ceil_mode:
            _refuse(k, m, "ceil_mode=True: bpcheck's pools floor the output size")
        if kind.startswith("max") and (pair(m.dilation) != (1, 1) or m.return_indices):
            _refuse(k, m, "dilation or return_indices: bpcheck's max pools have neither")
        if kind.startswith("avg") and (not m.count_include_pad or getattr(m, "divisor_override", None)):
            _refuse(k, m, "count_include_pad=False or divisor_override: bpcheck's average pools count the "
                          "padding in the divisor")
        stride = m.stride if m.stride is not None else m.kernel_size
        conv = pair if two else single
        spec = {"type": kind, "channels": shape[0], "kernel": _list(conv(m.kernel_size)),
                "stride": _list(conv(stride)), "padding": _list(conv(m.padding))}
        if two:
            spec.update({"height": shape[1], "width": shape[2]})
        else:
            spec["length"] = shape[1]
        return spec, {}
    if isinstance(m, nn.Embedding):
        if not first:
            _refuse(k, m, "bpcheck's embedding takes the model's integer inputs: it must be the first layer")
        if m.padding_idx is not None or m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
            _refuse(k, m, "padding_idx, max_norm, scale_grad_by_freq or sparse: bpcheck's embedding has none")
        if len(shape) != 1:
            _refuse(k, m, f"takes a sequence of indices per sample, got {tuple(shape)}")
        return ({"type": "embedding", "num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim},
                {"weight": (m.weight, rows)})
    if isinstance(m, SelfAttention):
        a = m.attn
        if len(shape) != 2:
            _refuse(k, m, f"takes a (sequence, E) sample, got {tuple(shape)}")
        if not a.batch_first or not a._qkv_same_embed_dim or a.in_proj_bias is None or a.bias_k is not None \
                or a.add_zero_attn or (a.dropout and a.training):
            _refuse(k, m, "bpcheck's multi_head_attention is batch_first self-attention with biases, no "
                          "add_bias_kv or add_zero_attn, no dropout in training mode")
        return ({"type": "multi_head_attention", "sequence": shape[0], "heads": a.num_heads, "causal": m.causal},
                {"in_proj_weight": (a.in_proj_weight, rows), "in_proj_bias": (a.in_proj_bias, rows),
                 "out_proj.weight": (a.out_proj.weight, rows), "out_proj.bias": (a.out_proj.bias, rows)})
    if isinstance(m, nn.MultiheadAttention):
        _refuse(k, m, "it takes (query, key, value) and returns (output, weights): wrap it as "
                      "torch_bridge.SelfAttention(embed_dim, num_heads, causal=...) for bpcheck's self-attention")
    _refuse(k, m, "no bpcheck layer computes it (docs/compare.md lists the modules that map)")


# The module classes map_module maps (their subclasses too).
MAPPED = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.GELU, nn.SiLU, nn.Mish, nn.ELU,
          nn.Hardtanh, nn.Hardswish, nn.Softmax, nn.LogSoftmax, nn.Dropout, nn.Flatten, nn.LayerNorm, nn.BatchNorm1d, nn.Conv1d,
          nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.Embedding, SelfAttention)


def _list(v):
    return list(v) if isinstance(v, tuple) else v


def map_loss(loss):
    """bpcheck's loss spec for a PyTorch loss module, and whether it takes class indices."""
    if getattr(loss, "reduction", "mean") != "mean":
        raise Unmappable(f"loss {type(loss).__name__}: reduction='{loss.reduction}': bpcheck's losses take the mean")
    if isinstance(loss, nn.MSELoss):
        return "mse", False
    if isinstance(loss, nn.HuberLoss):
        return {"type": "huber", "delta": loss.delta}, False
    if isinstance(loss, nn.CrossEntropyLoss):
        if loss.weight is not None or loss.label_smoothing:
            raise Unmappable("loss CrossEntropyLoss: class weights or label smoothing: bpcheck's cross_entropy has neither")
        return "cross_entropy", True
    if isinstance(loss, nn.NLLLoss):
        if loss.weight is not None:
            raise Unmappable("loss NLLLoss: class weights: bpcheck's nll has none")
        return "nll", True
    if isinstance(loss, nn.BCEWithLogitsLoss):
        if loss.weight is not None or loss.pos_weight is not None:
            raise Unmappable("loss BCEWithLogitsLoss: weight or pos_weight: bpcheck's bce_with_logits has neither")
        return "bce_with_logits", False
    if isinstance(loss, nn.KLDivLoss):
        if loss.log_target:
            raise Unmappable("loss KLDivLoss: log_target=True: bpcheck's kl_div takes probabilities as targets")
        return "kl_div", False
    raise Unmappable(f"loss {type(loss).__name__}: no bpcheck loss computes it (mse, huber, cross_entropy, nll, "
                     "bce_with_logits, kl_div)")


def leaves(model):
    """The modules of a Sequential in order, nested Sequentials opened."""
    if not isinstance(model, nn.Sequential):
        raise Unmappable(f"model {type(model).__name__}: export takes an nn.Sequential (a chain of layers)")
    out = []
    for m in model:
        out.extend(leaves(m) if isinstance(m, nn.Sequential) else [m])
    return out


def split_batch(batch):
    if isinstance(batch, dict):
        return batch["inputs"], batch["targets"]
    inputs, targets = batch
    return inputs, targets


DTYPES = {"float": torch.float32, "double": torch.float64}


def prepare(model, loss, batch, precision, device="cpu"):
    """The model and batch in the precision on the device (copies): (modules, inputs, targets, loss spec, classes)."""
    dtype = DTYPES[precision]
    model = copy.deepcopy(model).to(device=device, dtype=dtype)
    inputs, targets = split_batch(batch)
    inputs = torch.as_tensor(inputs)
    targets = torch.as_tensor(targets)
    inputs = inputs.to(device=device, dtype=dtype) if inputs.is_floating_point() else inputs.to(device)
    loss_spec, classes = map_loss(loss)
    targets = targets.to(device) if classes else targets.to(device=device, dtype=dtype)
    return model, inputs, targets, loss_spec, classes


def describe(model, loss, batch, precision, device="cpu"):
    """Everything export writes, from the model in the precision: model spec, parameter blocks, data, and the
    prepared model and batch."""
    model, inputs, targets, loss_spec, classes = prepare(model, loss, batch, precision, device)
    modules = leaves(model)
    if inputs.dim() < 2:
        raise Unmappable(f"batch inputs of shape {tuple(inputs.shape)}: expected (batch, ...) with at least 2 samples")
    # Modules of a class without a bpcheck layer are refused before anything runs (nn.MultiheadAttention
    # does not even run in a Sequential).
    for k, m in enumerate(modules):
        if not isinstance(m, MAPPED):
            map_module(k, m, (), k == 0)
    # Each module's per-sample input shape, from one forward pass of a copy (batch norm's running
    # statistics in the copy move; the model's do not).
    shapes = []
    probe = copy.deepcopy(model)
    hooks = [m.register_forward_pre_hook(lambda mod, args: shapes.append(tuple(args[0].shape[1:])))
             for m in leaves(probe)]
    try:
        with torch.no_grad():
            out = probe(inputs)
    except (RuntimeError, TypeError, ValueError) as e:
        raise Unmappable(f"the model does not run on the batch: {e}") from e
    for h in hooks:
        h.remove()
    if inputs.is_floating_point() is False and not isinstance(modules[0], nn.Embedding):
        raise Unmappable("the inputs are integers but the first layer is not an Embedding")
    layers, blocks = [], []
    for k, (m, shape) in enumerate(zip(modules, shapes)):
        spec, params = map_module(k, m, shape, k == 0)
        layers.append(spec)
        blocks.append(params)
    if classes and out.dim() != 2:
        raise Unmappable(f"the output has per-sample shape {tuple(out.shape[1:])}: class-index losses take "
                         "(batch, classes)")
    spec = {"input_size": math.prod(inputs.shape[1:]), "layers": layers, "loss": loss_spec}
    params = {"layers": [{name: exact_rows(layout(p)) for name, (p, layout) in b.items()} for b in blocks]}
    x = inputs.reshape(inputs.shape[0], -1)
    data = {"inputs": x.tolist() if not x.is_floating_point() else [[exact_decimal(v) for v in row]
                                                                      for row in x.double().cpu().tolist()],
            "targets": targets.cpu().tolist() if classes else exact_rows(targets.reshape(targets.shape[0], -1))}
    return {"model": spec, "params": params, "data": data, "torch_model": model, "inputs": inputs,
            "targets": targets, "blocks": blocks}


def torch_gradient(loss, described, precision):
    """PyTorch's own gradient of the loss (its autograd, in the precision and on the device of the
    prepared model), as a gradient document."""
    model, inputs, targets = described["torch_model"], described["inputs"], described["targets"]
    model.zero_grad(set_to_none=True)
    value = loss(model(inputs), targets)
    value.backward()
    entries = []
    for k, params in enumerate(described["blocks"]):
        for name, (p, layout) in params.items():
            if p.grad is None:
                raise Unmappable(f"layer {k} block {name}: PyTorch computed no gradient for it")
            g = layout(p.grad).detach().cpu().double()
            values = [value_text(v, precision) for v in g.tolist()] if g.dim() == 1 else \
                [[value_text(v, precision) for v in row] for row in g.tolist()]
            entries.append({"layer": k, "name": name, "shape": list(g.shape), "values": values})
    return {"precision": precision, "loss": value_text(value.item(), precision), "gradients": entries}


def export(model, loss, batch, out_dir, precision="double", device="cpu"):
    """Writes model.json, params.json, data.json and gradient.json into out_dir; returns their paths."""
    described = describe(model, loss, batch, precision, device)
    gradient = torch_gradient(loss, described, precision)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, doc in (("model", described["model"]), ("params", described["params"]), ("data", described["data"]),
                      ("gradient", gradient)):
        paths[name] = os.path.join(out_dir, name + ".json")
        with open(paths[name], "w") as f:
            json.dump(doc, f)
    return paths


def find_bpcheck(given=None):
    """--bpcheck, else $BPCHECK_CLI, else the build tree's build/reports/bpcheck, else bpcheck on PATH."""
    for path in (given, os.environ.get("BPCHECK_CLI"),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "reports", "bpcheck")):
        if path and os.path.exists(path):
            return path
    return "bpcheck"


def compare(paths, precision, bpcheck=None, strict=False, json_out=None):
    """Runs `bpcheck compare` on exported files; returns the completed process (stdout, stderr, returncode)."""
    cmd = [find_bpcheck(bpcheck), "compare", "--model", paths["model"], "--params", paths["params"],
           "--data", paths["data"], "--gradient", paths["gradient"], "--precision", precision]
    if strict:
        cmd.append("--strict")
    if json_out:
        cmd += ["--json", json_out]
    return subprocess.run(cmd, capture_output=True, text=True)


def load_model_file(path):
    """`model`, `loss` and `batch` from a Python file."""
    names = runpy.run_path(path)
    missing = [n for n in ("model", "loss", "batch") if n not in names]
    if missing:
        raise Unmappable(f"{path} defines no {', '.join(missing)} (it must define model, loss and batch)")
    return names["model"], names["loss"], names["batch"]


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise Unmappable("--device cuda: no CUDA device is available")
    return device


def main(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch gradients judged by bpcheck against the 100-digit truth")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "export"):
        p = sub.add_parser(name)
        p.add_argument("model_file")
        p.add_argument("--precision", choices=("float", "double"), default="double")
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
        p.add_argument("--out", help="folder for the documents (check: a temporary one by default)",
                       required=(name == "export"))
        if name == "check":
            p.add_argument("--strict", action="store_true", help="less accurate than the precision allows fails too")
            p.add_argument("--json", help="also write compare's JSON to this file")
            p.add_argument("--bpcheck", help="the bpcheck program (default: $BPCHECK_CLI, build/reports/bpcheck, PATH)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the same sums in the same order on every run
    try:
        model, loss, batch = load_model_file(args.model_file)
        device = resolve_device(args.device)
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or tmp
            paths = export(model, loss, batch, out, args.precision, device)
            if args.command == "export":
                print(json.dumps(paths))
                return 0
            r = compare(paths, args.precision, args.bpcheck, args.strict, args.json)
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
            return r.returncode
    except Unmappable as e:
        print(f"torch_bridge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
