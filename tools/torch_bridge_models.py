"""Test models for the PyTorch bridge: every module type tools/torch_bridge.py maps, each with a loss and a
batch, and what the bridge's tests build their own models from. Shared by checks/*_test.py and
bench/torch_accuracy.py.

  MODELS[name](seed) -> (model, loss, batch)     batch = (inputs, targets), float64 inputs
  random_batch, spread_biases                    the data and parameters MODELS draw
  SignFlippedTanh                                a wrong backward: nn.Tanh whose derivative is −(1 − y²)
  with_derivative, linear_with_dx                an activation, a Linear, with another backward
"""
import warnings

import torch

from torch_bridge import SelfAttention

nn = torch.nn
# KLDivLoss's reduction='mean' is what bpcheck's kl_div computes; PyTorch warns that it is not 'batchmean'.
warnings.filterwarnings("ignore", message="reduction: 'mean' divides")


def random_batch(seed, batch, shape, classes=None, outputs=None, probabilities=False):
    """(inputs uniform in ±1 of shape (batch, *shape), targets): class indices below `classes`, or
    (batch, outputs) values in [0, 1), or probabilities; float64, drawn from seed + 1000."""
    g = torch.Generator().manual_seed(seed + 1000)
    x = 2 * torch.rand((batch, *shape), dtype=torch.float64, generator=g) - 1
    if classes is not None:
        t = torch.randint(0, classes, (batch,), generator=g)
    elif probabilities:
        t = torch.softmax(torch.randn((batch, outputs), dtype=torch.float64, generator=g), dim=1)
    else:
        t = torch.rand((batch, outputs), dtype=torch.float64, generator=g)
    return x, t


def spread_biases(model, seed):
    """Biases, norm weights and attention biases away from PyTorch's constant start, and BatchNorm2d's
    running statistics away from 0 and 1, so no block is trivial."""
    g = torch.Generator().manual_seed(seed + 2000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or (name.endswith("weight") and p.dim() == 1):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.4 * (torch.rand(p.shape, dtype=p.dtype, generator=g) - 0.5))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


def with_derivative(name, base, forward, derivative):
    """A subclass of the activation module `base` (so the bridge maps it as base) whose forward is
    forward(x) and whose backward, a custom autograd.Function, returns dY · derivative(y), y the output:
    a wrong derivative for the tests to catch."""

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = forward(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, dy):
            (y,) = ctx.saved_tensors
            return dy * derivative(y)

    def module_forward(self, x):
        return Function.apply(x)

    Function.__name__ = Function.__qualname__ = name + "Function"
    return type(name, (base,), {"forward": module_forward, "__module__": __name__})


def linear_with_dx(name, dx):
    """A subclass of nn.Linear whose backward, a custom autograd.Function, returns dX = dx(dY, X, W) beside
    the right dW and db: a wrong input gradient for the tests to catch."""

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight)
            return x @ weight.t() + bias

        @staticmethod
        def backward(ctx, dy):
            x, weight = ctx.saved_tensors
            return dx(dy, x, weight), dy.t() @ x, dy.sum(0)

    def module_forward(self, x):
        return Function.apply(x, self.weight, self.bias)

    Function.__name__ = Function.__qualname__ = name + "Function"
    return type(name, (nn.Linear,), {"forward": module_forward, "__module__": __name__})


# tanh whose backward has its sign flipped: −(1 − y²).
SignFlippedTanh = with_derivative("SignFlippedTanh", nn.Tanh, torch.tanh, lambda y: -(1 - y * y))


def mlp_tanh(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    return spread_biases(m, seed), nn.CrossEntropyLoss(), random_batch(seed, 5, (6,), classes=4)


def relu_leaky_sigmoid(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 6), nn.LeakyReLU(0.1), nn.Linear(6, 6), nn.Sigmoid(),
                      nn.Linear(6, 3))
    return spread_biases(m, seed), nn.MSELoss(), random_batch(seed, 4, (5,), outputs=3)


