//! Which step size Strict PC converges with: the curvature of its energy.
//!
//! Strict PC is gradient descent with step `eta` on the energy
//! `F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + Loss(f_L(v_{L-1}), y)` in the hidden
//! beliefs `v_1..v_{L-1}` (input clamped). Near the feedforward values (small errors) one
//! iteration is `u <- u - eta (H u - b)` with `H` the Hessian of `F` in the hidden beliefs,
//! so the relaxation converges exactly when `eta < 2 / lambda_max(H)`. Samples do not
//! interact, so `H` is block diagonal over the batch and `lambda_max` is the largest of
//! the per-sample values. Per sample, `H` is block tridiagonal (Rosenbaum 2022; see
//! `THEORY.md`, T6), with `J_l = J_l(vhat_{l-1})`:
//!
//! * `H_{l,l} = I + J_{l+1}^T J_{l+1}` for `l <= L - 2`,
//! * `H_{L-1,L-1} = I + J_L^T (d^2 Loss / dy^2) J_L`,
//! * `H_{l,l+1} = H_{l+1,l}^T = -J_{l+1}^T`.
//!
//! This is `D^T D + J_L^T (d^2 Loss) J_L` with `D` the Jacobian of the residuals
//! `f_l(v_{l-1}) - v_l`: unit block-triangular, so `det(D^T D) = 1` and `lambda_max >= 1`;
//! the safe step is therefore never above 2. It is the exact Hessian of `F` at
//! `v = vhat` up to the term `sum_k dLoss/dy_k * d^2 y_k / dv^2`, which vanishes with the
//! output error (the small-error regime).
//!
//! [`safe_step_size`] estimates `lambda_max` by power iteration on Hessian-vector
//! products (one forward-mode and one reverse-mode product per layer and iteration, no
//! matrix is formed), per sample, in the caller's workspace, and returns
//! `margin * 2 / lambda_max`. The power iteration approaches `lambda_max` from below
//! (its Rayleigh quotients never exceed it); the default margin of 0.9 absorbs an
//! underestimate of up to 10%. [`Settings::with_safe_step_size`](crate::Settings::with_safe_step_size)
//! makes Strict compute it for every batch before relaxing.
//!
//! # Example
#![cfg_attr(feature = "safe-step", doc = "```")]
#![cfg_attr(not(feature = "safe-step"), doc = "```ignore")]
//! use pcnet_core::{safe_step_size, Activation, Batch, Layer, Loss, NetworkSpec, SafeStep, Targets};
//! let layers = [
//!     Layer::dense(2, 4, Activation::Tanh),
//!     Layer::dense(4, 4, Activation::Tanh),
//!     Layer::dense(4, 1, Activation::Identity),
//! ];
//! let spec = NetworkSpec::new(&layers, Loss::Mse);
//! let params: Vec<f64> = (0..spec.parameter_len()).map(|i| ((i * 7) % 5) as f64 / 4.0 - 0.5).collect();
//! let batch = Batch::new(&[0.5, -1.0], Targets::Values(&[0.25]));
//! let mut workspace = vec![0.0; pcnet_core::stability::workspace_len(&spec, 1)];
//! let curvature = safe_step_size(&spec, &params, batch, &SafeStep::default(), &mut workspace)?;
//! assert!(curvature.lambda_max >= 1.0);
//! assert!(curvature.step_size > 0.0 && curvature.step_size < 2.0);
//! assert!((curvature.step_size - 0.9 * 2.0 / curvature.lambda_max).abs() < 1e-15);
//! # Ok::<(), pcnet_core::PcError>(())
//! ```

#[cfg(feature = "safe-step")]
use super::{activation_range, check_problem, region_lens, InputBelief, Problem, Regions};
use crate::NetworkSpec;
#[cfg(feature = "safe-step")]
use crate::{
    error::{check_finite, check_len},
    Backend, Batch, Loss, PcError, Portable, Scalar, Settings, Targets, MAX_ITERATIONS,
};

