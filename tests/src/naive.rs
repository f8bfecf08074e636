//! An independent, naive f64 model of a dense network: plain loops from the definitions,
//! no pcnet-core kernels, so the theory suites (dense in `theory.rs`, the dense layers of
//! the CNNs in `theory_cnn.rs`) compare pcnet-core with something it does not share code
//! with.
//!
//! Layers are 1-based (the paper's `l`); weights are `out x in`, row-major, followed by
//! the bias, as in pcnet-core.
//!
//! ```
//! use pcnet_core::Activation;
//! use pcnet_tests::naive::{central_difference, naive_activation, naive_derivative};
//!
//! let slope = central_difference(&[0.3], 0, 1e-6, |z| naive_activation(Activation::Tanh, z[0]));
//! assert!((slope - naive_derivative(Activation::Tanh, 0.3)).abs() < 1e-9);
//! ```

// Layers are indexed by the paper's `l` throughout, across several per-layer vectors.
#![allow(clippy::needless_range_loop)]

use crate::relaxation::Run;
use pcnet_core::strategies::{RandomNetwork, RandomTargets};
use pcnet_core::{Activation, Loss};

/// Pre-activations `z` and outputs of layer `l` (1-based) at `input` (rows x width).
pub fn naive_layer(
    net: &RandomNetwork,
    params: &[f64],
    l: usize,
    input: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let widths = net.widths();
    let (inputs, outputs) = (widths[l - 1], widths[l]);
    let offset: usize = widths[..l].windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    let weight = &params[offset..offset + inputs * outputs];
    let bias = &params[offset + inputs * outputs..offset + (inputs + 1) * outputs];
    let activation = net.activations()[l - 1];
    let mut z = Vec::with_capacity(input.len() / inputs * outputs);
    for row in input.chunks_exact(inputs) {
        for o in 0..outputs {
            let mut sum = bias[o];
            for (w, x) in weight[o * inputs..(o + 1) * inputs].iter().zip(row) {
                sum += w * x;
            }
            z.push(sum);
        }
    }
    let a = z.iter().map(|&z| naive_activation(activation, z)).collect();
    (z, a)
}

/// The activation `f(z)`, written out from its definition.
pub fn naive_activation(activation: Activation, z: f64) -> f64 {
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
        #[allow(unreachable_patterns)] // `Activation` is to become #[non_exhaustive]
        other => panic!("the naive reference has no activation {other:?}"),
    }
}

/// The activation's derivative `f'(z)`, written out from its definition.
pub fn naive_derivative(activation: Activation, z: f64) -> f64 {
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
        #[allow(unreachable_patterns)] // `Activation` is to become #[non_exhaustive]
        other => panic!("the naive reference has no activation {other:?}"),
    }
}

/// `J_l(input)^T cotangent` for layer `l`, per row.
pub fn naive_vjp(net: &RandomNetwork, l: usize, input: &[f64], cotangent: &[f64]) -> Vec<f64> {
    let widths = net.widths();
    let (inputs, outputs) = (widths[l - 1], widths[l]);
    let offset: usize = widths[..l].windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    let weight = &net.params[offset..offset + inputs * outputs];
    let activation = net.activations()[l - 1];
    let (z, _) = naive_layer(net, &net.params, l, input);
    let mut result = vec![0.0; input.len()];
    for (r, out) in result.chunks_exact_mut(inputs).enumerate() {
        for o in 0..outputs {
            let g = cotangent[r * outputs + o] * naive_derivative(activation, z[r * outputs + o]);
            for i in 0..inputs {
                out[i] += g * weight[o * inputs + i];
            }
        }
    }
    result
}

