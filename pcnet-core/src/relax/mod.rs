//! The relaxation schedule: forward pass, the three inference algorithms, and parameter
//! updates, written once over the [`Backend`] and layer interfaces.
//!
//! See the crate documentation for the mathematics. Entry points: [`infer`] (portable
//! kernels) and [`infer_with`] (any [`Backend`]).

#[cfg(feature = "exact")]
mod exact;
#[cfg(feature = "fixed-pred")]
mod fixed_pred;
#[cfg(feature = "strict")]
mod strict;
mod strict_accelerated;
pub use strict_accelerated::{Conditioning, StrictSchedule};
// Every optional capability built (the default features; see build.rs).
#[cfg(all(test, pc_all_features))]
mod tests;

use crate::{
    error::{check_finite, check_len},
    layer::{LayerView, Values},
    loss::Targets,
    scalar::first_non_finite,
    stability::SafeStep,
    Backend, NetworkSpec, PcError, Portable, Scalar,
};
use core::ops::Bound;

/// Which learning signal to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Exact backpropagation: `epsilon_l = dLoss/dvhat_l`, one reverse sweep.
    #[default]
    Exact,
    /// Predictive coding under the fixed prediction assumption (Jacobians and predictions
    /// held at the feedforward values).
    FixedPred,
    /// Strict predictive coding: gradient descent on the energy `F`, every Jacobian at the
    /// current beliefs.
    Strict,
}

impl Algorithm {
    /// The name used in files and flags: `exact`, `fixed_pred` or `strict`.
    pub const fn name(&self) -> &'static str {
        match self {
            Algorithm::Exact => "exact",
            Algorithm::FixedPred => "fixed_pred",
            Algorithm::Strict => "strict",
        }
    }

    /// Looks an algorithm up by name (`exact`, `fixed_pred`/`fixed-pred`, `strict`).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Some(match name {
            "exact" | "Exact" | "backprop" => Algorithm::Exact,
            "fixed_pred" | "fixed-pred" | "FixedPred" => Algorithm::FixedPred,
            "strict" | "Strict" => Algorithm::Strict,
            _ => return None,
        })
    }
}

/// Whether the input belief `v_0` is clamped to the data or relaxes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputBelief {
    /// `v_0 = x` throughout (the default).
    #[default]
    Clamped,
    /// `v_0` moves like a hidden belief with prediction `x`, as in Torch2PC's FixedPred,
    /// so `epsilon_0` tends to dLoss/dx (Exact returns dLoss/dx directly).
    Free,
}

/// The most iterations a relaxation may be asked for.
pub const MAX_ITERATIONS: usize = 1 << 24;

/// How a relaxation runs.
///
/// # Example
/// ```
/// use pcnet_core::{Algorithm, Settings};
/// let settings = Settings::fixed_pred(0.1_f64, 20).with_tolerance(1e-12);
/// assert_eq!(settings.algorithm, Algorithm::FixedPred);
/// assert_eq!(settings.iterations, 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings<'a, T> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Step size `eta` of the relaxation, in `(0, 2)` (unused by Exact).
    pub step_size: T,
    /// Number of iterations `n`, or the cap when a tolerance is set (unused by Exact).
    pub iterations: usize,
    /// Stop early once the residual (largest `|epsilon_l - J^T epsilon_{l+1}|` over the
    /// moving beliefs) is at most this.
    pub tolerance: Option<T>,
    /// Whether the input belief is clamped.
    pub input: InputBelief,
    /// Strict only: initial hidden beliefs `v_1..v_{L-1}`, each rows x width, layer after
    /// layer (Torch2PC's `vinit`, which Torch2PC itself ignores). Default: the feedforward values.
    pub initial_beliefs: Option<&'a [T]>,
    /// Strict only: the relaxation is reported as diverged when its energy exceeds this
    /// multiple of its initial energy (default 1e6), or becomes non-finite.
    pub divergence_ratio: T,
    /// Strict only: choose the step size for every batch from the energy's curvature
    /// ([`crate::stability`]) before relaxing; `step_size` is then an upper bound.
    pub safe_step: Option<SafeStep>,
    /// Strict only: how the beliefs move and when they stop (default
    /// [`StrictSchedule::Plain`], Torch2PC's gradient steps); see [`StrictSchedule`].
    pub schedule: StrictSchedule<T>,
}

impl<'a, T: Scalar> Settings<'a, T> {
    fn base(algorithm: Algorithm, step_size: T, iterations: usize) -> Self {
        Settings {
            algorithm,
            step_size,
            iterations,
            tolerance: None,
            input: InputBelief::Clamped,
            initial_beliefs: None,
            divergence_ratio: T::from_f64(1e6),
            safe_step: None,
            schedule: StrictSchedule::Plain,
        }
    }

    /// Exact backpropagation.
    pub fn exact() -> Self {
        Self::base(Algorithm::Exact, T::one(), 0)
    }

