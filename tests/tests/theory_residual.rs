//! The theory suite on residual networks: layers `f_l(v) = v + alpha_l g_l(v)` with
//! Jacobian `I + alpha_l J_g(v)` (THEORY.md, "Residual layers"). Each statement of the
//! dense suite whose derivation uses only `J_l^T delta_{l+1} = delta_l` and the energy's
//! form carries over unchanged; these tests check that the engine computes them for
//! residual layers, on `pcnet_core::strategies::residual_networks()`, against an
//! independent naive f64 model of op chains with skips.
//!
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` work as in `theory.rs` (fixed seed by default).
//!
//! Why one file of ~800 lines: one test per statement of THEORY.md's residual section, in its order, beside the independent naive model of op chains with skips that they all share.

// Layers are indexed by the paper's `l` throughout, across several per-layer vectors.
#![allow(clippy::needless_range_loop)]

use pcnet_core::stability::{hessian_vector_product, workspace_len};
use pcnet_core::strategies::{
    random_residual, residual_networks, smooth_residual_networks, RandomNetwork, RandomTargets,
};
use pcnet_core::{infer, Activation, Algorithm, Layer, Loss, Op, PcError, Report, Scalar};
use pcnet_core::{SafeStep, Settings};
use proptest::prelude::*;

mod common;
use common::cases;
use pcnet_tests::naive::naive_loss;

// ---------------------------------------------------------------------------------------
// Harness (as theory.rs)
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Run<T> {
    feedforward: Vec<Vec<T>>,
    beliefs: Vec<Vec<T>>,
    errors: Vec<Vec<T>>,
    updates: Vec<T>,
    report: Report<T>,
}

fn run<T: Scalar>(net: &RandomNetwork<T>, settings: &Settings<'_, T>) -> Result<Run<T>, PcError> {
    let spec = net.spec();
    let mut workspace = vec![T::zero(); spec.workspace_len(net.rows)];
    let mut updates = vec![T::zero(); spec.parameter_len()];
    let result = infer(
        &spec,
        &net.params,
        net.batch(),
        settings,
        &mut workspace,
        &mut updates,
    )?;
    let layers = 0..=net.depth();
    Ok(Run {
        feedforward: layers
            .clone()
            .map(|l| result.feedforward(l).to_vec())
            .collect(),
        beliefs: layers.clone().map(|l| result.beliefs(l).to_vec()).collect(),
        errors: layers.map(|l| result.errors(l).to_vec()).collect(),
        report: result.report(),
        updates,
    })
}

fn exact(net: &RandomNetwork) -> Run<f64> {
    run(net, &Settings::exact()).expect("exact backprop runs on a valid network")
}

fn norm<T: Scalar>(values: &[T]) -> f64 {
    values
        .iter()
        .map(|&v| Scalar::to_f64(v).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn distance<T: Scalar, U: Scalar>(a: &[T], b: &[U]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (Scalar::to_f64(x) - Scalar::to_f64(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `|a - b| <= tolerance |b|` (Euclidean), exact equality when `b` is zero.
fn close<T: Scalar, U: Scalar>(a: &[T], b: &[U], tolerance: f64) -> bool {
    distance(a, b) <= tolerance * norm(b)
}

fn layer_params<T: Copy>(net: &RandomNetwork, l: usize, all: &[T]) -> Vec<T> {
    let spec = net.spec();
    let start = spec.parameter_offset(l);
    all[start..start + net.layers[l - 1].parameter_len()].to_vec()
}

fn scaled(values: &[f64], factor: f64) -> Vec<f64> {
    values.iter().map(|v| v * factor).collect()
}

/// The hidden beliefs `v_1..v_{L-1}` of a run, concatenated (the layout of initial beliefs).
fn hidden(values: &[Vec<f64>]) -> Vec<f64> {
    values[1..values.len() - 1].concat()
}

fn central_difference(point: &[f64], index: usize, h: f64, f: impl Fn(&[f64]) -> f64) -> f64 {
    let mut moved = point.to_vec();
    moved[index] = point[index] + h;
    let plus = f(&moved);
    moved[index] = point[index] - h;
    let minus = f(&moved);
    (plus - minus) / (2.0 * h)
}

/// `sum_{j >= d} C(k, j) eta^j (1 - eta)^(k - j)`.
fn binomial_tail(k: usize, eta: f64, d: usize) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for j in 0..=k {
        if j >= d {
            total += choose * eta.powi(j as i32) * (1.0 - eta).powi((k - j) as i32);
        }
        choose = choose * (k - j) as f64 / (j + 1) as f64;
    }
    total
}

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

// ---------------------------------------------------------------------------------------
// An independent, naive f64 model of op chains with skips (plain loops)
// ---------------------------------------------------------------------------------------

fn naive_activation(activation: Activation, z: f64) -> f64 {
    match activation {
        Activation::Identity => z,
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu { slope } => {
            if z > 0.0 {
                z
            } else {
                slope * z
            }
        }
        Activation::Tanh => z.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Softplus => {
            if z > 20.0 {
                z
            } else {
                z.exp().ln_1p()
            }
        }
        other => panic!("the naive model has no activation {other:?}"),
    }
}

fn naive_derivative(activation: Activation, z: f64) -> f64 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Relu => f64::from(z > 0.0),
        Activation::LeakyRelu { slope } => {
            if z > 0.0 {
                1.0
            } else {
                slope
            }
        }
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::Softplus => {
            if z > 20.0 {
                1.0
            } else {
                1.0 / (1.0 + (-z).exp())
            }
        }
        other => panic!("the naive model has no activation {other:?}"),
    }
}

/// One op on `input` (rows x its width): linear ops and activations (what the residual
/// strategies draw).
fn naive_op(op: &Op, params: &[f64], input: &[f64]) -> Vec<f64> {
    match *op {
        Op::Linear { inputs, outputs } => {
            let mut out = Vec::with_capacity(input.len() / inputs * outputs);
            for row in input.chunks_exact(inputs) {
                for o in 0..outputs {
                    let mut sum = params[inputs * outputs + o];
                    for (w, x) in params[o * inputs..(o + 1) * inputs].iter().zip(row) {
                        sum += w * x;
                    }
                    out.push(sum);
                }
            }
            out
        }
        Op::Activation(activation) => input
            .iter()
            .map(|&z| naive_activation(activation, z))
            .collect(),
        other => panic!("the naive model has no {other:?}"),
    }
}

/// The inputs of every op of `layer` at `input` and the layer output
/// `input + alpha g(input)` (or `g(input)` for a plain layer).
fn naive_layer(layer: &Layer, params: &[f64], input: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut op_inputs = Vec::new();
    let mut value = input.to_vec();
    let mut offset = 0;
    for op in layer.ops() {
        let len = op.parameter_len();
        let next = naive_op(op, &params[offset..offset + len], &value);
        offset += len;
        op_inputs.push(value);
        value = next;
    }
    if let Some(alpha) = layer.residual_scale() {
        value = input
            .iter()
            .zip(&value)
            .map(|(x, g)| x + alpha * g)
            .collect();
    }
    (op_inputs, value)
}

/// `f_l(input)` with parameters `params` (the whole flat slice).
fn naive_apply(net: &RandomNetwork, params: &[f64], l: usize, input: &[f64]) -> Vec<f64> {
    let offset = net.spec().parameter_offset(l);
    naive_layer(&net.layers[l - 1], &params[offset..], input).1
}

/// The smallest `|z|` over the inputs of ReLU-type activations of layer `l` at `input`
/// (infinity when there are none).
fn naive_relu_margin(net: &RandomNetwork, l: usize, input: &[f64]) -> f64 {
    let offset = net.spec().parameter_offset(l);
    let layer = &net.layers[l - 1];
    let (op_inputs, _) = naive_layer(layer, &net.params[offset..], input);
    let mut margin = f64::INFINITY;
    for (op, z) in layer.ops().iter().zip(&op_inputs) {
        if let Op::Activation(activation) = op {
            if !activation.is_smooth() {
                margin = z.iter().fold(margin, |m, z| m.min(z.abs()));
            }
        }
    }
    margin
}

/// `(J_l(input)^T cotangent, dtheta_l)` for layer `l` at `input`: the VJP of the chain
/// with the branch cotangent `alpha c` and the skip's `c` added, and the parameter
/// gradient of the layer. With `absolute`, every factor is replaced by its absolute value
/// (backprop in absolute values: the scale of the rounding of any product-sum evaluation).
fn naive_vjp(
    net: &RandomNetwork,
    l: usize,
    input: &[f64],
    cotangent: &[f64],
    absolute: bool,
) -> (Vec<f64>, Vec<f64>) {
    let a = |x: f64| if absolute { x.abs() } else { x };
    let layer = &net.layers[l - 1];
    let offset = net.spec().parameter_offset(l);
    let params = &net.params[offset..offset + layer.parameter_len()];
    let (op_inputs, _) = naive_layer(layer, params, input);
    let mut grad_params = vec![0.0; params.len()];
    let scale = layer.residual_scale().map_or(1.0, a);
    let mut c: Vec<f64> = cotangent.iter().map(|&x| scale * a(x)).collect();
    let mut param_end = params.len();
    for (k, op) in layer.ops().iter().enumerate().rev() {
        let x = &op_inputs[k];
        let start = param_end - op.parameter_len();
        match *op {
            Op::Linear { inputs, outputs } => {
                let weight = &params[start..start + inputs * outputs];
                let mut previous = vec![0.0; x.len()];
                for r in 0..x.len() / inputs {
                    for o in 0..outputs {
                        let g = c[r * outputs + o];
                        grad_params[start + inputs * outputs + o] += g;
                        for i in 0..inputs {
                            grad_params[start + o * inputs + i] += g * a(x[r * inputs + i]);
                            previous[r * inputs + i] += g * a(weight[o * inputs + i]);
                        }
                    }
                }
                c = previous;
            }
            Op::Activation(activation) => {
                for (g, &z) in c.iter_mut().zip(x) {
                    *g *= a(naive_derivative(activation, z));
                }
            }
            other => panic!("the naive model has no {other:?}"),
        }
        param_end = start;
    }
    if layer.residual_scale().is_some() {
        for (g, &x) in c.iter_mut().zip(cotangent) {
            *g += a(x);
        }
    }
    (c, grad_params)
}

/// The loss as a function of `v_l` (the forward pass continued from layer `l + 1`) with
/// parameters `params`.
fn naive_loss_from(net: &RandomNetwork, params: &[f64], l: usize, belief: &[f64]) -> f64 {
    let mut values = belief.to_vec();
    for k in l + 1..=net.depth() {
        values = naive_apply(net, params, k, &values);
    }
    naive_loss(net, &values)
}

/// `F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + Loss(f_L(v_{L-1}))`, `v_0 = x`,
/// hidden beliefs `hidden` layer after layer.
fn naive_energy(net: &RandomNetwork, params: &[f64], hidden: &[f64]) -> f64 {
    let widths: Vec<usize> = (0..=net.depth()).map(|l| net.spec().width(l)).collect();
    let mut below = net.inputs.clone();
    let mut offset = 0;
    let mut energy = 0.0;
    for l in 1..net.depth() {
        let len = net.rows * widths[l];
        let belief = &hidden[offset..offset + len];
        offset += len;
        let prediction = naive_apply(net, params, l, &below);
        energy += prediction
            .iter()
            .zip(belief)
            .map(|(p, v)| (p - v).powi(2))
            .sum::<f64>()
            / 2.0;
        below = belief.to_vec();
    }
    energy + naive_loss(net, &naive_apply(net, params, net.depth(), &below))
}

/// The smallest ReLU-type margin of every layer evaluated at the inputs `inputs[l - 1]`.
fn margin_at(net: &RandomNetwork, inputs: &[Vec<f64>]) -> f64 {
    (1..=net.depth())
        .map(|l| naive_relu_margin(net, l, &inputs[l - 1]))
        .fold(f64::INFINITY, f64::min)
}

/// The network with its loss scaled by `1 / factor` (the mean losses average over
/// `factor` times the rows; summed MSE gets its targets moved to `y - (y - t) / factor`).
fn small_errors(net: &RandomNetwork, factor: usize) -> RandomNetwork {
    match (&net.targets, net.loss) {
        (RandomTargets::Values(targets), Loss::MseSum) => {
            let output = exact(net).feedforward[net.depth()].clone();
            let shrunk = output
                .iter()
                .zip(targets)
                .map(|(y, t)| y - (y - t) / factor as f64)
                .collect();
            RandomNetwork {
                targets: RandomTargets::Values(shrunk),
                ..net.clone()
            }
        }
        _ => RandomNetwork {
            loss_rows: Some(net.rows * factor),
            ..net.clone()
        },
    }
}

// ---------------------------------------------------------------------------------------
// R1. Exact is backprop through I + alpha J_g, and equals finite differences
// ---------------------------------------------------------------------------------------

/// Statement: Exact's errors satisfy `delta_l = (I + alpha J_g(vhat_l))^T delta_{l+1}` for
/// residual layers (`J_{l+1}^T delta_{l+1}` for plain ones) and its updates are the
/// naive VJP's parameter gradients at `(vhat_{l-1}, delta_l)`; its feedforward values are
/// the naive forward pass `vhat_l = vhat_{l-1} + alpha g(vhat_{l-1})`.
///
/// Conditions: any residual network of the strategy (every activation, loss and alpha).
///
/// Tolerance: elementwise `|exact - naive| <= 1e-12 a` with `a` the same computation in
/// absolute values (each element is a sum of at most ~100 products, whose rounding in
/// any order is at most `100 u a`, 1.1e-14 a).
#[test]
fn residual_exact_is_backprop() {
    proptest!(cases(128), |(net in residual_networks())| {
        let exact = exact(&net);
        let within = |got: &[f64], want: &[f64], scale: &[f64]| {
            got.iter().zip(want).zip(scale).all(|((g, w), s)| (g - w).abs() <= 1e-12 * s)
        };
        for l in 1..=net.depth() {
            let (_, forward) = {
                let offset = net.spec().parameter_offset(l);
                naive_layer(&net.layers[l - 1], &net.params[offset..], &exact.feedforward[l - 1])
            };
            let magnitudes = {
                let absolute: Vec<f64> = net.params.iter().map(|p| p.abs()).collect();
                let input: Vec<f64> = exact.feedforward[l - 1].iter().map(|x| x.abs()).collect();
                let offset = net.spec().parameter_offset(l);
                let mut op_in = input.clone();
                let mut poffset = offset;
                for op in net.layers[l - 1].ops() {
                    op_in = match op {
                        Op::Linear { .. } => naive_op(op, &absolute[poffset..], &op_in),
                        // Every activation is 1-Lipschitz with |f(z)| <= |z| + 1.
                        _ => op_in.iter().map(|z| z + 1.0).collect(),
                    };
                    poffset += op.parameter_len();
                }
                let alpha = net.layers[l - 1].residual_scale().map_or(0.0, f64::abs);
                let skip = f64::from(net.layers[l - 1].residual_scale().is_some());
                input.iter().zip(&op_in).map(|(x, g)| skip * x + alpha.max(1.0) * g).collect::<Vec<f64>>()
            };
            prop_assert!(within(&exact.feedforward[l], &forward, &magnitudes), "vhat of layer {l}");
            let (_, gradient) = naive_vjp(&net, l, &exact.feedforward[l - 1], &exact.errors[l], false);
            let (_, gradient_scale) = naive_vjp(&net, l, &exact.feedforward[l - 1], &exact.errors[l], true);
            prop_assert!(within(&layer_params(&net, l, &exact.updates), &gradient, &gradient_scale), "updates of layer {l}");
            if l > 1 {
                let (pulled, _) = naive_vjp(&net, l, &exact.feedforward[l - 1], &exact.errors[l], false);
                let (pulled_scale, _) = naive_vjp(&net, l, &exact.feedforward[l - 1], &exact.errors[l], true);
                prop_assert!(within(&exact.errors[l - 1], &pulled, &pulled_scale), "delta of layer {}", l - 1);
            }
        }
    });
}

/// Statement: Exact's updates are `dLoss/dtheta` and its errors `dLoss/dvhat_l` on
/// residual networks, against central differences of the naive loss.
///
/// Conditions: ReLU-type activation inputs at least 1e-3 from the kink at the
/// feedforward pass (so the `h = 1e-6` stencil never crosses it; others are discarded).
///
/// Tolerance: `|fd - g| <= 1e-6 (|g| + 1e-3 max|g|) + 1e-8 (|Loss| + max|y|) + 1e-12`,
/// `y = vhat_L`: the dense suite's fact 1 with the rounding term widened by the outputs'
/// size. The naive cross-entropy `max + ln sum exp(y - max) - y_class` subtracts logits
/// of size `max|y|`, so when the loss is tiny (a confident, correct output: loss 1e-6 was
/// met) it errs by a few `u max|y|`, not `u |Loss|`, and the difference divides that by
/// `h`.
#[test]
fn residual_exact_matches_finite_differences() {
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 16);
    proptest!(cases(64), |(net in residual_networks(), picks in indices)| {
        let exact = exact(&net);
        prop_assume!(margin_at(&net, &exact.feedforward) >= 1e-3);
        let h = 1e-6;
        let outputs = exact.feedforward[net.depth()].iter().fold(0.0_f64, |m, y| m.max(y.abs()));
        let loss = naive_loss_from(&net, &net.params, 0, &net.inputs).abs() + outputs;
        let check = |fd: f64, g: f64, scale: f64| fd.is_finite() && (fd - g).abs() <= 1e-6 * (g.abs() + 1e-3 * scale) + 1e-8 * loss + 1e-12;
        let scale = exact.updates.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
        for pick in &picks {
            let i = pick.index(net.params.len());
            let fd = central_difference(&net.params, i, h, |p| naive_loss_from(&net, p, 0, &net.inputs));
            prop_assert!(check(fd, exact.updates[i], scale), "parameter {i}: fd {fd:e}, exact {:e}", exact.updates[i]);
        }
        for l in 1..=net.depth() {
            let delta = &exact.errors[l];
            let vhat = &exact.feedforward[l];
            let scale = delta.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
            for pick in picks.iter().take(4) {
                let i = pick.index(vhat.len());
                let fd = central_difference(vhat, i, h, |v| naive_loss_from(&net, &net.params, l, v));
                prop_assert!(check(fd, delta[i], scale), "layer {l}, element {i}: fd {fd:e}, delta {:e}", delta[i]);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// R2. FixedPred with eta = 1, n >= L is backprop
// ---------------------------------------------------------------------------------------

/// Statement: FixedPred with `eta = 1` and `n >= L` equals Exact on residual networks:
/// errors, updates and hidden beliefs `vhat_l - delta_l`.
///
/// Conditions: any residual network, `n` in `L..=L+3`.
///
/// Tolerance: 1e-12 relative per layer (f64), 1e-5 (f32): with `eta = 1` an iteration is
/// the shift `e_l <- J_{l+1}^T e_{l+1}`, the same products as Exact's sweep.
#[test]
fn residual_fixed_pred_step_one_is_backprop() {
    proptest!(cases(128), |(net in residual_networks(), extra in 0..=3usize)| {
        let depth = net.depth();
        let n = depth + extra;
        let backprop = exact(&net);
        let fixed = run(&net, &Settings::fixed_pred(1.0, n)).unwrap();
        for l in 1..=depth {
            prop_assert!(close(&fixed.errors[l], &backprop.errors[l], 1e-12), "errors of layer {l}");
            let (pc, bp) = (layer_params(&net, l, &fixed.updates), layer_params(&net, l, &backprop.updates));
            prop_assert!(close(&pc, &bp, 1e-12), "updates of layer {l}");
        }
        for l in 1..depth {
            let expected: Vec<f64> = backprop.feedforward[l].iter().zip(&backprop.errors[l]).map(|(v, d)| v - d).collect();
            prop_assert!(close(&fixed.beliefs[l], &expected, 1e-12), "beliefs of layer {l}");
        }
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
// R3. Signal front
// ---------------------------------------------------------------------------------------

/// Statement: from the feedforward start, after `n < L - l + 1` iterations layer `l`'s
/// errors and updates are exactly zero on residual networks, for FixedPred and Strict.
/// The skip does not shortcut the front: `I + alpha J_g` is still one layer's Jacobian,
/// applied once per synchronous iteration.
///
/// Conditions: residual networks with `L >= 2`, `n` in `1..L`; Strict with the safe
/// step size capped at a step in `[0.01, 0.2]`.
///
/// Tolerance: none (every value equals `0.0`).
#[test]
fn residual_signal_front() {
    proptest!(cases(96), |(net in residual_networks(), pick in any::<proptest::sample::Index>(), eta in 0.05..1.95f64, strict_eta in 0.01..0.2f64)| {
        let depth = net.depth();
        prop_assume!(depth >= 2);
        let n = 1 + pick.index(depth - 1);
        let settings = [
            ("FixedPred", Settings::fixed_pred(eta, n)),
            ("FixedPred, eta = 1", Settings::fixed_pred(1.0, n)),
            ("Strict", Settings::strict(strict_eta, n).with_safe_step_size()),
        ];
        for (name, settings) in settings {
            let result = run(&net, &settings).unwrap();
            for l in (1..=depth).filter(|&l| n < depth - l + 1) {
                prop_assert!(result.errors[l].iter().all(|&e| e == 0.0), "{name}: errors of layer {l} after {n} iterations");
                prop_assert!(layer_params(&net, l, &result.updates).iter().all(|&g| g == 0.0), "{name}: updates of layer {l}");
            }
            prop_assert!(matches!(settings.algorithm, Algorithm::FixedPred | Algorithm::Strict));
        }
    });
}

// ---------------------------------------------------------------------------------------
// R4. FixedPred's binomial law
// ---------------------------------------------------------------------------------------

/// Statement: for any `eta` in `(0, 2)` and `n >= 1`, FixedPred's errors on residual
/// networks are `epsilon_l = c_l delta_l` and its updates `c_l gradient_l`, with the
/// dense law's `c_l = sum_{j >= L-l} C(n-1, j) eta^j (1-eta)^(n-1-j)`: the derivation
/// uses only `J_{l+1}(vhat_l)^T delta_{l+1} = delta_l`, which holds for
/// `J = I + alpha J_g` (THEORY.md, "Residual layers").
///
/// Conditions: any residual network; `n` in `1..=30`, capped for `eta > 1` where
/// `A = (|eta| + |1 - eta|)^(n-1) <= 1e4`.
///
/// Tolerance: `|epsilon_l - c_l delta_l| <= 1e-10 A |delta_l|` (and for the updates), as
/// the dense suite's fact 4.
#[test]
fn residual_fixed_pred_binomial_law() {
    proptest!(cases(128), |(net in residual_networks(), eta in 0.01..1.99f64, n in 1..=30usize)| {
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
            let expected = scaled(&bp, c);
            let pc = layer_params(&net, l, &fixed.updates);
            prop_assert!(distance(&pc, &expected) <= tolerance * norm(&bp),
                "updates of layer {l}: c = {c}, distance {:e}, |gradient| {:e}", distance(&pc, &expected), norm(&bp));
        }
    });
}

// ---------------------------------------------------------------------------------------
// R5. Strict is gradient descent on the residual energy; its fixed point
// ---------------------------------------------------------------------------------------

/// Statement: one Strict iteration from any beliefs `v` moves the hidden beliefs by
/// `-eta grad F(v)` with `F(v) = sum_{0<l<L} |v_{l-1} + alpha_l g_l(v_{l-1}) - v_l|^2 / 2
/// + Loss(f_L(v_{L-1}))` (residual layers) — central differences of the naive `F`.
///
/// Conditions: residual networks with `L >= 2`; beliefs `vhat + U[-0.5, 0.5]`, ReLU-type
/// activation inputs at least 1e-4 from the kink there (others discarded).
///
/// Tolerance: as the dense suite's fact 6,
/// `|fd - g| <= 1e-6 (|g| + 1e-3 max|g|) + 1e-8 |F| + 1e-12`.
#[test]
fn residual_strict_is_gradient_descent_on_energy() {
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 8);
    proptest!(cases(96), |(net in residual_networks(), seed in any::<u64>(), eta in 0.01..1.0f64, picks in indices)| {
        prop_assume!(net.depth() >= 2);
        let feedforward = exact(&net).feedforward;
        let vhat = hidden(&feedforward);
        let start: Vec<f64> = vhat.iter().zip(perturbation(seed, vhat.len(), 0.5)).map(|(v, p)| v + p).collect();
        // The layer inputs at the moved beliefs: x, then the hidden beliefs.
        let mut inputs = vec![net.inputs.clone()];
        let mut offset = 0;
        for l in 1..net.depth() {
            let len = feedforward[l].len();
            inputs.push(start[offset..offset + len].to_vec());
            offset += len;
        }
        prop_assume!(margin_at(&net, &inputs) >= 1e-4);
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
    });
}

