"""A PyTorch model's gradient judged against bpcheck's 100-digit truth, from a test:

    import bpcheck_torch                      # with tools/ on sys.path

    def test_resnet_backward():
        r = bpcheck_torch.check_gradients(model, nn.CrossEntropyLoss(), (x, y), precision="float")
        assert r.passed, r.report()

check_hvp does the same for PyTorch's Hessian-vector product (double backward, create_graph=True) along
a vector V, judged by `bpcheck compare --hvp`:

        r = bpcheck_torch.check_hvp(model, nn.MSELoss(), (x, y), precision="double")
        assert r.passed, r.report()

check_gradients exports the model (any nn.Module torch.fx can trace; docs/compare.md lists what maps),
its loss and the batch through tools/torch_bridge.py, computes PyTorch's own gradient in the precision
(float32 or float64, bfloat16, or float32 under torch.autocast to bfloat16 with autocast=True) and lets
`bpcheck compare` judge every parameter block:

        r = bpcheck_torch.check_gradients(model, loss, batch, precision="bf16", autocast=True)
 The result names each
block by its PyTorch parameter name and its worst entry by PyTorch's index. A model that does not map
raises Unmappable (the graph node, its source line and the reason), a precision PyTorch cannot compute in
on the device (fp16 on the CPU) Unsupported, a subclass of it; a bpcheck that refuses the documents raises
RuntimeError with its message.
"""
import json
import os
import tempfile

import torch

import torch_bridge as tb

Unmappable = tb.Unmappable
Unsupported = tb.Unsupported

__all__ = ["check_gradients", "check_hvp", "GradientCheck", "HvpCheck", "BlockVerdict", "Unmappable", "Unsupported"]


UNITS = {"float": "float32", "double": "float64", "bf16": "bfloat16", "fp16": "float16"}


class BlockVerdict:
    """One parameter's verdict: `parameter` (PyTorch's name), `shape` (PyTorch's), `verdict` ("pass",
    "wrong", "less_accurate"), `digits`, `ratio` (largest error/bound), and the worst entry: `worst_index`
    (PyTorch's index), `worst_given`, `worst_exact`, `worst_error`, `worst_bound`. `layer`, `layer_type`
    and `block` say where bpcheck holds it."""

    def __init__(self, parameter, shape, entry):
        self.parameter, self.shape = parameter, tuple(shape)
        self.layer, self.layer_type, self.block = entry["layer"], entry["type"], entry["name"]
        self.verdict, self.digits, self.ratio = entry["verdict"], entry["digits"], entry["ratio"]
        self.bpcheck_shape = tuple(entry["shape"])
        worst = entry["worst"][0] if entry["worst"] else {}
        self.worst_index = self.torch_index(worst.get("row", 0), worst.get("col"))
        self.worst_given, self.worst_exact = worst.get("given"), worst.get("exact")
        self.worst_error, self.worst_bound = worst.get("abs_error"), worst.get("bound")

    def torch_index(self, row, col):
        """bpcheck's (row, col) of its layout (a matrix of rows, or a vector) as PyTorch's index."""
        cols = self.bpcheck_shape[1] if len(self.bpcheck_shape) == 2 else 1
        flat = row * cols + (col or 0)
        index = []
        for size in reversed(self.shape):
            index.append(flat % size)
            flat //= size
        return tuple(reversed(index))

    @property
    def worst_entry(self):
        return f"{self.parameter}[{','.join(str(i) for i in self.worst_index)}]"

    @property
    def passed(self):
        return self.verdict == "pass"

    def __repr__(self):
        return f"BlockVerdict({self.parameter!r}, {self.verdict!r}, worst {self.worst_entry})"


