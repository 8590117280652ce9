"""PyTorch ↔ bpcheck: export an nn.Module (any that torch.fx traces), its loss and a batch as bpcheck's
documents, write PyTorch's own gradient in bpcheck's gradient format, and let `bpcheck compare` judge it.

  python3 tools/torch_bridge.py check MODEL.py [--precision float|double|bf16|fp16] [--autocast]
                                     [--device cpu|cuda|auto] [--out DIR] [--strict] [--json FILE] [--bpcheck PATH]
      MODEL.py defines `model` (an nn.Module), `loss` (an nn loss module) and `batch`
      ((inputs, targets)). Exports them, computes PyTorch's gradient in the precision (float32 or
      float64; bfloat16 parameters and inputs; with --autocast float32 parameters and inputs and the
      forward under torch.autocast(dtype=bfloat16)), runs `bpcheck compare` (a 16-bit precision as
      `--precision bf16 --accumulate float`: PyTorch's bf16 matrix products add up in float), prints the
      verdict of every parameter under its PyTorch name and exits with compare's code (0 right, 1 wrong,
      2 bad input; 2 also for a node that does not map, named with its source line and the reason, and
      for a precision this PyTorch cannot compute in on the device: fp16 on the CPU). A thin layer over
      bpcheck_torch.check_gradients.
  python3 tools/torch_bridge.py export MODEL.py --out DIR [--precision ...] [--autocast] [--device ...]
      Writes DIR/model.json, params.json, data.json and gradient.json only.
  python3 tools/torch_bridge.py hvp MODEL.py [--precision ...] [--seed N] [--out DIR] [--json FILE] [--bpcheck PATH]
      PyTorch's Hessian-vector product (double backward, create_graph=True) for a seeded random V, judged
      by `bpcheck compare --hvp` against the mp100 H V; prints compare's table and exits with its code.

Run with Debian's interpreter (/usr/bin/python3) and its python3-torch; nothing else is needed. The
mapping (module or call ↔ bpcheck layer, parameter names, layout) is in docs/compare.md. The model is
traced with torch.fx; a module bpcheck maps stays one node and maps by its class (isinstance), so a
subclass whose forward calls a custom autograd.Function maps as its base class: the function it claims
to compute is bpcheck's, and its backward is what compare judges.

Parameters and data are written as exact decimals of the values the model holds in the chosen
precision (float32 under autocast: the parameters PyTorch differentiates), so bpcheck's truth is taken
at exactly the point PyTorch computed at.
"""
import argparse
import copy
import decimal
import inspect
import json
import math
import operator
import os
import re
import runpy
import subprocess
import sys
import warnings

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

nn = torch.nn
F = torch.nn.functional

# Run as a script, this module is __main__; a model file that does `from torch_bridge import SelfAttention`
# must get these very classes, not a second copy of the module.
if __name__ == "__main__":
    sys.modules.setdefault("torch_bridge", sys.modules[__name__])


class Unmappable(Exception):
    """A module, loss or batch that has no bpcheck counterpart; the message names it and says why."""


class SelfAttention(nn.Module):
    """Self-attention as bpcheck's multi_head_attention computes it: nn.MultiheadAttention(E, heads,
    batch_first=True) called as attn(x, x, x), with the upper-triangular −∞ mask when causal. Takes and
    returns (batch, sequence, E). nn.MultiheadAttention itself takes (query, key, value) and returns a
    pair, so it cannot stand in a Sequential alone."""

    bpcheck_maps_as = "multi_head_attention"

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
    return f"{v:.9g}" if precision != "double" else repr(v)  # a bf16 or fp16 value is a float exactly


def _refuse(k, m, why):
    """k names the graph node and its source line (or is a layer index, for a bare module)."""
    label = k if isinstance(k, str) else f"layer {k} ({type(m).__name__})"
    raise Unmappable(f"{label}: {why}")


def _check_eval_free(k, m, p, what):
    if p and m.training:
        _refuse(k, m, f"{what} in training mode draws its mask from PyTorch's generator, which bpcheck does not "
                      "reproduce: call model.eval() (or use p=0)")


