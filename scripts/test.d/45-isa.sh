#!/usr/bin/env bash
# The fast kernels' tests once per kernel family (pcnet_std::fast::Isa) this machine runs,
# each under PC_ISA=<family>, so that the tests that use the default family
# (Fast::default, BatchRunner::new, the packed-weights backend, predict) run on every
# family too; the kernel, determinism and no-allocation tests also enumerate the
# families themselves when PC_ISA is unset (40-test.sh). A family this processor (or
# build) lacks is printed as skipped, by name. Then the fast_kernels fuzz target, briefly,
# per family, when cargo-fuzz and a nightly toolchain are installed (85-fuzz.sh runs every
# target at length on the default family). PC_ISA_FUZZ_RUNS sets its executions (2000).
set -euo pipefail
available=$(cargo run -q -p pcnet-std --example isa | grep -v '^default ')
echo "kernel families on this machine: $(echo $available)"
tests=(--test fast_kernels --test fast_conv --test batch_runner --test no_alloc
    --test packed --test predict)
for isa in portable avx2 avx512; do
    if ! grep -qx "$isa" <<<"$available"; then
        echo "isa $isa: skipped (this processor or build has no $isa kernels)"
        continue
    fi
    echo "isa $isa: pcnet-std kernel tests"
    PC_ISA=$isa cargo test -q -p pcnet-std --lib "${tests[@]}"
done
if cargo +nightly fuzz --version >/dev/null 2>&1; then
    runs="${PC_ISA_FUZZ_RUNS:-2000}"
    (cd fuzz && cargo +nightly fuzz build fast_kernels)
    for isa in $available; do
        mkdir -p fuzz/runs/fast_kernels-$isa
        rm -f fuzz/runs/fast_kernels-"$isa"/*
        (cd fuzz && PC_ISA=$isa cargo +nightly fuzz run fast_kernels "runs/fast_kernels-$isa" \
            corpus/fast_kernels -- -seed=20221128 -runs="$runs" -max_total_time=60 \
            -timeout=10 -rss_limit_mb=2048 >"runs/fast_kernels-$isa.log" 2>&1) || {
            tail -n 40 "fuzz/runs/fast_kernels-$isa.log"
            echo "isa $isa: fuzz fast_kernels FAILED"
            exit 1
        }
        echo "isa $isa: fuzz fast_kernels ok ($runs executions)"
    done
else
    echo "isa: fuzz fast_kernels per family skipped (no cargo +nightly fuzz)"
fi
