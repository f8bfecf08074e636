//! Closed forms and spectra of the Strict energy: what the relaxation converges to, and
//! how fast it can.
//!
//! # The equilibrium of a linear network
//!
//! When every layer is affine, `f_l(v) = M_l v + b_l` (linear ops with the identity
//! activation, flatten, convolutions, average pools, and chains of them), and the loss is
//! a squared error `Loss(y) = c |y - t|^2` per sample (`c = 1 / (rows * outputs)` for
//! [`Loss::Mse`], with `rows` the batch's [`loss_rows`](crate::Batch::loss_rows), and
//! `c = 1` for [`Loss::MseSum`]), the Strict energy with the input clamped,
//!
//! ```text
//! F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + c |f_L(v_{L-1}) - t|^2,
//! ```
//!
//! has one minimum, in closed form. With the residuals `r_l = f_l(v_{l-1}) - v_l` as the
//! variables (a unit-triangular change of variables), the output is
//! `f_L(v_{L-1}) = yhat - sum_l P_l r_l` with `P_l = M_L M_{L-1} ... M_{l+1}` and `yhat`
//! the feedforward output, so with the output residual `d = t - yhat`
//!
//! ```text
//! F* = min F = c d^T (I + 2c S)^{-1} d,        S = sum_{0<l<L} P_l P_l^T,
//! r_l* = -2c P_l^T g,   g = (I + 2c S)^{-1} d,   v_l* = f_l(v_{l-1}*) - r_l*,
//! ```
//!
//! per sample, and at the minimum `dLoss/dy = -2c g` (`THEORY.md`, fact 13).
//! [`linear_equilibrium`] computes `S` from `outputs` reverse sweeps run together (the
//! rows of `P_l` are the vector-Jacobian products of the unit vectors), factors
//! `I + 2c S` by Cholesky (it is symmetric with every eigenvalue at least 1), and writes
//! the equilibrium beliefs.
//!
//! # The spectrum of the activity Hessian
//!
//! [`hessian_spectrum`] estimates the extreme eigenvalues of the (Gauss-Newton) Hessian
//! `H = D^T D + J_L^T (d^2 Loss) J_L` of `F` in the hidden beliefs (see
//! [`crate::stability`]) at the feedforward values or at given beliefs, by the Lanczos
//! iteration on Hessian-vector products: `lambda_max`, `lambda_min` and the condition
//! number `lambda_max / lambda_min` that sets how many iterations Strict needs (plain
//! gradient descent about `kappa`, momentum about `sqrt(kappa)`). For a linear network
//! `H` is the exact Hessian, the same everywhere. The Lanczos extremes are Ritz values:
//! `lambda_max` is approached from below and `lambda_min` from above.
//!
//! # Example
#![cfg_attr(feature = "strict", doc = "```")]
#![cfg_attr(not(feature = "strict"), doc = "```ignore")]
//! use pcnet_core::analysis::{linear_equilibrium, equilibrium_workspace_len};
//! use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
//! let layers = [
//!     Layer::dense(2, 3, Activation::Identity),
//!     Layer::dense(3, 2, Activation::Identity),
//! ];
//! let spec = NetworkSpec::new(&layers, Loss::MseSum);
//! let params: Vec<f64> = (0..spec.parameter_len()).map(|i| ((i * 7) % 5) as f64 / 4.0 - 0.5).collect();
//! let batch = Batch::new(&[0.5, -1.0], Targets::Values(&[0.25, 1.0]));
//! let mut workspace = vec![0.0; equilibrium_workspace_len(&spec, 1)];
//! let mut beliefs = vec![0.0; 3];
//! let closed = linear_equilibrium(&spec, &params, batch, &mut workspace, &mut beliefs)?;
//! // Strict relaxes to it.
//! let mut work = vec![0.0; spec.workspace_len(1)];
//! let mut updates = vec![0.0; spec.parameter_len()];
//! let run = infer(&spec, &params, batch, &Settings::strict(0.2, 2000), &mut work, &mut updates)?;
//! assert!((run.report().energy.unwrap() - closed.energy).abs() <= 1e-12 * closed.energy);
//! for (v, w) in run.beliefs(1).iter().zip(&beliefs) {
//!     assert!((v - w).abs() <= 1e-10);
//! }
//! assert!(closed.energy <= closed.loss);
//! # Ok::<(), pcnet_core::PcError>(())
//! ```