def map_module(k, m, shape, first):
    """(bpcheck layer spec, {block name: (parameter, layout)}) for module m taking per-sample `shape`."""
    flat = lambda t: t.reshape(-1)  # noqa: E731
    rows = bpcheck_layout
    if isinstance(m, nn.Linear):
        if len(shape) not in (1, 2):
            _refuse(k, m, f"on a {tuple(shape)} input it acts on the last dimension only; bpcheck's dense takes a "
                          "sample's feature vector or (tokens, features): put nn.Flatten() before it")
        if m.bias is None:
            _refuse(k, m, "bias=False: bpcheck's dense always has b")
        spec = {"type": "dense", "units": m.out_features}
        if len(shape) == 2:
            spec["tokens"] = shape[0]  # applied to each token's feature vector
        return spec, {"W": (m.weight, rows), "b": (m.bias, rows)}
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
        per_token = len(shape) == 2 and tuple(m.normalized_shape) == tuple(shape[1:])
        if tuple(m.normalized_shape) != tuple(shape) and not per_token:
            _refuse(k, m, f"normalized_shape={tuple(m.normalized_shape)} on a {tuple(shape)} input: bpcheck's "
                          "layer_norm normalises over all features of a sample, or over each token's features")
        if not m.elementwise_affine:
            _refuse(k, m, "elementwise_affine=False: bpcheck's layer_norm always has weight and bias")
        spec = {"type": "layer_norm", "eps": m.eps}
        if per_token:
            spec["tokens"] = shape[0]
        return spec, {"weight": (m.weight, flat), "bias": (m.bias, flat)}
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
    if isinstance(m, nn.BatchNorm2d):
        if len(shape) != 3:
            _refuse(k, m, f"takes a (C, H, W) sample, got {tuple(shape)}")
        if not m.affine:
            _refuse(k, m, "affine=False: bpcheck's batch_norm2d always has weight and bias")
        spec = {"type": "batch_norm2d", "channels": shape[0], "height": shape[1], "width": shape[2]}
        if m.training or not m.track_running_stats:
            spec.update({"mode": "train", "eps": m.eps})
        else:
            spec.update({"mode": "eval", "eps": m.eps, "running_mean": exact_rows(m.running_mean),
                         "running_var": exact_rows(m.running_var)})
        return spec, {"weight": (m.weight, flat), "bias": (m.bias, flat)}
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if len(shape) != 3:
            _refuse(k, m, f"takes a (C, H, W) sample, got {tuple(shape)}")
        size = [shape[1 + i] if s is None else int(s) for i, s in enumerate(pair_or_none(m.output_size))]
        return {"type": "adaptive_avg_pool2d", "channels": shape[0], "height": shape[1], "width": shape[2],
                "output_size": size}, {}
    if isinstance(m, nn.TransformerEncoderLayer):
        return map_encoder_layer(k, m, shape)
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        two = isinstance(m, nn.Conv2d)
        if len(shape) != (3 if two else 2):
            _refuse(k, m, f"takes a {'(C, H, W)' if two else '(C, L)'} sample, got {tuple(shape)}")
        if m.padding_mode != "zeros" or isinstance(m.padding, str) and m.padding != "valid":
            _refuse(k, m, "padding_mode or 'same' padding: bpcheck's convolutions have zero padding given as "
                          "numbers")
        pad = (0, 0) if isinstance(m.padding, str) else m.padding
        if two:
            spec = {"type": "conv2d", "channels": shape[0], "height": shape[1], "width": shape[2],
                    "out_channels": m.out_channels, "kernel": list(pair(m.kernel_size)),
                    "stride": list(pair(m.stride)), "padding": list(pair(pad)), "dilation": list(pair(m.dilation))}
        else:
            spec = {"type": "conv1d", "channels": shape[0], "length": shape[1], "out_channels": m.out_channels,
                    "kernel": single(m.kernel_size), "stride": single(m.stride), "padding": single(pad),
                    "dilation": single(m.dilation)}
        if m.groups != 1:
            spec["groups"] = m.groups
        if m.bias is None:
            spec["bias"] = False
            return spec, {"W": (m.weight, rows)}
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
    if is_self_attention(m):
        check_self_attention(k, m, m.attn, shape)
        return ({"type": "multi_head_attention", "sequence": shape[0], "heads": m.attn.num_heads,
                 "causal": bool(m.causal)}, attention_blocks(m.attn))
    if isinstance(m, nn.MultiheadAttention):
        _refuse(k, m, "it takes (query, key, value) and returns (output, weights): call it as attn(x, x, x)[0] "
                      "in a module's forward, or wrap it as torch_bridge.SelfAttention(embed_dim, num_heads, "
                      "causal=...) in a Sequential")
    _refuse(k, m, "no bpcheck layer computes it (docs/compare.md lists the modules that map)")


def attention_blocks(a, prefix=""):
    """nn.MultiheadAttention's parameters as bpcheck's multi_head_attention blocks, named `prefix` + PyTorch's name."""
    rows = bpcheck_layout
    return {prefix + "in_proj_weight": (a.in_proj_weight, rows), prefix + "in_proj_bias": (a.in_proj_bias, rows),
            prefix + "out_proj.weight": (a.out_proj.weight, rows), prefix + "out_proj.bias": (a.out_proj.bias, rows)}


def check_self_attention(k, m, a, shape):
    if len(shape) != 2:
        _refuse(k, m, f"takes a (sequence, E) sample, got {tuple(shape)}")
    if not a.batch_first or not a._qkv_same_embed_dim or a.in_proj_bias is None or a.bias_k is not None \
            or a.add_zero_attn or (a.dropout and a.training):
        _refuse(k, m, "bpcheck's multi_head_attention is batch_first self-attention with biases, no "
                      "add_bias_kv or add_zero_attn, no dropout in training mode")


def map_encoder_layer(k, m, shape):
    """nn.TransformerEncoderLayer as bpcheck's transformer_encoder_layer, blocks under PyTorch's names."""
    if len(shape) != 2:
        _refuse(k, m, f"takes a (sequence, d_model) sample, got {tuple(shape)}")
    check_self_attention(k, m, m.self_attn, shape)
    if m.training and (m.dropout.p or m.dropout1.p or m.dropout2.p):
        _refuse(k, m, "dropout in training mode draws its mask from PyTorch's generator, which bpcheck does not "
                      "reproduce: call model.eval() (or use dropout=0)")
    if m.norm1.eps != m.norm2.eps or not m.norm1.elementwise_affine:
        _refuse(k, m, "its two LayerNorms must have the same eps and affine weights")
    kind = {1: "relu", 2: "gelu"}.get(getattr(m, "activation_relu_or_gelu", 0))
    if kind is None:
        kind = {F.relu: "relu", F.gelu: "gelu"}.get(m.activation) if not isinstance(m.activation, nn.Module) else \
            ("relu" if type(m.activation) is nn.ReLU else "gelu" if type(m.activation) is nn.GELU
             and m.activation.approximate == "none" else None)
    if kind is None:
        _refuse(k, m, f"activation {m.activation}: bpcheck's transformer_encoder_layer takes relu or gelu")
    spec = {"type": "transformer_encoder_layer", "sequence": shape[0], "heads": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "norm_first": bool(m.norm_first), "activation": kind,
            "eps": m.norm1.eps}
    rows = bpcheck_layout
    blocks = attention_blocks(m.self_attn, "self_attn.")
    for name in ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
                 "norm2.weight", "norm2.bias"):
        blocks[name] = (m.get_parameter(name), rows)
    return spec, blocks


