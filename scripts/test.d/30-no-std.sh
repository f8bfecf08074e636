# pcnet-core builds for a Cortex-M4F with no default features: no std, no allocator.
cargo build -p pcnet-core --no-default-features --target thumbv7em-none-eabihf
# ... and with all of them (convolution and pooling, step-size estimation, every algorithm).
cargo build -p pcnet-core --target thumbv7em-none-eabihf
# Its dependency tree for that target holds nothing that links std.
if cargo tree -p pcnet-core --no-default-features --target thumbv7em-none-eabihf -e normal --prefix none | grep -Ei '^(std|alloc) '; then
    echo "pcnet-core's dependency tree pulls in std or alloc" >&2
    exit 1
fi
# With its features off pcnet-core is lint-clean and passes its own tests: what a build lacks
# is a typed error (pcnet-core/tests/features.rs), and the tests of the missing parts are compiled
# out. `strict` alone is what the firmware's Strict budget build uses (tests/firmware).
for features in "" strict; do
    cargo clippy -q -p pcnet-core --no-default-features --features "$features" --all-targets -- -D warnings
    cargo test -q -p pcnet-core --no-default-features --features "$features"
done