/// How [`safe_step_size`] estimates the largest curvature and turns it into a step size.
///
/// # Example
/// ```
/// use pcnet_core::SafeStep;
/// let rule = SafeStep { margin: 0.5, ..SafeStep::default() };
/// assert_eq!(rule.iterations, 200);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SafeStep {
    /// The step size is `margin * 2 / lambda_max`, with `margin` in `(0, 1)`; default 0.9.
    pub margin: f64,
    /// Most power iterations (Hessian-vector products), at least 1; default 200.
    pub iterations: usize,
    /// Stop once the estimate changes by at most this fraction between two iterations;
    /// default `1e-8`. Power iteration can stall on a plateau below `lambda_max` (a
    /// start with little weight on the top eigenvector, or eigenvalues close together),
    /// where a loose tolerance stops it early: over 20,000 random smooth CNNs
    /// (`pcnet_core::strategies::random_cnn`), `1e-6` within 100 iterations gave estimates
    /// down to 0.89 `lambda_max`, more than the 10% the default margin allows (and Strict
    /// then rose in energy); `1e-8` within 200 gave at worst 0.965, at about 2.4 times the
    /// Hessian-vector products (94 on average instead of 39).
    pub tolerance: f64,
    /// Include the loss curvature `J_L^T (d^2 Loss) J_L` in the last block (default
    /// `true`; `false` gives the residual part `D^T D` alone, as in the identity-chain
    /// closed form of `THEORY.md`).
    pub loss_curvature: bool,
}

impl Default for SafeStep {
    fn default() -> Self {
        SafeStep {
            margin: 0.9,
            iterations: 200,
            tolerance: 1e-8,
            loss_curvature: true,
        }
    }
}

impl SafeStep {
    #[cfg(feature = "safe-step")]
    pub(crate) fn validate(&self) -> Result<(), PcError> {
        if !(self.margin > 0.0 && self.margin < 1.0) {
            return Err(PcError::InvalidHyperparameter {
                name: "safe step margin",
                value: self.margin,
                min: core::ops::Bound::Excluded(0.0),
                max: core::ops::Bound::Excluded(1.0),
            });
        }
        if self.iterations == 0 || self.iterations > MAX_ITERATIONS {
            return Err(PcError::InvalidHyperparameter {
                name: "power iterations",
                value: self.iterations as f64,
                min: core::ops::Bound::Included(1.0),
                max: core::ops::Bound::Included(MAX_ITERATIONS as f64),
            });
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(PcError::InvalidHyperparameter {
                name: "power iteration tolerance",
                value: self.tolerance,
                min: core::ops::Bound::Included(0.0),
                max: core::ops::Bound::Unbounded,
            });
        }
        Ok(())
    }
}

/// What [`safe_step_size`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Curvature<T> {
    /// The estimate of `lambda_max(H)`, the largest over the samples (0 when the network
    /// has no hidden layer, so nothing relaxes).
    pub lambda_max: T,
    /// `margin * 2 / max(lambda_max, 1)`, in `(0, 2)`.
    pub step_size: T,
    /// Power iterations carried out.
    pub iterations: usize,
}

/// Length of the workspace [`safe_step_size`] and [`hessian_vector_product`] need for
/// `rows` samples: the same as [`NetworkSpec::workspace_len`], so Strict computes its
/// step size in its own workspace.
pub const fn workspace_len(spec: &NetworkSpec<'_>, rows: usize) -> usize {
    spec.workspace_len(rows)
}

#[cfg(feature = "safe-step")]
/// Estimates `lambda_max` of the Strict energy's Hessian in the hidden beliefs at the
/// feedforward values (per sample, the largest over the batch; input clamped) and
/// returns the step size `rule.margin * 2 / lambda_max` (see the [module docs](self)).
///
/// # Errors
/// As [`infer`](crate::infer) for the network, parameters and batch; a workspace shorter
/// than [`workspace_len`]; [`PcError::InvalidHyperparameter`] for a rule out of range.
pub fn safe_step_size<T: Scalar>(
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    rule: &SafeStep,
    workspace: &mut [T],
) -> Result<Curvature<T>, PcError> {
    safe_step_size_with(&Portable, spec, params, batch, rule, workspace)
}

