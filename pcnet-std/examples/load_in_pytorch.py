"""Loads the weights `train_digits` saved into PyTorch and checks PyTorch computes the same.

    cargo run -p pcnet-std --release --example train_digits -- /tmp/pcnet-digits
    python3 pcnet-std/examples/load_in_pytorch.py /tmp/pcnet-digits

Needs torch; reads the files with the `safetensors` package when it is installed, and with
the few lines below otherwise (a safetensors file is an 8-byte little-endian header length,
a JSON header naming each tensor's dtype, shape and byte range, then the bytes). Not run in
CI, which has no torch.
"""

import json
import sys
from pathlib import Path

import torch
from torch import nn


def read_safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError:
        raw = Path(path).read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + header_len])
        data = raw[8 + header_len :]
        dtypes = {"F32": torch.float32, "F64": torch.float64}
        return {
            name: torch.frombuffer(bytearray(data[start:end]), dtype=dtypes[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items()
            if name != "__metadata__"
            for start, end in [info["data_offsets"]]
        }
    return load_file(path)


directory = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pcnet-digits")
# The network of train_digits, module for module: layer l is `model[l - 1]`, a Sequential
# of its ops, so the state_dict names are "0.0.weight", "0.0.bias", "1.0.weight", ...
model = nn.Sequential(
    nn.Sequential(nn.Linear(64, 32), nn.ReLU()),
    nn.Sequential(nn.Linear(32, 10)),
)
model.load_state_dict(read_safetensors(directory / "digits.safetensors"))
check = read_safetensors(directory / "digits_check.safetensors")
with torch.no_grad():
    outputs = model(check["inputs"])
difference = (outputs - check["outputs"]).abs().max().item()
same_classes = bool((outputs.argmax(1) == check["outputs"].argmax(1)).all())
print(f"{len(outputs)} test digits: largest |torch - pcnet| = {difference:.2e}, same classes: {same_classes}")
# f32 sums of at most 64 products of values below about 10 in another order: well under 1e-4.
assert difference < 1e-4 and same_classes
