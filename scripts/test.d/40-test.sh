cargo test --workspace