def pair_or_none(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def is_self_attention(m):
    """SelfAttention by its marker, so the class a model file imported from `torch_bridge` and the one in a
    script run as __main__ both count."""
    return getattr(m, "bpcheck_maps_as", None) == "multi_head_attention"


# The module classes map_module maps (their subclasses too); SelfAttention counts by its marker.
MAPPED = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.GELU, nn.SiLU, nn.Mish, nn.ELU,
          nn.Hardtanh, nn.Hardswish, nn.Softmax, nn.LogSoftmax, nn.Dropout, nn.Flatten, nn.LayerNorm, nn.BatchNorm1d,
          nn.BatchNorm2d, nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
          nn.AdaptiveAvgPool2d, nn.Embedding, nn.TransformerEncoderLayer, SelfAttention)


def is_mapped(m):
    return isinstance(m, MAPPED) or is_self_attention(m)


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


DTYPES = {"float": torch.float32, "double": torch.float64, "bf16": torch.bfloat16, "fp16": torch.float16}
# The precisions torch.autocast computes in: the parameters and inputs stay float32.
AUTOCAST = ("bf16", "fp16")


class Unsupported(Unmappable):
    """PyTorch cannot compute the gradient in the precision asked for, on this device."""


def check_precision(precision, device="cpu", autocast=False):
    """ValueError for a precision the bridge does not know (or autocast with one it does not cast to);
    Unsupported where this PyTorch cannot run it on the device, with the reason and what to use instead."""
    if precision not in DTYPES:
        raise ValueError(f"precision {precision!r}: 'float', 'double', 'bf16' or 'fp16'")
    if autocast and precision not in AUTOCAST:
        raise ValueError(f"autocast with precision {precision!r}: autocast computes in a 16-bit format, "
                         "'bf16' or 'fp16' (the parameters stay float32)")
    dev = torch.device(device).type
    if autocast:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PyTorch warns, then raises, for a dtype it does not cast to
                with torch.autocast(dev, dtype=DTYPES[precision]):
                    pass
        except RuntimeError as e:
            raise Unsupported(f"autocast to {precision}: PyTorch {torch.__version__} on {dev} does not cast to it "
                              f"({e}); on the CPU use bf16") from e
    elif precision == "fp16":
        try:  # the kernels every mapped model needs first: a matrix product and an activation
            a = torch.ones(2, 2, dtype=torch.float16, device=device)
            torch.tanh(torch.addmm(a, a, a))
        except RuntimeError as e:
            raise Unsupported(f"precision fp16: PyTorch {torch.__version__} on {dev} has no float16 kernels for "
                              f"matrix products and activations ({e}), so no model runs in float16 there; use "
                              "bf16 (bfloat16 parameters and inputs), or bf16 with autocast (PyTorch's mixed "
                              "precision)") from e


def prepare(model, loss, batch, precision, device="cpu", autocast=False):
    """The model and batch in the precision on the device (copies): (modules, inputs, targets, loss spec, classes).
    Under autocast the copies stay float32: autocast rounds to the precision inside the forward."""
    dtype = torch.float32 if autocast else DTYPES[precision]
    model = copy.deepcopy(model).to(device=device, dtype=dtype)
    inputs, targets = split_batch(batch)
    inputs = torch.as_tensor(inputs)
    targets = torch.as_tensor(targets)
    inputs = inputs.to(device=device, dtype=dtype) if inputs.is_floating_point() else inputs.to(device)
    loss_spec, classes = map_loss(loss)
    targets = targets.to(device) if classes else targets.to(device=device, dtype=dtype)
    return model, inputs, targets, loss_spec, classes


# ---- any traceable nn.Module: its torch.fx graph as bpcheck's chains, residual, add and concat ---------

TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
BRIDGE_FILES = {os.path.join(os.path.dirname(os.path.abspath(__file__)), f) for f in ("torch_bridge.py",
                                                                                      "bpcheck_torch.py")}
# Modules that map as a whole although bpcheck has no one-to-one row for their class.
WHOLE = (nn.MultiheadAttention, nn.TransformerEncoder, nn.Identity)


class _Tracer(torch.fx.Tracer):
    """Keeps every module bpcheck maps as a whole a leaf, subclasses too: a subclass whose forward calls a
    custom autograd.Function maps as its base class, and its backward is what compare judges."""

    def is_leaf_module(self, m, qualname):
        return is_mapped(m) or isinstance(m, WHOLE) or super().is_leaf_module(m, qualname)


def source_line(node):
    """`file:line (code)` of the innermost frame outside torch that created the node, when fx recorded it;
    None for a module that a Sequential (torch's own forward) calls. Frames from the tracer's call
    outwards are the bridge's, not the model's."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in ([^\n]*)\n[ \t]*([^\n]*)', node.stack_trace or "")
    for path, line, function, code in frames:
        inside_torch = os.path.abspath(path).startswith(TORCH_DIR + os.sep)
        if inside_torch and function == "trace" and path.endswith("_symbolic_trace.py") or \
                os.path.abspath(path) in BRIDGE_FILES:
            return None
        if not inside_torch:
            return f"{path}:{line} ({code.strip()})"
    return None


def _function_name(f):
    if f in (operator.add, operator.iadd):
        return "+"
    module = getattr(f, "__module__", None) or "torch"
    module = "operator" if module == "_operator" else module
    return f"{module.replace('torch._C._nn', 'torch.nn.functional').replace('torch._C._VariableFunctions', 'torch')}" \
           f".{getattr(f, '__name__', f)}"


def node_label(node, model):
    """How a refusal names a graph node: the module or call, fx's node name, and the source line."""
    if node.op == "call_module":
        what = f"module '{node.target}' ({type(model.get_submodule(node.target)).__name__})"
    elif node.op == "call_method":
        what = f"node '{node.name}' (Tensor.{node.target})"
    elif node.op == "call_function":
        what = f"node '{node.name}' ({_function_name(node.target)})"
    else:
        what = f"node '{node.name}'"
    src = source_line(node)
    return what + (f" at {src}" if src else "")


