# Every example runs (each is a real task and checks its own result; seconds each).
# `load_in_pytorch.py`, beside train_digits, needs torch, which CI does not have: it is
# run by hand (see its docstring).
set -euo pipefail
cargo run -q -p pcnet-core --example firmware_static
cargo run -q -p pcnet-core --no-default-features --features strict --example firmware_static
cargo run -q -p pcnet-core --example custom_backend
cargo run -q -p pcnet-core --features proptest-support --example property_test
output=$(mktemp -d)
trap 'rm -rf "$output"' EXIT
cargo run -q -p pcnet-std --example isa
cargo run -q -p pcnet-std --example train_digits -- "$output"
for file in digits.safetensors digits_check.safetensors; do
    test -s "$output/$file" || { echo "train_digits wrote no $file" >&2; exit 1; }
done
# Every example file has a line above (a new example must be added here).
for example in pcnet-core/examples/*.rs pcnet-std/examples/*.rs; do
    name=$(basename "$example" .rs)
    grep -q -- "--example $name\b" "$0" || { echo "$example is not run by $0" >&2; exit 1; }
done