    /// FixedPred with step size `eta` and `iterations` iterations.
    pub fn fixed_pred(step_size: T, iterations: usize) -> Self {
        Self::base(Algorithm::FixedPred, step_size, iterations)
    }

    /// Strict PC with step size `eta` and `iterations` iterations.
    pub fn strict(step_size: T, iterations: usize) -> Self {
        Self::base(Algorithm::Strict, step_size, iterations)
    }

    /// Torch2PC's `PCInfer` defaults for an algorithm: `eta = 0.1`, `n = 20`.
    pub fn torch2pc_default(algorithm: Algorithm) -> Self {
        Self::base(algorithm, T::from_f64(0.1), 20)
    }

    /// Stops once the residual is at most `tolerance`, with `iterations` as the cap.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_tolerance(self, tolerance: T) -> Self {
        Settings {
            tolerance: Some(tolerance),
            ..self
        }
    }

    /// Lets the input belief move (Torch2PC's FixedPred behaviour).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_free_input(self) -> Self {
        Settings {
            input: InputBelief::Free,
            ..self
        }
    }

    /// Strict only: starts from these hidden beliefs instead of the feedforward values.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_initial_beliefs(self, beliefs: &'a [T]) -> Self {
        Settings {
            initial_beliefs: Some(beliefs),
            ..self
        }
    }

    /// Strict only: before relaxing each batch, estimate the largest curvature
    /// `lambda_max` of the energy in the hidden beliefs and relax with
    /// `min(step_size, 0.9 * 2 / lambda_max)` ([`SafeStep::default`]; see
    /// [`crate::stability`]). [`Inference::step_size`] tells the step size used.
    ///
    /// ```
    /// use pcnet_core::Settings;
    /// let settings = Settings::strict(1.0_f64, 200).with_safe_step_size();
    /// assert!(settings.safe_step.is_some());
    /// ```
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_safe_step_size(self) -> Self {
        self.with_safe_step(SafeStep::default())
    }

    /// As [`with_safe_step_size`](Self::with_safe_step_size) with an explicit rule.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_safe_step(self, rule: SafeStep) -> Self {
        Settings {
            safe_step: Some(rule),
            ..self
        }
    }

    /// Strict only: relaxes with `schedule` (see [`StrictSchedule`]).
    ///
    /// ```
    /// use pcnet_core::{Conditioning, Settings, StrictSchedule};
    /// let settings = Settings::strict(0.2_f64, 1000)
    ///     .with_schedule(StrictSchedule::HeavyBall(Conditioning::relative(1e-10)));
    /// assert!(matches!(settings.schedule, StrictSchedule::HeavyBall(_)));
    /// ```
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_schedule(self, schedule: StrictSchedule<T>) -> Self {
        Settings { schedule, ..self }
    }

    fn validate(&self) -> Result<(), PcError> {
        missing_feature(self)?;
        if self.algorithm != Algorithm::Exact {
            let eta = self.step_size;
            if !(eta > T::zero() && eta < T::one() + T::one()) {
                return Err(PcError::InvalidHyperparameter {
                    name: "step size",
                    value: eta.to_f64(),
                    min: Bound::Excluded(0.0),
                    max: Bound::Excluded(2.0),
                });
            }
            if self.iterations > MAX_ITERATIONS {
                return Err(PcError::InvalidHyperparameter {
                    name: "iterations",
                    value: self.iterations as f64,
                    min: Bound::Included(0.0),
                    max: Bound::Included(MAX_ITERATIONS as f64),
                });
            }
        }
        if let Some(tolerance) = self.tolerance {
            if !(tolerance >= T::zero() && tolerance.is_finite()) {
                return Err(PcError::InvalidHyperparameter {
                    name: "tolerance",
                    value: tolerance.to_f64(),
                    min: Bound::Included(0.0),
                    max: Bound::Unbounded,
                });
            }
        }
        if !(self.divergence_ratio > T::one() && self.divergence_ratio.is_finite()) {
            return Err(PcError::InvalidHyperparameter {
                name: "divergence ratio",
                value: self.divergence_ratio.to_f64(),
                min: Bound::Excluded(1.0),
                max: Bound::Unbounded,
            });
        }
        if self.initial_beliefs.is_some() && self.algorithm != Algorithm::Strict {
            return Err(PcError::InvalidSettings {
                reason: "initial beliefs are used by Strict only",
            });
        }
        if let Some(conditioning) = self.schedule.conditioning() {
            if self.algorithm != Algorithm::Strict {
                return Err(PcError::InvalidSettings {
                    reason: "a Strict schedule is used by Strict only",
                });
            }
            if self.safe_step.is_some() {
                return Err(PcError::InvalidSettings {
                    reason: "the safe step size belongs to the plain Strict schedule",
                });
            }
            conditioning.validate()?;
        }
        if let Some(_rule) = self.safe_step {
            if self.algorithm != Algorithm::Strict {
                return Err(PcError::InvalidSettings {
                    reason: "the safe step size is used by Strict only",
                });
            }
            // Without the feature `missing_feature` has rejected the rule already.
            #[cfg(feature = "safe-step")]
            _rule.validate()?;
        }
        Ok(())
    }
}

