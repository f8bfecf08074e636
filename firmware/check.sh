#!/usr/bin/env bash
# Builds the firmware for a Cortex-M4F and a RV32IMAC, runs both under QEMU, checks each
# learned and agrees with the host, and measures the budgets. Run from anywhere:
#   firmware/check.sh            # what CI runs
#   firmware/check.sh budget     # the budget builds and code-size report only
# Needs: rustup targets thumbv7em-none-eabihf and riscv32imac-unknown-none-elf, the
# llvm-tools component, qemu-system-arm and qemu-system-misc (scripts/install-deps).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${FIRMWARE_TARGET_DIR:-$PWD/target}"
logs="$CARGO_TARGET_DIR/firmware-logs"
mkdir -p "$logs"
host=$(rustc -vV | sed -n 's/^host: //p')
tools="$(rustc --print sysroot)/lib/rustlib/$host/bin"
arm=thumbv7em-none-eabihf
riscv=riscv32imac-unknown-none-elf
# -icount shift=0: one instruction per virtual nanosecond, so the instruction counts the
# firmware prints are exact and the same on every run.
arm_qemu=(qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic
    -semihosting-config enable=on,target=native -icount shift=0 -kernel)
riscv_qemu=(qemu-system-riscv32 -machine virt -bios none -nographic
    -semihosting-config enable=on,target=native -icount shift=0 -kernel)

run() { # run NAME TIMEOUT QEMU... ELF: runs one image, keeps its log, fails on a non-zero exit
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS status=0
    timeout "$limit" "$@" >"$logs/$name.log" 2>&1 || status=$?
    grep -v '^loss ' "$logs/$name.log" || true
    echo "$name: exit $status after $((SECONDS - start)) s (log: $logs/$name.log)"
    return "$status"
}

# Issue 7's target: one learning step of the 16-32-32-4 tanh network with one algorithm and
# SGD links at most 12 KiB of code (Strict 12 240 B, FixedPred 12 054 B; see README.md).
CODE_LIMIT=12288

budget_one() { # budget_one ALGORITHM: the budget image that trains with ALGORITHM only
    local algorithm=$1
    # Without printing (no formatting code), optimised for size, one algorithm: the budget.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo build -q --release --target "$arm" \
        --no-default-features --features "$algorithm"
    local elf="$logs/pc-firmware-budget-$algorithm-$arm.elf"
    cp "$CARGO_TARGET_DIR/$arm/release/pc-firmware" "$elf"
    # exit 0: learned, agreed with the host, stack within the 2 KiB target
    run "budget-$algorithm-$arm" 60 "${arm_qemu[@]}" "$elf"
    "$tools/llvm-size" -A "$elf" | grep -E '^(section|\.text|\.rodata|\.data|\.bss|\.vector_table)'
    if ! command -v python3 >/dev/null; then
        echo "python3 is needed to check the learning step's code size (budget.py)" >&2
        return 1
    fi
    python3 budget.py --limit "$CODE_LIMIT" "$tools/llvm-objdump" "$elf" pc_firmware_task::learning_step
}

budget() {
    budget_one strict
    budget_one fixed-pred
}

if [[ "${1:-}" == budget ]]; then
    budget
    exit 0
fi

cargo build -q --release --target "$arm"
cargo build -q --release --target "$riscv"
run "$arm" 120 "${arm_qemu[@]}" "$CARGO_TARGET_DIR/$arm/release/pc-firmware"
run "$riscv" 240 "${riscv_qemu[@]}" "$CARGO_TARGET_DIR/$riscv/release/pc-firmware"
# The host runs the same training code and compares every epoch's loss with both logs.
cargo run -q --release -p pc-firmware-task --bin compare -- "$logs/$arm.log" "$logs/$riscv.log"
# f32 multiply-adds on the M4F are single vmla.f32 instructions, never calls to fmaf.
dis=$("$tools/llvm-objdump" -d --no-show-raw-insn "$CARGO_TARGET_DIR/$arm/release/pc-firmware")
vmla=$(grep -c $'\tvmla.f32' <<<"$dis" || true)
fma_calls=$(grep -cE 'bl.*<fmaf' <<<"$dis" || true)
echo "Cortex-M4F image: $vmla vmla.f32 instructions, $fma_calls calls to fmaf"
if [[ "$vmla" -eq 0 || "$fma_calls" -ne 0 ]]; then
    echo "portable kernels do not compile to vmla.f32" >&2
    exit 1
fi
budget
