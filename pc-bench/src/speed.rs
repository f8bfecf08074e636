//! `pc-bench speed` and `pc-bench peak`: wall-clock timings of pc's fast paths.
//!
//! `speed` times one PCInfer-equivalent call (forward pass, relaxation, parameter updates;
//! no optimizer step) through [`pcnet_std::batch::BatchRunner`] on the fast kernels, for a
//! configuration given by flags, and reports the median and minimum over at least 30
//! timed calls after warm-up.
//!
//! **Useful GFLOP/s** counts `2 * batch * in * out` for every matrix product the
//! algorithm *as specified* needs, with the input clamped (so layer 1's input
//! vector-Jacobian product and, for Strict, layer 1's prediction are never needed), and
//! without crediting the signal-front shortcut (work the specification does and pc skips
//! because it would produce exact zeros is still counted). With `P_l = 2 B in_l out_l`
//! and `S = sum_l P_l`:
//!
//! * exact (backprop): forward `S`, input VJPs of layers 2..L, parameter VJPs `S`:
//!   `3 S - P_1`;
//! * fixed-pred, `n` iterations: `S + n (S - P_1) + S`;
//! * strict, `n` iterations: `S + n (2 (S - P_1)) + S` (each iteration the input VJPs of
//!   layers 2..L and the predictions of layers 2..L at the moved beliefs).
//!
//! `peak` times the project's own f32 matrix product ([`pcnet_std::fast::Fast::gemm`]) on
//! 1024 x 1024 x 1024, on one thread and on all threads (row blocks of the output, one
//! `gemm` call each, spread over a rayon pool), on one kernel family
//! ([`pcnet_std::fast::Isa`]: `--isa`, else `PC_ISA`, else the best detected) or, with
//! `--isa all`, on each family this processor runs. Both subcommands name the family
//! they ran (`speed` runs the process's family: `PC_ISA`, else the best detected).

use pcnet_core::{
    Activation, Algorithm, Batch, Layer, Loss, NetworkSpec, PcError, Scalar, Settings, Targets,
};
use pcnet_std::{
    batch::{BatchRunner, Par},
    fast::{Accumulate, Fast, Isa, MatMut, MatRef},
};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Usage text of the two subcommands.
pub const USAGE: &str =
    "  speed [flags]   time one PCInfer-equivalent call (forward, relaxation, updates)
                  --model 784-256-256-10  dense widths, input first, or a named model:
                                          paper-mnist-cnn, paper-cifar-cnn (--n L = depth)
                  --hidden relu|tanh|sigmoid|leaky_relu|softplus|identity (output: identity)
                  --loss cross-entropy|mse   --algorithm exact|fixed-pred|strict
                  --eta 0.1  --n 20  --batch 64  --threads 1  --dtype f32|f64
                  --calls 30 (timed calls, at least 30)  --json (one JSON object)
                  (the kernel family: PC_ISA=portable|avx2|avx512, else the best detected)
  peak [--isa portable|avx2|avx512|all] [--json]
                  f32 GFLOP/s of pc's own matrix product on 1024 x 1024 x 1024,
                  one thread and all threads, per kernel family (all: every family
                  this processor runs; default PC_ISA, else the best detected)";

/// A `speed` configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeedConfig {
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Hidden-layer activation (the output layer is the identity).
    pub hidden: Activation,
    /// The loss.
    pub loss: Loss,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Step size.
    pub eta: f64,
    /// Iterations.
    pub n: usize,
    /// Rows per call.
    pub batch: usize,
    /// Threads (1 = on the calling thread).
    pub threads: usize,
    /// `true` for f64.
    pub f64: bool,
    /// Timed calls (at least 30).
    pub calls: usize,
    /// Print JSON.
    pub json: bool,
}

impl Default for SpeedConfig {
    fn default() -> Self {
        SpeedConfig {
            widths: vec![784, 256, 256, 10],
            hidden: Activation::Relu,
            loss: Loss::CrossEntropy,
            algorithm: Algorithm::FixedPred,
            eta: 0.1,
            n: 20,
            batch: 64,
            threads: 1,
            f64: false,
            calls: 30,
            json: false,
        }
    }
}

