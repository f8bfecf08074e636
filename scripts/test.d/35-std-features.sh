# pcnet-std's integrations are optional (default-on features nalgebra, safetensors,
# progress, gzip; rayon is not optional): with none of them it builds, is lint-clean and
# passes its unit and integration tests (the tests of the missing parts are compiled out;
# the doctests assume the defaults, so they run in 40-test.sh). Each feature alone checks.
set -euo pipefail
cargo clippy -q -p pcnet-std --no-default-features --lib --tests -- -D warnings
cargo test -q -p pcnet-std --no-default-features --lib --tests
for feature in nalgebra safetensors progress gzip; do
    cargo clippy -q -p pcnet-std --no-default-features --features "$feature" --lib --tests -- -D warnings
done
