"""The README's examples run as written: the numpy one everywhere, the first-screen torch
one where torch imports (skipped, by name, elsewhere)."""

import pathlib
import re

import pytest

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_readme_has_both_examples():
    assert len(BLOCKS) == 2 and "PCInfer" in BLOCKS[0] and "pc_kernels.infer" in BLOCKS[1]


def test_first_screen_example_trains_a_torch_model():
    torch = pytest.importorskip("torch", reason="torch is not installed: the README's torch example is skipped")
    lines = BLOCKS[0].strip().splitlines()
    assert len(lines) == 5
    namespace = {}
    torch.manual_seed(0)
    exec(BLOCKS[0], namespace)
    chance = torch.log(torch.tensor(10.0)).item()  # the loss of a uniform guess
    print("README example: loss after 50 Strict steps", namespace["Loss"].item())
    assert namespace["Loss"].item() < 0.5 * chance


def test_numpy_example_runs():
    namespace = {}
    exec(BLOCKS[1], namespace)
    assert 0 < namespace["step"] < 2
    assert namespace["result"].report.iterations == 20