/// The batch loss of `output` (mean over the rows as pcnet-core and PyTorch define it).
pub fn naive_loss(net: &RandomNetwork, output: &[f64]) -> f64 {
    let outputs = *net.widths().last().unwrap();
    match (&net.targets, net.loss) {
        (RandomTargets::Values(targets), Loss::Mse | Loss::MseSum) => {
            let sum: f64 = output
                .iter()
                .zip(targets)
                .map(|(y, t)| (y - t).powi(2))
                .sum();
            if net.loss == Loss::Mse {
                sum / (net.loss_rows.unwrap_or(net.rows) * outputs) as f64
            } else {
                sum
            }
        }
        (RandomTargets::Classes(classes), Loss::CrossEntropy) => {
            let mut total = 0.0;
            for (row, &class) in output.chunks_exact(outputs).zip(classes) {
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                total += max + sum.ln() - row[class];
            }
            total / net.loss_rows.unwrap_or(net.rows) as f64
        }
        _ => unreachable!("the strategies pair losses with their targets"),
    }
}

/// The loss of the feedforward pass with parameters `params`.
pub fn naive_network_loss(net: &RandomNetwork, params: &[f64]) -> f64 {
    let mut values = net.inputs.clone();
    for l in 1..=net.depth() {
        values = naive_layer(net, params, l, &values).1;
    }
    naive_loss(net, &values)
}

/// The loss as a function of `v_l` (the forward pass continued from layer `l + 1`).
pub fn naive_loss_from(net: &RandomNetwork, l: usize, belief: &[f64]) -> f64 {
    let mut values = belief.to_vec();
    for k in l + 1..=net.depth() {
        values = naive_layer(net, &net.params, k, &values).1;
    }
    naive_loss(net, &values)
}

/// The energy `F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + Loss(f_L(v_{L-1}))` with
/// `v_0 = x` and the hidden beliefs `hidden` (layer after layer), parameters `params`.
pub fn naive_energy(net: &RandomNetwork, params: &[f64], hidden: &[f64]) -> f64 {
    let widths = net.widths();
    let mut below = net.inputs.clone();
    let mut offset = 0;
    let mut energy = 0.0;
    for l in 1..net.depth() {
        let len = net.rows * widths[l];
        let belief = &hidden[offset..offset + len];
        offset += len;
        let prediction = naive_layer(net, params, l, &below).1;
        energy += prediction
            .iter()
            .zip(belief)
            .map(|(p, v)| (p - v).powi(2))
            .sum::<f64>()
            / 2.0;
        below = belief.to_vec();
    }
    energy + naive_loss(net, &naive_layer(net, params, net.depth(), &below).1)
}

/// A first-order bound on the rounding error of [`naive_energy`] at `hidden` (f64, unit
/// roundoff `u`). Each error `epsilon_i = f(z_i) - v_i` is computed from values of size
/// `s_i = |z|_i + |f(z_i)| + |v_i|`, where `|z|_i = sum_j |w_ij| |x_j| + |b_i|` bounds the
/// dot product's terms: the dot product of `n` inputs errs by at most `(n + 1) u |z|_i`,
/// the activation (Lipschitz constant at most 1 for every activation here) passes that on
/// and adds `2 u |f(z_i)|` (libm), the subtraction `u |epsilon_i|`; so `|d epsilon_i| <=
/// (n + 4) u s_i`, and `|epsilon_i|^2 / 2` errs by `|epsilon_i| |d epsilon_i|`. The loss
/// term errs by `|dLoss/dy_i| |d y_i|` plus its own evaluation (`4 u` times the sizes it
/// sums); the sums over `m` terms add `m u` times the term. The energy is tiny where the
/// beliefs sit near their minimum, but its errors are differences of O(1) values, so
/// this absolute floor, not a fraction of `F`, is what two evaluations can disagree by.
pub fn naive_energy_rounding(net: &RandomNetwork, params: &[f64], hidden: &[f64]) -> f64 {
    let u = f64::EPSILON / 2.0;
    let widths = net.widths();
    let magnitudes: Vec<f64> = params.iter().map(|p| p.abs()).collect();
    let mut below = net.inputs.clone();
    let mut offset = 0;
    let mut bound = 0.0;
    for l in 1..=net.depth() {
        let (_, prediction) = naive_layer(net, params, l, &below);
        let sizes = naive_layer(
            net,
            &magnitudes,
            l,
            &below.iter().map(|x| x.abs()).collect::<Vec<_>>(),
        )
        .0;
        let factor = (widths[l - 1] + 4) as f64 * u;
        let len = prediction.len() as f64;
        if l < net.depth() {
            let belief = &hidden[offset..offset + prediction.len()];
            offset += prediction.len();
            for ((p, v), size) in prediction.iter().zip(belief).zip(&sizes) {
                let error = (p - v).abs();
                bound +=
                    error * factor * (size + p.abs() + v.abs()) + 4.0 * len * u * error * error;
            }
            below = belief.to_vec();
        } else {
            // |dLoss/dy_i|, bounded by its largest form for the loss.
            let outputs = widths[l];
            let rows = net.loss_rows.unwrap_or(net.rows) as f64;
            let loss = naive_loss(net, &prediction);
            let gradient: Vec<f64> = match &net.targets {
                RandomTargets::Values(targets) => prediction
                    .iter()
                    .zip(targets)
                    .map(|(y, t)| {
                        2.0 * (y - t).abs()
                            * if net.loss == Loss::Mse {
                                1.0 / (rows * outputs as f64)
                            } else {
                                1.0
                            }
                    })
                    .collect(),
                RandomTargets::Classes(_) => vec![2.0 / rows; prediction.len()],
            };
            let largest = prediction.iter().fold(0.0_f64, |m, y| m.max(y.abs()));
            for ((g, y), size) in gradient.iter().zip(&prediction).zip(&sizes) {
                bound += g * factor * (size + y.abs());
            }
            bound += 4.0 * (len + 4.0) * u * (loss.abs() + largest * net.rows as f64);
        }
    }
    bound
}

