RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
