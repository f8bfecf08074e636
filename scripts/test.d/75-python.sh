# The Python package (pcnet-py/, import pc_kernels): clippy on its PyO3 module (the
# `python` feature, off in the workspace-wide steps), then the wheel built by maturin and
# installed into the venv .venv-py that scripts/install-deps makes, the import check of
# the README, and the pytest suite. That venv has no torch, so the torch API tests skip
# and say so; with torch and TORCH2PC set they compare with Torch2PC (pcnet-py/README.md).
set -euo pipefail
cargo clippy -p pcnet-py --features python --all-targets -- -D warnings
venv="$PWD/.venv-py"
# The maturin build backend runs the `maturin` program of the venv.
export PATH="$venv/bin:$PATH"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
    --force-reinstall --no-deps ./pcnet-py
"$venv/bin/python" -c "import pc_kernels; print('pc_kernels', pc_kernels.__version__)"
cd pcnet-py
"$venv/bin/python" -m pytest -q -rs -p no:cacheprovider tests