/// The error for settings that ask for an algorithm or rule this build of pcnet-core lacks
/// (its cargo feature is off); `Ok` in a build with the default features.
fn missing_feature<T>(settings: &Settings<'_, T>) -> Result<(), PcError> {
    let reason = match (settings.algorithm, settings.safe_step.is_some()) {
        (Algorithm::Exact, _) if cfg!(not(feature = "exact")) => {
            "Exact needs pcnet-core's `exact` feature"
        }
        (Algorithm::FixedPred, _) if cfg!(not(feature = "fixed-pred")) => {
            "FixedPred needs pcnet-core's `fixed-pred` feature"
        }
        (Algorithm::Strict, _) if cfg!(not(feature = "strict")) => {
            "Strict needs pcnet-core's `strict` feature"
        }
        (Algorithm::Strict, true) if cfg!(not(feature = "safe-step")) => {
            "the safe step size needs pcnet-core's `safe-step` feature"
        }
        (Algorithm::Strict, _)
            if cfg!(not(feature = "safe-step")) && settings.schedule.conditioning().is_some() =>
        {
            "the conditioned Strict schedules need pcnet-core's `safe-step` feature"
        }
        _ => return Ok(()),
    };
    Err(PcError::InvalidSettings { reason })
}

/// [`missing_feature`]'s error, for a dispatch that the validation already ruled out.
#[cfg(not(all(
    feature = "exact",
    feature = "fixed-pred",
    feature = "strict",
    feature = "safe-step"
)))]
fn unbuilt<T>(settings: &Settings<'_, T>) -> PcError {
    match missing_feature(settings) {
        Err(error) => error,
        Ok(()) => PcError::InvalidSettings {
            reason: "this build of pcnet-core lacks the algorithm",
        },
    }
}

/// One batch: inputs (rows x input width, row-major) and their targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch<'a, T> {
    /// Inputs, rows x input width.
    pub inputs: &'a [T],
    /// Targets.
    pub targets: Targets<'a, T>,
    /// The number of rows the loss averages over; `None` for this batch's own rows. Set
    /// it to process a large batch in blocks (see [`Batch::block_of`]).
    pub loss_rows: Option<usize>,
}

impl<'a, T: Scalar> Batch<'a, T> {
    /// A batch whose loss averages over its own rows.
    pub fn new(inputs: &'a [T], targets: Targets<'a, T>) -> Self {
        Batch {
            inputs,
            targets,
            loss_rows: None,
        }
    }

    /// This batch as a block of a larger batch of `total_rows` rows: its loss and output
    /// gradient carry the `1 / total_rows` of the whole batch's mean, so block results
    /// add up to the whole batch's.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn block_of(self, total_rows: usize) -> Self {
        Batch {
            loss_rows: Some(total_rows),
            ..self
        }
    }
}

/// What a relaxation reports about itself.
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Report<T> {
    /// Iterations carried out.
    pub iterations: usize,
    /// The residual of the last iteration: the largest `|epsilon_l - J_{l+1}^T epsilon_{l+1}|`
    /// over the beliefs that move (0 for Exact).
    pub residual: T,
    /// Strict only: the energy `F` at the last computed errors.
    pub energy: Option<T>,
    /// Whether the residual met the tolerance (a tolerance of 0 when none was set).
    pub converged: bool,
}

/// The result of [`infer`]: views into the workspace, plus the loss and the report.
#[derive(Clone, Copy, Debug)]
pub struct Inference<'w, 's, T> {
    spec: NetworkSpec<'s>,
    rows: usize,
    workspace: &'w [T],
    loss: T,
    report: Report<T>,
    step_size: T,
    spectrum: Option<crate::analysis::Spectrum<T>>,
    /// `v_0 = x`: [`Inference::beliefs`] reads it from `vhat_0`, so that the algorithms
    /// need not copy the input (often the widest layer) a second time.
    clamped_input: bool,
}

/// The offsets of one layer inside the workspace regions and the parameter slice.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LayerSlot {
    /// Start of `v_{l-1}` in an activation region.
    pub input_offset: usize,
    /// Width of `v_{l-1}` per sample.
    pub input_width: usize,
    /// Start of `v_l` in an activation region.
    pub output_offset: usize,
    /// Width of `v_l` per sample.
    pub output_width: usize,
    /// Range of the layer's trace in the trace region.
    pub trace_offset: usize,
    pub trace_len: usize,
    /// Range of the layer's parameters.
    pub param_offset: usize,
    pub param_len: usize,
}

