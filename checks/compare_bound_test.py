"""`bpcheck compare`'s bound and verdict on PyTorch gradients (through tools/torch_bridge.py):

- wrong backward formulas that keep a few digits (a gelu derivative from the tanh approximation, a layer
  norm backward without eps, a float32 derivative inside a float64 model) fail by default, and the output
  says which precision the gradient is consistent with; --allow-less-accurate makes them advice;
- gradients whose exact value is 0 because terms cancel (a Linear or Conv bias before a training-mode
  BatchNorm1d) pass in float32 and float64, with the bound taken from the terms, in the normwise mode of
  large models too, and a residue a hundred times larger fails;
- below a training-mode BatchNorm1d on 2 samples, whose backward leaves eps/(2 var) of its terms,
  PyTorch's float32 rounding of those terms passes (the bound carries them to the layers below), and
  the first bias off by half its value fails;
- on a 784-256-64-10 MLP PyTorch's float32 gradient passes within 100x of its bound (its worst block;
  the worst-case bound was 1e4x away), the first layer's within 500x, and a weight block scaled by
  1.001, or by 1 + 1e-4, is caught.

  /usr/bin/python3 checks/compare_bound_test.py [unittest arguments]

Needs Debian's python3-torch and the bpcheck program in $BPCHECK_CLI (CTest sets it).
"""
import unittest

from torch_runner import BPCHECK, run_judged, tb, torch
from torch_bridge_models import batch_norm_train, random_batch, spread_biases, with_derivative

nn = torch.nn
F = nn.functional


class TanhDerivativeGeluFunction(torch.autograd.Function):
    """Exact gelu forward; backward from the tanh approximation's derivative (3 correct digits)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.gelu(x)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xx = x.detach().requires_grad_()
            (d,) = torch.autograd.grad(F.gelu(xx, approximate="tanh").sum(), xx)
        return dy * d


class TanhDerivativeGELU(nn.GELU):
    def forward(self, x):
        return TanhDerivativeGeluFunction.apply(x)


class NoEpsLayerNormFunction(torch.autograd.Function):
    """layer_norm with eps forward; a backward that normalises by √var instead of √(var + eps)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        ctx.save_for_backward(x, weight)
        return F.layer_norm(x, x.shape[1:], weight, bias, eps)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        mean = x.mean(1, keepdim=True)
        sigma = ((x - mean) ** 2).mean(1, keepdim=True).sqrt()  # eps forgotten
        xhat = (x - mean) / sigma
        dxhat = dy * weight
        dx = (dxhat - dxhat.mean(1, keepdim=True) - xhat * (dxhat * xhat).mean(1, keepdim=True)) / sigma
        return dx, (dy * xhat).sum(0), dy.sum(0), None


class NoEpsLayerNorm(nn.LayerNorm):
    def forward(self, x):
        return NoEpsLayerNormFunction.apply(x, self.weight, self.bias, self.eps)


# tanh whose derivative 1 − y² is computed in float32, inside a float64 model.
Float32Tanh = with_derivative("Float32Tanh", nn.Tanh, torch.tanh, lambda y: (1 - y.float() ** 2).to(y.dtype))


def classes_batch(seed, n, shape, classes):
    return random_batch(seed, n, shape, classes=classes)


def run(model, loss, batch, precision, tamper=None, allow_less_accurate=False):
    """Export, optionally alter the gradient document, run bpcheck compare: (exit code, JSON, output)."""
    return run_judged(lambda d: tb.export(model, loss, batch, d, precision),
                      lambda paths, out: tb.compare(paths, precision, BPCHECK, json_out=out,
                                                    allow_less_accurate=allow_less_accurate),
                      "gradient", tamper)


def block(result, layer, name):
    return next(b for b in result["blocks"] if b["layer"] == layer and b["name"] == name)


