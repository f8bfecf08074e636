//! The one timing loop of `pc-bench speed` and `pc-bench peak`: warm-up, then at least
//! `calls` timed calls and at least 0.5 s of them, each call timed on the wall clock, the
//! process's processor time measured over all of them.
//!
//! Processor time is `CLOCK_PROCESS_CPUTIME_ID` (through the `cpu-time` crate): every
//! thread of the process, user and system, in nanoseconds. On a machine shared with other
//! work it is the load-independent figure for one thread; wall-clock figures include time
//! spent waiting for a core.
//!
//! ```
//! let timing = pcnet_bench::timing::time_calls(30, || {
//!     std::hint::black_box((0..1000).sum::<u64>());
//!     Ok(())
//! })
//! .unwrap();
//! assert!(timing.calls >= 30 && timing.min_s <= timing.median_s);
//! ```

use cpu_time::ProcessTime;
use pcnet_core::PcError;
use std::time::{Duration, Instant};

/// Timings of one repeated call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Median seconds per call.
    pub median_s: f64,
    /// Fastest call, seconds.
    pub min_s: f64,
    /// Timed calls.
    pub calls: usize,
    /// Processor time of this process per timed call (all its threads, user and system);
    /// `None` where the platform has no process clock.
    pub cpu_mean_s: Option<f64>,
}

/// Times `call`: a warm-up of at least 3 calls and 0.2 s (buffers, thread pool, caches),
/// then at least `calls` calls and at least 0.5 s of them, at most 10 000 calls or 60 s
/// (whichever ends first once `calls` are done).
///
/// # Errors
/// The first error `call` returns.
pub fn time_calls(
    calls: usize,
    mut call: impl FnMut() -> Result<(), PcError>,
) -> Result<Timing, PcError> {
    let start = Instant::now();
    let mut warm = 0;
    while warm < 3 || (start.elapsed() < Duration::from_millis(200) && warm < 1000) {
        call()?;
        warm += 1;
    }
    let mut seconds = Vec::with_capacity(calls);
    let start = Instant::now();
    let cpu_start = ProcessTime::try_now().ok();
    while seconds.len() < calls
        || (start.elapsed() < Duration::from_millis(500)
            && seconds.len() < 10_000
            && start.elapsed() < Duration::from_secs(60))
    {
        let begin = Instant::now();
        call()?;
        seconds.push(begin.elapsed().as_secs_f64());
    }
    let cpu_mean_s = cpu_start
        .and_then(|begin| begin.try_elapsed().ok())
        .map(|cpu| cpu.as_secs_f64() / seconds.len() as f64);
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median_s = if seconds.len() % 2 == 1 {
        seconds[middle]
    } else {
        0.5 * (seconds[middle - 1] + seconds[middle])
    };
    Ok(Timing {
        median_s,
        min_s: seconds[0],
        calls: seconds.len(),
        cpu_mean_s,
    })
}
