#!/usr/bin/env bash
# Line coverage of pcnet-core by its own unit and integration tests (pcnet-core/tests;
# cargo-llvm-cov; doc examples are not counted), one line per file in the CI output;
# fails below PC_COVERAGE_MIN percent (90).
set -euo pipefail
cargo llvm-cov --package pcnet-core --lib --tests --summary-only \
    --fail-under-lines "${PC_COVERAGE_MIN:-90}"