class LessAccurateFails(unittest.TestCase):
    """Formulas that are wrong by a few digits are not rounding: exit 1 by default, with the reason."""

    def cases(self):
        x, t = classes_batch(4, 6, (5,), 3)
        torch.manual_seed(4)
        gelu = spread_biases(nn.Sequential(nn.Linear(5, 8), TanhDerivativeGELU(), nn.Linear(8, 3)), 4)
        torch.manual_seed(5)
        ln = spread_biases(nn.Sequential(nn.Linear(5, 8), NoEpsLayerNorm(8), nn.Tanh(), nn.Linear(8, 3)), 5)
        torch.manual_seed(6)
        f32 = spread_biases(nn.Sequential(nn.Linear(5, 8), Float32Tanh(), nn.Linear(8, 3)), 6)
        return {"tanh-approximation gelu derivative": (gelu, nn.CrossEntropyLoss(), (x, t), None),
                "layer norm backward without eps": (ln, nn.CrossEntropyLoss(), (x, t), None),
                "float32 derivative in a float64 model": (f32, nn.CrossEntropyLoss(), (x, t), "float")}

    def test_wrong_by_a_few_digits_fails_in_double_and_names_the_precision(self):
        for what, (model, loss, batch, consistent) in self.cases().items():
            with self.subTest(what=what):
                code, result, text = run(model, loss, batch, "double")
                self.assertEqual(code, 1, text)
                self.assertNotEqual(result["verdict"], "pass", text)
                first = block(result, 0, "W")
                self.assertNotEqual(first["verdict"], "pass", text)
                self.assertEqual(first["consistent_with"], consistent, text)
                if consistent == "float":
                    self.assertIn("as accurate as float: a float32 path inside a double model?", text)
                else:
                    self.assertIn("no rounding in float or double explains it", text)
                # --allow-less-accurate turns a less accurate (not wrong) verdict into advice.
                code, result, text = run(model, loss, batch, "double", allow_less_accurate=True)
                self.assertEqual(code, 1 if result["verdict"] == "wrong" else 0, text)
                self.assertFalse(result["passed"] and result["verdict"] == "wrong", text)

    def test_the_same_models_with_pytorch_own_modules_pass(self):
        for what, (model, loss, batch, _) in self.cases().items():
            plain = nn.Sequential(*[nn.GELU() if isinstance(m, nn.GELU) else
                                    nn.LayerNorm(m.normalized_shape) if isinstance(m, nn.LayerNorm) else
                                    nn.Tanh() if isinstance(m, nn.Tanh) else m for m in model])
            for m, p in zip(plain, model):
                if isinstance(m, nn.LayerNorm):
                    m.load_state_dict(p.state_dict())
            for precision in ("float", "double"):
                with self.subTest(what=what, precision=precision):
                    code, result, text = run(plain, loss, batch, precision)
                    self.assertEqual((code, result["verdict"]), (0, "pass"), text)


def bias_before_batch_norm_models(seed):
    """Models whose first bias has the exact gradient 0 (a training-mode BatchNorm1d removes it), large
    enough for the normwise bound (their absolute Jacobians hold more than a million entries)."""
    torch.manual_seed(seed)
    dense = spread_biases(nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.Tanh(), nn.Linear(64, 4)),
                          seed).train()
    torch.manual_seed(seed)
    conv = spread_biases(nn.Sequential(nn.Conv1d(4, 8, 3), nn.Flatten(), nn.BatchNorm1d(240), nn.Linear(240, 3)),
                         seed).train()
    return {"linear, batch norm": (dense, nn.CrossEntropyLoss(), classes_batch(seed, 16, (64,), 4)),
            "conv1d, batch norm": (conv, nn.CrossEntropyLoss(), classes_batch(seed, 8, (4, 32), 3))}


