//! The relaxation schedule: forward pass, the three inference algorithms, and parameter
//! updates, written once over the [`Backend`] and layer interfaces.
//!
//! See the crate documentation for the mathematics. Entry points: [`infer`] (portable
//! kernels) and [`infer_with`] (any [`Backend`]). The module is cut by concern:
//!
//! * [`settings`]: [`Algorithm`], [`Settings`] and their validation;
//! * [`batch`]: [`Batch`] and its row check;
//! * [`workspace`]: the named regions of the workspace and each layer's slot in them;
//! * [`finiteness`]: the proofs that spare the bad-input checks a scan;
//! * `exact`, `fixed_pred`, `strict`: one algorithm each, over [`Problem`];
//! * [`safe_step`]: Strict's step size from the energy's curvature (public as
//!   `pcnet_core::stability`).

mod batch;
#[cfg(feature = "exact")]
mod exact;
mod finiteness;
#[cfg(feature = "fixed-pred")]
mod fixed_pred;
pub mod safe_step;
mod settings;
#[cfg(feature = "strict")]
mod strict;
// The conditioned Strict schedules estimate the Hessian's spectrum: feature `safe-step`.
#[cfg(feature = "safe-step")]
mod strict_accelerated;
#[cfg(feature = "safe-step")]
pub use strict_accelerated::{Conditioning, StrictSchedule};
// Every optional capability built (the default features; see build.rs).
#[cfg(all(test, pc_all_features))]
mod tests;
mod workspace;

pub use batch::Batch;
#[cfg(not(all(
    feature = "exact",
    feature = "fixed-pred",
    feature = "strict",
    feature = "safe-step"
)))]
use settings::unbuilt;
pub use settings::{Algorithm, InputBelief, Settings, MAX_ITERATIONS};
pub(crate) use workspace::{activation_range, layer_bit, region_lens, At, Region, Regions};
use workspace::{slot, slots, LayerSlot, Slots};

use crate::{
    error::{check_finite, check_len},
    layer::{LayerView, Values},
    Backend, NetworkSpec, PcError, Portable, Scalar,
};

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
    spectrum: SpectrumSlot<T>,
    /// `v_0 = x`: [`Inference::beliefs`] reads it from `vhat_0`, so that the algorithms
    /// need not copy the input (often the widest layer) a second time.
    clamped_input: bool,
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

impl<'p, 's, T: Scalar, B: Backend<T>> Problem<'p, 's, T, B> {
    pub fn depth(&self) -> usize {
        self.spec.depth()
    }

    /// The slot of one layer: a walk over the layers below it. Sweeps take [`Self::slots`].
    pub fn slot(&self, layer: usize) -> LayerSlot {
        slot(&self.spec, self.rows, layer)
    }