#[cfg(feature = "strict")]
use crate::{
    error::{check_finite, check_len},
    layer::{LayerView, Values},
    relax::{activation_range, check_problem, region_lens, Problem, Regions},
    Activation, Batch, Loss, Op, Portable, Settings, Targets,
};
#[cfg(feature = "safe-step")]
use crate::{stability::apply_hessian_at, Backend};
use crate::{NetworkSpec, PcError, Scalar, MAX_ITERATIONS};

/// The minimum of the Strict energy of a linear network ([`linear_equilibrium`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Equilibrium<T> {
    /// `F* = c sum_samples d^T (I + 2c S)^{-1} d`.
    pub energy: T,
    /// The loss at the feedforward output, `c sum_samples |d|^2` (the backprop loss; `F*`
    /// never exceeds it).
    pub loss: T,
}

/// Length of the workspace [`linear_equilibrium`] needs for `rows` samples:
/// [`NetworkSpec::workspace_len`]`(rows)`, the `outputs x outputs` matrix, and four blocks
/// of `outputs x max_width` plus one of `outputs x max(max_width, trace_len)` for the
/// sweeps that form it.
pub const fn equilibrium_workspace_len(spec: &NetworkSpec<'_>, rows: usize) -> usize {
    let outputs = spec.output_len();
    let widest = spec.max_width();
    let zeros = if spec.trace_len() > widest {
        spec.trace_len()
    } else {
        widest
    };
    spec.workspace_len(rows)
        .saturating_add(outputs.saturating_mul(outputs))
        .saturating_add(outputs.saturating_mul(widest).saturating_mul(4))
        .saturating_add(outputs.saturating_mul(zeros))
}

#[cfg(feature = "strict")]
/// Whether every op of `layer` is affine in the layer input.
fn layer_is_affine(layer: &crate::Layer) -> bool {
    layer.ops().iter().all(|op| {
        matches!(
            op,
            Op::Linear { .. }
                | Op::Activation(Activation::Identity)
                | Op::Flatten
                | Op::Conv2d(_)
                | Op::AvgPool2d(_)
        )
    })
}

#[cfg(feature = "strict")]
/// The per-sample loss coefficient `c` of `Loss = c |y - t|^2`, or the error for a loss
/// that is not a squared error.
fn squared_error_scale<T: Scalar>(
    spec: &NetworkSpec<'_>,
    batch: &Batch<'_, T>,
    rows: usize,
) -> Result<T, PcError> {
    match spec.loss() {
        Loss::Mse => {
            Ok(T::one() / T::from_usize(batch.loss_rows.unwrap_or(rows) * spec.output_len()))
        }
        Loss::MseSum => Ok(T::one()),
        Loss::CrossEntropy => Err(PcError::InvalidNetwork {
            layer: 0,
            reason: "the closed-form equilibrium needs a squared-error loss",
        }),
    }
}