class StructuralZeros(unittest.TestCase):
    def test_residue_of_cancelled_terms_passes_and_a_larger_one_fails(self):
        for what, (model, loss, batch) in bias_before_batch_norm_models(3).items():
            for precision in ("float", "double"):
                with self.subTest(what=what, precision=precision):
                    code, result, text = run(model, loss, batch, precision)
                    self.assertIn("normwise", text)
                    bias = block(result, 0, "b")
                    self.assertTrue(bias["exact_zero"], text)
                    self.assertEqual((code, result["verdict"]), (0, "pass"), text)
                    # PyTorch leaves a residue (not an exact 0), and it is bounded by the terms' size.
                    self.assertGreater(bias["max_abs_error"], 0, text)
                    bound = bias["worst"][0]["bound"]
                    self.assertGreater(bound, 1e-12 if precision == "float" else 1e-20, text)

                    def tamper(doc):
                        doc["gradients"][1]["values"][0] = repr(100 * bound)

                    code, result, text = run(model, loss, batch, precision, tamper)
                    self.assertEqual(code, 1, text)
                    self.assertNotEqual(block(result, 0, "b")["verdict"], "pass", text)


class TwoSampleBatchNorm(unittest.TestCase):
    def test_float32_residue_of_the_cancelling_backward_passes_and_half_more_fails(self):
        for seed in (1, 6):  # once false alarms: the first bias at 3.2 and 4.5 times the bound
            model, loss, (x, t) = batch_norm_train(seed)
            with self.subTest(seed=seed):
                code, result, text = run(model, loss, (x[:2], t[:2]), "float")
                self.assertEqual((code, result["verdict"]), (0, "pass"), text)
                bias = block(result, 0, "b")
                # PyTorch keeps about 3 digits there, and the bound is still within 1000x of its error
                self.assertLess(bias["digits"], 4, text)
                self.assertGreater(bias["ratio"], 1e-3, text)

                def tamper(doc):
                    doc["gradients"][1]["values"] = [repr(float(v) * 1.5) for v in doc["gradients"][1]["values"]]

                code, result, text = run(model, loss, (x[:2], t[:2]), "float", tamper)
                self.assertEqual(code, 1, text)
                self.assertNotEqual(block(result, 0, "b")["verdict"], "pass", text)


def mnist_mlp(seed):
    """The 784-256-64-10 MLP (SiLU, LayerNorm, ELU, log-softmax and NLL) on 16 samples."""
    torch.manual_seed(seed)
    model = spread_biases(nn.Sequential(nn.Linear(784, 256), nn.SiLU(), nn.LayerNorm(256), nn.Linear(256, 64),
                                        nn.ELU(), nn.Linear(64, 10), nn.LogSoftmax(dim=1)), seed)
    g = torch.Generator().manual_seed(seed + 1000)
    return model, nn.NLLLoss(), (torch.rand((16, 784), dtype=torch.float64, generator=g),
                                 torch.randint(0, 10, (16,), generator=g))


class Sharp(unittest.TestCase):
    def test_float32_mlp_passes_within_100x_and_a_scaled_block_is_caught(self):
        model, loss, batch = mnist_mlp(1)
        code, result, text = run(model, loss, batch, "float")
        self.assertEqual((code, result["verdict"]), (0, "pass"), text)
        worst = max(b["ratio"] for b in result["blocks"])
        self.assertGreater(worst, 1 / 100, text)
        # n counts the sums backprop forms (368 for the first layer), not every width twice (2632)
        self.assertLess(result["bound"]["n"], 400, text)
        self.assertGreater(block(result, 0, "W")["ratio"], 1 / 500, text)
        for factor in (1.001, 1.0001):
            def scale(doc):
                doc["gradients"][4]["values"] = [[repr(float(v) * factor) for v in row]
                                                 for row in doc["gradients"][4]["values"]]

            code, result, text = run(model, loss, batch, "float", scale)
            self.assertEqual(code, 1, text)
            self.assertNotEqual(block(result, 3, "W")["verdict"], "pass", text)


if __name__ == "__main__":
    unittest.main()
