//! The theory suite's statements on random small convolutional networks: op-chain layers
//! of conv2d, activations, max/avg pooling and flatten, then dense layers, as Torch2PC
//! users build them (THEORY.md / DESIGN.md §3 state each fact; the dense versions are in
//! theory.rs).
//!
//! Networks come from pcnet-core's strategies, as the dense suite's do:
//! `pcnet_core::strategies::cnns()` (every activation, max and average pooling) and
//! `smooth_cnns()`; each draws a seed that `random_cnn(seed, smooth)` turns into a network
//! (channels 1-2, images 4x4 to 8x8, kernels 1-3, strides 1-2, padding 0-1, an optional
//! pool, one or two conv layers, one or two dense layers, MSE or cross-entropy, 1-3 rows).
//! Each test runs its own default number of cases; `PROPTEST_CASES=N` scales them by
//! `N / 256`, as in theory.rs. A failing case prints the network in full.
//!
//! Conventions: `rel(a, b) = |a - b| / |b|` in the Euclidean norm.

use pcnet_core::stability::{safe_step_size, SafeStep};
use pcnet_core::strategies::{cnns, smooth_cnns, RandomNetwork};
use pcnet_core::Settings;
use pcnet_tests::closed_form::binomial_tail;
use pcnet_tests::relaxation::{self, distance, layer_params, norm, Run};
use proptest::prelude::*;

mod common;
use common::cases;

/// One relaxation (the shared runner of the theory suites), which must succeed.
fn run(net: &RandomNetwork, settings: &Settings<'_, f64>) -> Run<f64> {
    relaxation::run(net, settings).unwrap_or_else(|e| panic!("{e}"))
}

/// Statement: FixedPred with `eta = 1` and `n >= L` is backpropagation on CNNs:
/// `epsilon_l = delta_l` for `l = 1..L`, every layer's parameter updates (conv and linear)
/// equal its gradient, and hidden beliefs `v_l = vhat_l - delta_l`.
///
/// Conditions: any CNN from `cnns()` (ReLU, max-pool winners included: both algorithms
/// take every Jacobian at the feedforward values), `n` in `L..=L+2`.
///
/// Tolerance: 1e-12 relative per layer, as the dense statement: with `eta = 1` each
/// iteration is the pure shift `e_l <- J^T e_{l+1}` (the `(1 - eta)` term is an exact
/// zero), the same products in the same order as the backprop sweep.
#[test]
fn fixed_pred_step_one_is_backprop_on_cnns() {
    proptest!(cases(64), |(net in cnns(), extra in 0..=2usize)| {
        let depth = net.depth();
        let backprop = run(&net, &Settings::exact());
        let fixed = run(&net, &Settings::fixed_pred(1.0, depth + extra));
        for l in 1..=depth {
            assert!(
                distance(&fixed.errors[l], &backprop.errors[l])
                    <= 1e-12 * norm(&backprop.errors[l]),
                "errors of layer {l}"
            );
            let (pc, bp) = (
                layer_params(&net, l, &fixed.updates),
                layer_params(&net, l, &backprop.updates),
            );
            assert!(
                distance(pc, bp) <= 1e-12 * norm(bp),
                "updates of layer {l}"
            );
        }
        for l in 1..depth {
            assert!(
                distance(&fixed.beliefs[l], &backprop.beliefs[l])
                    <= 1e-12 * norm(&backprop.beliefs[l]),
                "beliefs of layer {l}"
            );
        }
    });
}