#[cfg(feature = "strict")]
/// The closed-form minimum of the Strict energy of a linear network (input clamped; see
/// the [module docs](self)), and its minimiser: the hidden beliefs `v_1..v_{L-1}` are
/// written into `beliefs` (rows x width each, layer after layer, the layout of
/// [`Settings::initial_beliefs`]).
///
/// # Errors
/// As [`infer`](crate::infer) for the network, parameters and batch;
/// [`PcError::InvalidNetwork`] for a layer with a non-affine op (layer index given) or a
/// loss other than MSE; [`PcError::BufferTooSmall`] for a workspace shorter than
/// [`equilibrium_workspace_len`]; [`PcError::LengthMismatch`] for `beliefs`;
/// [`PcError::NonFinite`] when the result overflows.
pub fn linear_equilibrium<T: Scalar>(
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    workspace: &mut [T],
    beliefs: &mut [T],
) -> Result<Equilibrium<T>, PcError> {
    spec.check_parameters(params)?;
    if let Some(layer) = spec
        .layers()
        .iter()
        .position(|layer| !layer_is_affine(layer))
    {
        return Err(PcError::InvalidNetwork {
            layer: layer + 1,
            reason: "the closed-form equilibrium needs every layer affine",
        });
    }
    let settings = Settings::strict(T::one(), 0);
    let rows = check_problem(
        spec,
        batch,
        &settings,
        workspace.len(),
        spec.parameter_len(),
        true,
    )?;
    let scale = squared_error_scale(spec, &batch, rows)?;
    let needed = equilibrium_workspace_len(spec, rows);
    if workspace.len() < needed {
        return Err(PcError::BufferTooSmall {
            what: "workspace",
            needed,
            given: workspace.len(),
        });
    }
    let hidden = spec.activation_len() - spec.input_len() - spec.output_len();
    check_len("beliefs", rows * hidden, beliefs.len())?;

    let (outputs, widest) = (spec.output_len(), spec.max_width());
    let lens = region_lens(spec, rows);
    let used: usize = lens.iter().sum();
    let (work, rest) = workspace.split_at_mut(used);
    let (gram, rest) = rest.split_at_mut(outputs * outputs);
    let (sweep, rest) = rest.split_at_mut(2 * outputs * widest);
    let (scratch, zeros) = rest.split_at_mut(2 * outputs * widest);
    let zeros = &mut zeros[..needed - used - outputs * outputs - 4 * outputs * widest];
    zeros.fill(T::zero());
    let problem = Problem {
        backend: &Portable,
        spec: *spec,
        params,
        rows,
        batch,
        settings: &settings,
    };
    let mut regions = Regions::split(work, lens);
    problem.feedforward(&mut regions);
    let depth = spec.depth();
    let top = activation_range(spec, rows, depth);
    let loss = problem.loss(&regions.vhat[top.clone()], regions.dldy);

    // S = sum_l P_l P_l^T: the rows of P_{l-1} = P_l M_l are the VJPs of those of P_l,
    // starting from P_L = I; affine layers' VJPs do not read the values (all zero here).
    gram.fill(T::zero());
    let (mut current, mut next) = sweep.split_at_mut(outputs * widest);
    current.fill(T::zero());
    for k in 0..outputs {
        current[k * outputs + k] = T::one();
    }
    let two_scale = scale + scale;
    for layer in (2..=depth).rev() {
        let (in_width, out_width) = (spec.width(layer - 1), spec.width(layer));
        let view = LayerView {
            layer: &spec.layers()[layer - 1],
            index: layer,
            rows: outputs,
            input_width: in_width,
            params: &params[spec.parameter_offset(layer)
                ..spec.parameter_offset(layer) + spec.layers()[layer - 1].parameter_len()],
        };
        let values = Values {
            input: zeros,
            trace: zeros,
            output: zeros,
        };
        view.backward(
            &Portable,
            &values,
            &current[..outputs * out_width],
            scratch,
            Some(&mut next[..outputs * in_width]),
            None,
        );
        let rows_of_p = &next[..outputs * in_width];
        for i in 0..outputs {
            let row_i = &rows_of_p[i * in_width..(i + 1) * in_width];
            for j in 0..=i {
                let row_j = &rows_of_p[j * in_width..(j + 1) * in_width];
                gram[i * outputs + j] =
                    crate::kernels::portable::dot(row_i, row_j) + gram[i * outputs + j];
            }
        }
        core::mem::swap(&mut current, &mut next);
    }
    // A = I + 2c S (lower triangle), factored A = C C^T in place.
    for i in 0..outputs {
        for j in 0..=i {
            let identity = if i == j { T::one() } else { T::zero() };
            gram[i * outputs + j] = identity + two_scale * gram[i * outputs + j];
        }
    }
    cholesky_in_place(gram, outputs)?;

    // Per sample: g = A^{-1} d into the output slot of `errors` (scaled to -2c g, the
    // output error at the minimum), and F* = c sum d^T g.
    let targets = match batch.targets {
        Targets::Values(values) => values,
        Targets::Classes(_) => unreachable_classes()?,
    };
    let mut energy = T::zero();
    for row in 0..rows {
        let range = top.start + row * outputs..top.start + (row + 1) * outputs;
        let solution = &mut regions.errors[range.clone()];
        for ((g, &t), &y) in solution
            .iter_mut()
            .zip(&targets[row * outputs..(row + 1) * outputs])
            .zip(&regions.vhat[range])
        {
            *g = t - y;
        }
        let mut quadratic = T::zero();
        {
            // d . g = |C^{-1} d|^2 after the forward substitution.
            cholesky_forward(gram, outputs, solution);
            for &z in solution.iter() {
                quadratic = z * z + quadratic;
            }
            cholesky_backward(gram, outputs, solution);
        }
        energy = scale * quadratic + energy;
        for g in solution.iter_mut() {
            *g = -two_scale * *g;
        }
    }
    if !energy.is_finite() {
        return Err(PcError::NonFinite {
            what: "equilibrium energy",
            index: 0,
        });
    }
    // r_l = P_l^T (-2c g): one reverse sweep over the batch (values at vhat; affine layers
    // do not read them), into `errors`.
    for layer in (2..=depth).rev() {
        let slot = problem.slot(layer);
        let values = slot.values(rows, regions.vhat, regions.traces, regions.vhat);
        let (below, above) = regions.errors.split_at_mut(slot.output_offset);
        problem.backward_layer(
            layer,
            &slot,
            &values,
            &above[..rows * slot.output_width],
            regions.scratch,
            Some(&mut below[slot.input_offset..]),
            None,
        );
    }
    // v_l = f_l(v_{l-1}) - r_l, from v_0 = x.
    let inputs = activation_range(spec, rows, 0);
    regions.beliefs[inputs.clone()].copy_from_slice(&regions.vhat[inputs]);
    for (layer, slot) in problem.slots(1, depth - 1) {
        let (before, after) = regions.beliefs.split_at_mut(slot.output_offset);
        let output = &mut after[..rows * slot.output_width];
        problem.forward_layer(
            layer,
            &slot,
            &before[slot.input_offset..],
            &mut regions.traces[slot.trace_offset..slot.trace_offset + slot.trace_len],
            output,
        );
        for (v, &r) in output
            .iter_mut()
            .zip(&regions.errors[slot.output_offset..slot.output_offset + rows * slot.output_width])
        {
            *v = *v - r;
        }
    }
    let hidden_range =
        activation_range(spec, rows, 1).start..activation_range(spec, rows, depth).start;
    beliefs.copy_from_slice(&regions.beliefs[hidden_range]);
    check_finite("equilibrium beliefs", beliefs)?;
    Ok(Equilibrium { energy, loss })
}