def gelu_silu_mish(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.GELU(), nn.Linear(6, 6), nn.GELU(approximate="tanh"), nn.Linear(6, 6),
                      nn.SiLU(), nn.Linear(6, 6), nn.Mish(), nn.Linear(6, 2))
    return spread_biases(m, seed), nn.BCEWithLogitsLoss(), random_batch(seed, 4, (5,), outputs=2)


def hardswish_mlp(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 6), nn.Hardswish(), nn.Linear(6, 6), nn.Hardswish(), nn.Linear(6, 3))
    return spread_biases(m, seed), nn.MSELoss(), random_batch(seed, 4, (4,), outputs=3)


def elu_hardtanh_softplus(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 6), nn.ELU(0.7), nn.Linear(6, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 6),
                      nn.Softplus(), nn.Linear(6, 3))
    return spread_biases(m, seed), nn.HuberLoss(delta=0.5), random_batch(seed, 4, (4,), outputs=3)


def log_softmax_kl(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4), nn.LogSoftmax(dim=1))
    return spread_biases(m, seed), nn.KLDivLoss(reduction="mean"), random_batch(seed, 4, (5,), outputs=4,
                                                                                probabilities=True)


def softmax_mse(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.Sigmoid(), nn.Linear(6, 4), nn.Softmax(dim=1))
    return spread_biases(m, seed), nn.MSELoss(), random_batch(seed, 4, (5,), outputs=4)


def log_softmax_nll(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3), nn.LogSoftmax(dim=-1))
    return spread_biases(m, seed), nn.NLLLoss(), random_batch(seed, 5, (5,), classes=3)


def layer_norm_dropout(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 3))
    return spread_biases(m, seed).eval(), nn.CrossEntropyLoss(), random_batch(seed, 4, (6,), classes=3)


def batch_norm_train(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.BatchNorm1d(6), nn.Linear(6, 3))
    return spread_biases(m, seed).train(), nn.CrossEntropyLoss(), random_batch(seed, 6, (5,), classes=3)


def batch_norm_eval(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    g = torch.Generator().manual_seed(seed + 3000)
    with torch.no_grad():
        m[1].running_mean.copy_(0.2 * torch.randn(6, dtype=torch.float64, generator=g))
        m[1].running_var.copy_(0.5 + torch.rand(6, dtype=torch.float64, generator=g))
    return spread_biases(m, seed).eval(), nn.MSELoss(), random_batch(seed, 4, (5,), outputs=2)


def conv1d_pools(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(3, 4, 2, dilation=2),
                      nn.Tanh(), nn.AvgPool1d(3, stride=1, padding=1), nn.Flatten(), nn.Linear(12, 3))
    return spread_biases(m, seed), nn.CrossEntropyLoss(), random_batch(seed, 4, (2, 10), classes=3)


def conv2d_pools(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 2, stride=(1, 1)),
                      nn.SiLU(), nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(3, 2))
    return spread_biases(m, seed), nn.MSELoss(), random_batch(seed, 3, (1, 6, 7), outputs=2)


def embedding_attention(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Embedding(10, 4), SelfAttention(4, 2, causal=True), nn.Flatten(), nn.Linear(12, 3))
    m = spread_biases(m, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randint(0, 10, (4, 3), generator=g)
    t = torch.randint(0, 3, (4,), generator=g)
    return m, nn.CrossEntropyLoss(), (x, t)


def attention_layer_norm(seed):
    torch.manual_seed(seed)
    m = nn.Sequential(SelfAttention(4, 2), nn.LayerNorm((3, 4)), nn.Flatten(), nn.Linear(12, 2))
    return spread_biases(m, seed), nn.MSELoss(), random_batch(seed, 3, (3, 4), outputs=2)


MODELS = {f.__name__: f for f in (mlp_tanh, relu_leaky_sigmoid, gelu_silu_mish, elu_hardtanh_softplus, hardswish_mlp,
                                  log_softmax_kl, softmax_mse, log_softmax_nll, layer_norm_dropout, batch_norm_train,
                                  batch_norm_eval, conv1d_pools, conv2d_pools, embedding_attention,
                                  attention_layer_norm)}