#[cfg(feature = "safe-step")]
/// As [`safe_step_size`], with the forward pass on `backend`'s kernels.
pub fn safe_step_size_with<T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    rule: &SafeStep,
    workspace: &mut [T],
) -> Result<Curvature<T>, PcError> {
    rule.validate()?;
    let settings = Settings::strict(T::one(), 0);
    spec.check_parameters(params)?;
    let rows = check_problem(
        spec,
        batch,
        &settings,
        workspace.len(),
        spec.parameter_len(),
        true,
    )?;
    let lens = region_lens(spec, rows);
    let used: usize = lens.iter().sum();
    let problem = Problem {
        backend,
        spec: *spec,
        params,
        rows,
        batch,
        settings: &settings,
    };
    let mut regions = Regions::split(&mut workspace[..used], lens);
    problem.feedforward(&mut regions);
    Ok(estimate(&problem, &mut regions, rule))
}

#[cfg(feature = "safe-step")]
/// Writes `H u` into `product` for a direction `u` of hidden beliefs (`v_1..v_{L-1}`,
/// each rows x width, layer after layer: the layout of
/// [`Settings::initial_beliefs`](crate::Settings::initial_beliefs)), with `H` the Hessian of
/// the module docs at the feedforward values, input clamped; `loss_curvature` as in
/// [`SafeStep::loss_curvature`].
///
/// # Errors
/// As [`safe_step_size`]; [`PcError::LengthMismatch`] when `direction` or `product` do not
/// have the hidden beliefs' length; [`PcError::NonFinite`] for a non-finite direction.
pub fn hessian_vector_product<T: Scalar>(
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    loss_curvature: bool,
    direction: &[T],
    product: &mut [T],
    workspace: &mut [T],
) -> Result<(), PcError> {
    let settings = Settings::strict(T::one(), 0);
    spec.check_parameters(params)?;
    let rows = check_problem(
        spec,
        batch,
        &settings,
        workspace.len(),
        spec.parameter_len(),
        true,
    )?;
    let hidden = rows * (spec.activation_len() - spec.input_len() - spec.output_len());
    check_len("direction", hidden, direction.len())?;
    check_len("product", hidden, product.len())?;
    check_finite("direction", direction)?;
    let lens = region_lens(spec, rows);
    let used: usize = lens.iter().sum();
    let problem = Problem {
        backend: &Portable,
        spec: *spec,
        params,
        rows,
        batch,
        settings: &settings,
    };
    let mut regions = Regions::split(&mut workspace[..used], lens);
    problem.feedforward(&mut regions);
    let moving = hidden_range(&problem, 1);
    regions.beliefs[moving.clone()].copy_from_slice(direction);
    apply_hessian(&problem, &mut regions, 1, loss_curvature);
    product.copy_from_slice(&regions.predictions[moving]);
    Ok(())
}

#[cfg(feature = "safe-step")]
/// The beliefs that move, `v_lowest..v_{L-1}`, as a range of an activation region.
fn hidden_range<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    lowest: usize,
) -> core::ops::Range<usize> {
    let (spec, rows) = (&problem.spec, problem.rows);
    activation_range(spec, rows, lowest).start..activation_range(spec, rows, spec.depth()).start
}

