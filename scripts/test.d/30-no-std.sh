# pc-core builds for a Cortex-M4F with no default features: no std, no allocator.
cargo build -p pc-core --no-default-features --target thumbv7em-none-eabihf
# Its dependency tree for that target holds nothing that links std.
if cargo tree -p pc-core --no-default-features --target thumbv7em-none-eabihf -e normal --prefix none | grep -Ei '^(std|alloc) '; then
    echo "pc-core's dependency tree pulls in std or alloc" >&2
    exit 1
fi