impl LayerSlot {
    /// The layer's values in whole regions holding one evaluation of every layer (`rows`
    /// rows): its input `v_{l-1}` in the activation region `inputs`, its trace in
    /// `traces`, its output `v_l` in the activation region `outputs`.
    #[inline(always)]
    pub fn values<'a, T>(
        &self,
        rows: usize,
        inputs: &'a [T],
        traces: &'a [T],
        outputs: &'a [T],
    ) -> Values<'a, T> {
        Values {
            input: &inputs[self.input_offset..self.output_offset],
            trace: &traces[self.trace_offset..self.trace_offset + self.trace_len],
            output: &outputs[self.output_offset..self.output_offset + rows * self.output_width],
        }
    }
}

/// The workspace cut into its regions.
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) struct Regions<'w, T> {
    pub vhat: &'w mut [T],
    pub beliefs: &'w mut [T],
    pub errors: &'w mut [T],
    #[cfg_attr(not(feature = "strict"), allow(dead_code))]
    pub predictions: &'w mut [T],
    pub traces: &'w mut [T],
    pub dldy: &'w mut [T],
    /// Two halves of `rows x max_width` for the layer VJPs.
    pub scratch: &'w mut [T],
    /// `rows x max_width` for a VJP result.
    pub vjp: &'w mut [T],
    /// Set by the algorithm that wrote the parameter updates: bit `min(l - 1, 63)` is
    /// set unless layer `l`'s updates were proven finite as they were written
    /// ([`LayerView::backward`]); the final check reads only the layers whose bit is set.
    pub unproven_updates: u64,
}

/// Whole regions holding one evaluation of every layer: layer inputs (an activation
/// region), traces and layer outputs (an activation region).
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) struct At<'a, T> {
    pub inputs: &'a [T],
    pub traces: &'a [T],
    pub outputs: &'a [T],
}

/// The context every algorithm shares.
pub(crate) struct Problem<'p, 's, T, B> {
    pub backend: &'p B,
    pub spec: NetworkSpec<'s>,
    pub params: &'p [T],
    pub rows: usize,
    pub batch: Batch<'p, T>,
    pub settings: &'p Settings<'p, T>,
}

/// Region lengths, in the order they are laid out.
pub(crate) fn region_lens(spec: &NetworkSpec<'_>, rows: usize) -> [usize; 8] {
    let activations = rows * spec.activation_len();
    let widest = rows * spec.max_width();
    [
        activations,
        activations,
        activations,
        activations,
        rows * spec.trace_len(),
        rows * spec.output_len(),
        2 * widest,
        widest,
    ]
}

impl<'w, T> Regions<'w, T> {
    pub(crate) fn split(workspace: &'w mut [T], lens: [usize; 8]) -> Self {
        let (vhat, rest) = workspace.split_at_mut(lens[0]);
        let (beliefs, rest) = rest.split_at_mut(lens[1]);
        let (errors, rest) = rest.split_at_mut(lens[2]);
        let (predictions, rest) = rest.split_at_mut(lens[3]);
        let (traces, rest) = rest.split_at_mut(lens[4]);
        let (dldy, rest) = rest.split_at_mut(lens[5]);
        let (scratch, rest) = rest.split_at_mut(lens[6]);
        let (vjp, _) = rest.split_at_mut(lens[7]);
        Regions {
            vhat,
            beliefs,
            errors,
            predictions,
            traces,
            dldy,
            scratch,
            vjp,
            unproven_updates: u64::MAX,
        }
    }

    /// What an algorithm leaves for the final check of the updates: `unproven`, the
    /// [`layer_bit`]s of the layers whose updates it could not prove finite. Without the
    /// `finiteness-proofs` feature the check scans everything and this is not kept.
    pub(crate) fn keep_unproven_updates(&mut self, unproven: u64) {
        if cfg!(feature = "finiteness-proofs") {
            self.unproven_updates = unproven;
        }
    }
}

/// Offsets of `v_l` (0-based `l`, `l = 0..=L`) in an activation region.
pub(crate) fn activation_range(
    spec: &NetworkSpec<'_>,
    rows: usize,
    layer: usize,
) -> core::ops::Range<usize> {
    let mut offset = 0;
    let mut width = spec.input_len();
    for l in 0..layer {
        offset += rows * width;
        width = spec.layers()[l].output_len(width);
    }
    offset..offset + rows * width
}

/// The slot of layer `layer` (1-based).
pub(crate) fn slot(spec: &NetworkSpec<'_>, rows: usize, layer: usize) -> LayerSlot {
    let (mut input_offset, mut input_width) = (0, spec.input_len());
    let (mut trace_offset, mut param_offset) = (0, 0);
    for current in &spec.layers()[..layer - 1] {
        input_offset += rows * input_width;
        trace_offset += rows * current.trace_len(input_width);
        param_offset += current.parameter_len();
        input_width = current.output_len(input_width);
    }
    let current = &spec.layers()[layer - 1];
    LayerSlot {
        input_offset,
        input_width,
        output_offset: input_offset + rows * input_width,
        output_width: current.output_len(input_width),
        trace_offset,
        trace_len: rows * current.trace_len(input_width),
        param_offset,
        param_len: current.parameter_len(),
    }
}

