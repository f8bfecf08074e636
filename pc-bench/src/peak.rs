//! `pc-bench peak`: the f32 GFLOP/s of the project's own matrix product
//! ([`pcnet_std::fast::Fast::gemm`]) on 1024 x 1024 x 1024, on one thread and on all threads
//! (row blocks of the output, one `gemm` call each, spread over a rayon pool), timed by
//! [`crate::timing::time_calls`], on one kernel family ([`pcnet_std::fast::Isa`]: `--isa`,
//! else `PC_ISA`, else the best detected) or, with `--isa all`, on each family this
//! processor runs; each line names its family.

use crate::timing::{time_calls, Timing};
use crate::Error;
use pcnet_core::PcError;
use pcnet_std::{
    fast::{Accumulate, Fast, Isa, MatMut, MatRef},
    rng::SplitMix64,
};
use rayon::prelude::*;

/// Size of the `peak` product.
const PEAK_SIZE: usize = 1024;

/// Times `C = A B` (f32, `PEAK_SIZE` cubed) on `fast`'s kernels on `threads` threads;
/// returns GFLOP/s of the median call.
fn peak_gflops(fast: Fast, threads: usize) -> Result<(f64, Timing), Error> {
    let n = PEAK_SIZE;
    let mut rng = SplitMix64::new(1);
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let mut c = vec![0.0_f32; n * n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| Error::Usage(format!("peak: no thread pool: {error}")))?;
    // Rows of C in as many blocks as threads (rounded to 16 rows).
    let block_rows = n.div_ceil(threads).div_ceil(16) * 16;
    let rhs = MatRef::row_major(&b, n, n).map_err(Error::pc("peak"))?;
    let timing = time_calls(30, || {
        let product = |(index, block): (usize, &mut [f32])| -> Result<(), PcError> {
            let rows = block.len() / n;
            let lhs = MatRef::row_major(&a[index * block_rows * n..], rows, n)?;
            fast.gemm(
                MatMut::row_major(block, rows, n)?,
                lhs,
                rhs,
                Accumulate::Overwrite,
            )
        };
        if threads == 1 {
            product((0, &mut c))
        } else {
            pool.install(|| {
                c.par_chunks_mut(block_rows * n)
                    .enumerate()
                    .map(product)
                    .collect::<Result<(), PcError>>()
            })
        }
    })
    .map_err(Error::pc("peak"))?;
    let flops = 2.0 * (n * n * n) as f64;
    Ok((flops / timing.median_s / 1e9, timing))
}

/// The kernel families `peak` runs for `--isa`: a family's name, `all` (every family this
/// processor runs), or none (the process's family: `PC_ISA`, else the best detected).
///
/// # Errors
/// [`Error::Usage`] naming `--isa` for an unknown family or one this processor lacks.
pub fn peak_families(isa: Option<&str>) -> Result<Vec<Fast>, Error> {
    let usage = |error: pcnet_std::Error| Error::Usage(format!("--isa: {error}"));
    match isa {
        None => Ok(vec![Fast::new().map_err(usage)?]),
        Some("all") => Isa::available()
            .iter()
            .map(|&isa| Fast::with_isa(isa).map_err(usage))
            .collect(),
        Some(name) => {
            let isa: Isa = name
                .parse()
                .map_err(|error| Error::Usage(format!("--isa: {error}")))?;
            Ok(vec![Fast::with_isa(isa).map_err(usage)?])
        }
    }
}

/// Runs `pc-bench peak`: prints, for each family of `--isa` ([`peak_families`]), the f32
/// GFLOP/s of pc's matrix product on one thread and on all available threads, as one JSON
/// object per line if `json`.
///
/// # Errors
/// [`Error::Usage`] for a bad `--isa` or when no thread pool starts, [`Error::Pc`] if a
/// product fails.
pub fn peak(isa: Option<&str>, json: bool) -> Result<(), Error> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flops = 2.0 * (PEAK_SIZE * PEAK_SIZE * PEAK_SIZE) as f64;
    let families = peak_families(isa)?;
    if !json {
        println!("pc peak: f32 {PEAK_SIZE} x {PEAK_SIZE} x {PEAK_SIZE} matrix product (pcnet_std::fast::Fast::gemm)");
    }
    for fast in families {
        let family = fast.isa();
        let (one, one_timing) = peak_gflops(fast, 1)?;
        let (many, many_timing) = peak_gflops(fast, all)?;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "size": PEAK_SIZE,
                    "dtype": "f32",
                    "isa": family.name(),
                    "gflops_1_thread": one,
                    "median_s_1_thread": one_timing.median_s,
                    "min_s_1_thread": one_timing.min_s,
                    "cpu_mean_s_1_thread": one_timing.cpu_mean_s,
                    "gflops_1_thread_per_cpu_second": one_timing.cpu_mean_s.map(|cpu| flops / cpu / 1e9),
                    "threads": all,
                    "gflops_all_threads": many,
                    "median_s_all_threads": many_timing.median_s,
                    "min_s_all_threads": many_timing.min_s,
                })
            );
            continue;
        }
        println!("  {family} kernels:");
        println!(
            "    1 thread:   {one:.1} GFLOP/s (median {:.3e} s)",
            one_timing.median_s
        );
        if let Some(cpu) = one_timing.cpu_mean_s {
            println!(
                "                {:.1} GFLOP/s per processor second ({cpu:.3e} s per call)",
                flops / cpu / 1e9
            );
        }
        println!(
            "    {all} threads:  {many:.1} GFLOP/s (median {:.3e} s; fastest calls {:.2}x one thread)",
            many_timing.median_s,
            one_timing.min_s / many_timing.min_s
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_flag_chooses_the_families() {
        let names = |isa| -> Vec<Isa> {
            peak_families(isa)
                .unwrap()
                .iter()
                .map(|fast| fast.isa())
                .collect()
        };
        assert_eq!(names(Some("all")), Isa::available());
        assert_eq!(names(Some("portable")), [Isa::Portable]);
        let unknown = peak_families(Some("sse2")).unwrap_err().to_string();
        assert!(
            unknown.contains("--isa") && unknown.contains("sse2"),
            "{unknown}"
        );
        for isa in Isa::ALL.into_iter().filter(|isa| !isa.is_available()) {
            assert!(peak_families(Some(isa.name())).is_err(), "{isa}");
        }
    }
}