#[cfg(feature = "strict")]
/// Class targets never reach the closed form: [`squared_error_scale`] refused the loss.
fn unreachable_classes<'a, T>() -> Result<&'a [T], PcError> {
    Err(PcError::InvalidNetwork {
        layer: 0,
        reason: "the closed-form equilibrium needs a squared-error loss",
    })
}

#[cfg(feature = "strict")]
/// Cholesky factorisation `A = C C^T` of the symmetric positive definite `n x n` matrix
/// whose lower triangle is in `matrix` (row-major); `C` overwrites it.
fn cholesky_in_place<T: Scalar>(matrix: &mut [T], n: usize) -> Result<(), PcError> {
    for j in 0..n {
        let mut diagonal = matrix[j * n + j];
        for k in 0..j {
            diagonal = diagonal - matrix[j * n + k] * matrix[j * n + k];
        }
        if !(diagonal > T::zero() && diagonal.is_finite()) {
            return Err(PcError::NonFinite {
                what: "equilibrium matrix",
                index: j * n + j,
            });
        }
        let pivot = diagonal.sqrt_libm();
        matrix[j * n + j] = pivot;
        for i in j + 1..n {
            let mut value = matrix[i * n + j];
            for k in 0..j {
                value = value - matrix[i * n + k] * matrix[j * n + k];
            }
            matrix[i * n + j] = value / pivot;
        }
    }
    Ok(())
}

#[cfg(feature = "strict")]
/// `x <- C^{-1} x` for the lower-triangular factor `C`.
fn cholesky_forward<T: Scalar>(factor: &[T], n: usize, x: &mut [T]) {
    for i in 0..n {
        let mut value = x[i];
        for k in 0..i {
            value = value - factor[i * n + k] * x[k];
        }
        x[i] = value / factor[i * n + i];
    }
}

#[cfg(feature = "strict")]
/// `x <- C^{-T} x` for the lower-triangular factor `C`.
fn cholesky_backward<T: Scalar>(factor: &[T], n: usize, x: &mut [T]) {
    for i in (0..n).rev() {
        let mut value = x[i];
        for k in i + 1..n {
            value = value - factor[k * n + i] * x[k];
        }
        x[i] = value / factor[i * n + i];
    }
}

/// How [`hessian_spectrum`] runs the Lanczos iteration.
///
/// # Example
/// ```
/// use pcnet_core::analysis::Lanczos;
/// let rule = Lanczos { iterations: 64, ..Lanczos::default() };
/// assert!(rule.loss_curvature);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanczos {
    /// Most Hessian-vector products, at least 2 (default 256). The extremes converge in
    /// about `sqrt(kappa)` products (`kappa` the condition number).
    pub iterations: usize,
    /// Stop once both extremes change by at most this fraction over 8 products (default
    /// `1e-6`).
    pub tolerance: f64,
    /// Include the loss curvature in the last block (as [`crate::SafeStep::loss_curvature`]).
    pub loss_curvature: bool,
}