impl<'p, T: Scalar, B: Backend<T>> Problem<'p, '_, T, B> {
    pub fn depth(&self) -> usize {
        self.spec.depth()
    }

    pub fn slot(&self, layer: usize) -> LayerSlot {
        slot(&self.spec, self.rows, layer)
    }

    pub fn view(&self, layer: usize, slot: &LayerSlot) -> LayerView<'_, T> {
        LayerView {
            layer: &self.spec.layers()[layer - 1],
            rows: self.rows,
            input_width: slot.input_width,
            params: &self.params[slot.param_offset..slot.param_offset + slot.param_len],
        }
    }

    /// `output_region[v_l] = f_l(input_region[v_{l-1}])`, keeping the trace. The two
    /// regions may be the same.
    #[cfg_attr(not(feature = "strict"), allow(dead_code))]
    pub fn forward_layer(&self, layer: usize, input: &[T], trace: &mut [T], output: &mut [T]) {
        let slot = self.slot(layer);
        self.view(layer, &slot)
            .forward(self.backend, input, trace, output);
    }

    /// Whether the forward pass in `regions` proves every parameter finite
    /// ([`LayerView::parameters_proven_finite`], layer by layer).
    pub fn parameters_proven_finite(&self, regions: &Regions<'_, T>) -> bool {
        (1..=self.depth()).all(|layer| {
            let slot = self.slot(layer);
            let values = slot.values(self.rows, regions.vhat, regions.traces, regions.vhat);
            self.view(layer, &slot).parameters_proven_finite(&values)
        })
    }

    /// Whether the outputs of layer 1's first op (linear: `infer_checked` asks only then)
    /// are all finite, which proves every input finite.
    pub fn inputs_proven_finite(&self, regions: &Regions<'_, T>) -> bool {
        let slot = self.slot(1);
        let values = slot.values(self.rows, regions.vhat, regions.traces, regions.vhat);
        first_non_finite(self.view(1, &slot).first_op_output(&values)).is_none()
    }

    /// Runs the forward pass into `vhat` and `traces` (and copies `x` into `vhat_0`).
    pub fn feedforward(&self, regions: &mut Regions<'_, T>) {
        let inputs = self.batch.inputs;
        regions.vhat[..inputs.len()].copy_from_slice(inputs);
        for layer in 1..=self.depth() {
            let slot = self.slot(layer);
            let (before, after) = regions.vhat.split_at_mut(slot.output_offset);
            let input = &before[slot.input_offset..];
            let output = &mut after[..self.rows * slot.output_width];
            let trace = &mut regions.traces[slot.trace_offset..slot.trace_offset + slot.trace_len];
            self.view(layer, &slot)
                .forward(self.backend, input, trace, output);
        }
    }

    /// The loss at `output` (rows x outputs) and its gradient into `grad`.
    pub fn loss(&self, output: &[T], grad: &mut [T]) -> T {
        let rows = self.batch.loss_rows.unwrap_or(self.rows);
        self.spec.loss().value_and_gradient_unchecked::<T, false>(
            output,
            self.spec.output_len(),
            self.batch.targets,
            rows,
            grad,
        )
    }

    /// Vector-Jacobian product of layer `layer` evaluated at `values`; whether the
    /// parameter gradient is proven finite (see [`LayerView::backward`]).
    pub fn backward_layer(
        &self,
        layer: usize,
        values: &Values<'_, T>,
        grad_output: &[T],
        scratch: &mut [T],
        grad_input: Option<&mut [T]>,
        grad_params: Option<&mut [T]>,
    ) -> bool {
        let slot = self.slot(layer);
        self.view(layer, &slot).backward(
            self.backend,
            values,
            grad_output,
            scratch,
            grad_input,
            grad_params,
        )
    }

    /// Parameter updates of layer `layer` with cotangent `errors_l`, at the evaluation
    /// `at` (whose `inputs` region holds `v_{l-1}`); whether they are proven finite.
    #[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
    pub fn parameter_update(
        &self,
        layer: usize,
        at: &At<'_, T>,
        errors: &[T],
        scratch: &mut [T],
        updates: &mut [T],
    ) -> bool {
        let slot = self.slot(layer);
        let out_range = slot.output_offset..slot.output_offset + self.rows * slot.output_width;
        let values = slot.values(self.rows, at.inputs, at.traces, at.outputs);
        let grads = &mut updates[slot.param_offset..slot.param_offset + slot.param_len];
        self.backward_layer(
            layer,
            &values,
            &errors[out_range],
            scratch,
            None,
            Some(grads),
        )
    }
}

