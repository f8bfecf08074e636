# The main job on the bundled Torch2PC cases.
cargo run --release -p pcnet-bench -- reference tests/data/torch2pc