impl Default for Lanczos {
    fn default() -> Self {
        Lanczos {
            iterations: 256,
            tolerance: 1e-6,
            loss_curvature: true,
        }
    }
}

impl Lanczos {
    #[cfg_attr(not(feature = "safe-step"), allow(dead_code))]
    pub(crate) fn validate(&self) -> Result<(), PcError> {
        if self.iterations < 2 || self.iterations > MAX_ITERATIONS {
            return Err(PcError::InvalidHyperparameter {
                name: "Lanczos iterations",
                value: self.iterations as f64,
                min: core::ops::Bound::Included(2.0),
                max: core::ops::Bound::Included(MAX_ITERATIONS as f64),
            });
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(PcError::InvalidHyperparameter {
                name: "Lanczos tolerance",
                value: self.tolerance,
                min: core::ops::Bound::Included(0.0),
                max: core::ops::Bound::Unbounded,
            });
        }
        Ok(())
    }
}

/// The extreme eigenvalues of the activity Hessian ([`hessian_spectrum`]).
///
/// # Example
/// ```
/// use pcnet_core::analysis::Spectrum;
/// let spectrum = Spectrum { lambda_min: 0.5_f64, lambda_max: 4.0, iterations: 0 };
/// assert_eq!(spectrum.condition_number(), 8.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Spectrum<T> {
    /// The smallest eigenvalue (a Ritz value: at least the true one).
    pub lambda_min: T,
    /// The largest eigenvalue (a Ritz value: at most the true one).
    pub lambda_max: T,
    /// Hessian-vector products carried out (0 when given, not estimated).
    pub iterations: usize,
}

impl<T: Scalar> Spectrum<T> {
    /// `lambda_max / lambda_min`.
    pub fn condition_number(&self) -> T {
        self.lambda_max / self.lambda_min
    }
}

/// Length of the workspace [`hessian_spectrum`] needs for `rows` samples and at most
/// `iterations` Lanczos products: [`NetworkSpec::workspace_len`]`(rows)`, two more
/// activation regions, and two coefficients per product.
pub const fn spectrum_workspace_len(
    spec: &NetworkSpec<'_>,
    rows: usize,
    iterations: usize,
) -> usize {
    spec.workspace_len(rows)
        .saturating_add(rows.saturating_mul(spec.activation_len()).saturating_mul(2))
        .saturating_add(iterations.saturating_mul(2))
}

#[cfg(feature = "safe-step")]
/// Estimates the extreme eigenvalues of the Gauss-Newton Hessian of the Strict energy in
/// the hidden beliefs (input clamped), at the feedforward values (`beliefs` `None`) or at
/// the given hidden beliefs (the layout of [`Settings::initial_beliefs`]), over the whole
/// batch (the Hessian is block diagonal over samples, so these are the extremes over the
/// samples), by the Lanczos iteration (see the [module docs](self)).
///
/// # Example
/// ```
/// use pcnet_core::analysis::{hessian_spectrum, spectrum_workspace_len, Lanczos};
/// use pcnet_core::{Activation, Batch, Layer, Loss, NetworkSpec, Targets};
/// // Identity layers, loss curvature left out: 2 - 2 cos((2k - 1) pi / (2m + 1)), m = 3.
/// let layers = [Layer::dense(1, 1, Activation::Identity); 4];
/// let spec = NetworkSpec::new(&layers, Loss::MseSum);
/// let params = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
/// let rule = Lanczos { loss_curvature: false, ..Lanczos::default() };
/// let mut workspace = vec![0.0; spectrum_workspace_len(&spec, 1, rule.iterations)];
/// let batch = Batch::new(&[1.0], Targets::Values(&[0.0]));
/// let spectrum = hessian_spectrum(&spec, &params, batch, None, &rule, &mut workspace)?;
/// let theta = |k: f64| (2.0 * k - 1.0) * std::f64::consts::PI / 7.0;
/// assert!((spectrum.lambda_max - (2.0 - 2.0 * theta(3.0).cos())).abs() < 1e-12);
/// assert!((spectrum.lambda_min - (2.0 - 2.0 * theta(1.0).cos())).abs() < 1e-12);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
///
/// # Errors
/// As [`infer`](crate::infer) for the network, parameters and batch;
/// [`PcError::BufferTooSmall`] for a workspace shorter than [`spectrum_workspace_len`];
/// [`PcError::LengthMismatch`] or [`PcError::NonFinite`] for `beliefs`;
/// [`PcError::InvalidHyperparameter`] for a rule out of range;
/// [`PcError::InvalidNetwork`] for a network without hidden layers.
pub fn hessian_spectrum<T: Scalar>(
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    beliefs: Option<&[T]>,
    rule: &Lanczos,
    workspace: &mut [T],
) -> Result<Spectrum<T>, PcError> {
    hessian_spectrum_with(&Portable, spec, params, batch, beliefs, rule, workspace)
}

