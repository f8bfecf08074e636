//! Cortex-M4F: entry point, stack pointer, and an instruction counter.
//!
//! Under `qemu-system-arm -icount shift=0` every instruction advances the virtual clock by
//! 1 ns, and SysTick (on the core clock) counts that clock down at the board's 25 MHz, so
//! one tick is a fixed number of instructions; [`crate::calibrate`] measures that number
//! with a loop of known length instead of assuming it.

use core::ptr::{read_volatile, write_volatile};

const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;
const SYST_MASK: u32 = 0x00FF_FFFF;

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: SysTick's registers exist on every Cortex-M; nothing else uses SysTick.
    unsafe {
        write_volatile(SYST_RVR, SYST_MASK);
        write_volatile(SYST_CVR, 0);
        write_volatile(SYST_CSR, 0b101); // core clock, no interrupt, enabled
    }
    crate::finish(crate::run())
}

/// A free-running counter that goes up (SysTick counts down; 24 bits, wraps).
#[inline(always)]
pub fn counter() -> u32 {
    // SAFETY: a read of SysTick's current value register.
    SYST_MASK - unsafe { read_volatile(SYST_CVR) }
}

/// Elapsed counts between two [`counter`] readings (one wrap at most).
#[inline(always)]
pub fn elapsed(start: u32, end: u32) -> u32 {
    end.wrapping_sub(start) & SYST_MASK
}

/// The stack pointer.
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    sp
}

/// Runs `iterations` iterations of a two-instruction loop.
#[inline(never)]
pub fn spin(iterations: u32) {
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack)
        )
    };
}

/// The name printed in the log.
#[allow(dead_code)] // used by the print build only
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// What one [`counter`] count is.
#[allow(dead_code)] // used by the print build only
pub const COUNTER: &str = "SysTick ticks";
