#!/usr/bin/env bash
# Every cargo-fuzz target (fuzz/fuzz_targets) runs for PC_FUZZ_SECONDS seconds (default 60)
# on nightly, starting from its committed seed corpus (fuzz/corpus/<target>), two targets
# at a time. Any panic, crash, sanitizer report, leak, input slower than 10 s or heavier
# than 2 GB fails the step; libFuzzer writes the input to fuzz/artifacts/<target>/.
# (The stable replay of the corpora is part of `cargo test`: tests/tests/fuzz_corpus.rs.)
set -euo pipefail
seconds="${PC_FUZZ_SECONDS:-60}"
cd fuzz
cargo +nightly fuzz build
run() {
    local target=$1 dict=()
    [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
    mkdir -p "runs/$target"
    cargo +nightly fuzz run "$target" "runs/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
        >"runs/$target.log" 2>&1
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
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "runs/${entry#*:}.log" | grep -Eo '[0-9]+$' || echo "?")
        echo "fuzz ${entry#*:}: $status, $runs executions in ${seconds} s"
    done
done
exit "$failed"