#[cfg(feature = "safe-step")]
/// As [`hessian_spectrum`], with `backend`'s kernels for the forward pass.
///
/// # Errors
/// As [`hessian_spectrum`].
pub fn hessian_spectrum_with<T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    beliefs: Option<&[T]>,
    rule: &Lanczos,
    workspace: &mut [T],
) -> Result<Spectrum<T>, PcError> {
    rule.validate()?;
    spec.check_parameters(params)?;
    let settings = Settings::strict(T::one(), 0);
    let rows = check_problem(
        spec,
        batch,
        &settings,
        workspace.len(),
        spec.parameter_len(),
        true,
    )?;
    if spec.depth() < 2 {
        return Err(PcError::InvalidNetwork {
            layer: 0,
            reason: "a network without hidden layers has no activity Hessian",
        });
    }
    let needed = spectrum_workspace_len(spec, rows, rule.iterations);
    if workspace.len() < needed {
        return Err(PcError::BufferTooSmall {
            what: "workspace",
            needed,
            given: workspace.len(),
        });
    }
    let hidden =
        activation_range(spec, rows, 1).start..activation_range(spec, rows, spec.depth()).start;
    if let Some(beliefs) = beliefs {
        check_len("beliefs", hidden.len(), beliefs.len())?;
        check_finite("beliefs", beliefs)?;
    }
    let lens = region_lens(spec, rows);
    let used: usize = lens.iter().sum();
    let activations = rows * spec.activation_len();
    let (work, rest) = workspace.split_at_mut(used);
    let (previous, rest) = rest.split_at_mut(activations);
    let (outputs, rest) = rest.split_at_mut(activations);
    let coefficients = &mut rest[..2 * rule.iterations];
    let problem = Problem {
        backend,
        spec: *spec,
        params,
        rows,
        batch,
        settings: &settings,
    };
    let mut regions = Regions::split(work, lens);
    problem.feedforward(&mut regions);
    let at_outputs = match beliefs {
        None => None,
        Some(beliefs) => {
            // The evaluation point: v in `vhat`, f_l(v_{l-1}) (and the traces) in `outputs`.
            regions.vhat[hidden.clone()].copy_from_slice(beliefs);
            for (layer, slot) in problem.slots(1, spec.depth()) {
                problem.forward_layer(
                    layer,
                    &slot,
                    &regions.vhat[slot.input_offset..slot.output_offset],
                    &mut regions.traces[slot.trace_offset..slot.trace_offset + slot.trace_len],
                    &mut outputs[slot.output_offset..slot.output_offset + rows * slot.output_width],
                );
            }
            Some(&*outputs)
        }
    };
    Ok(lanczos(
        &problem,
        &mut regions,
        at_outputs,
        1,
        rule,
        previous,
        coefficients,
    ))
}

