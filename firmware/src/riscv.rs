//! RV32IMAC: entry point, stack pointer, and an instruction counter.
//!
//! `minstret` (read with `rdinstret`) counts retired instructions; under
//! `qemu-system-riscv32 -icount shift=0` QEMU derives it from the instruction count, so it
//! is exact and deterministic.

#[riscv_rt::entry]
fn main() -> ! {
    crate::finish(crate::run())
}

/// Instructions retired (low 32 bits; wraps).
#[inline(always)]
pub fn counter() -> u32 {
    let count: u32;
    // SAFETY: reads a counter CSR, always accessible in machine mode.
    unsafe { core::arch::asm!("rdinstret {}", out(reg) count, options(nomem, nostack)) };
    count
}

/// Elapsed counts between two [`counter`] readings.
#[inline(always)]
pub fn elapsed(start: u32, end: u32) -> u32 {
    end.wrapping_sub(start)
}

/// The stack pointer.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack)) };
    sp
}

/// Runs `iterations` iterations of a two-instruction loop.
#[inline(never)]
pub fn spin(iterations: u32) {
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!(
            "2:",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack)
        )
    };
}

/// The name printed in the log.
#[allow(dead_code)] // used by the print build only
pub const TARGET: &str = "riscv32imac-unknown-none-elf";
/// What one [`counter`] count is.
#[allow(dead_code)] // used by the print build only
pub const COUNTER: &str = "minstret";
