"""The PyTorch bridge (tools/torch_bridge.py) through `bpcheck compare`: PyTorch's float64 and float32
gradients on every mappable module type pass in their precision; a custom autograd.Function with a
wrong backward is reported wrong with block and entry named; a gradient with one entry changed in its
4th digit is caught in double; modules without a bpcheck layer are refused by name.

  /usr/bin/python3 checks/torch_bridge_test.py [unittest arguments, e.g. Models.test_double]

Needs Debian's python3-torch (scripts/setup.sh installs it) and the bpcheck program in $BPCHECK_CLI
(CTest sets it). Without torch this fails at the import: the tests are never skipped.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from torch_runner import BPCHECK, HERE, MODELS, TOOLS, run_judged, tb, torch
from torch_bridge_models import linear_with_dx, with_derivative

nn = torch.nn


def run_compare(model, loss, batch, precision, tamper=None, strict=False):
    """Exports, optionally alters the gradient document, runs bpcheck compare: (exit code, JSON or None, stdout+stderr)."""
    return run_judged(lambda d: tb.export(model, loss, batch, d, precision),
                      lambda paths, out: tb.compare(paths, precision, BPCHECK, strict=strict, json_out=out),
                      "gradient", tamper)


class Models(unittest.TestCase):
    def setUp(self):
        self.assertTrue(BPCHECK and os.path.exists(BPCHECK), "BPCHECK_CLI must name the bpcheck program")

    def judge(self, precision, seeds):
        for name, make in MODELS.items():
            for seed in seeds:
                with self.subTest(model=name, seed=seed, precision=precision):
                    code, result, text = run_compare(*make(seed), precision)
                    self.assertIsNotNone(result, text)
                    # Never wrong on a correct model, in any precision.
                    self.assertFalse([b for b in result["blocks"] if b["verdict"] == "wrong"], text)
                    self.assertEqual(result["verdict"], "pass", text)
                    self.assertEqual(code, 0, text)
                    self.assertEqual(result["precision"], precision)

    def test_double(self):
        self.judge("double", [1])

    def test_float(self):
        # float32 on more draws than one: it must never be called wrong on a correct model.
        self.judge("float", [1, 2, 3])

    def test_every_mappable_module_type_is_covered(self):
        kinds = set()
        for make in MODELS.values():
            model, _, _ = make(1)
            kinds |= {type(m).__name__ for m in tb.leaves(model)}
        for expected in ("Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus", "GELU", "SiLU", "Mish", "ELU",
                         "Hardtanh", "Softmax", "LogSoftmax", "LayerNorm", "BatchNorm1d", "Conv1d", "Conv2d",
                         "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "Flatten", "Dropout", "Embedding",
                         "SelfAttention"):
            self.assertIn(expected, kinds)


# y = x Wᵀ + b with a backward that returns dX = dY Wᵀ instead of dY W (a transposed weight).
TransposedLinear = linear_with_dx("TransposedLinear", lambda dy, x, weight: dy @ weight.t())


# σ(x) with a backward that forgets the factor (1 − σ): dX = dY σ.
MissingFactorSigmoid = with_derivative("MissingFactorSigmoid", nn.Sigmoid, torch.sigmoid, lambda y: y)


def wrong_backward_models():
    torch.manual_seed(5)
    x = torch.rand((4, 5), dtype=torch.float64) * 2 - 1
    t = torch.tensor([0, 2, 1, 2])
    transposed = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), TransposedLinear(6, 6), nn.Tanh(), nn.Linear(6, 3))
    missing = nn.Sequential(nn.Linear(5, 6), MissingFactorSigmoid(), nn.Linear(6, 3))
    return {"transposed weight": (transposed, nn.CrossEntropyLoss(), (x, t)),
            "missing factor": (missing, nn.CrossEntropyLoss(), (x, t))}


class WrongBackward(unittest.TestCase):
    def test_wrong_backward_is_reported_wrong_with_block_and_entry(self):
        for what, (model, loss, batch) in wrong_backward_models().items():
            for precision in ("float", "double"):
                with self.subTest(what=what, precision=precision):
                    code, result, text = run_compare(model, loss, batch, precision)
                    self.assertEqual(code, 1, text)
                    self.assertEqual(result["verdict"], "wrong", text)
                    # The layers the wrong backward feeds (layer 0, before it) are wrong; the last layer is not.
                    verdicts = {(b["layer"], b["name"]): b["verdict"] for b in result["blocks"]}
                    self.assertEqual(verdicts[(0, "W")], "wrong", text)
                    last = max(layer for layer, _ in verdicts)
                    self.assertEqual(verdicts[(last, "W")], "pass", text)
                    self.assertEqual(result["worst"]["layer"], 0, text)
                    self.assertRegex(result["worst"]["where"], r"^[Wb]\[\d+(,\d+)?\]$")
                    self.assertRegex(text, r"worst entry: layer 0 \(dense\) [Wb]\[")
                    self.assertIn("WRONG", text)

    def test_check_command_round_trip(self):
        """`torch_bridge.py check model.py` on a file: exit 1 and the verdict printed for the wrong backward,
        exit 0 for the same model with PyTorch's own Linear."""
        with tempfile.TemporaryDirectory() as d:
            for wrong, expected in ((True, 1), (False, 0)):
                path = os.path.join(d, f"model_{wrong}.py")
                with open(path, "w") as f:
                    f.write(textwrap.dedent(f"""\
                        import sys
                        sys.path.insert(0, {HERE!r})
                        import torch
                        from torch_bridge_test import TransposedLinear
                        torch.manual_seed(3)
                        layer = TransposedLinear(4, 4) if {wrong} else torch.nn.Linear(4, 4)
                        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), layer)
                        loss = torch.nn.MSELoss()
                        batch = (torch.rand(5, 3, dtype=torch.float64), torch.rand(5, 4, dtype=torch.float64))
                        """))
                r = subprocess.run([sys.executable, os.path.join(TOOLS, "torch_bridge.py"), "check", path,
                                    "--precision", "float", "--bpcheck", BPCHECK], capture_output=True, text=True)
                self.assertEqual(r.returncode, expected, r.stdout + r.stderr)
                self.assertIn("verdict: " + ("WRONG" if wrong else "pass"), r.stdout)