#[cfg(feature = "safe-step")]
/// The Lanczos iteration on `H` at the evaluation point in `regions` (inputs `vhat`, the
/// traces, outputs `at_outputs` or `vhat`), for the beliefs `lowest..L-1`. Uses the
/// beliefs (the Lanczos vector), errors, predictions (`H q`), scratch and VJP regions,
/// `previous` (an activation region: the previous Lanczos vector) and `coefficients`
/// (`2 * rule.iterations` values).
pub(crate) fn lanczos<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    at_outputs: Option<&[T]>,
    lowest: usize,
    rule: &Lanczos,
    previous: &mut [T],
    coefficients: &mut [T],
) -> Spectrum<T> {
    let (spec, rows) = (&problem.spec, problem.rows);
    let moving = activation_range(spec, rows, lowest).start
        ..activation_range(spec, rows, spec.depth()).start;
    let (alphas, betas) = coefficients.split_at_mut(rule.iterations);
    // A fixed start with no structure, the same on every run (as the power iteration's).
    let mut squares = T::zero();
    for (index, value) in regions.beliefs[moving.clone()].iter_mut().enumerate() {
        let mut hash = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        hash ^= hash >> 31;
        *value = T::from_f64((hash >> 11) as f64 / (1u64 << 52) as f64 - 1.0);
        squares = *value * *value + squares;
    }
    let inverse = T::one() / squares.sqrt_libm();
    for value in &mut regions.beliefs[moving.clone()] {
        *value = *value * inverse;
    }
    previous[moving.clone()].fill(T::zero());
    let tolerance = T::from_f64(rule.tolerance);
    let mut beta = T::zero();
    let (mut low, mut high) = (T::zero(), T::zero());
    let mut count = 0;
    for iteration in 0..rule.iterations {
        apply_hessian_at(problem, regions, at_outputs, lowest, rule.loss_curvature);
        let product = &regions.predictions[moving.clone()];
        let q = &regions.beliefs[moving.clone()];
        let alpha = crate::kernels::portable::dot(product, q);
        alphas[iteration] = alpha;
        count = iteration + 1;
        // w = H q - alpha q - beta q_prev; q_prev <- q; q <- w / |w|.
        let mut norm = T::zero();
        for ((p, qi), &h) in previous[moving.clone()]
            .iter_mut()
            .zip(regions.beliefs[moving.clone()].iter_mut())
            .zip(&regions.predictions[moving.clone()])
        {
            let w = h - alpha * *qi - beta * *p;
            *p = *qi;
            *qi = w;
            norm = w * w + norm;
        }
        beta = norm.sqrt_libm();
        betas[iteration] = beta;
        let scale = alpha.abs() + beta;
        let breakdown =
            beta <= T::from_f64(1e-13) * scale || !beta.is_finite() || !alpha.is_finite();
        if breakdown || count % 8 == 0 || count == rule.iterations {
            let (new_low, new_high) = tridiagonal_extremes(&alphas[..count], &betas[..count - 1]);
            let settled = (new_low - low).abs() <= tolerance * new_low.abs()
                && (new_high - high).abs() <= tolerance * new_high.abs();
            low = new_low;
            high = new_high;
            if breakdown || settled {
                break;
            }
        }
        let inverse = T::one() / beta;
        for value in &mut regions.beliefs[moving.clone()] {
            *value = *value * inverse;
        }
    }
    Spectrum {
        lambda_min: low,
        lambda_max: high,
        iterations: count,
    }
}

#[cfg(feature = "safe-step")]
/// The smallest and largest eigenvalues of the symmetric tridiagonal matrix with diagonal
/// `alphas` and off-diagonal `betas`, by bisection on Sturm counts.
fn tridiagonal_extremes<T: Scalar>(alphas: &[T], betas: &[T]) -> (T, T) {
    let n = alphas.len();
    // Gershgorin bounds.
    let (mut lower, mut upper) = (alphas[0], alphas[0]);
    for i in 0..n {
        let radius = if i > 0 { betas[i - 1].abs() } else { T::zero() }
            + if i + 1 < n { betas[i].abs() } else { T::zero() };
        lower = lower.min(alphas[i] - radius);
        upper = upper.max(alphas[i] + radius);
    }
    // Number of eigenvalues below x.
    let below = |x: T| -> usize {
        let mut count = 0;
        let mut d = T::one();
        let tiny = T::min_positive_value();
        for i in 0..n {
            let off = if i > 0 {
                betas[i - 1] * betas[i - 1]
            } else {
                T::zero()
            };
            d = alphas[i] - x - if i > 0 { off / d } else { T::zero() };
            if d == T::zero() {
                d = -tiny;
            }
            if d < T::zero() {
                count += 1;
            }
        }
        count
    };
    let bisect = |k: usize| -> T {
        // The k-th smallest eigenvalue (0-based): the least x with below(x) > k.
        let (mut a, mut b) = (lower, upper);
        for _ in 0..200 {
            let mid = (a + b) / (T::one() + T::one());
            if mid <= a || mid >= b {
                break;
            }
            if below(mid) > k {
                b = mid;
            } else {
                a = mid;
            }
        }
        b
    };
    (bisect(0), bisect(n - 1))
}
