# Formatting is checked, not fixed.
cargo fmt --all --check