/// Statement: Strict converges on residual networks to `epsilon_l = (I + alpha
/// J_g(v_l))^T epsilon_{l+1}` (the naive VJP at the returned beliefs), and its updates
/// there are `dF/dtheta` (central differences of the naive energy in the parameters).
/// The step is half the stability threshold at `vhat`, from the energy's Hessian-vector
/// products through the residual layers' JVPs (`Settings::with_safe_step`).
///
/// Conditions: smooth residual networks, loss scaled by 0.1 (as the dense fact 7);
/// until the residual is 1e-12.
///
/// Tolerance: residual `<= 1e-9 max(1, |epsilon_L|_inf)`; gradient as in fact 1.
#[test]
fn residual_strict_fixed_point() {
    let indices = proptest::collection::vec(any::<proptest::sample::Index>(), 8);
    proptest!(cases(48), |(net in smooth_residual_networks(), picks in indices)| {
        let depth = net.depth();
        prop_assume!(depth >= 2);
        let net = small_errors(&net, 10);
        let rule = SafeStep { margin: 0.5, ..SafeStep::default() };
        let settings = Settings::strict(1.99, 200_000).with_safe_step(rule).with_tolerance(1e-12);
        let converged = run(&net, &settings).unwrap();
        prop_assert!(converged.report.converged, "not converged: {:?}", converged.report);
        let scale = converged.errors[depth].iter().fold(1.0_f64, |m, e| m.max(e.abs()));
        for l in 1..depth {
            let (pulled, _) = naive_vjp(&net, l + 1, &converged.beliefs[l], &converged.errors[l + 1], false);
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
// R6. The energy's Hessian through residual layers (the safe step's products)
// ---------------------------------------------------------------------------------------

/// Statement: at the feedforward values, the engine's Hessian-vector product (one JVP and
/// one VJP per layer, what `Settings::with_safe_step_size` iterates) is `H u = D^T D u
/// (+ J_L^T (d^2 Loss) J_L u_{L-1})` with `(D u)_l = J_l u_{l-1} - u_l` (`u_0 = 0`) and
/// `J_l = I + alpha J_g` for residual layers: checked against `J_l u` from central
/// differences of the naive layer and `J_l^T w` from the naive VJP.
///
/// Conditions: smooth residual networks with `L >= 2`; the loss term for the squared
/// errors (`d^2 Loss = 2 / (rows outputs)` for MSE, 2 for summed MSE), without it for any
/// loss; a direction uniform in `[-1, 1]`.
///
/// Tolerance: `|H u - naive| <= 1e-7 |naive| + 1e-12` (Euclidean): the central difference
/// of step `1e-5` errs by `h^2 / 6` times the third derivative (~1e-11 relative) plus
/// `u |f| / h ~ 1e-11`.
#[test]
fn residual_hessian_vector_product_is_d_transpose_d() {
    proptest!(cases(64), |(net in smooth_residual_networks(), seed in any::<u64>())| {
        let depth = net.depth();
        prop_assume!(depth >= 2);
        let spec = net.spec();
        let feedforward = exact(&net).feedforward;
        let hidden_len: usize = (1..depth).map(|l| feedforward[l].len()).sum();
        let direction = perturbation(seed, hidden_len, 1.0);
        let mut pieces = vec![vec![0.0; feedforward[0].len()]];
        let mut offset = 0;
        for l in 1..depth {
            pieces.push(direction[offset..offset + feedforward[l].len()].to_vec());
            offset += feedforward[l].len();
        }
        let mse = matches!(net.loss, Loss::Mse | Loss::MseSum);
        for loss_curvature in [false, true].into_iter().filter(|&c| !c || mse) {
            let mut product = vec![0.0; hidden_len];
            let mut workspace = vec![0.0; workspace_len(&spec, net.rows)];
            hessian_vector_product(&spec, &net.params, net.batch(), loss_curvature, &direction, &mut product, &mut workspace).unwrap();
            // J_l u_{l-1} by central differences of the naive layer at vhat_{l-1}.
            let h = 1e-5;
            let push = |l: usize, u: &[f64]| -> Vec<f64> {
                let at = &feedforward[l - 1];
                let plus: Vec<f64> = at.iter().zip(u).map(|(v, d)| v + h * d).collect();
                let minus: Vec<f64> = at.iter().zip(u).map(|(v, d)| v - h * d).collect();
                let (a, b) = (naive_apply(&net, &net.params, l, &plus), naive_apply(&net, &net.params, l, &minus));
                a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * h)).collect()
            };
            let mut expected: Vec<Vec<f64>> = (0..depth).map(|l| vec![0.0; feedforward[l].len()]).collect();
            let top = if loss_curvature { depth } else { depth - 1 };
            for l in 1..=top {
                let pushed = push(l, &pieces[l - 1]);
                // w_l = J_l u_{l-1} - u_l for hidden l; w_L = d^2Loss J_L u_{L-1}.
                let w: Vec<f64> = if l < depth {
                    pushed.iter().zip(&pieces[l]).map(|(j, u)| j - u).collect()
                } else {
                    let curvature = if net.loss == Loss::Mse { 2.0 / (net.rows * spec.output_len()) as f64 } else { 2.0 };
                    pushed.iter().map(|j| curvature * j).collect()
                };
                if l < depth {
                    for (e, w) in expected[l].iter_mut().zip(&w) {
                        *e -= w;
                    }
                }
                if l > 1 {
                    let (pulled, _) = naive_vjp(&net, l, &feedforward[l - 1], &w, false);
                    for (e, p) in expected[l - 1].iter_mut().zip(&pulled) {
                        *e += p;
                    }
                }
            }
            let expected: Vec<f64> = expected[1..].concat();
            prop_assert!(distance(&product, &expected) <= 1e-7 * norm(&expected) + 1e-12,
                "loss curvature {loss_curvature}: |Hu - naive| {:e}, |naive| {:e}", distance(&product, &expected), norm(&expected));
        }
    });
}

// ---------------------------------------------------------------------------------------
// R7. The strategy covers what the statements quantify over
// ---------------------------------------------------------------------------------------

/// The drawn residual networks include every branch kind, residual first and last
/// layers and negative scales (over the first 200 seeds), so the statements above are
/// not vacuous on any of them.
#[test]
fn residual_strategy_covers_its_kinds() {
    let (mut first, mut last, mut negative, mut activation_only, mut mlp) =
        (false, false, false, false, false);
    for seed in 0..200 {
        let net = random_residual(seed, false);
        first |= net.layers[0].residual_scale().is_some();
        last |= net.layers.last().unwrap().residual_scale().is_some();
        for layer in &net.layers {
            if let Some(alpha) = layer.residual_scale() {
                negative |= alpha < 0.0;
                activation_only |= matches!(layer.ops(), [Op::Activation(_)]);
                mlp |= layer.ops().len() >= 3;
            }
        }
    }
    assert!(first && last && negative && activation_only && mlp);
}
