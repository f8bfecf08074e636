"""Writes the safetensors files that pcnet-std/tests/safetensors_torch.rs reads.

A Torch2PC-style model (each PC layer one nested nn.Sequential):

    model = nn.Sequential(
        nn.Sequential(nn.Linear(4, 5), nn.Tanh()),
        nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
        nn.Sequential(nn.Linear(3, 2)),
    )

`torch_model.safetensors` holds its state_dict (`0.0.weight`, `0.0.bias`, `1.0.weight`, ...)
in float32, as `safetensors.torch.save_file(model.state_dict(), ...)` writes it, with
nn.Linear's initialisation (uniform in +-1/sqrt(fan_in)) from numpy's seeded generator.
`torch_expected.safetensors` holds a batch (inputs, class labels, one-hot targets) and the
gradients of the mean cross-entropy and of the mean squared error with respect to every
parameter, in float64, computed here by hand-written backpropagation with numpy from the
float32 parameters. When torch is installed the script also checks those gradients
against torch.autograd and says so; torch is not needed to regenerate the files.

Run from the repository root:  python3 pcnet-std/tests/data/make_torch_model.py
Needs: numpy, safetensors.
"""

import os

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTHS = [4, 5, 3, 2]
ACTIVATIONS = ["tanh", "relu", "identity"]
ROWS = 6

rng = np.random.default_rng(20220302)
params = {}
for layer, (fan_in, fan_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:])):
    bound = 1.0 / np.sqrt(fan_in)
    params[f"{layer}.0.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
    params[f"{layer}.0.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)

x = rng.normal(size=(ROWS, WIDTHS[0]))
labels = np.array([0, 1, 1, 0, 1, 0], dtype=np.int64)
onehot = np.eye(WIDTHS[-1])[labels]


def act(name, z):
    return {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "identity": lambda v: v}[name](z)


def act_grad(name, z):
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0.0).astype(np.float64)  # PyTorch: derivative 0 at 0
    return np.ones_like(z)


def gradients(loss):
    """Backpropagation in float64 from the float32 parameters."""
    values, pre = [x], []
    for layer, name in enumerate(ACTIVATIONS):
        w = params[f"{layer}.0.weight"].astype(np.float64)
        b = params[f"{layer}.0.bias"].astype(np.float64)
        z = values[-1] @ w.T + b
        pre.append(z)
        values.append(act(name, z))
    y = values[-1]
    if loss == "cross_entropy":
        shifted = y - y.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        delta = (p - onehot) / ROWS  # d mean(-log softmax[label]) / dy
    else:
        delta = 2.0 * (y - onehot) / y.size  # d mean((y - t)^2) / dy
    grads = {}
    for layer in reversed(range(len(ACTIVATIONS))):
        g = delta * act_grad(ACTIVATIONS[layer], pre[layer])
        grads[f"{loss}.{layer}.0.weight"] = g.T @ values[layer]
        grads[f"{loss}.{layer}.0.bias"] = g.sum(axis=0)
        delta = g @ params[f"{layer}.0.weight"].astype(np.float64)
    return grads


expected = {"inputs": x, "labels": labels, "onehot": onehot}
for loss in ["cross_entropy", "mse"]:
    expected.update(gradients(loss))

try:  # optional cross-check with PyTorch itself
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Sequential(nn.Linear(4, 5), nn.Tanh()),
        nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
        nn.Sequential(nn.Linear(3, 2)),
    ).double()
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in params.items()})
    for loss, fn, target in [
        ("cross_entropy", nn.CrossEntropyLoss(), torch.from_numpy(labels)),
        ("mse", nn.MSELoss(), torch.from_numpy(onehot)),
    ]:
        model.zero_grad()
        fn(model(torch.from_numpy(x)), target).backward()
        for name, p in model.named_parameters():
            assert np.allclose(p.grad.numpy(), expected[f"{loss}.{name}"], rtol=1e-12, atol=1e-15), name
    print("torch.autograd agrees with the numpy gradients")
except ImportError:
    print("torch not installed: gradients from the numpy backpropagation only")

save_file(params, os.path.join(HERE, "torch_model.safetensors"))
save_file(expected, os.path.join(HERE, "torch_expected.safetensors"))
print("wrote torch_model.safetensors and torch_expected.safetensors")
