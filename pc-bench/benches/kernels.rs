//! Matrix kernels: pcnet-std's fast SIMD kernels against pcnet-core's portable ones.
//! Throughput is in FLOPs (`2 * rows * inputs * outputs` per product), so criterion's
//! "elem/s" reads as FLOP/s.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pcnet_core::{Backend, LinearDims, Portable};
use pcnet_std::fast::Fast;
use std::{hint::black_box, time::Duration};

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect()
}

fn products(c: &mut Criterion) {
    let shapes = [
        (1, 784, 256),
        (1, 256, 256),
        (64, 784, 256),
        (64, 256, 256),
        (256, 256, 256),
        (1024, 1024, 1024),
    ];
    let mut group = c.benchmark_group("linear f32");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for (rows, inputs, outputs) in shapes {
        let dims = LinearDims {
            rows,
            inputs,
            outputs,
        };
        let (x, w, b) = (data(rows * inputs), data(outputs * inputs), data(outputs));
        let g = data(rows * outputs);
        let (mut out, mut gin) = (vec![0.0; rows * outputs], vec![0.0; rows * inputs]);
        let (mut gw, mut gb) = (vec![0.0; outputs * inputs], vec![0.0; outputs]);
        group.throughput(Throughput::Elements((2 * rows * inputs * outputs) as u64));
        let name = format!("{rows}x{inputs}x{outputs}");
        let portable_too = rows * inputs * outputs <= 64 * 784 * 256;
        group.bench_function(BenchmarkId::new("forward fast", &name), |bench| {
            bench.iter(|| {
                Fast::default().linear_forward(
                    pcnet_core::OpKey::NONE,
                    dims,
                    black_box(&x),
                    &w,
                    &b,
                    &mut out,
                )
            })
        });
        group.bench_function(BenchmarkId::new("input vjp fast", &name), |bench| {
            bench.iter(|| {
                Fast::default().linear_backward_input(
                    pcnet_core::OpKey::NONE,
                    dims,
                    black_box(&g),
                    &w,
                    &mut gin,
                )
            })
        });
        group.bench_function(BenchmarkId::new("parameter vjp fast", &name), |bench| {
            bench.iter(|| {
                Fast::default().linear_backward_parameters(
                    pcnet_core::OpKey::NONE,
                    dims,
                    black_box(&g),
                    &x,
                    &mut gw,
                    &mut gb,
                )
            })
        });
        if portable_too {
            group.bench_function(BenchmarkId::new("forward portable", &name), |bench| {
                bench.iter(|| {
                    Portable.linear_forward(
                        pcnet_core::OpKey::NONE,
                        dims,
                        black_box(&x),
                        &w,
                        &b,
                        &mut out,
                    )
                })
            });
            group.bench_function(BenchmarkId::new("input vjp portable", &name), |bench| {
                bench.iter(|| {
                    Portable.linear_backward_input(
                        pcnet_core::OpKey::NONE,
                        dims,
                        black_box(&g),
                        &w,
                        &mut gin,
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