# Functional calls, by the function fx records (call_function) or the Tensor method's name (call_method),
# to the name of their entry in _CALLS.
_FUNCTIONS = {
    torch.relu: "relu", F.relu: "relu", F.relu6: "relu6", torch.tanh: "tanh", F.tanh: "tanh",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.gelu: "gelu", F.silu: "silu", F.mish: "mish", F.elu: "elu",
    F.leaky_relu: "leaky_relu", F.hardtanh: "hardtanh", F.hardswish: "hardswish", F.softplus: "softplus",
    torch.softmax: "softmax", F.softmax: "softmax", torch.log_softmax: "log_softmax", F.log_softmax: "log_softmax",
    F.dropout: "dropout", torch.flatten: "flatten", torch.reshape: "reshape", torch.mean: "mean",
    operator.add: "add", operator.iadd: "add", torch.add: "add", torch.cat: "cat", torch.concat: "cat",
    F.adaptive_avg_pool2d: "adaptive_avg_pool2d", F.avg_pool1d: "avg_pool1d", F.avg_pool2d: "avg_pool2d",
    F.max_pool1d: "max_pool1d", F.max_pool2d: "max_pool2d", operator.getitem: "getitem",
}
_METHODS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "softmax", "log_softmax": "log_softmax",
            "flatten": "flatten", "view": "reshape", "reshape": "reshape", "mean": "mean", "add": "add",
            "contiguous": "alias"}

# Each entry binds the call's arguments by PyTorch's own parameter names and says what it is: a module
# that computes the same (mapped by map_module), or a structural operation.
_CALLS = {
    "relu": lambda input, inplace=False: ("module", input, nn.ReLU()),
    "relu6": lambda input, inplace=False: ("module", input, nn.ReLU6()),
    "tanh": lambda input: ("module", input, nn.Tanh()),
    "sigmoid": lambda input: ("module", input, nn.Sigmoid()),
    "gelu": lambda input, approximate="none": ("module", input, nn.GELU(approximate=approximate)),
    "silu": lambda input, inplace=False: ("module", input, nn.SiLU()),
    "mish": lambda input, inplace=False: ("module", input, nn.Mish()),
    "elu": lambda input, alpha=1.0, inplace=False: ("module", input, nn.ELU(alpha)),
    "leaky_relu": lambda input, negative_slope=0.01, inplace=False: ("module", input, nn.LeakyReLU(negative_slope)),
    "hardtanh": lambda input, min_val=-1.0, max_val=1.0, inplace=False:
        ("module", input, nn.Hardtanh(min_val, max_val)),
    "hardswish": lambda input, inplace=False: ("module", input, nn.Hardswish()),
    "softplus": lambda input, beta=1, threshold=20: ("module", input, nn.Softplus(beta, threshold)),
    "softmax": lambda input, dim=None, _stacklevel=3, dtype=None: ("module", input, nn.Softmax(dim)),
    "log_softmax": lambda input, dim=None, _stacklevel=3, dtype=None: ("module", input, nn.LogSoftmax(dim)),
    "dropout": lambda input, p=0.5, training=True, inplace=False: ("module", input, nn.Dropout(p).train(training)),
    "adaptive_avg_pool2d": lambda input, output_size: ("module", input, nn.AdaptiveAvgPool2d(output_size)),
    "avg_pool1d": lambda input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True:
        ("module", input, nn.AvgPool1d(kernel_size, stride, padding, ceil_mode, count_include_pad)),
    "avg_pool2d": lambda input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
        divisor_override=None: ("module", input, nn.AvgPool2d(kernel_size, stride, padding, ceil_mode,
                                                              count_include_pad, divisor_override)),
    "max_pool1d": lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
        return_indices=False: ("module", input, nn.MaxPool1d(kernel_size, stride, padding, dilation, return_indices,
                                                             ceil_mode)),
    "max_pool2d": lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
        return_indices=False: ("module", input, nn.MaxPool2d(kernel_size, stride, padding, dilation, return_indices,
                                                             ceil_mode)),
    "flatten": lambda input, start_dim=0, end_dim=-1: ("flatten", input, start_dim, end_dim),
    "reshape": lambda input, *shape: ("reshape", input),
    "mean": lambda input, dim=None, keepdim=False, dtype=None: ("mean", input, dim),
    "add": lambda input, other, alpha=1: ("add", input, other, alpha),
    "cat": lambda tensors, dim=0: ("cat", list(tensors), dim),
    "getitem": lambda a, b: ("getitem", a, b),
    "alias": lambda input, memory_format=None: ("alias", input),
}


class _Op:
    """A value of the graph: the input, a chain of bpcheck layers applied to one value, or a join of values."""

    def __init__(self, kind, node, inputs=(), layers=()):
        self.kind, self.node, self.inputs, self.layers = kind, node, list(inputs), list(layers)