/// Computes what Torch2PC's `PCInfer` computes, with pcnet-core's portable kernels.
///
/// `workspace` must hold at least [`NetworkSpec::workspace_len`]`(rows)` values and
/// `updates` exactly [`NetworkSpec::parameter_len`]; the parameter updates (what
/// Torch2PC writes into `.grad`) are written into `updates`, and the returned
/// [`Inference`] reads the feedforward values, beliefs and errors out of the workspace.
///
/// # Errors
/// Any [`PcError`] for a malformed network, slice lengths that do not fit, non-finite
/// inputs or parameters, targets out of range, hyperparameters out of range, or a
/// diverged relaxation. Every check of the inputs comes before any output is written,
/// except that non-finite parameters or inputs may be found by the forward pass (feature
/// `finiteness-proofs`), which has then written into `workspace` (never into `updates`).
/// After a numerical failure (overflow, divergence) `workspace` and `updates` may hold
/// partial results. The parameters are never written.
///
/// # Example
#[cfg_attr(all(feature = "exact", feature = "fixed-pred"), doc = "```")]
#[cfg_attr(not(all(feature = "exact", feature = "fixed-pred")), doc = "```ignore")]
/// use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
/// const LAYERS: [Layer; 2] = [Layer::dense(2, 3, Activation::Tanh), Layer::dense(3, 1, Activation::Identity)];
/// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
/// let params: [f64; SPEC.parameter_len()] =
///     [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.0, 0.1, -0.1, 0.7, -0.8, 0.9, 0.05];
/// let mut workspace = [0.0; SPEC.workspace_len(1)];
/// let mut gradient = [0.0; SPEC.parameter_len()];
/// let mut updates = [0.0; SPEC.parameter_len()];
/// let batch = Batch::new(&[1.0, -1.0], Targets::Values(&[0.5]));
/// infer(&SPEC, &params, batch, &Settings::exact(), &mut workspace, &mut gradient)?;
/// infer(&SPEC, &params, batch, &Settings::fixed_pred(1.0, 2), &mut workspace, &mut updates)?;
/// // FixedPred with step size 1 and n = L is backpropagation.
/// for (a, b) in updates.iter().zip(&gradient) {
///     assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-12));
/// }
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
pub fn infer<'w, 's, T: Scalar>(
    spec: &NetworkSpec<'s>,
    params: &[T],
    batch: Batch<'_, T>,
    settings: &Settings<'_, T>,
    workspace: &'w mut [T],
    updates: &mut [T],
) -> Result<Inference<'w, 's, T>, PcError> {
    infer_with(&Portable, spec, params, batch, settings, workspace, updates)
}

/// As [`infer`], with the matrix products of `backend`.
pub fn infer_with<'w, 's, T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'s>,
    params: &[T],
    batch: Batch<'_, T>,
    settings: &Settings<'_, T>,
    workspace: &'w mut [T],
    updates: &mut [T],
) -> Result<Inference<'w, 's, T>, PcError> {
    infer_checked::<true, T, B>(backend, spec, params, batch, settings, workspace, updates)
}