#[cfg(feature = "safe-step")]
/// Power iteration in a workspace whose feedforward pass is done. Uses the beliefs
/// (direction `u`), errors (`D u`, and `J_L u_{L-1}` in the output slot), predictions
/// (`H u`), scratch and VJP regions; leaves `vhat`, the traces and dLoss/dy untouched.
// Not inlined into `infer_with`, whose frame would otherwise carry it on every call.
#[inline(never)]
pub(crate) fn estimate<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    rule: &SafeStep,
) -> Curvature<T> {
    let lowest = if problem.settings.input == InputBelief::Free {
        0
    } else {
        1
    };
    let margin_twice = T::from_f64(2.0 * rule.margin);
    let moving = hidden_range(problem, lowest);
    if moving.is_empty() {
        return Curvature {
            lambda_max: T::zero(),
            step_size: positive(margin_twice),
            iterations: 0,
        };
    }
    // A fixed start with no structure (so it is not orthogonal to the top eigenvector
    // of any sample but by accident), the same on every run.
    for (index, value) in regions.beliefs[moving.clone()].iter_mut().enumerate() {
        let mut hash = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        hash ^= hash >> 31;
        // Uniform in [-1, 1) from the top 53 bits.
        *value = T::from_f64((hash >> 11) as f64 / (1u64 << 52) as f64 - 1.0);
    }
    normalise_rows(problem, lowest, regions.beliefs, None);

    let tolerance = T::from_f64(rule.tolerance);
    let mut lambda = T::zero();
    let mut iterations = 0;
    for iteration in 1..=rule.iterations {
        apply_hessian(problem, regions, lowest, rule.loss_curvature);
        // Rayleigh quotient per sample (u has unit norm per sample), then u <- H u / |H u|.
        let estimate = normalise_rows(
            problem,
            lowest,
            regions.predictions,
            Some(&*regions.beliefs),
        );
        regions.beliefs[moving.clone()].copy_from_slice(&regions.predictions[moving.clone()]);
        iterations = iteration;
        let change = (estimate - lambda).abs();
        lambda = estimate;
        if !lambda.is_finite() || change <= tolerance * lambda {
            break;
        }
    }
    let floor = T::one();
    Curvature {
        lambda_max: lambda,
        step_size: positive(margin_twice / if lambda > floor { lambda } else { floor }),
        iterations,
    }
}

#[cfg(feature = "safe-step")]
/// `step`, or the smallest positive normal value when it underflowed to zero (a tiny
/// margin in `f32`, or a huge curvature), so the step size stays in `(0, 2)`.
fn positive<T: Scalar>(step: T) -> T {
    if step > T::zero() {
        step
    } else {
        T::min_positive_value()
    }
}

#[cfg(feature = "safe-step")]
/// Scales each sample's part of the moving beliefs in `vectors` to unit norm. With
/// `directions` (unit per sample), returns the largest `directions_r . vectors_r` over the
/// samples (taken before scaling), else zero.
fn normalise_rows<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    lowest: usize,
    vectors: &mut [T],
    directions: Option<&[T]>,
) -> T {
    let (spec, rows, depth) = (&problem.spec, problem.rows, problem.spec.depth());
    // Each moving layer's (offset, width) in an activation region, walked layer by layer.
    let moving_layers = || {
        let first = activation_range(spec, rows, lowest);
        let first_width = spec.width(lowest);
        (lowest..depth).scan((first.start, first_width), move |state, layer| {
            let here = *state;
            let width = spec.layers()[layer].output_len(here.1);
            *state = (here.0 + rows * here.1, width);
            Some(here)
        })
    };
    let mut largest = T::zero();
    for row in 0..rows {
        let (mut squares, mut quotient) = (T::zero(), T::zero());
        for (offset, width) in moving_layers() {
            let start = offset + row * width;
            let part = &vectors[start..start + width];
            squares = crate::kernels::portable::dot(part, part) + squares;
            if let Some(directions) = directions {
                quotient = crate::kernels::portable::dot(&directions[start..start + width], part)
                    + quotient;
            }
        }
        largest = crate::scalar::max_or_nan(largest, quotient);
        let scale = if squares > T::zero() {
            T::one() / squares.sqrt_libm()
        } else {
            T::zero()
        };
        for (offset, width) in moving_layers() {
            let start = offset + row * width;
            for value in &mut vectors[start..start + width] {
                *value = *value * scale;
            }
        }
    }
    largest
}

