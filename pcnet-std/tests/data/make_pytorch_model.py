"""Writes the PyTorch-made safetensors files that pcnet-std/tests/safetensors_torch.rs reads.

Unlike make_torch_model.py (numpy only), this script needs PyTorch: the model is a real
Torch2PC-style nn.Sequential with PyTorch's own nn.Linear initialisation from
torch.manual_seed, its state_dict written by safetensors.torch.save_file, and the expected
gradients are what loss.backward() writes into .grad (float64 copy of the same model).

    model = nn.Sequential(
        nn.Sequential(nn.Linear(4, 5), nn.Tanh()),
        nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
        nn.Sequential(nn.Linear(3, 2)),
    )

Run from the repository root (needs torch, safetensors):
    python3 pcnet-std/tests/data/make_pytorch_model.py
"""

import os

import torch
from safetensors.torch import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = 6

torch.manual_seed(2022)
model = nn.Sequential(
    nn.Sequential(nn.Linear(4, 5), nn.Tanh()),
    nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
    nn.Sequential(nn.Linear(3, 2)),
)
inputs = torch.randn(ROWS, 4, dtype=torch.float64)
labels = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.int64)
onehot = nn.functional.one_hot(labels, 2).to(torch.float64)

expected = {"inputs": inputs, "labels": labels, "onehot": onehot}
double = nn.Sequential(
    nn.Sequential(nn.Linear(4, 5), nn.Tanh()),
    nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
    nn.Sequential(nn.Linear(3, 2)),
).double()
double.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
for name, loss_fn, target in [
    ("cross_entropy", nn.CrossEntropyLoss(), labels),
    ("mse", nn.MSELoss(), onehot),
]:
    double.zero_grad()
    loss_fn(double(inputs), target).backward()
    for parameter_name, parameter in double.named_parameters():
        expected[f"{name}.{parameter_name}"] = parameter.grad.detach().clone()

save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(HERE, "pytorch_model.safetensors"))
save_file(expected, os.path.join(HERE, "pytorch_expected.safetensors"))
print(f"torch {torch.__version__}: wrote pytorch_model.safetensors and pytorch_expected.safetensors")