def change_fourth_digit(text):
    """The decimal with its 4th significant digit moved by one (5 → 6, 9 → 8)."""
    mantissa, exponent = f"{float(text):.16e}".split("e")
    digits = list(mantissa)  # d.ddd…: the 4th significant digit is at index 4
    digits[4] = str(int(digits[4]) + 1) if digits[4] != "9" else "8"
    return "".join(digits) + "e" + exponent


class Tampered(unittest.TestCase):
    def test_one_entry_changed_in_its_fourth_digit_is_caught_in_double(self):
        for name in ("mlp_tanh", "conv2d_pools", "attention_layer_norm"):
            model, loss, batch = MODELS[name](1)
            # the entry: block 0, values[1][2] (a matrix block's row 1, column 2)

            def tamper(doc):
                entry = doc["gradients"][0]
                entry["values"][1][2] = change_fourth_digit(entry["values"][1][2])

            with self.subTest(model=name):
                code, result, text = run_compare(model, loss, batch, "double", tamper)
                self.assertNotEqual(result["verdict"], "pass", text)
                self.assertEqual(result["blocks"][0]["verdict"], result["verdict"], text)
                self.assertEqual(result["worst"]["layer"], 0, text)
                self.assertEqual((result["worst"]["row"], result["worst"]["col"]), (1, 2), text)
                self.assertTrue(all(b["verdict"] == "pass" for b in result["blocks"][1:]), text)
                # beyond the bound is a failure by default (no rounding of double explains it), and
                # still with --strict
                self.assertEqual(code, 1, text)
                code, _, text = run_compare(model, loss, batch, "double", tamper, strict=True)
                self.assertEqual(code, 1, text)

    def test_nan_in_pytorch_gradient_is_wrong_not_a_crash(self):
        model, loss, batch = MODELS["mlp_tanh"](1)

        def tamper(doc):
            doc["gradients"][1]["values"][2] = "nan"

        code, result, text = run_compare(model, loss, batch, "float", tamper)
        self.assertEqual(code, 1, text)
        self.assertEqual(result["blocks"][1]["verdict"], "wrong")
        self.assertEqual(result["worst"]["where"], "b[2]")


class Refusals(unittest.TestCase):
    def refused(self, model, loss, batch, *needles):
        with self.assertRaises(tb.Unmappable) as e:
            tb.describe(model, loss, batch, "double")
        for n in needles:
            self.assertIn(n, str(e.exception))

    def test_modules_without_a_bpcheck_layer_are_refused_by_name(self):
        x = torch.rand(4, 6, dtype=torch.float64)
        t = torch.tensor([0, 1, 2, 1])
        ce = nn.CrossEntropyLoss()
        self.refused(nn.Sequential(nn.Linear(6, 3), nn.Hardsigmoid()), ce, (x, t), "module '1' (Hardsigmoid)",
                     "no bpcheck layer")
        self.refused(nn.Sequential(nn.Linear(6, 3, bias=False)), ce, (x, t), "module '0' (Linear)", "bias=False")
        self.refused(nn.Sequential(nn.Linear(6, 3), nn.Dropout(0.2)).train(), ce, (x, t), "module '1' (Dropout)",
                     "model.eval()")
        self.refused(nn.Sequential(nn.Linear(6, 3)), nn.CrossEntropyLoss(label_smoothing=0.1), (x, t),
                     "label smoothing")
        self.refused(nn.Sequential(nn.Linear(6, 3)), nn.L1Loss(), (x, t.double()), "L1Loss")
        images = torch.rand(4, 2, 5, 5, dtype=torch.float64)
        self.refused(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(),
                                   nn.Linear(50, 3)), ce, (images, t), "module '0' (Conv2d)", "padding_mode")
        self.refused(nn.Sequential(nn.Conv2d(2, 2, 3), nn.Linear(3, 3)), ce, (images, t), "module '1' (Linear)",
                     "nn.Flatten()")
        seq = torch.rand(4, 3, 4, dtype=torch.float64)
        self.refused(nn.Sequential(nn.MultiheadAttention(4, 2, batch_first=True)), nn.MSELoss(),
                     (seq, torch.rand(4, 3, 4, dtype=torch.float64)), "MultiheadAttention", "SelfAttention")
        self.refused(nn.Sequential(nn.Flatten(), nn.Linear(12, 12), nn.LogSoftmax(dim=0)), nn.NLLLoss(),
                     (seq, t), "module '2' (LogSoftmax)", "dim=0")

    def test_check_command_refuses_with_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "glu.py")
            with open(path, "w") as f:
                f.write("import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GLU())\n"
                        "loss = torch.nn.MSELoss()\nbatch = (torch.rand(4, 3), torch.rand(4, 2))\n")
            r = subprocess.run([sys.executable, os.path.join(TOOLS, "torch_bridge.py"), "check", path,
                                "--bpcheck", BPCHECK], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("torch_bridge: error: module '1' (GLU): no bpcheck layer", r.stderr)


if __name__ == "__main__":
    unittest.main()