/// Timings of one configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Median seconds per call.
    pub median_s: f64,
    /// Fastest call, seconds.
    pub min_s: f64,
    /// Timed calls.
    pub calls: usize,
    /// Processor time of this process per timed call (all its threads, user and
    /// system), from `/proc/self/stat` in 10 ms ticks over all timed calls; `None` where
    /// that file does not exist. On a machine shared with other work this is the
    /// load-independent figure for one thread; wall-clock figures include time spent
    /// waiting for a core.
    pub cpu_mean_s: Option<f64>,
}

/// User plus system processor time of this process so far, in seconds (Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration this runs on.
    Some((utime + stime) / 100.0)
}

fn value<'a>(args: &'a [String], index: &mut usize, flag: &str) -> Result<&'a str, String> {
    *index += 1;
    args.get(*index)
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn number<N: std::str::FromStr>(text: &str, flag: &str) -> Result<N, String> {
    text.parse()
        .map_err(|_| format!("{flag}: cannot read `{text}`"))
}

/// Parses the flags of `speed`.
///
/// # Errors
/// A message naming the flag that is unknown, missing its value or malformed.
pub fn parse_speed(args: &[String]) -> Result<SpeedConfig, String> {
    let mut config = SpeedConfig::default();
    let mut index = 0;
    while index < args.len() {
        let flag = args[index].as_str();
        match flag {
            "--model" => {
                config.widths = value(args, &mut index, flag)?
                    .split(['-', 'x', ','])
                    .map(|w| number(w, flag))
                    .collect::<Result<_, _>>()?;
                if config.widths.len() < 2 || config.widths.contains(&0) {
                    return Err("--model needs at least two nonzero widths, e.g. 784-256-10".into());
                }
            }
            "--hidden" => {
                let name = value(args, &mut index, flag)?;
                config.hidden = Activation::from_name(name)
                    .ok_or_else(|| format!("--hidden: unknown activation `{name}`"))?;
            }
            "--loss" => {
                let name = value(args, &mut index, flag)?;
                config.loss = match name {
                    "cross-entropy" | "cross_entropy" | "ce" => Loss::CrossEntropy,
                    "mse" => Loss::Mse,
                    _ => return Err(format!("--loss: unknown loss `{name}`")),
                };
            }
            "--algorithm" => {
                let name = value(args, &mut index, flag)?;
                config.algorithm = Algorithm::from_name(name)
                    .ok_or_else(|| format!("--algorithm: unknown algorithm `{name}`"))?;
            }
            "--eta" => config.eta = number(value(args, &mut index, flag)?, flag)?,
            "--n" => config.n = number(value(args, &mut index, flag)?, flag)?,
            "--batch" => config.batch = number(value(args, &mut index, flag)?, flag)?,
            "--threads" => config.threads = number(value(args, &mut index, flag)?, flag)?,
            "--calls" => config.calls = number(value(args, &mut index, flag)?, flag)?,
            "--dtype" => {
                config.f64 = match value(args, &mut index, flag)? {
                    "f32" => false,
                    "f64" => true,
                    other => return Err(format!("--dtype: `{other}` is not f32 or f64")),
                }
            }
            "--json" => config.json = true,
            _ => return Err(format!("speed: unknown flag `{flag}`")),
        }
        index += 1;
    }
    if config.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    config.calls = config.calls.max(30);
    Ok(config)
}

/// Useful floating-point operations of one call (see the module documentation).
pub fn useful_flops(config: &SpeedConfig) -> f64 {
    let products: Vec<f64> = config
        .widths
        .windows(2)
        .map(|w| 2.0 * config.batch as f64 * w[0] as f64 * w[1] as f64)
        .collect();
    let all: f64 = products.iter().sum();
    let above_first = all - products[0];
    let n = config.n as f64;
    match config.algorithm {
        Algorithm::Exact => 3.0 * all - products[0],
        Algorithm::FixedPred => all + n * above_first + all,
        Algorithm::Strict => all + n * 2.0 * above_first + all,
    }
}