#[cfg(feature = "safe-step")]
/// `predictions[hidden] = H beliefs[hidden]`, `H = D^T D + J_L^T (d^2 Loss) J_L` at the
/// feedforward values, for the beliefs `lowest..L-1`.
fn apply_hessian<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    lowest: usize,
    loss_curvature: bool,
) {
    apply_hessian_at(problem, regions, None, lowest, loss_curvature);
}

#[cfg(feature = "safe-step")]
/// As [`apply_hessian`], at the evaluation point whose layer inputs are in `vhat` (with
/// their traces) and whose layer outputs `f_l(v_{l-1})` are in `at_outputs` (`None`: in
/// `vhat`, the feedforward values).
pub(crate) fn apply_hessian_at<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    at_outputs: Option<&[T]>,
    lowest: usize,
    loss_curvature: bool,
) {
    let (spec, rows, depth) = (&problem.spec, problem.rows, problem.spec.depth());
    // w = D u: w_l = J_l u_{l-1} - u_l (u_{lowest - 1} = 0), and w_L = J_L u_{L-1}.
    let top = if loss_curvature { depth } else { depth - 1 };
    let subtract_beliefs = |regions: &mut Regions<'_, T>, here: core::ops::Range<usize>| {
        for (w, &u) in regions.errors[here.clone()]
            .iter_mut()
            .zip(&regions.beliefs[here])
        {
            *w = *w - u;
        }
    };
    if lowest <= top {
        let here = activation_range(spec, rows, lowest);
        regions.errors[here.clone()].fill(T::zero());
        if lowest < depth {
            subtract_beliefs(regions, here);
        }
    }
    for (layer, slot) in problem.slots(lowest + 1, top) {
        let here = slot.output_offset..slot.output_offset + rows * slot.output_width;
        let outputs = at_outputs.unwrap_or(&*regions.vhat);
        let values = slot.values(rows, regions.vhat, regions.traces, outputs);
        let pushed = &mut regions.vjp[..rows * slot.output_width];
        problem.view(layer, &slot).jvp(
            &values,
            &regions.beliefs[slot.input_offset..slot.output_offset],
            regions.scratch,
            pushed,
        );
        regions.errors[here.clone()].copy_from_slice(pushed);
        if layer < depth {
            subtract_beliefs(regions, here);
        }
    }
    // The loss curvature applied to w_L, into the output slot of `predictions`.
    let output = activation_range(spec, rows, depth);
    if loss_curvature {
        loss_hessian_product(
            problem,
            &at_outputs.unwrap_or(&*regions.vhat)[output.clone()],
            &regions.errors[output.clone()],
            &mut regions.predictions[output.clone()],
        );
    } else {
        regions.predictions[output.clone()].fill(T::zero());
    }
    // H u = D^T w (+ J_L^T r): (H u)_l = -w_l + J_{l+1}^T w_{l+1}, with w_L replaced by
    // the loss term r.
    for (layer_above, slot) in problem.slots(lowest + 1, depth) {
        let here = slot.input_offset..slot.output_offset;
        let above = slot.output_offset..slot.output_offset + rows * slot.output_width;
        let cotangent: &[T] = if layer_above == depth {
            &regions.predictions[above.clone()]
        } else {
            &regions.errors[above.clone()]
        };
        let outputs = at_outputs.unwrap_or(&*regions.vhat);
        let values = slot.values(rows, regions.vhat, regions.traces, outputs);
        let pulled = &mut regions.vjp[..rows * slot.input_width];
        problem.backward_layer(
            layer_above,
            &slot,
            &values,
            cotangent,
            regions.scratch,
            Some(&mut *pulled),
            None,
        );
        for ((h, &w), &p) in regions.predictions[here.clone()]
            .iter_mut()
            .zip(&regions.errors[here])
            .zip(pulled.iter())
        {
            *h = p - w;
        }
    }
}