class GraphMapper:
    """The model's fx graph as bpcheck layers: map() gives (layer specs, blocks per layer, per-sample output shape)."""

    def __init__(self, model, inputs):
        self.model, self.inputs = model, inputs
        self.batch = inputs.shape[0]
        self.ops, self.alias, self.tuples = {}, {}, set()
        self.emitted = {}

    # -- tracing -----------------------------------------------------------------------------------------
    def trace(self):
        probe = copy.deepcopy(self.model)  # batch norm's running statistics move in the shape pass
        tracer = _Tracer()
        tracer.record_stack_traces = True
        # Arguments after the input that have defaults (a mask=None) keep them: bpcheck's models take one input.
        parameters = list(inspect.signature(probe.forward).parameters.values())[1:]
        fixed = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        try:
            graph = tracer.trace(probe, concrete_args=fixed or None)

        except Exception as e:  # fx raises whatever the forward raises on a Proxy
            raise Unmappable(f"model {type(self.model).__name__}: torch.fx cannot trace its forward ({type(e).__name__}: "
                             f"{e}); bpcheck maps a forward whose structure does not depend on the data") from e
        self.graph = graph
        # The nodes computed from the input, the first placeholder (fixed arguments come after it).
        self.live = set()
        for node in graph.nodes:
            if (node.op == "placeholder" and not self.live) or any(a in self.live for a in node.all_input_nodes):
                self.live.add(node)
        self.precheck()
        module = torch.fx.GraphModule(probe, graph)
        try:
            with torch.no_grad():
                ShapeProp(module).propagate(self.inputs)
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            raise Unmappable(f"the model does not run on the batch: {e}") from e

    def refuse(self, node, why):
        raise Unmappable(f"{node_label(node, self.model)}: {why}")

    def precheck(self):
        """Calls with no bpcheck counterpart are refused before the model runs (some do not even run)."""
        for node in self.graph.nodes:
            if node.op in ("call_function", "call_method") and node not in self.live:
                continue  # computed from constants or parameters alone: fx's checks of the fixed arguments
            if node.op == "placeholder" and node not in self.live and not node.args:
                self.refuse(node, "the forward takes a second input without a default: bpcheck's models take one")
            if node.op == "call_module":
                m = self.model.get_submodule(node.target)
                if isinstance(m, nn.MultiheadAttention):
                    if len(node.args) != 3 or len(set(node.args)) != 1:
                        map_module(node_label(node, self.model), m, (), False)
                elif not is_mapped(m) and not isinstance(m, WHOLE):
                    map_module(node_label(node, self.model), m, (), False)
            elif node.op == "call_function" and node.target not in _FUNCTIONS:
                self.refuse(node, "no bpcheck layer computes it (docs/compare.md lists the calls that map)")
            elif node.op == "call_method" and node.target not in _METHODS and node.target != "size":
                self.refuse(node, "no bpcheck layer computes it (docs/compare.md lists the calls that map)")

    # -- values ------------------------------------------------------------------------------------------
    def value(self, a):
        """The value node behind an argument (through aliases), or None for a constant or a parameter."""
        while isinstance(a, torch.fx.Node) and a in self.alias:
            a = self.alias[a]
        return a if isinstance(a, torch.fx.Node) and a in self.ops else None

    def shape(self, node):
        meta = node.meta.get("tensor_meta")
        if isinstance(meta, (tuple, list)) and not hasattr(meta, "shape"):  # a module returning a tuple
            meta = meta[0]
        if meta is None:
            self.refuse(node, "its value is not a tensor")
        if meta.shape[0] != self.batch:
            self.refuse(node, f"its value has shape {tuple(meta.shape)}: it mixes or drops the batch dimension")
        return tuple(meta.shape[1:])

    def layer(self, node, x, mapped):
        self.ops[node] = _Op("layer", node, [x], mapped)

    def map_nodes(self):
        for node in self.graph.nodes:
            if node.op == "placeholder" and node not in self.live:
                continue  # a fixed argument: fx holds its default as the placeholder's argument
            if node.op == "placeholder":
                self.ops[node] = _Op("input", node)
                self.input = node
            elif node.op == "get_attr":
                continue
            elif node.op == "call_module":
                self.map_module_call(node)
            elif node.op in ("call_function", "call_method"):
                if node.target == "size" or node not in self.live:
                    continue
                self.map_call(node)
            elif node.op == "output":
                out = node.args[0]
                self.output = self.value(out)
                if self.output is None:
                    self.refuse(node, "the forward must return one tensor computed from its input")
                if self.output is self.input:
                    self.refuse(node, "the forward returns its input: there is no layer to check")

    def map_module_call(self, node):
        m = self.model.get_submodule(node.target)
        label = node_label(node, self.model)
        values = [self.value(a) for a in node.args]
        if isinstance(m, nn.MultiheadAttention):
            x = values[0]
            if x is None or any(v is not x for v in values) or any(
                    node.kwargs.get(k) is not None for k in ("key_padding_mask", "attn_mask")):
                self.refuse(node, "bpcheck's multi_head_attention is self-attention attn(x, x, x) without masks "
                                  "(torch_bridge.SelfAttention(E, heads, causal=True) for the causal mask)")
            check_self_attention(label, m, m, self.shape(x))
            spec = {"type": "multi_head_attention", "sequence": self.shape(x)[0], "heads": m.num_heads,
                    "causal": False}
            self.layer(node, x, [(spec, attention_blocks(m))])
            self.tuples.add(node)
            return
        if len(values) != 1 or values[0] is None or any(v is not None for v in node.kwargs.values()):
            self.refuse(node, "bpcheck maps a module called on one tensor computed from the input, no other "
                              "arguments")
        x = values[0]
        if isinstance(m, nn.Identity):
            self.alias[node] = x
            return
        shape = self.shape(x)
        if isinstance(m, nn.TransformerEncoder):
            mapped = [map_encoder_layer(f"{label}, layer {i}", layer, shape) for i, layer in enumerate(m.layers)]
            if m.norm is not None:
                mapped.append(map_module(f"{label}, its norm", m.norm, shape, False))
            self.layer(node, x, mapped)
            return
        if isinstance(m, nn.Embedding) and x is not self.input:
            self.refuse(node, "bpcheck's embedding takes the model's integer inputs: it must come first")
        self.layer(node, x, [map_module(label, m, shape, x is self.input)])

    def map_call(self, node):
        name = _FUNCTIONS[node.target] if node.op == "call_function" else _METHODS[node.target]
        try:
            what = _CALLS[name](*node.args, **node.kwargs)
        except TypeError as e:
            self.refuse(node, f"its arguments do not match {name}'s: {e}")
        label = node_label(node, self.model)
        kind = what[0]
        if kind == "getitem":
            tuple_node = self.value(what[1])
            if tuple_node in self.tuples and what[2] == 0:
                self.alias[node] = tuple_node
                return
            self.refuse(node, "indexing a tensor or taking attention's weights has no bpcheck layer")
        x = self.value(what[1]) if kind != "cat" else None
        if kind not in ("cat", "add") and x is None:
            self.refuse(node, "it takes no value computed from the input")
        if kind == "alias":
            self.alias[node] = x
        elif kind == "module":
            self.layer(node, x, [map_module(label, what[2], self.shape(x), x is self.input)])
        elif kind in ("flatten", "reshape"):
            shape, out = self.shape(x), self.shape(node)
            if out == shape:
                self.alias[node] = x
            elif len(out) == 1 and (kind == "reshape" or (what[2] % (len(shape) + 1), what[3] % (len(shape) + 1))
                                    == (1, len(shape))):
                self.layer(node, x, [({"type": "flatten"}, {})])
            else:
                self.refuse(node, f"reshapes a {shape} sample to {out}: bpcheck's flatten is torch.flatten(x, 1)")
        elif kind == "mean":
            shape = self.shape(x)
            dims = what[2] if isinstance(what[2], (list, tuple)) else [what[2]]
            dims = sorted(d % (len(shape) + 1) for d in dims if d is not None) if what[2] is not None else []
            if len(shape) == 2 and dims == [1]:
                self.layer(node, x, [({"type": "token_mean", "tokens": shape[0]}, {})])
            elif len(shape) == 3 and dims == [2, 3]:
                self.layer(node, x, [({"type": "adaptive_avg_pool2d", "channels": shape[0], "height": shape[1],
                                       "width": shape[2], "output_size": [1, 1]}, {})])
            else:
                self.refuse(node, f"a mean over dims {what[2]} of a {shape} sample: bpcheck's token_mean takes the "
                                  "mean over the tokens of (tokens, features) (dim=1), adaptive_avg_pool2d over "
                                  "(H, W) of (C, H, W) (dim=(2, 3))")
        elif kind == "add":
            a, b = self.value(what[1]), self.value(what[2])
            if what[3] != 1:
                self.refuse(node, f"alpha={what[3]}: bpcheck's add sums its branches")
            if a is not None and b is not None:
                self.ops[node] = _Op("add", node, [a, b])
            else:
                self.position_embedding(node, a if a is not None else b, what[2] if a is not None else what[1])
        elif kind == "cat":
            xs = [self.value(t) for t in what[1]]
            if any(v is None for v in xs):
                self.refuse(node, "it concatenates a tensor that is not computed from the input")
            if what[2] % (len(self.shape(xs[0])) + 1) != 1:
                self.refuse(node, f"dim={what[2]}: bpcheck's concat stacks whole samples, torch.cat(..., dim=1)")
            self.ops[node] = _Op("cat", node, xs)

    def position_embedding(self, node, x, other):
        """x + P for an nn.Parameter P of shape (T, F) or (1, T, F): bpcheck's position_embedding."""
        if x is None:
            self.refuse(node, "it adds no value computed from the input")
        if not (isinstance(other, torch.fx.Node) and other.op == "get_attr"):
            self.refuse(node, "it adds a constant: bpcheck adds values computed from the input, or a parameter "
                              "(position_embedding)")
        try:
            p = self.model.get_parameter(other.target)
        except AttributeError:
            self.refuse(node, f"it adds '{other.target}', a buffer or constant rather than an nn.Parameter")
        shape = self.shape(x)
        if len(shape) != 2 or tuple(p.shape) not in (shape, (1, *shape)):
            self.refuse(node, f"it adds a parameter of shape {tuple(p.shape)} to a {shape} sample: bpcheck's "
                              "position_embedding adds a (tokens, features) parameter to (tokens, features)")
        tokens, features = shape
        spec = {"type": "position_embedding", "tokens": tokens, "features": features}
        self.layer(node, x, [(spec, {"weight": (p, lambda t: t.detach().reshape(tokens, features))})])

    # -- structure ---------------------------------------------------------------------------------------
    def ancestors(self, node):
        seen, stack = set(), [node]
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(self.ops[v].inputs)
        return seen

    def reaches(self, start, end, region, avoid):
        seen, stack = set(), [start]
        while stack:
            v = stack.pop()
            if v is end:
                return True
            if v in seen or v is avoid:
                continue
            seen.add(v)
            stack.extend(u for u in self.users[v] if u in region)
        return False

    def join_of(self, cur, end, region):
        """The nearest node every path from cur to end passes through: where cur's consumers meet again."""
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        for c in sorted((n for n in region if order[n] > order[cur]), key=order.get):
            if not self.reaches(cur, end, region, c):
                return c
        return end

    def chain(self, start, end):
        """The layers from value start to value end, joins nested as add, residual or concat blocks."""
        region = self.ancestors(end)
        items, cur = [], start
        while cur is not end:
            nxt = list(dict.fromkeys(u for u in self.users[cur] if u in region))
            if not nxt:
                self.refuse(end, "it combines values that do not come from one value before it")
            if len(nxt) == 1 and self.ops[nxt[0]].kind == "layer":
                cur = nxt[0]
                self.emit(cur)
                items.extend(self.ops[cur].layers)
                continue
            join = self.join_of(cur, end, region)
            op = self.ops[join]
            if op.kind not in ("add", "cat"):
                self.refuse(join, f"the value of node '{cur.name}' feeds {len(nxt)} computations that meet here, "
                                  "which is not + or torch.cat: bpcheck's branches join by a sum or a concatenation")
            self.emit(join)
            branches = [self.chain(cur, i) for i in op.inputs]
            items.append(join_layer(op.kind, branches))
            cur = join
        return items

    def emit(self, node):
        if node in self.emitted:
            self.refuse(node, "its value feeds two branches that do not rejoin at one + or torch.cat: bpcheck's "
                              "branches share nothing but their input")
        self.emitted[node] = True

    def map(self):
        self.trace()
        self.map_nodes()
        self.users = {n: [] for n in self.ops}
        for n, op in self.ops.items():
            for i in op.inputs:
                self.users[i].append(n)
        if not self.inputs.is_floating_point():
            for u in self.users[self.input]:
                if self.ops[u].kind != "layer" or self.ops[u].layers[0][0]["type"] != "embedding":
                    self.refuse(u, "the inputs are integers: only an nn.Embedding takes them")
        items = self.chain(self.input, self.output)
        return [s for s, _ in items], [b for _, b in items], self.shape(self.output)