/// [`infer_with`]; with `CHECK_NETWORK` false it trusts that `spec` is valid and `params`
/// has its length and finite values, which [`crate::Learner`] has established in `new`
/// and keeps (it holds the parameters exclusively and its optimizer writes only finite
/// values), so its steps do not re-walk the network or the parameters.
pub(crate) fn infer_checked<'w, 's, const CHECK_NETWORK: bool, T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'s>,
    params: &[T],
    batch: Batch<'_, T>,
    settings: &Settings<'_, T>,
    workspace: &'w mut [T],
    updates: &mut [T],
) -> Result<Inference<'w, 's, T>, PcError> {
    // The parameters' finiteness is checked first (before anything else about the
    // problem, as `NetworkSpec::check_parameters` orders it), but where it is cheaper it
    // is proven from the forward pass instead of read (`Problem::parameters_proven_finite`
    // reads each linear op's output, about `rows * (activations - inputs)` values instead
    // of `parameters`); a failed proof falls back to the scan, so the error is the same.
    if CHECK_NETWORK {
        spec.validate()?;
        check_len("parameters", spec.parameter_len(), params.len())?;
    }
    // The inputs likewise, when layer 1 starts with a linear op narrower than its input:
    // finite outputs of that op prove every input finite (see
    // `LayerView::parameters_proven_finite`), reading `rows * outputs` values instead of
    // `rows * inputs`. A failed proof scans the parameters (when they were not scanned
    // yet, since their error comes first) and then the inputs.
    let prove_inputs = cfg!(feature = "finiteness-proofs")
        && matches!(
            spec.layers().first().and_then(|layer| layer.ops().first()),
            Some(crate::Op::Linear { inputs, outputs }) if outputs < inputs
        );
    let checked = check_problem(
        spec,
        batch,
        settings,
        workspace.len(),
        updates.len(),
        !prove_inputs,
    );
    let rows = match checked {
        Ok(rows) => rows,
        Err(error) => {
            if CHECK_NETWORK {
                check_finite("parameters", params)?;
            }
            return Err(error);
        }
    };
    let prove_parameters = CHECK_NETWORK
        && cfg!(feature = "finiteness-proofs")
        && rows.saturating_mul(spec.activation_len().saturating_sub(spec.input_len()))
            < params.len();
    if CHECK_NETWORK && !prove_parameters {
        check_finite("parameters", params)?;
    }
    let lens = region_lens(spec, rows);
    let used: usize = lens.iter().sum();
    let problem = Problem {
        backend,
        spec: *spec,
        params,
        rows,
        batch,
        settings,
    };
    let (work, extra) = workspace.split_at_mut(used);
    let mut regions = Regions::split(work, lens);
    problem.feedforward(&mut regions);
    if prove_inputs && !problem.inputs_proven_finite(&regions) {
        if prove_parameters {
            check_finite("parameters", params)?;
        }
        check_finite("inputs", batch.inputs)?;
    }
    if prove_parameters && !problem.parameters_proven_finite(&regions) {
        check_finite("parameters", params)?;
    }
    let top = activation_range(spec, rows, spec.depth());
    let loss = problem.loss(&regions.vhat[top], regions.dldy);
    if !loss.is_finite() {
        return Err(PcError::NonFinite {
            what: "feedforward loss",
            index: 0,
        });
    }
    #[cfg_attr(not(feature = "safe-step"), allow(unused_mut))]
    let mut step_size = settings.step_size;
    #[cfg_attr(not(feature = "safe-step"), allow(unused_mut))]
    let mut spectrum = None;
    #[cfg(not(feature = "safe-step"))]
    let _ = extra;
    let report = match settings.algorithm {
        #[cfg(feature = "exact")]
        Algorithm::Exact => exact::run(&problem, &mut regions, updates),
        #[cfg(feature = "fixed-pred")]
        Algorithm::FixedPred => fixed_pred::run::<true, T, B>(&problem, &mut regions, updates)?,
        #[cfg(feature = "safe-step")]
        Algorithm::Strict if settings.schedule != StrictSchedule::Plain => {
            let conditioned = strict_accelerated::run(&problem, &mut regions, extra, updates)?;
            step_size = conditioned.step_size;
            spectrum = conditioned.spectrum;
            conditioned.report
        }
        #[cfg(feature = "strict")]
        Algorithm::Strict => match settings.safe_step {
            None => strict::run(&problem, &mut regions, updates)?,
            #[cfg(feature = "safe-step")]
            Some(rule) => {
                let curvature = crate::stability::estimate(&problem, &mut regions, &rule);
                step_size = if curvature.step_size < settings.step_size {
                    curvature.step_size
                } else {
                    settings.step_size
                };
                let safe = Settings {
                    step_size,
                    ..*settings
                };
                let problem = Problem {
                    settings: &safe,
                    ..problem
                };
                strict::run(&problem, &mut regions, updates)?
            }
            // Rejected by `Settings::validate` in a build without the feature.
            #[cfg(not(feature = "safe-step"))]
            Some(_) => return Err(unbuilt(settings)),
        },
        // Rejected by `Settings::validate` in a build without the algorithm's feature.
        #[cfg(not(all(feature = "exact", feature = "fixed-pred", feature = "strict")))]
        _ => return Err(unbuilt(settings)),
    };
    // The updates must be finite: read them again only when the algorithm could not
    // prove it as it wrote them.
    if cfg!(feature = "finiteness-proofs") {
        check_unproven_updates(spec, regions.unproven_updates, updates)?;
    } else {
        check_finite("parameter updates", updates)?;
    }
    Ok(Inference {
        spec: *spec,
        rows,
        workspace: &workspace[..used],
        loss,
        report,
        step_size,
        spectrum,
        clamped_input: settings.input == InputBelief::Clamped,
    })
}

/// The bit of layer `l` (`1..=L`) in [`Regions::unproven_updates`].
pub(crate) fn layer_bit(layer: usize) -> u64 {
    1 << (layer - 1).min(63)
}

/// Scans the updates of the layers whose bit is set in `unproven`, in layer order, so the
/// first non-finite value found is the first of all `updates` (the other layers' were
/// proven finite).
fn check_unproven_updates<T: Scalar>(
    spec: &NetworkSpec<'_>,
    unproven: u64,
    updates: &[T],
) -> Result<(), PcError> {
    for layer in 1..=spec.depth() {
        if unproven & layer_bit(layer) == 0 {
            continue;
        }
        let start = spec.parameter_offset(layer);
        let end = start + spec.layers()[layer - 1].parameter_len();
        if let Some(index) = first_non_finite(&updates[start..end]) {
            return Err(PcError::NonFinite {
                what: "parameter updates",
                index: start + index,
            });
        }
    }
    Ok(())
}