/// Uniform pseudo-random numbers in `[-1, 1)` (SplitMix64), reproducible from a seed.
fn uniform(seed: u64, len: usize) -> impl Iterator<Item = f64> {
    let mut state = seed;
    (0..len).map(move |_| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    })
}

fn time_calls(
    calls: usize,
    mut call: impl FnMut() -> Result<(), PcError>,
) -> Result<Timing, PcError> {
    // Warm-up: buffers, thread pool, caches; at least 3 calls and 0.2 s.
    let start = Instant::now();
    let mut warm = 0;
    while warm < 3 || (start.elapsed() < Duration::from_millis(200) && warm < 1000) {
        call()?;
        warm += 1;
    }
    let mut seconds = Vec::with_capacity(calls);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let cpu_elapsed = || match (cpu_start, cpu_seconds()) {
        (Some(begin), Some(now)) => now - begin,
        _ => f64::INFINITY,
    };
    // At least `calls` calls, and at least 0.5 s of them, wall-clock and processor time
    // (so the 10 ms processor-time ticks resolve the mean to 2%); at most 10 000 calls
    // or 60 s.
    while seconds.len() < calls
        || ((start.elapsed() < Duration::from_millis(500) || cpu_elapsed() < 0.5)
            && seconds.len() < 10_000
            && start.elapsed() < Duration::from_secs(60))
    {
        let begin = Instant::now();
        call()?;
        seconds.push(begin.elapsed().as_secs_f64());
    }
    let cpu_total = cpu_elapsed();
    let cpu_mean_s = cpu_total
        .is_finite()
        .then(|| cpu_total / seconds.len() as f64);
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

fn run_speed<T: Scalar>(fast: Fast, config: &SpeedConfig) -> Result<Timing, PcError>
where
    Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let depth = config.widths.len() - 1;
    let layers: Vec<Layer> = config
        .widths
        .windows(2)
        .enumerate()
        .map(|(l, w)| {
            let activation = if l + 1 == depth {
                Activation::Identity
            } else {
                config.hidden
            };
            Layer::dense(w[0], w[1], activation)
        })
        .collect();
    let spec = NetworkSpec::new(&layers, config.loss);
    // PyTorch's nn.Linear initialisation scale: uniform(-1/sqrt(in), 1/sqrt(in)).
    let mut params = Vec::with_capacity(spec.parameter_len());
    for (l, w) in config.widths.windows(2).enumerate() {
        let bound = 1.0 / (w[0] as f64).sqrt();
        let count = w[0] * w[1] + w[1];
        params.extend(uniform(l as u64 + 1, count).map(|u| T::from_f64(u * bound)));
    }
    let (input_width, output_width) = (config.widths[0], config.widths[depth]);
    let inputs: Vec<T> = uniform(100, config.batch * input_width)
        .map(|u| T::from_f64(0.5 * (u + 1.0)))
        .collect();
    let classes: Vec<usize> = (0..config.batch).map(|r| (r * 7) % output_width).collect();
    let values: Vec<T> = uniform(200, config.batch * output_width)
        .map(T::from_f64)
        .collect();
    let targets = match config.loss {
        Loss::CrossEntropy => Targets::Classes(&classes),
        _ => Targets::Values(&values),
    };
    let batch = Batch::new(&inputs, targets);
    let eta = T::from_f64(config.eta);
    let settings = match config.algorithm {
        Algorithm::Exact => Settings::exact(),
        Algorithm::FixedPred => Settings::fixed_pred(eta, config.n),
        Algorithm::Strict => Settings::strict(eta, config.n),
    };
    let par = if config.threads <= 1 {
        Par::Seq
    } else {
        Par::Rayon(config.threads)
    };
    let mut runner = BatchRunner::<T>::with_backend(fast);
    time_calls(config.calls, || {
        runner
            .run(par, &spec, &params, batch, &settings)
            .map(|outcome| {
                std::hint::black_box(outcome.loss());
            })
    })
}