/// Statement: FixedPred's closed form holds on CNNs: with `d = L - l`,
/// `epsilon_l = P[Binomial(n-1, eta) >= d] delta_l`, the parameter updates carry the same
/// factor, and `v_l = vhat_l - P[Binomial(n, eta) >= d] delta_l` (the polynomial for
/// `eta > 1`).
///
/// Conditions: any CNN from `cnns()`, `eta` in `(0.01, 1.99)`, `n` in `1..=3L`, capped for
/// `eta > 1` where the amplification `A` below exceeds 1e4.
///
/// Tolerance: `|x - c x_backprop| <= 1e-10 A |x_backprop|`, `A = (|eta| + |1 - eta|)^(n-1)`
/// the sum of the absolute values of the polynomial's terms (each term a product of at
/// most `L` Jacobians with relative rounding far below 1e-10), as the dense statement.
#[test]
// `l` is the layer number of the binomial formula, not only an index.
#[allow(clippy::needless_range_loop)]
fn fixed_pred_binomial_law_on_cnns() {
    proptest!(cases(64), |(net in cnns(), eta in 0.01..1.99f64, iterations in 1..=12usize)| {
        let depth = net.depth();
        let spread = eta.abs() + (1.0 - eta).abs();
        let n = iterations.min(3 * depth);
        let n = (1..=n)
            .rev()
            .find(|&k| spread.powi(k as i32) <= 1e4)
            .unwrap_or(1);
        let tolerance = 1e-10 * spread.powi(n as i32);
        let backprop = run(&net, &Settings::exact());
        let fixed = run(&net, &Settings::fixed_pred(eta, n));
        let vhat: Vec<Vec<f64>> = (0..=depth)
            .map(|l| {
                backprop.beliefs[l]
                    .iter()
                    .zip(&backprop.errors[l])
                    .map(|(v, e)| v + e)
                    .collect()
            })
            .collect();
        for l in 1..=depth {
            let c = if l == depth {
                1.0
            } else {
                binomial_tail(n - 1, eta, depth - l)
            };
            let expected: Vec<f64> = backprop.errors[l].iter().map(|d| c * d).collect();
            assert!(
                distance(&fixed.errors[l], &expected) <= tolerance * norm(&backprop.errors[l]),
                "errors of layer {l}, c = {c}"
            );
            let bp = layer_params(&net, l, &backprop.updates);
            let expected: Vec<f64> = bp.iter().map(|g| c * g).collect();
            assert!(
                distance(layer_params(&net, l, &fixed.updates), &expected) <= tolerance * norm(bp),
                "updates of layer {l}, c = {c}"
            );
            if l < depth {
                let c = binomial_tail(n, eta, depth - l);
                let expected: Vec<f64> = vhat[l]
                    .iter()
                    .zip(&backprop.errors[l])
                    .map(|(v, d)| v - c * d)
                    .collect();
                let offset: Vec<f64> = fixed.beliefs[l]
                    .iter()
                    .zip(&vhat[l])
                    .map(|(v, h)| h - v)
                    .collect();
                let expected_offset: Vec<f64> = backprop.errors[l].iter().map(|d| c * d).collect();
                assert!(
                    distance(&offset, &expected_offset)
                        <= tolerance * norm(&backprop.errors[l]) + 1e-15 * norm(&expected),
                    "beliefs of layer {l}, c = {c}"
                );
            }
        }
    });
}

/// Statement: Strict PC descends its energy on CNNs: with the safe step size
/// (`0.9 * 2 / lambda_max` of the energy's Hessian at the feedforward values, from
/// `pcnet_core::safe_step_size` with its power iteration run to a relative change of 1e-12),
/// `F` never increases from one iteration to the next over 25 iterations from the
/// feedforward start. (With the former default stopping rule, 1e-6 within 100 iterations,
/// the estimate of `lambda_max` came out more than 10% low on about 1 smooth CNN in 1000,
/// and `F` then rose by up to 7e-7 relative; the default is now 1e-8 within 200, see
/// `SafeStep::tolerance`.)
///
/// Conditions: CNNs from `smooth_cnns()` (tanh, sigmoid, softplus, identity; average
/// pooling), so that `F` has a continuous gradient (ReLU and max pooling make it only
/// piecewise smooth, where a step across a kink may raise it); the loss scaled by 1e-3
/// (`loss_rows = 1000 rows`), the small-error regime the safe step is derived for, as in
/// the dense statement: with errors of order 1 the curvature terms `epsilon f''` that the
/// step ignores can exceed its 10% margin (random sampling found F rising by ~2e-4
/// relative on about 1 smooth CNN in 500 at full loss).
///
/// Tolerance: `F_{k+1} <= F_k + 1e-12 F_0` (the rounding of summing `F`'s terms).
/// `F_k` is the engine's energy report of a run with `k + 1` iterations (the energy at
/// the beliefs the `k`-th move produced); runs are deterministic, so the runs share
/// their trajectory.
#[test]
fn strict_descends_its_energy_on_cnns() {
    proptest!(cases(24), |(net in smooth_cnns())| {
        if net.depth() < 2 {
            return Ok(());
        }
        // The small-error regime: the loss (and so every error) scaled by 1e-3.
        let net = RandomNetwork {
            loss_rows: Some(net.rows * 1000),
            ..net
        };
        let spec = net.spec();
        let mut workspace = vec![0.0; pcnet_core::stability::workspace_len(&spec, net.rows)];
        let curvature = safe_step_size(
            &spec,
            &net.params,
            net.batch(),
            &SafeStep {
                iterations: 2000,
                tolerance: 1e-12,
                ..SafeStep::default()
            },
            &mut workspace,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let eta = curvature.step_size;
        let energies: Vec<f64> = (1..=26)
            .map(|n| run(&net, &Settings::strict(eta, n)).report.energy.unwrap())
            .collect();
        let first = energies[0];
        for (k, pair) in energies.windows(2).enumerate() {
            assert!(
                pair[1] <= pair[0] + 1e-12 * first,
                "iteration {k}: F rose from {:e} to {:e} (step {eta})",
                pair[0],
                pair[1]
            );
        }
        assert!(energies[25] < first || first == 0.0 || energies[25] == first);
    });
}