/// Checks everything but the network and its parameters (which the caller has checked
/// with [`NetworkSpec::check_parameters`]) once, up front; returns the number of rows.
pub(crate) fn check_problem<T: Scalar>(
    spec: &NetworkSpec<'_>,
    batch: Batch<'_, T>,
    settings: &Settings<'_, T>,
    workspace_len: usize,
    updates_len: usize,
    scan_inputs: bool,
) -> Result<usize, PcError> {
    settings.validate()?;
    let input_width = spec.input_len();
    if batch.inputs.is_empty() {
        return Err(PcError::EmptyBatch);
    }
    if batch.inputs.len() % input_width != 0 {
        return Err(PcError::LengthMismatch {
            what: "inputs",
            expected: (batch.inputs.len() / input_width + 1) * input_width,
            given: batch.inputs.len(),
        });
    }
    let rows = batch.inputs.len() / input_width;
    batch.targets.check(spec.loss(), rows, spec.output_len())?;
    if let Some(loss_rows) = batch.loss_rows {
        if loss_rows < rows {
            return Err(PcError::InvalidHyperparameter {
                name: "loss rows",
                value: loss_rows as f64,
                min: Bound::Included(rows as f64),
                max: Bound::Unbounded,
            });
        }
    }
    if let Some(initial) = settings.initial_beliefs {
        let hidden = spec.activation_len() - spec.input_len() - spec.output_len();
        check_len("initial beliefs", rows * hidden, initial.len())?;
        check_finite("initial beliefs", initial)?;
    }
    let needed = if settings.algorithm == Algorithm::Strict {
        settings.schedule.workspace_len(spec, rows)
    } else {
        spec.workspace_len(rows)
    };
    if workspace_len < needed {
        return Err(PcError::BufferTooSmall {
            what: "workspace",
            needed,
            given: workspace_len,
        });
    }
    check_len("updates", spec.parameter_len(), updates_len)?;
    // Last, so that the order of the checks is the same whether the inputs are scanned
    // here or proven finite from the forward pass (`infer_checked`).
    if scan_inputs {
        check_finite("inputs", batch.inputs)?;
    }
    Ok(rows)
}

impl<'w, 's, T: Scalar> Inference<'w, 's, T> {
    fn region(&self, index: usize) -> &'w [T] {
        let lens = region_lens(&self.spec, self.rows);
        let start: usize = lens[..index].iter().sum();
        &self.workspace[start..start + lens[index]]
    }

    fn layer_of(&self, region: usize, layer: usize) -> &'w [T] {
        let layer = layer.min(self.spec.depth());
        &self.region(region)[activation_range(&self.spec, self.rows, layer)]
    }

    /// The batch loss at the feedforward output (what Torch2PC returns as `Loss`).
    pub fn loss(&self) -> T {
        self.loss
    }

    /// The relaxation report.
    pub fn report(&self) -> Report<T> {
        self.report
    }

    /// The step size the relaxation ran with: [`Settings::step_size`], or for Strict with
    /// [`Settings::with_safe_step_size`] the smaller of it and the safe step size.
    pub fn step_size(&self) -> T {
        self.step_size
    }

    /// The Hessian's extreme eigenvalues a conditioned [`StrictSchedule`] relaxed with
    /// (given or estimated), `None` for the plain schedule and the other algorithms.
    pub fn spectrum(&self) -> Option<crate::analysis::Spectrum<T>> {
        self.spectrum
    }

    /// Number of rows of the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Network depth `L`.
    pub fn depth(&self) -> usize {
        self.spec.depth()
    }

    /// dLoss/dy at the feedforward output (rows x outputs).
    pub fn output_gradient(&self) -> &'w [T] {
        self.region(5)
    }

    /// Feedforward values `vhat_l`, `l = 0..=L` (`vhat_0` is the input). Layers past `L`
    /// give `vhat_L`.
    pub fn feedforward(&self, layer: usize) -> &'w [T] {
        self.layer_of(0, layer)
    }

    /// Beliefs `v_l` after the relaxation, `l = 0..=L`. With the input clamped `v_0 = x`.
    pub fn beliefs(&self, layer: usize) -> &'w [T] {
        if layer == 0 && self.clamped_input {
            // Equal to x: the feedforward region holds it already.
            return self.layer_of(0, 0);
        }
        self.layer_of(1, layer)
    }

    /// Prediction errors `epsilon_l` of the last iteration, `l = 0..=L`. With the input
    /// clamped `epsilon_0` is zero.
    pub fn errors(&self, layer: usize) -> &'w [T] {
        self.layer_of(2, layer)
    }
}
