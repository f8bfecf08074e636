//! The theory suite: every mathematical fact that connects predictive coding to
//! backpropagation, checked on random networks (THEORY.md states each with its
//! conditions, source and derivation).
//!
//! Each test runs its own default number of cases; `PROPTEST_CASES=N` scales every
//! default by `N / 256` (proptest's own default is 256), so `PROPTEST_CASES=2560` is a
//! deep run with ten times the cases. A failing case prints the shrunk `RandomNetwork`
//! (widths, activations, loss, every parameter, input and target in full precision);
//! `RandomNetwork::from_parts` rebuilds it.
//!
//! Conventions: `rel(a, b) = |a - b| / |b|` in the Euclidean norm; `u = 2^-53` (f64) and
//! `2^-24` (f32) are the unit roundoffs.
//!
//! Why one file of ~900 lines: one test per statement of THEORY.md, in its order, each
//! with its conditions and tolerance; the shared machinery (the naive reference, the
//! relaxation runner, the closed forms) is in the test crate's library (`tests/src/`).

// Layers are indexed by the paper's `l` throughout, across several per-layer vectors.
#![allow(clippy::needless_range_loop)]

use pcnet_core::stability::{hessian_vector_product, safe_step_size, workspace_len, SafeStep};
use pcnet_core::strategies::{networks, NetworkConfig, RandomNetwork, RandomTargets};
use pcnet_core::{Activation, Algorithm, Loss, PcError, Settings};
use pcnet_tests::closed_form::*;
use pcnet_tests::naive::*;
use pcnet_tests::relaxation::*;
use proptest::prelude::*;

mod common;
use common::cases;

// ---------------------------------------------------------------------------------------
// 1. Exact is backprop (DESIGN §3.6; PAPER P1)
// ---------------------------------------------------------------------------------------