def join_layer(kind, branches):
    """A join as bpcheck's layer: + with the identity as one branch is `residual`, else `add`; cat is `concat`.
    Blocks are named as bpcheck names them: "<k>.<block>" inside residual, "<branch>.<k>.<block>" in branches."""
    if kind == "add" and len(branches) == 2 and sum(not b for b in branches) == 1:
        inner = branches[0] or branches[1]
        return ({"type": "residual", "layers": [s for s, _ in inner]},
                {f"{k}.{name}": v for k, (_, blocks) in enumerate(inner) for name, v in blocks.items()})
    return ({"type": "add" if kind == "add" else "concat", "branches": [[s for s, _ in b] for b in branches]},
            {f"{i}.{k}.{name}": v for i, b in enumerate(branches) for k, (_, blocks) in enumerate(b)
             for name, v in blocks.items()})


def describe(model, loss, batch, precision, device="cpu", autocast=False):
    """Everything export writes, from the model in the precision (float32 under autocast): model spec, parameter
    blocks, data, and the prepared model and batch."""
    model, inputs, targets, loss_spec, classes = prepare(model, loss, batch, precision, device, autocast)
    if inputs.dim() < 2:
        raise Unmappable(f"batch inputs of shape {tuple(inputs.shape)}: expected (batch, ...) with at least 2 samples")
    layers, blocks, out_shape = GraphMapper(model, inputs).map()
    if classes and len(out_shape) != 1:
        raise Unmappable(f"the output has per-sample shape {out_shape}: class-index losses take (batch, classes)")
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for k, b in enumerate(blocks):
        for name, (p, _) in b.items():
            if id(p) in seen:
                raise Unmappable(f"parameter {names.get(id(p), name)} is used by layers {seen[id(p)]} and {k}: "
                                 "bpcheck's layers do not share weights")
            seen[id(p)] = k
    spec = {"input_size": math.prod(inputs.shape[1:]), "layers": layers, "loss": loss_spec}
    params = {"layers": [{name: exact_rows(layout(p)) for name, (p, layout) in b.items()} for b in blocks]}
    x = inputs.reshape(inputs.shape[0], -1)
    data = {"inputs": x.tolist() if not x.is_floating_point() else [[exact_decimal(v) for v in row]
                                                                      for row in x.double().cpu().tolist()],
            "targets": targets.cpu().tolist() if classes else exact_rows(targets.reshape(targets.shape[0], -1))}
    torch_names = [{name: names.get(id(p), name) for name, (p, _) in b.items()} for b in blocks]
    return {"model": spec, "params": params, "data": data, "torch_model": model, "inputs": inputs,
            "targets": targets, "blocks": blocks, "torch_names": torch_names}