/// Runs `pc-bench speed` with the given flags; prints the result.
///
/// # Errors
/// A message for bad flags or a failed relaxation.
pub fn speed(args: &[String]) -> Result<(), String> {
    // Named models (paper-mnist-cnn, paper-cifar-cnn) are run by `models`.
    if let Some(result) = crate::models::speed_named(args) {
        return result;
    }
    let config = parse_speed(args)?;
    let fast = Fast::new().map_err(|error| format!("speed: {error}"))?;
    let timing = if config.f64 {
        run_speed::<f64>(fast, &config)
    } else {
        run_speed::<f32>(fast, &config)
    }
    .map_err(|error| format!("speed: {error}"))?;
    let flops = useful_flops(&config);
    let samples_per_s = config.batch as f64 / timing.median_s;
    let gflops = flops / timing.median_s / 1e9;
    let model = config
        .widths
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("-");
    if config.json {
        let object = serde_json::json!({
            "implementation": "pc",
            "model": model,
            "hidden": config.hidden.name(),
            "loss": config.loss.name(),
            "algorithm": config.algorithm.name(),
            "eta": config.eta,
            "n": config.n,
            "batch": config.batch,
            "threads": config.threads,
            "dtype": if config.f64 { "f64" } else { "f32" },
            "isa": fast.isa().name(),
            "calls": timing.calls,
            "median_s": timing.median_s,
            "min_s": timing.min_s,
            "samples_per_s": samples_per_s,
            "gflops": gflops,
            "cpu_mean_s": timing.cpu_mean_s,
        });
        println!("{object}");
    } else {
        println!(
            "pc speed: {model} {} {} {} eta {} n {} batch {} threads {} {} ({} kernels)",
            config.hidden.name(),
            config.loss.name(),
            config.algorithm.name(),
            config.eta,
            config.n,
            config.batch,
            config.threads,
            if config.f64 { "f64" } else { "f32" },
            fast.isa()
        );
        println!(
            "  median {:.3e} s  min {:.3e} s  ({} calls)  {:.0} samples/s  {:.1} useful GFLOP/s",
            timing.median_s, timing.min_s, timing.calls, samples_per_s, gflops
        );
        if let Some(cpu) = timing.cpu_mean_s {
            println!(
                "  processor time per call {cpu:.3e} s ({:.1} useful GFLOP/s per processor second)",
                flops / cpu / 1e9
            );
        }
    }
    Ok(())
}

/// Size of the `peak` product.
const PEAK_SIZE: usize = 1024;

/// Times `C = A B` (f32, `PEAK_SIZE` cubed) on `fast`'s kernels on `threads` threads;
/// returns GFLOP/s of the median call.
fn peak_gflops(fast: Fast, threads: usize) -> Result<(f64, Timing), String> {
    let n = PEAK_SIZE;
    let a: Vec<f32> = uniform(1, n * n).map(|u| u as f32).collect();
    let b: Vec<f32> = uniform(2, n * n).map(|u| u as f32).collect();
    let mut c = vec![0.0_f32; n * n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|error| format!("peak: {error}"))?;
    // Rows of C in as many blocks as threads (rounded to 16 rows).
    let block_rows = n.div_ceil(threads).div_ceil(16) * 16;
    let rhs = MatRef::row_major(&b, n, n).map_err(|e| e.to_string())?;
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
    .map_err(|error| format!("peak: {error}"))?;
    let flops = 2.0 * (n * n * n) as f64;
    Ok((flops / timing.median_s / 1e9, timing))
}