class GradientCheck:
    """What check_gradients found: `passed` (no block wrong; with strict, none less accurate either),
    `verdict`, `precision`, `autocast`, `blocks` (a BlockVerdict per parameter, in the model's order), `loss_exact`,
    `loss_given`, `json` (compare's document), `output` (compare's own table) and `report()`."""

    what = "gradient"
    less_accurate_note = " (a failure with strict)"

    def __init__(self, model_name, precision, strict, returncode, doc, names, shapes, output, autocast=False):
        self.model_name, self.precision, self.strict, self.autocast = model_name, precision, strict, autocast
        self.returncode, self.json, self.output = returncode, doc, output
        self.passed = returncode == 0
        self.verdict = doc["verdict"]
        self.loss_exact, self.loss_given = doc["loss"]["exact"], doc["loss"]["given"]
        self.blocks = [BlockVerdict(names[(b["layer"], b["name"])], shapes[(b["layer"], b["name"])], b)
                       for b in doc["blocks"]]

    def block(self, parameter):
        """The verdict of the PyTorch parameter of that name."""
        for b in self.blocks:
            if b.parameter == parameter:
                return b
        raise KeyError(f"{parameter}: no such parameter block (blocks: {', '.join(b.parameter for b in self.blocks)})")

    def failed(self):
        """The blocks that are not pass."""
        return [b for b in self.blocks if not b.passed]

    def report(self):
        """A table of every parameter's verdict, then the worst entries of the blocks that failed."""
        width = max([len("parameter")] + [len(b.parameter) for b in self.blocks])
        unit = UNITS[self.precision] if not self.autocast else f"float32 (autocast to {UNITS[self.precision]})"
        lines = [f"bpcheck: PyTorch's {unit} {self.what} of {self.model_name} ({len(self.blocks)} parameter blocks), "
                 f"against bpcheck's high-precision truth",
                 f"  {'parameter':<{width}}  {'shape':<14} {'verdict':<13} {'digits':>6} {'error/bound':>11}  "
                 "worst entry  (bpcheck block)"]
        for b in self.blocks:
            shape = "[" + ", ".join(str(s) for s in b.shape) + "]"
            verdict = b.verdict.upper() if b.verdict == "wrong" else b.verdict.replace("_", " ")
            digits = f"{b.digits:.1f}" if b.digits is not None else "-"
            ratio = f"{b.ratio:.3g}" if b.ratio is not None else "nan"
            lines.append(f"  {b.parameter:<{width}}  {shape:<14} {verdict:<13} {digits:>6} {ratio:>11}  "
                         f"{b.worst_entry}  (layer {b.layer} {b.layer_type} {b.block})")
        lines.append(f"bound per entry: {self.json['bound']['formula']}; u = {self.json['bound']['unit_roundoff']:.3g}")
        lines.append(f"loss: exact {self.loss_exact}, given {self.loss_given}")
        for b in self.failed():
            error = f"{b.worst_error:.3g}" if b.worst_error is not None else "not finite"
            bound = f"{b.worst_bound:.3g}" if b.worst_bound is not None else "-"
            lines.append(f"{b.parameter} is {b.verdict.replace('_', ' ')}: worst entry {b.worst_entry}: given "
                         f"{b.worst_given}, exact {b.worst_exact}, |error| {error}, bound {bound}")
        verdict = {"pass": "pass", "wrong": "WRONG", "less_accurate": "less accurate"}[self.verdict]
        lines.append(f"verdict: {verdict}" + ("" if self.passed or self.verdict != "less_accurate" else
                                              self.less_accurate_note))
        return "\n".join(lines)

    def __repr__(self):
        return f"{type(self).__name__}({self.model_name}, {self.precision}, {self.verdict})"


class HvpCheck(GradientCheck):
    """What check_hvp found, as GradientCheck: each block's verdict on H V. A less accurate block fails
    (compare --hvp without --allow-less-accurate)."""

    what = "Hessian-vector product"
    less_accurate_note = ""


def _names_and_shapes(described):
    """(layer, block) → PyTorch's parameter name, and → PyTorch's shape."""
    names, shapes = {}, {}
    for k, (blocks, torch_names) in enumerate(zip(described["blocks"], described["torch_names"])):
        for name, (p, _) in blocks.items():
            names[(k, name)] = torch_names[name]
            shapes[(k, name)] = tuple(p.shape)
    return names, shapes