def torch_gradient(loss, described, precision, autocast=False):
    """PyTorch's own gradient of the loss (its autograd, in the precision and on the device of the
    prepared model), as a gradient document. With autocast the forward runs under
    torch.autocast(dtype=precision) and the backward after it, as in training: float32 gradients of the
    float32 parameters, judged at the precision's bound."""
    model, inputs, targets = described["torch_model"], described["inputs"], described["targets"]
    model.zero_grad(set_to_none=True)
    try:
        if autocast:
            with torch.autocast(inputs.device.type, dtype=DTYPES[precision]):
                value = loss(model(inputs), targets)
        else:
            value = loss(model(inputs), targets)
        value.backward()
    except RuntimeError as e:
        if precision not in AUTOCAST:
            raise
        # a kernel PyTorch lacks in the 16-bit format ("mish_cpu" not implemented for 'BFloat16'), or an
        # operation autocast leaves with mixed dtypes (a LayerNorm after a Linear in PyTorch 1.13)
        raise Unsupported(f"PyTorch {torch.__version__} cannot compute this model's gradient in {precision}"
                          f"{' under autocast' if autocast else ''} on {inputs.device.type}: {e}") from e
    grads = {}
    for k, params in enumerate(described["blocks"]):
        for name, (p, _) in params.items():
            if p.grad is None:
                raise Unmappable(f"layer {k} block {name}: PyTorch computed no gradient for it")
            grads[id(p)] = p.grad
    return {"precision": precision, "loss": value_text(value.item(), precision),
            "gradients": block_entries(described, grads, precision)}


def export_described(model, loss, batch, out_dir, precision="double", device="cpu", autocast=False):
    """Writes model.json, params.json, data.json and gradient.json into out_dir; returns their paths and what
    describe found (the blocks and their PyTorch names)."""
    check_precision(precision, device, autocast)
    described = describe(model, loss, batch, precision, device, autocast)
    gradient = torch_gradient(loss, described, precision, autocast)
    return write_documents(out_dir, described, gradient=gradient), described


