//! Relaxations through `pcnet_std::batch::BatchRunner` on the fast kernels, f32, relu hidden
//! layers, cross-entropy: each algorithm, and how the cost scales with the iteration count
//! `n`, the depth, the batch size and the thread count. Throughput is the useful FLOP
//! count of `pc-bench speed` (see pc-bench/src/speed.rs), so "elem/s" reads as FLOP/s.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pcnet_bench::speed::{useful_flops, SpeedConfig, SpeedModel};
use pcnet_core::{Algorithm, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
use pcnet_std::batch::{BatchRunner, Par};
use std::time::Duration;

struct Case {
    layers: Vec<Layer>,
    params: Vec<f32>,
    inputs: Vec<f32>,
    classes: Vec<usize>,
}

/// The dense relu/cross-entropy network of `speed`'s defaults with these widths.
fn case(widths: &[usize], batch: usize) -> Case {
    let depth = widths.len() - 1;
    let config = SpeedConfig {
        model: SpeedModel::Dense(widths.to_vec()),
        ..SpeedConfig::default()
    };
    let (layers, _, _) = config.network_layers();
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    let params = (0..spec.parameter_len())
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) / 14.0)
        .collect();
    let inputs = (0..batch * widths[0])
        .map(|i| (i * 31 % 97) as f32 / 97.0)
        .collect();
    let classes = (0..batch).map(|r| r % widths[depth]).collect();
    Case {
        layers,
        params,
        inputs,
        classes,
    }
}

#[allow(clippy::too_many_arguments)]
fn bench_one(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    widths: &[usize],
    batch: usize,
    algorithm: Algorithm,
    eta: f32,
    n: usize,
    threads: usize,
) {
    let case = case(widths, batch);
    let spec = NetworkSpec::new(&case.layers, Loss::CrossEntropy);
    let config = SpeedConfig {
        model: SpeedModel::Dense(widths.to_vec()),
        algorithm,
        n: Some(n),
        batch,
        ..SpeedConfig::default()
    };
    c.throughput(Throughput::Elements(useful_flops(&config) as u64));
    let batch_view = Batch::new(&case.inputs, Targets::Classes(&case.classes));
    let settings = Settings::for_algorithm(algorithm, eta, n);
    let par = if threads == 1 {
        Par::Seq
    } else {
        Par::Rayon(threads)
    };
    let mut runner = BatchRunner::<f32>::new();
    c.bench_function(id, |bench| {
        bench.iter(|| {
            runner
                .run(par, &spec, &case.params, batch_view, &settings)
                .map(|o| o.loss())
                .unwrap()
        })
    });
}

const MLP: [usize; 4] = [784, 256, 256, 10];

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    group
}

fn algorithms(c: &mut Criterion) {
    let mut g = group(c, "algorithm (784-256-256-10, batch 64)");
    for (name, algorithm, eta, n) in [
        ("exact", Algorithm::Exact, 0.1, 0),
        ("fixed-pred eta 1 n 3", Algorithm::FixedPred, 1.0, 3),
        ("fixed-pred eta 0.1 n 20", Algorithm::FixedPred, 0.1, 20),
        ("strict eta 0.1 n 20", Algorithm::Strict, 0.1, 20),
    ] {
        bench_one(
            &mut g,
            BenchmarkId::from_parameter(name),
            &MLP,
            64,
            algorithm,
            eta,
            n,
            1,
        );
    }
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = group(c, "strict vs n (batch 64)");
    for n in [5, 10, 20, 40] {
        bench_one(
            &mut g,
            BenchmarkId::from_parameter(n),
            &MLP,
            64,
            Algorithm::Strict,
            0.1,
            n,
            1,
        );
    }
    g.finish();
    let mut g = group(
        c,
        "fixed-pred n 20 vs depth (256-wide hidden layers, batch 64)",
    );
    for hidden in [1, 2, 4, 8] {
        let mut widths = vec![784];
        widths.extend(std::iter::repeat_n(256, hidden));
        widths.push(10);
        bench_one(
            &mut g,
            BenchmarkId::from_parameter(hidden + 1),
            &widths,
            64,
            Algorithm::FixedPred,
            0.1,
            20,
            1,
        );
    }
    g.finish();
    let mut g = group(c, "fixed-pred n 20 vs batch");
    for batch in [1, 16, 64, 256, 1024] {
        bench_one(
            &mut g,
            BenchmarkId::from_parameter(batch),
            &MLP,
            batch,
            Algorithm::FixedPred,
            0.1,
            20,
            1,
        );
    }
    g.finish();
    let mut g = group(c, "strict n 20 vs threads (batch 512)");
    for threads in [1, 2] {
        bench_one(
            &mut g,
            BenchmarkId::from_parameter(threads),
            &MLP,
            512,
            Algorithm::Strict,
            0.1,
            20,
            threads,
        );
    }
    g.finish();
}

criterion_group!(benches, algorithms, scaling);
criterion_main!(benches);