def _judged(run, doc_path):
    """Runs compare (run()), returns (process, its JSON); RuntimeError when it judged nothing."""
    r = run()
    if r.returncode not in (0, 1) or not os.path.exists(doc_path):
        raise RuntimeError(f"bpcheck compare failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()}")
    with open(doc_path) as f:
        return r, json.load(f)


def check_gradients(model, loss, batch, precision="double", bpcheck=None, strict=False, device="cpu", out=None,
                    json_out=None, autocast=False):
    """PyTorch's gradient of loss(model(inputs), targets) in `precision` judged by `bpcheck compare`.
    precision: "float" or "double", or "bf16" (bfloat16 parameters and inputs); "fp16" where PyTorch
    has float16 kernels on the device (not on the CPU: Unsupported). autocast: float32 parameters and
    inputs, the forward under torch.autocast(dtype=precision), as mixed-precision training runs; the
    float32 gradient is judged at the 16-bit precision's bound. batch = (inputs, targets). bpcheck: the
    program (default: $BPCHECK_CLI, the build tree's build/reports/bpcheck, PATH). strict: a less
    accurate block fails too. out: a folder to keep the documents in; json_out: a file for compare's
    JSON. The model itself is not changed (a copy in the precision is exported and differentiated, on
    one CPU thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the same order on every run
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = out or tmp
            paths, described = tb.export_described(model, loss, batch, folder, precision, device, autocast)
            doc_path = json_out or os.path.join(tmp, "compare.json")
            r, doc = _judged(lambda: tb.compare(paths, precision, bpcheck, strict, doc_path), doc_path)
    finally:
        torch.set_num_threads(threads)
    names, shapes = _names_and_shapes(described)
    return GradientCheck(type(model).__name__, precision, strict, r.returncode, doc, names, shapes,
                         r.stdout + r.stderr, autocast)


def check_hvp(model, loss, batch, vector=None, precision="double", bpcheck=None, seed=0, device="cpu", out=None,
              json_out=None):
    """PyTorch's Hessian-vector product H V of loss(model(inputs), targets) with respect to the parameters
    (double backward) in `precision` ("float" or "double"), judged by `bpcheck compare --hvp` against the
    mp100 H V. vector: V as {parameter name: tensor} for every parameter (model.named_parameters()), or
    None for V uniform in [−1, 1] from `seed`; V is rounded to the precision, and the documents hold
    exactly the V PyTorch used. Otherwise as check_gradients (a less accurate block fails)."""
    if precision not in ("float", "double"):
        raise ValueError(f"precision {precision!r}: 'float' or 'double'")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = out or tmp
            described = tb.describe(model, loss, batch, precision, device)
            names, shapes = _names_and_shapes(described)
            vectors = None
            if vector is not None:
                vectors = {}
                for (k, block), torch_name in names.items():
                    p = described["blocks"][k][block][0]
                    if torch_name not in vector:
                        raise ValueError(f"vector: no tensor for parameter {torch_name!r}")
                    v = torch.as_tensor(vector[torch_name])
                    if tuple(v.shape) != tuple(p.shape):
                        raise ValueError(f"vector: {torch_name!r} has shape {tuple(v.shape)}, the parameter "
                                         f"{tuple(p.shape)}")
                    vectors[id(p)] = v.to(device=p.device, dtype=p.dtype)
                unknown = sorted(set(vector) - set(names.values()))
                if unknown:
                    raise ValueError(f"vector: {', '.join(unknown)}: no such parameter")
            vector_doc, hvp_doc = tb.torch_hvp(loss, described, precision, seed, vectors)
            paths = tb.write_documents(folder, described, vector=vector_doc, hvp=hvp_doc)
            doc_path = json_out or os.path.join(tmp, "compare.json")
            r, doc = _judged(lambda: tb.compare_hvp(paths, precision, bpcheck, doc_path), doc_path)
    finally:
        torch.set_num_threads(threads)
    return HvpCheck(type(model).__name__, precision, True, r.returncode, doc, names, shapes, r.stdout + r.stderr)