/// Smallest `|z|` over ReLU-type pre-activations of layers `2..=L` at the hidden beliefs
/// `hidden` (layer 1 sees the clamped input only).
pub fn relu_margin_at(net: &RandomNetwork, hidden: &[f64]) -> f64 {
    let widths = net.widths();
    let mut margin = net.relu_margin();
    let mut offset = 0;
    for l in 1..net.depth() {
        let len = net.rows * widths[l];
        let belief = &hidden[offset..offset + len];
        offset += len;
        if !net.activations()[l].is_smooth() {
            let (z, _) = naive_layer(net, &net.params, l + 1, belief);
            margin = z.iter().fold(margin, |m, z| m.min(z.abs()));
        }
    }
    margin
}

/// Central difference of `f` in coordinate `index` of `point`, step `h`.
pub fn central_difference(point: &[f64], index: usize, h: f64, f: impl Fn(&[f64]) -> f64) -> f64 {
    let mut moved = point.to_vec();
    moved[index] = point[index] + h;
    let plus = f(&moved);
    moved[index] = point[index] - h;
    let minus = f(&moved);
    (plus - minus) / (2.0 * h)
}

/// Backprop in absolute values: `a_L = |delta_L|`, `a_l = |J_{l+1}(vhat_l)|^T a_{l+1}`,
/// the scale of the rounding errors of any computation of `delta_l` by products.
pub fn absolute_deltas(net: &RandomNetwork, backprop: &Run<f64>) -> Vec<Vec<f64>> {
    let depth = net.depth();
    let widths = net.widths();
    let mut result = vec![Vec::new(); depth + 1];
    result[depth] = backprop.errors[depth].iter().map(|e| e.abs()).collect();
    for l in (1..depth).rev() {
        let (inputs, outputs) = (widths[l], widths[l + 1]);
        let offset = net.spec().parameter_offset(l + 1);
        let weight = &net.params[offset..offset + inputs * outputs];
        let activation = net.activations()[l];
        let (z, _) = naive_layer(net, &net.params, l + 1, &backprop.feedforward[l]);
        let mut a = vec![0.0; net.rows * inputs];
        for r in 0..net.rows {
            for o in 0..outputs {
                let g = result[l + 1][r * outputs + o]
                    * naive_derivative(activation, z[r * outputs + o]).abs();
                for i in 0..inputs {
                    a[r * inputs + i] += g * weight[o * inputs + i].abs();
                }
            }
        }
        result[l] = a;
    }
    result
}
