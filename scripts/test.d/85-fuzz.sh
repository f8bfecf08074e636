#!/usr/bin/env bash
# Every cargo-fuzz target (fuzz/fuzz_targets) runs on nightly from its committed seed
# corpus (fuzz/corpus/<target>), two targets at a time, for a fixed number of executions
# with a fixed seed: the same commit explores the same inputs on every run, so this gate
# cannot pass on one run and fail on the next. (Exploratory campaigns with fresh seeds
# are run by hand, `scripts/fuzz-campaign`; what they find joins the corpus with its fix.)
# Any panic, crash, sanitizer report, leak, input slower than 10 s or heavier than 2 GB
# fails the step; libFuzzer writes the input to fuzz/artifacts/<target>/.
# (The stable replay of the corpora is part of `cargo test`: tests/tests/fuzz_corpus.rs.)
#
# Executions per target are sized for about 40 s each on the 2-core CI machine;
# PC_FUZZ_SCALE multiplies them (e.g. PC_FUZZ_SCALE=0.1 for a quick look), PC_FUZZ_SEED
# changes the seed. A wall-clock cap of 150 s per target keeps a slower machine in budget.
set -euo pipefail
scale="${PC_FUZZ_SCALE:-1}"
seed="${PC_FUZZ_SEED:-20221128}"
declare -A executions=(
    [csv]=1200000 [fast_kernels]=50000 [idx]=300000
    [model_bytes]=800000 [network]=180000 [reference_json]=1000000
)
cd fuzz
cargo +nightly fuzz build
run() {
    local target=$1 dict=() runs
    [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
    runs=$(awk -v n="${executions[$target]:-100000}" -v s="$scale" 'BEGIN { printf "%d", n * s }')
    mkdir -p "runs/$target"
    rm -f runs/"$target"/*
    cargo +nightly fuzz run "$target" "runs/$target" "corpus/$target" -- \
        -seed="$seed" -runs="$runs" -max_total_time=150 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]}" >"runs/$target.log" 2>&1
}
targets=($(cargo +nightly fuzz list))
failed=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for target in "${targets[@]:i:2}"; do
        run "$target" &
        pids+=("$!:$target")
    done
    for entry in "${pids[@]}"; do
        if wait "${entry%%:*}"; then
            status=ok
        else
            status=FAILED
            failed=1
            tail -n 40 "runs/${entry#*:}.log"
        fi
        log="runs/${entry#*:}.log"
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
        time=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -Eo '[0-9]+ second' || echo "? second")
        echo "fuzz ${entry#*:}: $status, $runs executions (seed $seed) in ${time}s"
    done
done
exit "$failed"
