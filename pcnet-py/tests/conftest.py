"""Shared by the test files: tests/ on sys.path (for `from conftest import ...`), and the
largest Torch2PC differences, printed at the end of the run."""

import sys
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

_WORST = {}


def record_difference(dtype, err_type, value):
    """Keeps the largest scaled difference seen for a dtype and algorithm."""
    key = (dtype, err_type)
    _WORST[key] = max(_WORST.get(key, 0.0), value)


def pytest_terminal_summary(terminalreporter):
    if not _WORST:
        return
    terminalreporter.section("largest differences from Torch2PC in float64 (max |a - Torch2PC| / max |Torch2PC| per tensor)")
    for (dtype, err_type), value in sorted(_WORST.items()):
        terminalreporter.write_line(f"{dtype:17} {err_type:10} {value:.3e}")