/// Statement: Exact's errors are `delta_l = dLoss/dvhat_l` and its parameter updates are
/// `dLoss/dtheta`, compared with central differences of the loss (computed by an
/// independent naive f64 forward pass).
///
/// Conditions: any network; ReLU-type pre-activations at least 1e-3 from the kink (so
/// the `h = 1e-6` stencil never crosses it); weight scale up to 1.5.
///
/// Tolerance: `|fd - g| <= 1e-6 (|g| + 1e-3 max|g|) + 1e-8 |Loss| + 1e-12`. The central
/// difference errs by `h^2 |f'''| / 6` (truncation, ~1e-12 |f'''|, covered by the relative
/// term) plus `~k u |Loss| / h` (rounding of the two loss values, `k` a few roundings of
/// the sums: ~1e-10 |Loss|, covered by the `1e-8 |Loss|` term).
/// f32: not tested here (a finite difference in f32 has ~1e-3 error, too coarse to be useful).
#[test]
fn exact_matches_finite_differences() {
    let strategy = networks(
        NetworkConfig::default()
            .with_depth(1..=6)
            .with_width(1..=16)
            .with_weight_scale(0.25..=1.5)
            .with_relu_margin(1e-3),
    );
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 12);
    proptest!(cases(48), |(net in strategy, picks in indices)| {
        let exact = exact(&net);
        let h = 1e-6;
        let loss = naive_network_loss(&net, &net.params).abs();
        let check = |fd: f64, g: f64, scale: f64| fd.is_finite() && (fd - g).abs() <= 1e-6 * (g.abs() + 1e-3 * scale) + 1e-8 * loss + 1e-12;
        // Parameter gradient.
        let scale = exact.updates.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        for pick in &picks {
            let i = pick.index(net.params.len());
            let fd = central_difference(&net.params, i, h, |p| naive_network_loss(&net, p));
            prop_assert!(check(fd, exact.updates[i], scale), "parameter {i}: fd {fd:e}, exact {:e}", exact.updates[i]);
        }
        // Errors of every layer: dLoss/dvhat_l.
        for l in 1..=net.depth() {
            let delta = &exact.errors[l];
            let vhat = &exact.feedforward[l];
            let scale = delta.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
            for pick in picks.iter().take(4) {
                let i = pick.index(vhat.len());
                let fd = central_difference(vhat, i, h, |v| naive_loss_from(&net, l, v));
                prop_assert!(check(fd, delta[i], scale), "layer {l}, element {i}: fd {fd:e}, delta {:e}", delta[i]);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// 2. FixedPred with eta = 1 is backprop (Rosenbaum T1; PAPER P2)
// ---------------------------------------------------------------------------------------

/// Statement: FixedPred with `eta = 1` and `n >= L` gives `epsilon_l = delta_l` for
/// `l = 1..L`, parameter updates equal to the gradients, and hidden beliefs
/// `v_l = vhat_l - delta_l`.
///
/// Conditions: any network, any data, `n` in `L..=L+3`.
///
/// Tolerance: 1e-12 relative per layer (f64). With `eta = 1` each iteration is the pure
/// shift `e_l <- J^T e_{l+1}` (the `(1 - eta) epsilon_l` term is an exact zero), the
/// same products in the same order as the backprop sweep, so the only differences are
/// a few roundings of `v_l = vhat_l - e_l`. f32: the same statement at 1e-5 relative
/// (the same operations; the bound allows `~L u_f32` of reassociation in a backend).
#[test]
fn fixed_pred_step_one_is_backprop() {
    proptest!(cases(64), |(net in networks(NetworkConfig::default()), extra in 0..=3usize)| {
        let depth = net.depth();
        let n = depth + extra;
        let backprop = exact(&net);
        let fixed = run(&net, &Settings::fixed_pred(1.0, n)).unwrap();
        for l in 1..=depth {
            prop_assert!(close(&fixed.errors[l], &backprop.errors[l], 1e-12), "errors of layer {l}");
            let (pc, bp) = (layer_params(&net, l, &fixed.updates), layer_params(&net, l, &backprop.updates));
            prop_assert!(close(pc, bp, 1e-12), "updates of layer {l}");
        }
        for l in 1..depth {
            prop_assert!(close(&fixed.beliefs[l], &backprop.beliefs[l], 1e-12), "beliefs of layer {l}");
        }
        // f32: the same statement.
        let single = net.cast::<f32>();
        let backprop = run(&single, &Settings::exact()).unwrap();
        let fixed = run(&single, &Settings::fixed_pred(1.0, n)).unwrap();
        for l in 1..=depth {
            prop_assert!(close(&fixed.errors[l], &backprop.errors[l], 1e-5), "f32 errors of layer {l}");
        }
        prop_assert!(close(&fixed.updates, &backprop.updates, 1e-5), "f32 updates");
    });
}

// ---------------------------------------------------------------------------------------
// 3. Signal front (Rosenbaum T8; PAPER P3, P7)
// ---------------------------------------------------------------------------------------

/// Statement: from the feedforward start, after `n < L - l + 1` iterations layer `l`'s
/// errors and parameter updates are exactly zero, for FixedPred (any step size, and
/// `eta = 1`) and for Strict.
///
/// Conditions: any network with `L >= 2`, `n` in `1..L`; Strict with a step in
/// `[0.01, 0.2]`, capped by the safe step size (with weight scale 2 the stability
/// threshold can be below 0.02, and Strict then diverges within `L` iterations).
///
/// Tolerance: none: every value compares equal to `0.0` (f64 and f32). The
/// error of layer `l` is a sum of products each containing `epsilon_L` pushed through
/// `L - l` Jacobians, which takes `L - l + 1` synchronous iterations to arrive.
#[test]
fn signal_front() {
    let strategy = networks(NetworkConfig::default().with_depth(2..=8));
    proptest!(cases(64), |(net in strategy, pick in any::<proptest::sample::Index>(), eta in 0.05..1.95f64, strict_eta in 0.01..0.2f64)| {
        let depth = net.depth();
        let n = 1 + pick.index(depth - 1);
        let single = net.cast::<f32>();
        let settings = [
            ("FixedPred", Settings::fixed_pred(eta, n)),
            ("FixedPred, eta = 1", Settings::fixed_pred(1.0, n)),
            ("Strict", Settings::strict(strict_eta, n).with_safe_step_size()),
        ];
        for (name, settings) in settings {
            let double = run(&net, &settings).unwrap();
            let single_settings = match settings.algorithm {
                Algorithm::Strict => Settings::strict(settings.step_size as f32, n).with_safe_step_size(),
                _ => Settings::fixed_pred(settings.step_size as f32, n),
            };
            let single = run(&single, &single_settings).unwrap();
            for l in (1..=depth).filter(|&l| n < depth - l + 1) {
                prop_assert!(double.errors[l].iter().all(|&e| e == 0.0), "{name}: errors of layer {l} after {n} iterations");
                prop_assert!(layer_params(&net, l, &double.updates).iter().all(|&g| g == 0.0), "{name}: updates of layer {l}");
                prop_assert!(single.errors[l].iter().all(|&e| e == 0.0), "{name} (f32): errors of layer {l}");
                prop_assert!(layer_params(&net, l, &single.updates).iter().all(|&g| g == 0.0), "{name} (f32): updates of layer {l}");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// 4. FixedPred's binomial law (Rosenbaum T2, Figs 3C and 5C; PAPER P4, P5)
// ---------------------------------------------------------------------------------------

/// Statement: for any step size `eta` in `(0, 2)` and `n >= 1`, FixedPred's errors are
/// `epsilon_l = c_l delta_l` and its updates `c_l * gradient_l`, with
/// `c_l = sum_{j >= L-l} C(n-1, j) eta^j (1-eta)^(n-1-j)` (`c_L = 1`), whatever the data
/// and weights. With `L = 5`, `eta = 0.1`, `n = 20` the relative errors `1 - c_l` are
/// 0.8850, 0.7054, 0.4203, 0.1351, 0 (Fig. 3C) and with `L = 6` 0.9648, 0.8850, 0.7054,
/// 0.4203, 0.1351, 0 (Fig. 5C), to 4 decimals, from the engine on random networks.
///
/// Conditions: any network and data; `n` in `1..=30`, limited for `eta > 1` as below.
///
/// Tolerance: `|epsilon_l - c_l delta_l| <= 1e-10 A |delta_l|` (and the same for the
/// updates), with `A = (|eta| + |1 - eta|)^(n-1)` the sum of the absolute values of the
/// polynomial's terms: each term is one product of `<= L` Jacobians carrying a relative
/// rounding of order `(n + L w) u`, and the terms are summed in the recursion. For
/// `eta > 1`, `n` is capped where `A <= 1e4`.
#[test]
fn fixed_pred_binomial_law() {
    // The closed form itself, against the published figure values.
    let fig_3c = [0.8850, 0.7054, 0.4203, 0.1351, 0.0];
    let fig_5c = [0.9648, 0.8850, 0.7054, 0.4203, 0.1351, 0.0];
    for expected in [&fig_3c[..], &fig_5c[..]] {
        let depth = expected.len();
        for (l, &value) in (1..=depth).zip(expected) {
            let c = if l == depth {
                1.0
            } else {
                binomial_tail(19, 0.1, depth - l)
            };
            assert!(
                ((1.0 - c) - value).abs() < 5e-5,
                "L = {depth}, layer {l}: {}",
                1.0 - c
            );
        }
    }
    // The engine, on random networks with the figures' depth, step and iterations.
    let figure = networks(
        NetworkConfig::default()
            .with_depth(5..=6)
            .with_width(2..=16),
    );
    proptest!(cases(16), |(net in figure)| {
        let depth = net.depth();
        let expected = if depth == 5 { &fig_3c[..] } else { &fig_5c[..] };
        let backprop = exact(&net);
        let fixed = run(&net, &Settings::fixed_pred(0.1, 20)).unwrap();
        for l in 1..=depth {
            let (pc, bp) = (layer_params(&net, l, &fixed.updates), layer_params(&net, l, &backprop.updates));
            if norm(bp) > 0.0 {
                let relative = distance(pc, bp) / norm(bp);
                prop_assert!((relative - expected[l - 1]).abs() < 5e-5, "layer {l}: relative error {relative:.6}");
            }
        }
    });
    // The law for any step size and iteration count.
    proptest!(cases(64), |(net in networks(NetworkConfig::default()), eta in 0.01..1.99f64, n in 1..=30usize)| {
        let spread = eta.abs() + (1.0 - eta).abs();
        let n = (1..=n).rev().find(|&k| spread.powi(k as i32 - 1) <= 1e4).unwrap_or(1);
        let amplification = spread.powi(n as i32 - 1);
        let depth = net.depth();
        let backprop = exact(&net);
        let fixed = run(&net, &Settings::fixed_pred(eta, n)).unwrap();
        for l in 1..=depth {
            let c = if l == depth { 1.0 } else { binomial_tail(n - 1, eta, depth - l) };
            let tolerance = 1e-10 * amplification;
            let expected = scaled(&backprop.errors[l], c);
            prop_assert!(distance(&fixed.errors[l], &expected) <= tolerance * norm(&backprop.errors[l]),
                "errors of layer {l}: c = {c}, distance {:e}, |delta| {:e}", distance(&fixed.errors[l], &expected), norm(&backprop.errors[l]));
            let bp = layer_params(&net, l, &backprop.updates);
            let expected = scaled(bp, c);
            let pc = layer_params(&net, l, &fixed.updates);
            prop_assert!(distance(pc, &expected) <= tolerance * norm(bp),
                "updates of layer {l}: c = {c}, distance {:e}, |gradient| {:e}", distance(pc, &expected), norm(bp));
        }
    });
}

// ---------------------------------------------------------------------------------------
// 5. FixedPred is stable for every step size in (0, 2) (Rosenbaum T3; PAPER P6)
// ---------------------------------------------------------------------------------------

/// Statement: for `0 < eta < 2` FixedPred converges to backprop at any weight scale: its
/// iterates stay finite and after `n` iterations, `n` the first count at which the closed
/// form's remainder `|1 - c_1|` is bounded by 1e-10 (`sum_{j < L-1} C(n-1, j) |eta|^j
/// |1-eta|^(n-1-j) <= 1e-10`), every layer's errors are within 1e-5 relative of
/// `delta_l`. For `eta >= 2` (where the closed form grows without bound) the engine
/// refuses the step size with the typed error `PcError::InvalidHyperparameter` ("step
/// size") instead of returning non-finite results.
///
/// Conditions: any network, weight scales 0.25 to 8, `eta` in `[0.05, 1.95]`.
///
/// Tolerance: `1e-5 |delta_l| + 1e-10 |a_l| / min(eta, 2 - eta)`, where `a_l` is backprop
/// in absolute values (`a_L = |delta_L|`, `a_l = |J_{l+1}|^T a_{l+1}`): 1e-10 from the
/// closed form's remainder, plus the rounding of the error recursion. Each iteration
/// rounds each product to `~w u |J^T| |epsilon|`, and the recursion carries that to its
/// fixed point through `(I - M)^-1 = (1/eta) sum_k N^k` (`N` the nilpotent Jacobian part),
/// with a transient `~1/(2 - eta)` for `eta > 1`; `w L u <= 3e-14`, and the bound allows
/// the `n`-fold repetition. This is an empirical bound, not a derived one: over ~6000
/// cases (weight scales to 8, `n` to ~1000) the worst was 6.8e-7 relative, which neither
/// a 1e-8 relative bound nor `1e-12 |a_l|` covered; `1e-5` leaves a margin of ten. (A pure
/// 1e-8 relative bound fails at weight scale 4.7, depth 8, where cancellation in
/// `J^T delta` makes `|a_l| >> |delta_l|`.)
#[test]
fn fixed_pred_stability() {
    let strategy = networks(NetworkConfig::default().with_weight_scale(0.25..=8.0));
    proptest!(cases(32), |(net in strategy, eta in 0.05..1.95f64, too_large in 2.0..6.0f64)| {
        let depth = net.depth();
        let mut n = 1;
        while depth > 1 && n < 20_000 && remainder_bound(n - 1, eta, depth - 1) > 1e-10 {
            n += 1;
        }
        let backprop = exact(&net);
        let magnitudes = absolute_deltas(&net, &backprop);
        let fixed = run(&net, &Settings::fixed_pred(eta, n)).unwrap();
        for l in 1..=depth {
            prop_assert!(fixed.errors[l].iter().all(|e| e.is_finite()));
            let tolerance = 1e-5 * norm(&backprop.errors[l]) + 1e-10 * norm(&magnitudes[l]) / eta.min(2.0 - eta);
            prop_assert!(distance(&fixed.errors[l], &backprop.errors[l]) <= tolerance,
                "layer {l}, n = {n}: relative distance {:e}", distance(&fixed.errors[l], &backprop.errors[l]) / norm(&backprop.errors[l]));
        }
        for step in [2.0, too_large] {
            let refused = run(&net, &Settings::fixed_pred(step, 20));
            prop_assert!(matches!(refused, Err(PcError::InvalidHyperparameter { name: "step size", .. })), "eta = {step}: {refused:?}");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 6. Strict PC is gradient descent on its energy (PAPER 1.4, P8)
// ---------------------------------------------------------------------------------------

/// A deterministic perturbation of length `len`, uniform in `[-scale, scale]`.
fn perturbation(seed: u64, len: usize, scale: f64) -> Vec<f64> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 52) as f64 - 1.0) * scale
        })
        .collect()
}

/// Statement: one Strict iteration from any beliefs `v` moves the hidden beliefs by
/// `-eta grad F(v)`, `F` the energy of DESIGN.md §2 (checked against central differences
/// of an independent naive `F`); and from the feedforward start with the safe step size
/// (`Settings::with_safe_step_size`), `F` never increases from one iteration to the next
/// in the small-error regime the safe step size is derived for.
///
/// Conditions: any network with `L >= 2`; beliefs `vhat + U[-0.5, 0.5]`; ReLU-type
/// pre-activations at least 1e-4 from the kink at those beliefs (others are discarded).
/// Descent: ReLU-type pre-activations at least 1e-3 from the kink at `vhat`, the loss
/// scaled by 1e-3 (output error scaled by 1e-3 for summed MSE); with
/// large errors the curvature terms `epsilon f''` the safe step ignores can exceed its 10%
/// margin (F then rises by ~1e-5 relative on some networks).
///
/// Tolerance: gradient as in `exact_matches_finite_differences`; descent
/// `F_{k+1} <= F_k + 1e-12 F_0 + r(v_k) + r(v_{k+1})`, `r` the rounding bound of the naive
/// energy ([`naive_energy_rounding`]). Near the minimum a step changes `F` by less than
/// evaluating it rounds: an exploration at 10x cases met `F` 3.7653928652856576e-10 ->
/// 3.765392865300395e-10 at iteration 9 (a rise of 4e-12 relative, `F` computed from
/// errors ~1e-5 that are differences of O(1) values), which `1e-12 F_0` alone refused.
#[test]
fn strict_is_gradient_descent_on_energy() {
    let strategy = networks(
        NetworkConfig::default()
            .with_depth(2..=6)
            .with_width(1..=12)
            .with_weight_scale(0.25..=1.5),
    );
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 8);
    proptest!(cases(48), |(net in strategy, seed in any::<u64>(), eta in 0.01..1.0f64, picks in indices)| {
        let vhat = hidden(&exact(&net).feedforward);
        let start: Vec<f64> = vhat.iter().zip(perturbation(seed, vhat.len(), 0.5)).map(|(v, p)| v + p).collect();
        prop_assume!(relu_margin_at(&net, &start) >= 1e-4);
        let moved = run(&net, &Settings::strict(eta, 1).with_initial_beliefs(&start)).unwrap();
        let after = hidden(&moved.beliefs);
        let gradient: Vec<f64> = start.iter().zip(&after).map(|(v0, v1)| (v0 - v1) / eta).collect();
        let scale = gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        let energy = naive_energy(&net, &net.params, &start).abs();
        for pick in &picks {
            let i = pick.index(start.len());
            let fd = central_difference(&start, i, 1e-6, |v| naive_energy(&net, &net.params, v));
            prop_assert!((fd - gradient[i]).abs() <= 1e-6 * (gradient[i].abs() + 1e-3 * scale) + 1e-8 * energy + 1e-12,
                "belief {i}: fd {fd:e}, step / -eta {:e}", gradient[i]);
        }
        // Descent with the safe step size, from the feedforward start.
        // (ReLU kinks within reach of the beliefs change the curvature the step is based on.)
        prop_assume!(net.relu_margin() >= 1e-3);
        let net = small_errors(&net, 1000);
        let settings = Settings::strict(1.99, 1).with_safe_step_size();
        let mut beliefs = vhat.clone();
        let first = naive_energy(&net, &net.params, &beliefs);
        let mut previous = first;
        let mut previous_rounding = naive_energy_rounding(&net, &net.params, &beliefs);
        for k in 0..40 {
            let step = run(&net, &Settings { initial_beliefs: Some(&beliefs), ..settings }).unwrap();
            beliefs = hidden(&step.beliefs);
            let energy = naive_energy(&net, &net.params, &beliefs);
            let rounding = naive_energy_rounding(&net, &net.params, &beliefs);
            prop_assert!(energy <= previous + 1e-12 * first + previous_rounding + rounding,
                "iteration {k}: F rose from {previous:e} to {energy:e} (step {}, rounding {:e})", step.step_size, previous_rounding + rounding);
            previous = energy;
            previous_rounding = rounding;
        }
    });
}

// ---------------------------------------------------------------------------------------
// 7. Strict's fixed point (Rosenbaum T4; PAPER P9)
// ---------------------------------------------------------------------------------------

/// Runs Strict with `margin` times the stability threshold at `vhat` as its step until
/// the residual is at most `tolerance`.
fn strict_converged(net: &RandomNetwork, margin: f64, tolerance: f64) -> Run<f64> {
    let rule = SafeStep {
        margin,
        ..SafeStep::default()
    };
    let settings = Settings::strict(1.99, 200_000)
        .with_safe_step(rule)
        .with_tolerance(tolerance);
    run(net, &settings).expect("Strict with the safe step size does not diverge")
}

/// Statement: as `n` grows Strict's residual `epsilon_l - J_{l+1}(v_l)^T epsilon_{l+1}`
/// goes to 0 (recomputed here by naive code from the returned errors and beliefs), and
/// at convergence the parameter updates equal `dF/dtheta` at the final beliefs (central
/// differences of the naive energy in the parameters).
///
/// Conditions: smooth networks (the Jacobians are evaluated at beliefs that move away
/// from the feedforward values, where a margin on ReLU kinks cannot be guaranteed),
/// depth 2 to 4, widths up to 8, weight scales 0.25 to 1; the loss scaled by 0.1 (output
/// error by 0.1 for summed MSE) and half the stability threshold at `vhat` as the step: with
/// errors of order 1 the curvature at the beliefs can exceed the curvature at `vhat` and
/// gradient descent may cycle instead of converging (seen once in 3000 cases, residual
/// 0.78 after 200000 iterations).
///
/// Tolerance: residual at most 1e-9 `max(1, |delta_L|_inf)` (the engine stops at 1e-12;
/// its errors lag its beliefs by one step, which moves them by `eta` times the
/// residual); gradient as in `exact_matches_finite_differences`.
#[test]
fn strict_fixed_point() {
    let strategy = networks(
        NetworkConfig::smooth()
            .with_depth(2..=4)
            .with_width(1..=8)
            .with_rows(1..=4)
            .with_weight_scale(0.25..=1.0),
    );
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 8);
    proptest!(cases(32), |(net in strategy, picks in indices)| {
        let depth = net.depth();
        let net = small_errors(&net, 10);
        let early = run(&net, &Settings::strict(1.99, 2).with_safe_step_size()).unwrap();
        let converged = strict_converged(&net, 0.5, 1e-12);
        prop_assert!(converged.report.converged, "not converged: {:?}", converged.report);
        prop_assert!(converged.report.residual <= early.report.residual.max(1e-12));
        let scale = converged.errors[depth].iter().fold(1.0_f64, |m, e| m.max(e.abs()));
        for l in 1..depth {
            let pulled = naive_vjp(&net, l + 1, &converged.beliefs[l], &converged.errors[l + 1]);
            let residual = converged.errors[l].iter().zip(&pulled).fold(0.0_f64, |m, (e, p)| m.max((e - p).abs()));
            prop_assert!(residual <= 1e-9 * scale, "layer {l}: residual {residual:e}");
        }
        let beliefs = hidden(&converged.beliefs);
        let gradient = &converged.updates;
        let largest = gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        let energy = naive_energy(&net, &net.params, &beliefs).abs();
        for pick in &picks {
            let i = pick.index(net.params.len());
            let fd = central_difference(&net.params, i, 1e-6, |p| naive_energy(&net, p, &beliefs));
            prop_assert!((fd - gradient[i]).abs() <= 1e-6 * (gradient[i].abs() + 1e-3 * largest) + 1e-8 * energy + 1e-12,
                "parameter {i}: fd {fd:e}, update {:e}", gradient[i]);
        }
    });
}

// ---------------------------------------------------------------------------------------
// 8. Strict approaches backprop when errors are small (Rosenbaum T5; PAPER P10)
// ---------------------------------------------------------------------------------------

/// Statement: with the loss scaled by `gamma` (so the output error is `O(gamma)`),
/// Strict's converged updates differ from the gradient by `O(gamma)` relative: from
/// `gamma = 1e-2` to `gamma = 1e-3` the relative difference falls by a factor in `[7, 13]`.
///
/// Conditions: smooth networks (the expansion needs second derivatives), mean MSE and
/// cross-entropy (scaled through `Batch::loss_rows = rows / gamma`), depth 2 to 4, widths
/// up to 8, weight scales 0.25 to 1; Strict converged with the safe step to a residual
/// of 1e-10 times the output error. Scaling only the output error through the targets is
/// not enough: the loss curvature then stays, and at the fixed point
/// `epsilon_L = (I + J J^T d^2Loss)^-1 delta_L + O(gamma^2)` differs from `delta_L` by
/// `O(|d^2 Loss| |J|^2)` relative, independent of `gamma` (summed MSE on a 4-7-7 network:
/// 0.36 at every `gamma`).
///
/// Tolerance: the factor `[7, 13]` allows the `O(gamma^2)` terms (relative `~c gamma`)
/// and the convergence remainder (1e-10 relative).
#[test]
fn strict_approaches_backprop_as_errors_shrink() {
    let strategy = networks(
        NetworkConfig::smooth()
            .with_depth(2..=4)
            .with_width(1..=8)
            .with_rows(1..=4)
            .with_weight_scale(0.25..=1.0)
            .with_losses(&[Loss::Mse, Loss::CrossEntropy]),
    );
    proptest!(cases(32), |(net in strategy)| {
        let mut differences = Vec::new();
        for factor in [100, 1000] {
            let scaled = small_errors(&net, factor);
            let backprop = exact(&scaled);
            let output_error = backprop.errors[net.depth()].iter().fold(0.0_f64, |m, e| m.max(e.abs()));
            prop_assume!(output_error > 0.0 && norm(&backprop.updates) > 0.0);
            let strict = strict_converged(&scaled, 0.9, 1e-10 * output_error);
            prop_assert!(strict.report.converged);
            differences.push(distance(&strict.updates, &backprop.updates) / norm(&backprop.updates));
        }
        let factor = differences[0] / differences[1];
        prop_assert!((7.0..=13.0).contains(&factor), "relative differences {differences:?}: factor {factor}");
    });
}

// ---------------------------------------------------------------------------------------
// 9. Convergence to the continuous-time flow as the step shrinks (PAPER T2, DESIGN §3.3)
// ---------------------------------------------------------------------------------------

/// `log2(e(n) / e(2n))` for consecutive entries.
fn orders(distances: &[f64]) -> Vec<f64> {
    distances
        .windows(2)
        .map(|pair| (pair[0] / pair[1]).log2())
        .collect()
}

/// Statement: with `eta = T / n` and `n` doubling, the distance to the continuous-time
/// limit halves: observed orders `log2(e(n) / e(2n))` lie in `[0.8, 1.2]`. FixedPred's
/// limit is `epsilon_l = P[Poisson(T) >= L - l] delta_l` (`T = 1.5`, `n = 64, 128, 256`);
/// Strict's is a reference from much finer steps (`T = 1`, `n = N, 2N, 4N`; reference
/// `2 v(128 N) - v(64 N)`, Richardson's extrapolation, error `O(eta^2)`).
///
/// Conditions: FixedPred: any network with `L >= 2` (the order is data independent;
/// `T = 1.5` avoids the `(T, L - l)` pairs where the `1/n` term of the binomial-to-Poisson
/// error vanishes, e.g. `T = 2, L - l = 1`). Strict: smooth networks, depth 2 to 4,
/// widths up to 8, weight scales 0.25 to 1, in the asymptotic regime of Euler's method:
/// `N` is the smallest power of two at least 128 with `eta lambda_max^2 T / 2 <= 1/8`
/// (`lambda_max` of the energy's Hessian at the feedforward values). On one linear mode
/// `dv/dt = -lambda v`, Euler's error at `T` is `e^(-lambda T) (1 - e^(-a))` with
/// `a = eta lambda^2 T / 2 + O(eta^2)`, so its order at step `eta` is
/// `log2((1 - e^(-a)) / (1 - e^(-a/2)))`: 0.95 at `a = 1/8`, but 0.78 at `a = 0.82`
/// (`lambda = 14`, `n = 128`: a network the fixed `n = 128, 256, 512` once met).
///
/// Tolerance: `[0.8, 1.2]`. For FixedPred the exact orders for `L - l <= 7` lie in
/// `[0.93, 1.02]`; for Strict one mode's order is at least 0.95 (above), the reference's
/// own error biases it by at most `~1e-3`, and the rest of the margin is for modes whose
/// first-order terms partly cancel.
#[test]
fn relaxation_converges_as_step_shrinks() {
    let strategy = networks(
        NetworkConfig::default()
            .with_depth(2..=8)
            .with_width(1..=16),
    );
    proptest!(cases(24), |(net in strategy)| {
        let depth = net.depth();
        let time = 1.5;
        let backprop = exact(&net);
        let mut distances = vec![Vec::new(); depth];
        for n in [64, 128, 256] {
            let fixed = run(&net, &Settings::fixed_pred(time / n as f64, n)).unwrap();
            for (l, distances) in distances.iter_mut().enumerate().skip(1) {
                let limit = scaled(&backprop.errors[l], poisson_tail(time, depth - l));
                distances.push(distance(&fixed.errors[l], &limit) / norm(&backprop.errors[l]));
            }
        }
        for (l, distances) in distances.iter().enumerate().skip(1) {
            if norm(&backprop.errors[l]) > 0.0 {
                for order in orders(distances) {
                    prop_assert!((0.8..=1.2).contains(&order), "FixedPred layer {l}: distances {distances:?}");
                }
            }
        }
    });
    let smooth = networks(
        NetworkConfig::smooth()
            .with_depth(2..=4)
            .with_width(1..=8)
            .with_rows(1..=4)
            .with_weight_scale(0.25..=1.0),
    );
    proptest!(cases(16), |(net in smooth)| {
        let time = 1.0;
        let spec = net.spec();
        let mut workspace = vec![0.0; workspace_len(&spec, net.rows)];
        let rule = SafeStep { iterations: 5000, tolerance: 1e-12, ..SafeStep::default() };
        let lambda = safe_step_size(&spec, &net.params, net.batch(), &rule, &mut workspace).unwrap().lambda_max;
        // The smallest power of two at least 128 with eta lambda^2 T / 2 <= 1/8.
        let coarse = ((4.0 * lambda * lambda * time).ceil() as usize).next_power_of_two().max(128);
        let at = |n: usize| hidden(&run(&net, &Settings::strict(time / n as f64, n)).unwrap().beliefs);
        // Euler's error is C eta + O(eta^2): the Richardson combination of two fine runs
        // cancels the first term, leaving an O(eta^2) reference.
        let (fine, finer) = (at(64 * coarse), at(128 * coarse));
        let reference: Vec<f64> = fine.iter().zip(&finer).map(|(a, b)| 2.0 * b - a).collect();
        let distances: Vec<f64> = [coarse, 2 * coarse, 4 * coarse].iter().map(|&n| distance(&at(n), &reference)).collect();
        prop_assume!(distances[2] > 1e-13 * norm(&reference));
        for order in orders(&distances) {
            prop_assert!((0.8..=1.2).contains(&order), "Strict: distances {distances:?} from n = {coarse}, lambda_max {lambda}");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 10. Strict's stability threshold and the identity-chain spectrum (Rosenbaum T6; P11, P12)
// ---------------------------------------------------------------------------------------

/// Eigenvalues of a symmetric matrix (row-major, `size x size`) by cyclic Jacobi
/// rotations, ascending.
fn symmetric_eigenvalues(mut a: Vec<f64>, size: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..size)
            .flat_map(|i| (0..size).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * size + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..size {
            for q in p + 1..size {
                let apq = a[p * size + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * size + q] - a[p * size + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..size {
                    let (akp, akq) = (a[k * size + p], a[k * size + q]);
                    a[k * size + p] = c * akp - s * akq;
                    a[k * size + q] = s * akp + c * akq;
                }
                for k in 0..size {
                    let (apk, aqk) = (a[p * size + k], a[q * size + k]);
                    a[p * size + k] = c * apk - s * aqk;
                    a[q * size + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut eigenvalues: Vec<f64> = (0..size).map(|i| a[i * size + i]).collect();
    eigenvalues.sort_by(f64::total_cmp);
    eigenvalues
}

/// Statement: in the small-error regime (output error scaled by 1e-6) Strict converges
/// for `eta <= 0.9 * 2/lambda_max` (the energy ends at most where it started and the
/// residual does not grow) and grows for `eta >= 1.25 * 2/lambda_max` (the engine reports
/// `PcError::Diverged`, or the residual grows a thousandfold; a step of 2 or more is
/// refused as `InvalidHyperparameter`), where `lambda_max` is the largest eigenvalue of the
/// energy's Hessian in the hidden beliefs, max over samples, estimated by
/// `pcnet_core::safe_step_size`. And for identity Jacobians with `m = L - 1` hidden layers of
/// width `w` and the loss curvature left out, the Hessian's eigenvalues are
/// `2 - 2 cos((2k - 1) pi / (2m + 1))`, `k = 1..m`, each `w` times.
///
/// Conditions: networks with `L >= 2`, both MSE losses, every activation but ReLU (leaky
/// ReLU stays); the stable run: 300 iterations from the feedforward values. The unstable
/// runs: the output error shrunk further to 1e-12, from the feedforward values plus a
/// fixed pseudo-random perturbation of size 1e-9, the residual read after 1, 10, 20, ...,
/// 60 iterations. From `vhat` itself the output error enters at `v_{L-1}` only and may have
/// no component along the top eigenvector, and rounding cannot seed one: once the stable
/// modes have settled, the updates fall below `ulp(v)` and the beliefs stop changing (seen
/// with a random seed at 10x cases: widths [15, 2, 16, 2, 2, 8], leaky ReLU 0.2, tanh,
/// identity, softplus, identity, MSE; `lambda_max = 6.78`, yet at `1.25 * 2/lambda_max`
/// the residual fell from 1.3e-9 to 5.2e-17 and stayed there bit for bit, while from a
/// perturbed start the same step diverges at iteration 21). The top mode grows by
/// `|1 - eta lambda_max| >= 1.5` per iteration (`eta lambda_max >= 2.5`, since the power
/// iteration never overestimates `lambda_max`), so by `1.5^n` from its share of the 1e-9
/// start; the test asks for the largest residual of those read to be a thousand times the
/// first one (or `Diverged`). Reading at one late iteration instead fails: the beliefs
/// leave the linear regime (a leaky ReLU kink crossed, a saturating unit) and can settle
/// (seen: 300 iterations from 1e-6 grew the residual only 80x, 3.9e-6 -> 3.1e-4), and with
/// 40 iterations a start with a small share of the top mode grew it 575x. With ReLU a layer whose units are all off has `J = 0`
/// exactly: the beliefs below it are cut off from the output error, their modes are never
/// excited (exact zeros stay zeros) and neither grow nor need to (seen: `lambda_max = 1.37`
/// from such a block, residual 3e-24 after 300 iterations at `1.25 * 2/lambda_max`). Leaky
/// ReLU's kink is harmless here: the beliefs move by `~1e-6` and its one-sided slopes are
/// both nonzero. The identity
/// chain: `m = 1..7`, `w = 1..3`, one sample.
///
/// Tolerance: the spectrum to 1e-12 absolute (Jacobi rotations are backward stable:
/// error `~u |H| < 1e-14`); the power iteration's `lambda_max` to 1e-12 relative.
#[test]
fn strict_stability_threshold() {
    // The identity chain's spectrum, from Hessian-vector products.
    for hidden_layers in 1..=7usize {
        for width in 1..=3usize {
            let depth = hidden_layers + 1;
            let widths = vec![width; depth + 1];
            let activations = vec![Activation::Identity; depth];
            let mut params = Vec::new();
            for _ in 0..depth {
                for o in 0..width {
                    params.extend((0..width).map(|i| if i == o { 1.0 } else { 0.0 }));
                }
                params.extend(vec![0.0; width]);
            }
            let net = RandomNetwork::from_parts(
                &widths,
                &activations,
                Loss::Mse,
                params,
                vec![0.5; width],
                RandomTargets::Values(vec![0.0; width]),
            );
            let spec = net.spec();
            let size = hidden_layers * width;
            let mut workspace = vec![0.0; workspace_len(&spec, 1)];
            let mut matrix = vec![0.0; size * size];
            for column in 0..size {
                let mut unit = vec![0.0; size];
                unit[column] = 1.0;
                let mut product = vec![0.0; size];
                hessian_vector_product(
                    &spec,
                    &net.params,
                    net.batch(),
                    false,
                    &unit,
                    &mut product,
                    &mut workspace,
                )
                .unwrap();
                for row in 0..size {
                    matrix[row * size + column] = product[row];
                }
            }
            let eigenvalues = symmetric_eigenvalues(matrix, size);
            let m = hidden_layers as f64;
            let mut expected: Vec<f64> = (1..=hidden_layers)
                .flat_map(|k| {
                    std::iter::repeat_n(
                        2.0 - 2.0
                            * ((2.0 * k as f64 - 1.0) * std::f64::consts::PI / (2.0 * m + 1.0))
                                .cos(),
                        width,
                    )
                })
                .collect();
            expected.sort_by(f64::total_cmp);
            for (found, expected) in eigenvalues.iter().zip(&expected) {
                assert!(
                    (found - expected).abs() <= 1e-12,
                    "m = {hidden_layers}, w = {width}: {eigenvalues:?} vs {expected:?}"
                );
            }
            let rule = SafeStep {
                iterations: 20_000,
                tolerance: 0.0,
                loss_curvature: false,
                ..SafeStep::default()
            };
            let curvature =
                safe_step_size(&spec, &net.params, net.batch(), &rule, &mut workspace).unwrap();
            let largest = expected[size - 1];
            assert!(
                (curvature.lambda_max - largest).abs() <= 1e-12 * largest,
                "m = {hidden_layers}: power iteration {} vs {largest}",
                curvature.lambda_max
            );
        }
    }
    // The threshold on random networks.
    let strategy = networks(
        NetworkConfig::default()
            .with_depth(2..=6)
            .with_width(1..=16)
            .with_activations(&NO_DEAD_UNITS)
            .with_losses(&mse_losses()),
    );
    proptest!(cases(32), |(net in strategy)| {
        let net = shrink_output_error(&net, 1e-6);
        let spec = net.spec();
        let mut workspace = vec![0.0; workspace_len(&spec, net.rows)];
        let rule = SafeStep { iterations: 5000, tolerance: 1e-12, ..SafeStep::default() };
        let lambda = safe_step_size(&spec, &net.params, net.batch(), &rule, &mut workspace).unwrap().lambda_max;
        prop_assert!(lambda >= 1.0 - 1e-9, "lambda_max {lambda} is below 1");
        let first = run(&net, &Settings::strict(0.5 / lambda, 1)).unwrap();
        let stable = run(&net, &Settings::strict(0.9 * 2.0 / lambda, 300)).unwrap();
        prop_assert!(stable.report.energy.unwrap() <= first.report.energy.unwrap() * (1.0 + 1e-9));
        prop_assert!(stable.report.residual <= first.report.residual * (1.0 + 1e-9), "residual {:e} after 300 iterations, {:e} at the first", stable.report.residual, first.report.residual);
        // The unstable runs start 1e-9 away from the feedforward values, with the output
        // error shrunk to 1e-12 so that the perturbation sets the scale: every mode of `H`
        // is then excited (see the doc comment: from `vhat` itself the top mode may get
        // nothing, and rounding cannot seed it). Growth is looked for every 10 iterations up
        // to 60, from when the growing mode is still small enough for the linearisation to
        // hold.
        let unstable = 1.25 * 2.0 / lambda;
        let quiet = shrink_output_error(&net, 1e-6);
        let vhat = hidden(&exact(&quiet).feedforward);
        let start: Vec<f64> = vhat
            .iter()
            .zip(perturbation(20221128, vhat.len(), 1e-9))
            .map(|(v, p)| v + p)
            .collect();
        let at = |n| run(&quiet, &Settings::strict(unstable, n).with_initial_beliefs(&start));
        if unstable >= 2.0 {
            let outcome = at(60);
            prop_assert!(matches!(outcome, Err(PcError::InvalidHyperparameter { .. })), "{outcome:?}");
        } else {
            let first = at(1).unwrap().report.residual;
            let mut largest = first;
            let mut diverged = false;
            for n in [10, 20, 30, 40, 50, 60] {
                match at(n) {
                    Err(PcError::Diverged { .. }) => diverged = true,
                    Ok(grown) => largest = largest.max(grown.report.residual),
                    Err(other) => prop_assert!(false, "{other:?}"),
                }
            }
            prop_assert!(diverged || largest >= 1e3 * first,
                "eta = {unstable}: largest residual {largest:e} within 60 iterations, {first:e} at the first");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 11. f32 error space has no precision floor (Rosenbaum T9; PAPER P14)
// ---------------------------------------------------------------------------------------

/// Torch2PC's FixedPred in f32 with beliefs stored (`epsilon_l = vhat_l - v_l` by
/// subtraction), input clamped; returns `epsilon_1` of the last iteration.
fn belief_space_f32(net: &RandomNetwork, eta: f32, n: usize) -> Vec<f32> {
    let single = net.cast::<f32>();
    let start = run(&single, &Settings::exact()).unwrap();
    let depth = net.depth();
    let vhat = &start.feedforward;
    // Jacobians at the feedforward values: derivative factors from the f32 pass.
    let widths = net.widths();
    let mut beliefs: Vec<Vec<f32>> = vhat.clone();
    let mut errors: Vec<Vec<f32>> = widths.iter().map(|w| vec![0.0; net.rows * w]).collect();
    errors[depth] = start.errors[depth].clone();
    let derivatives: Vec<Vec<f32>> = (1..=depth)
        .map(|l| {
            let input: Vec<f64> = vhat[l - 1].iter().map(|&v| v as f64).collect();
            let (z, _) = naive_layer(net, &net.params, l, &input);
            z.iter()
                .map(|&z| naive_derivative(net.activations()[l - 1], z) as f32)
                .collect()
        })
        .collect();
    for _ in 0..n {
        for l in 1..depth {
            for (e, (h, v)) in errors[l].iter_mut().zip(vhat[l].iter().zip(&beliefs[l])) {
                *e = h - v;
            }
        }
        for l in 1..depth {
            let (inputs, outputs) = (widths[l], widths[l + 1]);
            let offset = net.spec().parameter_offset(l + 1);
            let weight = &single.params[offset..offset + inputs * outputs];
            for r in 0..net.rows {
                for i in 0..inputs {
                    let mut pulled = 0.0_f32;
                    for o in 0..outputs {
                        pulled += errors[l + 1][r * outputs + o]
                            * derivatives[l][r * outputs + o]
                            * weight[o * inputs + i];
                    }
                    let index = r * inputs + i;
                    beliefs[l][index] += eta * (errors[l][index] - pulled);
                }
            }
        }
    }
    errors[1].clone()
}

/// Statement: with tiny gradients (mean `|delta_1|` = 1e-7) and `eta < 1`, pcnet-core's f32
/// FixedPred (error-space state) stays within 1e-3 relative of f64, where Torch2PC's
/// belief-space f32 computation (`epsilon = vhat - v` by subtraction) is off by more than
/// 10% (its floor is `~ulp(vhat) / (eta |delta|)`).
///
/// Conditions: MSE networks of depth 3 to 5, widths 4 to 16, sigmoid and softplus
/// activations (hidden activations of order 0.1 to 1, so `ulp(vhat) ~ 3e-8`), weight
/// scales 0.5 to 1.5; `eta` in `[0.05, 0.2]`, `n = 200`; the mean loss averaged over `k`
/// times the rows (`Batch::loss_rows`), `k` chosen for mean `|delta_1|` of about 1e-7, as
/// a mean-reduced loss over a large batch gives (the paper's setting). Scaling the output
/// error through the targets instead would make `y - t` cancel in f32 for every
/// implementation alike.
///
/// Tolerance: 1e-3 relative for error space: each iteration adds `~w u_f32 = 1e-6`
/// relative and the recursion is a contraction with factor `1 - eta`, so the error stays
/// `~w u_f32 / eta ~ 1e-5`; the belief-space floor is `~3e-8 / (0.2 * 1e-7) > 1`.
#[test]
fn f32_error_space_has_no_floor() {
    let strategy = networks(
        NetworkConfig::default()
            .with_depth(3..=5)
            .with_width(4..=16)
            .with_rows(1..=4)
            .with_activations(&[Activation::Sigmoid, Activation::Softplus])
            .with_losses(&[Loss::Mse])
            .with_weight_scale(0.5..=1.5),
    );
    proptest!(cases(24), |(net in strategy, eta in 0.05..0.2f64)| {
        let delta = exact(&net).errors[1].clone();
        let mean = delta.iter().map(|d| d.abs()).sum::<f64>() / delta.len() as f64;
        prop_assume!(mean > 0.0);
        let factor = (mean / 1e-7).round().max(1.0) as usize;
        let net = small_errors(&net, factor);
        let delta = exact(&net).errors[1].clone();
        let mean = delta.iter().map(|d| d.abs()).sum::<f64>() / delta.len() as f64;
        prop_assume!(mean <= 2e-7);
        let n = 200;
        let double = run(&net, &Settings::fixed_pred(eta, n)).unwrap();
        let single = run(&net.cast::<f32>(), &Settings::fixed_pred(eta as f32, n)).unwrap();
        let error_space = distance(&single.errors[1], &double.errors[1]) / norm(&double.errors[1]);
        let belief_space = distance(&belief_space_f32(&net, eta as f32, n), &double.errors[1]) / norm(&double.errors[1]);
        prop_assert!(error_space <= 1e-3, "error space: relative error {error_space:e}");
        prop_assert!(belief_space > 0.1, "belief space: relative error {belief_space:e}");
    });
}

// ---------------------------------------------------------------------------------------
// 12. Torch2PC agreement (DESIGN §3.7)
// ---------------------------------------------------------------------------------------

/// Statement: every bundled Torch2PC reference case (tests/data/torch2pc) passes:
/// each expected array matches pcnet-core's f64 result.
///
/// Conditions: the cases' own networks, data and settings (FORMAT.md there).
///
/// Tolerance: `pcnet_reference::RELATIVE_TOLERANCE` (1e-9 relative, 1e-12 absolute
/// near zero), FORMAT.md's tolerance: the reference is PyTorch in float64.
#[test]
fn torch2pc_reference_cases() {
    use pcnet_reference::{find_cases, load_case, Outcome, RELATIVE_TOLERANCE};
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/torch2pc");
    let files = find_cases(&directory).expect("the bundled cases are readable");
    let mut passed = 0;
    for file in &files {
        let case = load_case(file).unwrap_or_else(|e| panic!("{e}"));
        match case.run() {
            Outcome::Pass { worst } => {
                assert!(worst <= RELATIVE_TOLERANCE, "{}: {worst:e}", case.name);
                passed += 1;
            }
            // A skip (a case the parser cannot run) fails as well.
            other => panic!("{}: {other:?}", case.name),
        }
    }
    assert_eq!(passed, files.len(), "every case ran and passed");
    assert!(passed >= 18, "only {passed} cases found");
}