def write_documents(out_dir, described, **more):
    """model.json, params.json and data.json from describe, and NAME.json for each document in `more`,
    written into out_dir; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, doc in dict(model=described["model"], params=described["params"], data=described["data"], **more).items():
        paths[name] = os.path.join(out_dir, name + ".json")
        with open(paths[name], "w") as f:
            json.dump(doc, f)
    return paths


def block_entries(described, tensors, precision):
    """Per-parameter tensors (keyed by id of the parameter) as the blocks of a gradient-format document."""
    entries = []
    for k, params in enumerate(described["blocks"]):
        for name, (p, layout) in params.items():
            t = layout(tensors[id(p)]).detach().cpu().double()
            values = [value_text(v, precision) for v in t.tolist()] if t.dim() == 1 else \
                [[value_text(v, precision) for v in row] for row in t.tolist()]
            entries.append({"layer": k, "name": name, "shape": list(t.shape), "values": values})
    return entries


def torch_hvp(loss, described, precision, seed=0, vectors=None):
    """PyTorch's Hessian-vector product of the loss with respect to the parameters: autograd.grad with
    create_graph=True, then the gradient of gᵀV (double backward). V is uniform in [−1, 1] from the seed, in
    the model's dtype (or vectors[id(p)] per parameter of the described copy), so the documents hold
    exactly the V PyTorch used. Returns (vector doc, HVP doc)."""
    model, inputs, targets = described["torch_model"], described["inputs"], described["targets"]
    params = [p for b in described["blocks"] for (p, _) in b.values()]
    g = torch.Generator().manual_seed(seed)
    vs = [(2 * torch.rand(p.shape, dtype=torch.float64, generator=g) - 1).to(device=p.device, dtype=p.dtype)
          for p in params] if vectors is None else [vectors[id(p)] for p in params]
    value = loss(model(inputs), targets)
    grads = torch.autograd.grad(value, params, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(grads, vs))
    hvs = torch.autograd.grad(dot, params, allow_unused=True)
    hvs = [torch.zeros_like(p) if h is None else h for p, h in zip(params, hvs)]
    vector = {"precision": precision, "gradients": block_entries(described, {id(p): v for p, v in zip(params, vs)},
                                                                 precision)}
    hvp = {"precision": precision, "loss": value_text(value.item(), precision),
           "hvp": block_entries(described, {id(p): h for p, h in zip(params, hvs)}, precision)}
    return vector, hvp


def export_hvp(model, loss, batch, out_dir, precision="double", device="cpu", seed=0):
    """Writes model.json, params.json, data.json, vector.json (V) and hvp.json (PyTorch's H V) into out_dir;
    returns their paths."""
    described = describe(model, loss, batch, precision, device)
    vector, hvp = torch_hvp(loss, described, precision, seed)
    return write_documents(out_dir, described, vector=vector, hvp=hvp)


def compare_hvp(paths, precision, bpcheck=None, json_out=None):
    """Runs `bpcheck compare --hvp` on files from export_hvp; returns the completed process."""
    cmd = [find_bpcheck(bpcheck), "compare", "--model", paths["model"], "--params", paths["params"],
           "--data", paths["data"], "--hvp", paths["hvp"], "--vector", paths["vector"], "--precision", precision]
    return run_bpcheck(cmd, json_out)


def export(model, loss, batch, out_dir, precision="double", device="cpu", autocast=False):
    """Writes model.json, params.json, data.json and gradient.json into out_dir; returns their paths."""
    return export_described(model, loss, batch, out_dir, precision, device, autocast)[0]


def run_bpcheck(cmd, json_out=None):
    """Runs bpcheck's command line (with --json json_out when given); returns the completed process."""
    if json_out:
        cmd = cmd + ["--json", json_out]
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise Unmappable(f"cannot run {cmd[0]} ({e.strerror}): build it (scripts/build.sh) or name it with "
                         "--bpcheck or $BPCHECK_CLI") from e


def find_bpcheck(given=None):
    """--bpcheck, else $BPCHECK_CLI, else the build tree's build/reports/bpcheck, else bpcheck on PATH."""
    for path in (given, os.environ.get("BPCHECK_CLI"),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "reports", "bpcheck")):
        if path and os.path.exists(path):
            return path
    return "bpcheck"


def compare(paths, precision, bpcheck=None, strict=False, json_out=None, allow_less_accurate=False):
    """Runs `bpcheck compare` on exported files; returns the completed process (stdout, stderr, returncode)."""
    cmd = [find_bpcheck(bpcheck), "compare", "--model", paths["model"], "--params", paths["params"],
           "--data", paths["data"], "--gradient", paths["gradient"], "--precision", precision]
    if precision in ("bf16", "fp16"):
        cmd += ["--accumulate", "float"]  # PyTorch's 16-bit matrix products sum in float (mixed precision)
    if strict:
        cmd.append("--strict")
    if allow_less_accurate:
        cmd.append("--allow-less-accurate")
    return run_bpcheck(cmd, json_out)


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
    for name in ("check", "export", "hvp"):
        p = sub.add_parser(name)
        p.add_argument("model_file")
        p.add_argument("--precision", choices=("float", "double") if name == "hvp" else tuple(DTYPES),
                       default="double")
        if name != "hvp":
            p.add_argument("--autocast", action="store_true",
                           help="float32 parameters and inputs, the forward under torch.autocast(dtype=the precision, "
                                "bf16 or fp16): PyTorch's mixed precision; the float32 gradient judged at its bound")
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
        p.add_argument("--out", help="folder for the documents (check, hvp: a temporary one by default)",
                       required=(name == "export"))
        if name == "hvp":
            p.add_argument("--seed", type=int, default=0, help="seed of the random vector V")
            p.add_argument("--json", help="also write compare's JSON to this file")
            p.add_argument("--bpcheck", help="the bpcheck program (default: $BPCHECK_CLI, build/reports/bpcheck, PATH)")
        if name == "check":
            p.add_argument("--strict", action="store_true", help="less accurate than the precision allows fails too")
            p.add_argument("--json", help="also write compare's JSON to this file")
            p.add_argument("--bpcheck", help="the bpcheck program (default: $BPCHECK_CLI, build/reports/bpcheck, PATH)")
    args = parser.parse_args(argv)
    if getattr(args, "autocast", False) and args.precision not in AUTOCAST:
        parser.error(f"--autocast computes in bf16 or fp16: give --precision bf16 (not {args.precision})")
    import bpcheck_torch  # the command is a thin layer over the test API; it imports this module back
    try:
        model, loss, batch = load_model_file(args.model_file)
        device = resolve_device(args.device)
        if args.command == "export":
            torch.set_num_threads(1)  # the same sums in the same order on every run
            print(json.dumps(export(model, loss, batch, args.out, args.precision, device, args.autocast)))
            return 0
        if args.command == "hvp":
            torch.set_num_threads(1)
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                paths = export_hvp(model, loss, batch, args.out or tmp, args.precision, device, args.seed)
                r = compare_hvp(paths, args.precision, args.bpcheck, args.json)
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
            return r.returncode
        r = bpcheck_torch.check_gradients(model, loss, batch, args.precision, args.bpcheck, args.strict, device,
                                          args.out, args.json, autocast=args.autocast)
    except Unmappable as e:
        print(f"torch_bridge: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"torch_bridge: error: {e}", file=sys.stderr)
        return 2
    print(r.report())
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