    /// Layers `first..=last` with their slots, ascending, in `O(last)` for the sweep.
    pub fn slots(&self, first: usize, last: usize) -> Slots<'s> {
        slots(&self.spec, self.rows, first, last)
    }

    pub fn view(&self, layer: usize, slot: &LayerSlot) -> LayerView<'_, T> {
        LayerView {
            layer: &self.spec.layers()[layer - 1],
            index: layer,
            rows: self.rows,
            input_width: slot.input_width,
            params: &self.params[slot.param_offset..slot.param_offset + slot.param_len],
        }
    }

    /// `output_region[v_l] = f_l(input_region[v_{l-1}])`, keeping the trace. The two
    /// regions may be the same. `slot` is the layer's.
    #[cfg_attr(not(feature = "strict"), allow(dead_code))]
    pub fn forward_layer(
        &self,
        layer: usize,
        slot: &LayerSlot,
        input: &[T],
        trace: &mut [T],
        output: &mut [T],
    ) {
        self.view(layer, slot)
            .forward(self.backend, input, trace, output);
    }

    /// Runs the forward pass into `vhat` and `traces` (and copies `x` into `vhat_0`).
    pub fn feedforward(&self, regions: &mut Regions<'_, T>) {
        let inputs = self.batch.inputs;
        regions.vhat[..inputs.len()].copy_from_slice(inputs);
        for (layer, slot) in self.slots(1, self.depth()) {
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
    /// parameter gradient is proven finite (see [`LayerView::backward`]). `slot` is the
    /// layer's (from a sweep's [`Self::slots`], so that it is not walked again).
    // The layer's index and slot travel apart: the slot is a plain offset table.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_layer(
        &self,
        layer: usize,
        slot: &LayerSlot,
        values: &Values<'_, T>,
        grad_output: &[T],
        scratch: &mut [T],
        grad_input: Option<&mut [T]>,
        grad_params: Option<&mut [T]>,
    ) -> bool {
        self.view(layer, slot).backward(
            self.backend,
            values,
            grad_output,
            scratch,
            grad_input,
            grad_params,
        )
    }

    /// The parameter updates of every layer (what Torch2PC writes into `.grad`): the
    /// VJP of layer `l` in its parameters with the cotangent `errors_l`, at the
    /// evaluation `at` (whose `inputs` region holds `v_{l-1}`). Returns the
    /// [`layer_bit`]s of the layers whose updates were not proven finite.
    ///
    /// `signal_reach`: `Some(n)` when the relaxation started from the feedforward values
    /// and ran `n` iterations, so that the layers `l < L` with `l + n <= L`, which the
    /// signal has not reached, have exactly zero errors: their updates are zero, written
    /// without a VJP. `None` computes every layer's.
    #[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
    pub fn parameter_updates(
        &self,
        at: &At<'_, T>,
        errors: &[T],
        scratch: &mut [T],
        updates: &mut [T],
        signal_reach: Option<usize>,
    ) -> u64 {
        let depth = self.depth();
        let mut unproven = 0;
        for (layer, slot) in self.slots(1, depth) {
            let grads = &mut updates[slot.param_offset..slot.param_offset + slot.param_len];
            if signal_reach.is_some_and(|reach| layer < depth && layer + reach <= depth) {
                grads.fill(T::zero());
                continue;
            }
            let out_range = slot.output_offset..slot.output_offset + self.rows * slot.output_width;
            let values = slot.values(self.rows, at.inputs, at.traces, at.outputs);
            let proven = self.backward_layer(
                layer,
                &slot,
                &values,
                &errors[out_range],
                scratch,
                None,
                Some(grads),
            );
            if !proven {
                unproven |= layer_bit(layer);
            }
        }
        unproven
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
    let prove_inputs = finiteness::inputs_provable(spec);
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
    let prove_parameters =
        CHECK_NETWORK && finiteness::parameters_provable(spec, rows, params.len());
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
    let (report, step_size, spectrum) = run_algorithm(&problem, &mut regions, extra, updates)?;
    finiteness::check_updates(spec, regions.unproven_updates, updates)?;
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

/// What [`run_algorithm`] ran with: the report, the step size, the spectrum.
type Ran<T> = (Report<T>, T, SpectrumSlot<T>);

/// The spectrum a conditioned Strict schedule used (feature `safe-step`). Without the
/// feature there is no conditioned schedule and the slot has no size, so a firmware's
/// learning step neither stores nor copies it (firmware/check.sh budget).
#[cfg(feature = "safe-step")]
type SpectrumSlot<T> = Option<crate::analysis::Spectrum<T>>;
#[cfg(not(feature = "safe-step"))]
type SpectrumSlot<T> = core::marker::PhantomData<T>;

/// The slot of a run that used no spectrum.
#[inline(always)]
fn no_spectrum<T>() -> SpectrumSlot<T> {
    #[cfg(feature = "safe-step")]
    return None;
    #[cfg(not(feature = "safe-step"))]
    core::marker::PhantomData
}

/// Runs the algorithm `problem.settings` names (Strict with the safe step size first
/// estimates the curvature); returns its report, the step size it ran with and, for a
/// conditioned Strict schedule, the spectrum it used. `extra` is the workspace past the
/// regions (a conditioned schedule's momentum and Lanczos coefficients).
// Inlined into `infer_checked`, its only caller: a frame of its own costs a firmware's
// learning step about 130 B of code (firmware/check.sh budget).
#[inline(always)]
fn run_algorithm<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    extra: &mut [T],
    updates: &mut [T],
) -> Result<Ran<T>, PcError> {
    let settings = problem.settings;
    #[cfg_attr(not(feature = "safe-step"), allow(unused_mut))]
    let mut step_size = settings.step_size;
    #[cfg(not(feature = "safe-step"))]
    let _ = extra;
    let report = match settings.algorithm {
        #[cfg(feature = "safe-step")]
        Algorithm::Strict if settings.schedule.conditioning().is_some() => {
            let conditioned = strict_accelerated::run(problem, regions, extra, updates)?;
            return Ok((
                conditioned.report,
                conditioned.step_size,
                conditioned.spectrum,
            ));
        }
        #[cfg(feature = "exact")]
        Algorithm::Exact => exact::run(problem, regions, updates),
        #[cfg(feature = "fixed-pred")]
        Algorithm::FixedPred => fixed_pred::run::<true, T, B>(problem, regions, updates)?,
        #[cfg(feature = "strict")]
        Algorithm::Strict => match settings.safe_step {
            None => strict::run(problem, regions, updates)?,
            #[cfg(feature = "safe-step")]
            Some(rule) => {
                let curvature = safe_step::estimate(problem, regions, &rule);
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
                    ..*problem
                };
                strict::run(&problem, regions, updates)?
            }
            // Rejected by `Settings::validate` in a build without the feature.
            #[cfg(not(feature = "safe-step"))]
            Some(_) => return Err(unbuilt(settings)),
        },
        // Rejected by `Settings::validate` in a build without the algorithm's feature.
        #[cfg(not(all(feature = "exact", feature = "fixed-pred", feature = "strict")))]
        _ => return Err(unbuilt(settings)),
    };
    Ok((report, step_size, no_spectrum()))
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
    let rows = batch.check_rows(spec)?;
    if let Some(initial) = settings.initial_beliefs {
        let hidden = spec.activation_len() - spec.input_len() - spec.output_len();
        check_len("initial beliefs", rows * hidden, initial.len())?;
        check_finite("initial beliefs", initial)?;
    }
    // Without `safe-step` there is no schedule field: Strict is the plain schedule.
    #[cfg(feature = "safe-step")]
    let needed = if settings.algorithm == Algorithm::Strict {
        settings.schedule.workspace_len(spec, rows)
    } else {
        spec.workspace_len(rows)
    };
    #[cfg(not(feature = "safe-step"))]
    let needed = spec.workspace_len(rows);
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
    fn region(&self, region: Region) -> &'w [T] {
        let lens = region_lens(&self.spec, self.rows);
        &self.workspace[region.range(&lens)]
    }

    /// Layer `layer`'s values (`v_l`, clamped to `L`) in the activation region `region`.
    fn layer_of(&self, region: Region, layer: usize) -> &'w [T] {
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
    /// Feature `safe-step`.
    #[cfg(feature = "safe-step")]
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
        self.region(Region::OutputGradient)
    }

    /// Feedforward values `vhat_l`, `l = 0..=L` (`vhat_0` is the input). Layers past `L`
    /// give `vhat_L`.
    pub fn feedforward(&self, layer: usize) -> &'w [T] {
        self.layer_of(Region::Feedforward, layer)
    }

    /// Beliefs `v_l` after the relaxation, `l = 0..=L`. With the input clamped `v_0 = x`.
    pub fn beliefs(&self, layer: usize) -> &'w [T] {
        if layer == 0 && self.clamped_input {
            // Equal to x: the feedforward region holds it already.
            return self.layer_of(Region::Feedforward, 0);
        }
        self.layer_of(Region::Beliefs, layer)
    }

    /// Prediction errors `epsilon_l` of the last iteration, `l = 0..=L`. With the input
    /// clamped `epsilon_0` is zero.
    pub fn errors(&self, layer: usize) -> &'w [T] {
        self.layer_of(Region::Errors, layer)
    }
}