/// The kernel families `peak` runs for its flags: `--isa NAME` (or `all`), else the
/// process's family (`PC_ISA`, else the best detected).
fn peak_families(isa: Option<&str>) -> Result<Vec<Fast>, String> {
    let families = match isa {
        None => vec![Fast::new().map_err(|error| error.to_string())?],
        Some("all") => Isa::available()
            .iter()
            .map(|&isa| Fast::with_isa(isa))
            .collect::<Result<_, _>>()
            .map_err(|error| error.to_string())?,
        Some(name) => {
            let isa: Isa = name.parse().map_err(|error| format!("--isa: {error}"))?;
            vec![Fast::with_isa(isa).map_err(|error| format!("--isa: {error}"))?]
        }
    };
    Ok(families)
}

/// Runs `pc-bench peak`: prints the f32 GFLOP/s of pc's matrix product on one thread and
/// on all available threads, per kernel family (one line, or one JSON object per line,
/// each naming its family).
///
/// # Errors
/// A message for bad flags, an unknown family or one this processor lacks.
pub fn peak(args: &[String]) -> Result<(), String> {
    let (mut json, mut isa) = (false, None);
    let mut index = 0;
    while index < args.len() {
        let flag = args[index].as_str();
        match flag {
            "--json" => json = true,
            "--isa" => isa = Some(value(args, &mut index, flag)?),
            _ => {
                return Err(format!(
                    "peak: unknown flag `{flag}` (peak takes --isa and --json)"
                ))
            }
        }
        index += 1;
    }
    let families = peak_families(isa)?;
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flops = 2.0 * (PEAK_SIZE * PEAK_SIZE * PEAK_SIZE) as f64;
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

    /// The flop counts follow from the product list in the module documentation,
    /// written out by hand for a 4-3-2 network at batch 5.
    #[test]
    fn useful_flops_count_the_specified_products() {
        let mut config = SpeedConfig {
            widths: vec![4, 3, 2],
            batch: 5,
            n: 7,
            ..SpeedConfig::default()
        };
        let (p1, p2) = (2.0 * 5.0 * 12.0, 2.0 * 5.0 * 6.0);
        config.algorithm = Algorithm::Exact;
        assert_eq!(useful_flops(&config), (p1 + p2) + p2 + (p1 + p2));
        config.algorithm = Algorithm::FixedPred;
        assert_eq!(useful_flops(&config), (p1 + p2) + 7.0 * p2 + (p1 + p2));
        config.algorithm = Algorithm::Strict;
        assert_eq!(
            useful_flops(&config),
            (p1 + p2) + 7.0 * 2.0 * p2 + (p1 + p2)
        );
    }

    #[test]
    fn peak_flags_choose_the_families() {
        let names = |isa| -> Vec<Isa> {
            peak_families(isa)
                .unwrap()
                .iter()
                .map(|fast| fast.isa())
                .collect()
        };
        assert_eq!(names(Some("all")), Isa::available());
        assert_eq!(names(Some("portable")), [Isa::Portable]);
        assert!(peak_families(Some("sse2")).unwrap_err().contains("sse2"));
        for isa in Isa::ALL.into_iter().filter(|isa| !isa.is_available()) {
            assert!(peak_families(Some(isa.name())).is_err(), "{isa}");
        }
        let unknown = peak(&["--threads".to_string()]).unwrap_err();
        assert!(unknown.contains("--threads"), "{unknown}");
    }

    #[test]
    fn flags_parse_and_bad_ones_are_named() {
        let args: Vec<String> = "--model 8-4-2 --hidden tanh --loss mse --algorithm strict --eta 0.2 --n 5 --batch 3 --threads 2 --dtype f64 --json"
            .split(' ')
            .map(String::from)
            .collect();
        let config = parse_speed(&args).unwrap();
        assert_eq!(config.widths, [8, 4, 2]);
        assert_eq!(
            (config.algorithm, config.loss, config.n, config.batch),
            (Algorithm::Strict, Loss::Mse, 5, 3)
        );
        assert!(config.f64 && config.json && config.threads == 2 && config.calls == 30);
        assert!(parse_speed(&["--bogus".into()])
            .unwrap_err()
            .contains("--bogus"));
        assert!(parse_speed(&["--batch".into(), "x".into()])
            .unwrap_err()
            .contains("--batch"));
    }
}