#[cfg(feature = "safe-step")]
/// `product = (d^2 Loss / dy^2) direction` at the output `output`, per sample.
fn loss_hessian_product<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    output: &[T],
    direction: &[T],
    product: &mut [T],
) {
    let outputs = problem.spec.output_len();
    let loss_rows = problem.batch.loss_rows.unwrap_or(problem.rows);
    let two = T::one() + T::one();
    match (problem.spec.loss(), problem.batch.targets) {
        (Loss::Mse | Loss::MseSum, _) => {
            let scale = if problem.spec.loss() == Loss::Mse {
                two / T::from_usize(loss_rows * outputs)
            } else {
                two
            };
            for (p, &d) in product.iter_mut().zip(direction) {
                *p = scale * d;
            }
        }
        (Loss::CrossEntropy, Targets::Classes(_) | Targets::Values(_)) => {
            // (diag(s) - s s^T) d / rows with s = softmax(y), per sample.
            let scale = T::one() / T::from_usize(loss_rows);
            for ((row, d), p) in output
                .chunks_exact(outputs)
                .zip(direction.chunks_exact(outputs))
                .zip(product.chunks_exact_mut(outputs))
            {
                let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
                let mut sum = T::zero();
                let mut weighted = T::zero();
                for (&v, &di) in row.iter().zip(d) {
                    let e = (v - max).exp_libm();
                    sum = sum + e;
                    weighted = e * di + weighted;
                }
                let mean = weighted / sum;
                for ((pi, &v), &di) in p.iter_mut().zip(row).zip(d) {
                    let s = (v - max).exp_libm() / sum;
                    *pi = scale * s * (di - mean);
                }
            }
        }
    }
}

#[cfg(all(
    test,
    feature = "safe-step",
    feature = "exact",
    feature = "fixed-pred",
    feature = "leaky-relu",
    feature = "sigmoid",
    feature = "softplus",
    feature = "cross-entropy"
))]
mod tests {
    use super::*;
    use crate::{infer, Activation, Layer};
    use std::vec;
    use std::vec::Vec;

    /// For a linear network under summed MSE the energy is quadratic, so its gradient is
    /// affine in the beliefs and `H u` equals the change of the Strict update direction:
    /// one Strict iteration from `vhat + u` moves the beliefs by `-eta (H u)` exactly (up
    /// to rounding, 1e-12 relative at these sizes).
    #[test]
    fn hessian_matches_the_strict_update_of_a_quadratic_energy() {
        let layers = [
            Layer::dense(3, 4, Activation::Identity),
            Layer::dense(4, 2, Activation::Identity),
            Layer::dense(2, 2, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::MseSum);
        let params: Vec<f64> = (0..spec.parameter_len())
            .map(|i| ((i * 37 % 23) as f64 - 11.0) / 13.0)
            .collect();
        let inputs = [0.3, -0.7, 1.1];
        // Targets at the feedforward output, so b = 0 at vhat and F's gradient is H (v - vhat).
        let mut workspace = vec![0.0; spec.workspace_len(1)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let batch0 = Batch::new(&inputs[..], Targets::Values(&[0.0, 0.0]));
        let output = infer(
            &spec,
            &params,
            batch0,
            &Settings::exact(),
            &mut workspace,
            &mut updates,
        )
        .unwrap()
        .feedforward(3)
        .to_vec();
        let batch = Batch::new(&inputs[..], Targets::Values(&output));
        let vhat: Vec<f64> = {
            let run = infer(
                &spec,
                &params,
                batch,
                &Settings::exact(),
                &mut workspace,
                &mut updates,
            )
            .unwrap();
            [run.feedforward(1), run.feedforward(2)].concat()
        };
        let direction = [0.5, -0.25, 1.0, 0.75, -1.5, 0.125];
        let mut product = [0.0; 6];
        hessian_vector_product(
            &spec,
            &params,
            batch,
            true,
            &direction,
            &mut product,
            &mut workspace,
        )
        .unwrap();
        let start: Vec<f64> = vhat.iter().zip(&direction).map(|(v, u)| v + u).collect();
        let eta = 0.5;
        let settings = Settings::strict(eta, 1).with_initial_beliefs(&start);
        let run = infer(
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut updates,
        )
        .unwrap();
        let moved: Vec<f64> = [run.beliefs(1), run.beliefs(2)].concat();
        for i in 0..6 {
            let step = (moved[i] - start[i]) / -eta;
            assert!(
                (step - product[i]).abs() <= 1e-12 * product[i].abs().max(1.0),
                "{i}: {step} vs {}",
                product[i]
            );
        }
    }

    #[test]
    fn a_network_without_hidden_layers_needs_no_analysis() {
        let layers = [Layer::dense(2, 1, Activation::Tanh)];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        let mut workspace = vec![0.0; workspace_len(&spec, 1)];
        let curvature = safe_step_size(
            &spec,
            &[0.5, -0.5, 0.1],
            Batch::new(&[1.0, 2.0], Targets::Values(&[0.0])),
            &SafeStep::default(),
            &mut workspace,
        )
        .unwrap();
        assert_eq!(curvature.lambda_max, 0.0);
        assert_eq!(curvature.step_size, 1.8);
    }

    /// Strict with the option relaxes with `min(step_size, safe)` and says so; other
    /// algorithms refuse the option.
    #[test]
    fn strict_relaxes_with_the_smaller_step() {
        let layers = [
            Layer::dense(2, 3, Activation::Tanh),
            Layer::dense(3, 3, Activation::Tanh),
            Layer::dense(3, 2, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        let params: Vec<f64> = (0..spec.parameter_len())
            .map(|i| ((i * 29 % 17) as f64 - 8.0) / 5.0)
            .collect();
        let batch = Batch::new(
            &[0.5, -1.0, 1.5, 0.25],
            Targets::Values(&[0.0, 1.0, -1.0, 0.5]),
        );
        let mut workspace = vec![0.0; workspace_len(&spec, 2)];
        let safe = safe_step_size(&spec, &params, batch, &SafeStep::default(), &mut workspace)
            .unwrap()
            .step_size;
        assert!(safe > 0.0 && safe < 1.8);
        let mut updates = vec![0.0; spec.parameter_len()];
        for (cap, expected) in [(1.99, safe), (safe / 2.0, safe / 2.0)] {
            let settings = Settings::strict(cap, 5).with_safe_step_size();
            let run = infer(
                &spec,
                &params,
                batch,
                &settings,
                &mut workspace,
                &mut updates,
            )
            .unwrap();
            assert_eq!(run.step_size(), expected);
        }
        let settings = Settings::fixed_pred(0.5, 5).with_safe_step_size();
        assert!(matches!(
            infer(
                &spec,
                &params,
                batch,
                &settings,
                &mut workspace,
                &mut updates
            ),
            Err(PcError::InvalidSettings { .. })
        ));
    }

    #[test]
    fn bad_rules_are_rejected() {
        let layers = [Layer::dense(2, 1, Activation::Tanh)];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        let mut workspace = vec![0.0; workspace_len(&spec, 1)];
        let batch = Batch::new(&[1.0, 2.0], Targets::Values(&[0.0]));
        for rule in [
            SafeStep {
                margin: 1.0,
                ..SafeStep::default()
            },
            SafeStep {
                iterations: 0,
                ..SafeStep::default()
            },
            SafeStep {
                tolerance: f64::NAN,
                ..SafeStep::default()
            },
        ] {
            assert!(matches!(
                safe_step_size(&spec, &[0.5, -0.5, 0.1], batch, &rule, &mut workspace),
                Err(PcError::InvalidHyperparameter { .. })
            ));
        }
        assert!(matches!(
            safe_step_size(
                &spec,
                &[0.5, -0.5, 0.1],
                batch,
                &SafeStep::default(),
                &mut workspace[..3]
            ),
            Err(PcError::BufferTooSmall { .. })
        ));
    }
}
