//! Strict PC with a conditioned stop and, optionally, momentum: the schedules of
//! [`StrictSchedule`] other than [`StrictSchedule::Plain`] (its documentation explains
//! them).

#[cfg(feature = "safe-step")]
use super::{activation_range, At, InputBelief, Problem, Regions, Report};
use crate::{
    analysis::{Lanczos, Spectrum},
    NetworkSpec, PcError, Scalar,
};
#[cfg(feature = "safe-step")]
use crate::{scalar::max_abs_difference, Backend};

/// How Strict moves the beliefs and when it stops ([`crate::Settings::schedule`]).
///
/// Plain Strict is gradient descent with step `eta` on the energy `F`; near its minimum
/// it contracts the error along an eigenvector of the Hessian `H` with eigenvalue
/// `lambda` by `|1 - eta lambda|` per iteration, so with `eta <= 2 / lambda_max` it needs
/// about `kappa = lambda_max / lambda_min` iterations per digit, and `kappa` grows like
/// `L^2` with depth (`THEORY.md`, facts 10 and 15). Polyak's heavy ball,
///
/// ```text
/// m <- a (epsilon_l - J_{l+1}^T epsilon_{l+1}) + b m,    v_l <- v_l + m,
/// a = 4 / (sqrt(lambda_max) + sqrt(lambda_min))^2,
/// b = ((sqrt(lambda_max) - sqrt(lambda_min)) / (sqrt(lambda_max) + sqrt(lambda_min)))^2,
/// ```
///
/// contracts every mode of a quadratic by `sqrt(b) = 1 - 2 / (sqrt(kappa) + 1)` per
/// iteration: about `sqrt(kappa)` iterations per digit, linear in `L`. It has the same
/// fixed points (`m = 0` and zero velocity), the same energy, errors, divergence test and
/// parameter updates as plain Strict; one more activation region holds `m`.
///
/// **The conditioned stop.** An absolute residual threshold means nothing across depths:
/// the distance to the minimum is up to `|grad F| / lambda_min`. With
/// [`Conditioning::relative_tolerance`] `tau` the relaxation stops once
///
/// ```text
/// |grad F(v)|_2^2 <= 2 tau lambda_min F_0,
/// ```
///
/// `F_0` the initial energy (the loss, from the feedforward start). On a quadratic `F`
/// (linear networks under MSE) this guarantees `F(v) - F* <= tau F_0` and
/// `|v - v*|_2 <= sqrt(2 tau F_0 / lambda_min)`, whatever the depth; for a nonlinear
/// network it holds to first order near the minimum.
///
///
/// # Example
/// ```
/// use pcnet_core::{Conditioning, Settings, StrictSchedule};
/// let schedule = StrictSchedule::HeavyBall(Conditioning::relative(1e-10));
/// let settings = Settings::strict(0.2_f64, 5000).with_schedule(schedule);
/// assert_eq!(settings.schedule, schedule);
/// assert_eq!(Settings::<f64>::strict(0.2, 10).schedule, StrictSchedule::Plain);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum StrictSchedule<T> {
    /// Gradient steps of [`crate::Settings::step_size`] (the default, Torch2PC's Strict).
    #[default]
    Plain,
    /// The same gradient steps, with the conditioned stop of [`Conditioning`] (the
    /// spectrum is estimated only when the relative tolerance needs it).
    Gradient(Conditioning<T>),
    /// Polyak's heavy ball with step and momentum from the Hessian's extreme eigenvalues
    /// (see [`StrictSchedule`]); [`crate::Settings::step_size`] is unused.
    HeavyBall(Conditioning<T>),
    /// The Chebyshev semi-iteration on the interval of the Hessian's extreme eigenvalues:
    /// the heavy ball's update with per-iteration coefficients that make the error after
    /// `k` steps the scaled Chebyshev polynomial of degree `k` on that interval (optimal
    /// for a quadratic `F`), converging to the heavy ball's; `step_size` is unused.
    Chebyshev(Conditioning<T>),
}

/// The spectrum and the stop of a conditioned schedule.
///
/// # Example
/// ```
/// use pcnet_core::Conditioning;
/// let conditioning = Conditioning::<f64>::relative(1e-8);
/// assert_eq!(conditioning.relative_tolerance, Some(1e-8));
/// assert!(conditioning.spectrum.is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Conditioning<T> {
    /// Stop once `|grad F|_2^2 <= 2 tau lambda_min F_0` (see [`StrictSchedule`]),
    /// in `[0, 1)`; the iteration count is the cap. `None`: only
    /// [`crate::Settings::tolerance`] stops early.
    pub relative_tolerance: Option<T>,
    /// The Hessian's extreme eigenvalues; `None`: estimated before relaxing, at the
    /// feedforward values, by [`Conditioning::lanczos`].
    pub spectrum: Option<Spectrum<T>>,
    /// The estimate's rule; its product count sizes the workspace
    /// ([`StrictSchedule::workspace_len`]).
    pub lanczos: Lanczos,
}

impl<T: Scalar> Conditioning<T> {
    /// The conditioned stop with relative tolerance `tau`, the spectrum estimated.
    pub fn relative(tau: T) -> Self {
        Conditioning {
            relative_tolerance: Some(tau),
            spectrum: None,
            lanczos: Lanczos::default(),
        }
    }

    #[cfg_attr(not(feature = "safe-step"), allow(dead_code))]
    pub(crate) fn validate(&self) -> Result<(), PcError> {
        self.lanczos.validate()?;
        if let Some(tau) = self.relative_tolerance {
            if !(tau >= T::zero() && tau < T::one()) {
                return Err(PcError::InvalidHyperparameter {
                    name: "relative tolerance",
                    value: tau.to_f64(),
                    min: core::ops::Bound::Included(0.0),
                    max: core::ops::Bound::Excluded(1.0),
                });
            }
        }
        if let Some(spectrum) = self.spectrum {
            let (low, high) = (spectrum.lambda_min, spectrum.lambda_max);
            if !(low > T::zero() && high >= low && high.is_finite()) {
                return Err(PcError::InvalidHyperparameter {
                    name: "spectrum lambda_min",
                    value: low.to_f64(),
                    min: core::ops::Bound::Excluded(0.0),
                    max: core::ops::Bound::Included(high.to_f64()),
                });
            }
        }
        Ok(())
    }
}

impl<T> StrictSchedule<T> {
    /// Length of the workspace [`infer`](crate::infer) needs with this schedule for `rows`
    /// samples: [`NetworkSpec::workspace_len`] for [`Plain`](Self::Plain); one more
    /// activation region (the momentum, or the previous Lanczos vector) and two
    /// coefficients per Lanczos product for the others.
    ///
    /// ```
    /// use pcnet_core::{Activation, Conditioning, Layer, Loss, NetworkSpec, StrictSchedule};
    /// const LAYERS: [Layer; 2] = [Layer::dense(2, 3, Activation::Tanh), Layer::dense(3, 1, Activation::Identity)];
    /// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
    /// assert_eq!(StrictSchedule::<f32>::Plain.workspace_len(&SPEC, 4), SPEC.workspace_len(4));
    /// let heavy = StrictSchedule::HeavyBall(Conditioning::<f32>::relative(1e-6));
    /// assert!(heavy.workspace_len(&SPEC, 4) > SPEC.workspace_len(4));
    /// ```
    pub const fn workspace_len(&self, spec: &NetworkSpec<'_>, rows: usize) -> usize {
        let conditioning = match self {
            StrictSchedule::Plain => return spec.workspace_len(rows),
            StrictSchedule::Gradient(conditioning)
            | StrictSchedule::HeavyBall(conditioning)
            | StrictSchedule::Chebyshev(conditioning) => conditioning,
        };
        spec.workspace_len(rows)
            .saturating_add(rows.saturating_mul(spec.activation_len()))
            .saturating_add(conditioning.lanczos.iterations.saturating_mul(2))
    }

    /// The schedule's conditioning, `None` for [`Plain`](Self::Plain).
    pub fn conditioning(&self) -> Option<&Conditioning<T>> {
        match self {
            StrictSchedule::Plain => None,
            StrictSchedule::Gradient(conditioning)
            | StrictSchedule::HeavyBall(conditioning)
            | StrictSchedule::Chebyshev(conditioning) => Some(conditioning),
        }
    }
}

#[cfg(feature = "safe-step")]
/// What a conditioned relaxation used besides its report.
pub(super) struct Conditioned<T> {
    pub report: Report<T>,
    /// The step `a` (heavy ball) or [`crate::Settings::step_size`] (gradient).
    pub step_size: T,
    /// The spectrum used (given or estimated), if any.
    pub spectrum: Option<Spectrum<T>>,
}

#[cfg(feature = "safe-step")]
/// Runs a conditioned schedule. `extra` is the workspace past the regions:
/// one activation region for the momentum, then the Lanczos coefficients.
#[inline(never)]
pub(super) fn run<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    extra: &mut [T],
    updates: &mut [T],
) -> Result<Conditioned<T>, PcError> {
    let (depth, rows, settings) = (problem.depth(), problem.rows, problem.settings);
    let spec = &problem.spec;
    let (kind, conditioning) = match &settings.schedule {
        StrictSchedule::Plain => unreachable_plain()?,
        StrictSchedule::Gradient(conditioning) => (Kind::Gradient, *conditioning),
        StrictSchedule::HeavyBall(conditioning) => (Kind::HeavyBall, *conditioning),
        StrictSchedule::Chebyshev(conditioning) => (Kind::Chebyshev, *conditioning),
    };
    let momentum_on = kind != Kind::Gradient;
    let lowest = if settings.input == InputBelief::Free {
        0
    } else {
        1
    };
    let activations = rows * spec.activation_len();
    let (momentum, coefficients) = extra.split_at_mut(activations);
    let moving =
        activation_range(spec, rows, lowest).start..activation_range(spec, rows, depth).start;

    // The spectrum: given, or estimated at the feedforward values when needed.
    let needs_spectrum = momentum_on || conditioning.relative_tolerance.is_some();
    let spectrum = match conditioning.spectrum {
        Some(spectrum) => Some(spectrum),
        None if needs_spectrum && !moving.is_empty() => Some(crate::analysis::lanczos(
            problem,
            regions,
            None,
            lowest,
            &conditioning.lanczos,
            momentum,
            &mut coefficients[..2 * conditioning.lanczos.iterations],
        )),
        None => None,
    };
    // The interval [low, high] of the Hessian's eigenvalues; lambda_max from Lanczos is
    // approached from below, so it gets 10% of headroom.
    let (low, high) = match spectrum {
        Some(spectrum) => (
            spectrum.lambda_min.max(T::min_positive_value()),
            spectrum.lambda_max.max(spectrum.lambda_min) / T::from_f64(0.9),
        ),
        None => (T::one(), T::one()),
    };
    let (mut step, mut inertia) = match kind {
        Kind::HeavyBall => {
            let (high, low) = (high.sqrt_libm(), low.sqrt_libm());
            let sum = high + low;
            let ratio = (high - low) / sum;
            (T::from_f64(4.0) / (sum * sum), ratio * ratio)
        }
        _ => (settings.step_size, T::zero()),
    };
    // Chebyshev: centre and half-width of the interval, and the previous alpha.
    let two = T::one() + T::one();
    let (centre, radius) = ((high + low) / two, (high - low) / two);
    // lambda_min F_0 scale of the conditioned stop, set at the first iteration.
    let threshold_factor = match (conditioning.relative_tolerance, spectrum) {
        (Some(tau), Some(spectrum)) => Some((tau + tau) * spectrum.lambda_min),
        _ => None,
    };

    let half = T::one() / (T::one() + T::one());
    regions.beliefs.copy_from_slice(regions.vhat);
    regions.predictions.copy_from_slice(regions.vhat);
    regions.errors.fill(T::zero());
    momentum[moving.clone()].fill(T::zero());
    if let Some(initial) = settings.initial_beliefs {
        let hidden =
            activation_range(spec, rows, 1).start..activation_range(spec, rows, depth).start;
        regions.beliefs[hidden].copy_from_slice(initial);
        recompute_predictions(problem, regions, 2);
    }

    let mut residual = T::zero();
    let mut energy = T::zero();
    let mut initial_energy = T::zero();
    let mut threshold = None;
    let mut iterations = 0;
    let mut converged = false;
    for iteration in 1..=settings.iterations.max(1) {
        let top = activation_range(spec, rows, depth);
        let (below, top_errors) = regions.errors.split_at_mut(top.start);
        energy = problem.loss(&regions.predictions[top], top_errors);
        let lower = activation_range(spec, rows, lowest).start;
        let range = lower..below.len();
        let mut squares = T::zero();
        for ((error, &prediction), &belief) in below[range.clone()]
            .iter_mut()
            .zip(&regions.predictions[range.clone()])
            .zip(&regions.beliefs[range])
        {
            *error = prediction - belief;
            squares = *error * *error + squares;
        }
        energy = energy + half * squares;
        if iteration == 1 {
            initial_energy = energy;
            threshold = threshold_factor.map(|factor| factor * energy);
        }
        if !energy.is_finite() || energy > settings.divergence_ratio * initial_energy {
            return Err(PcError::Diverged { iteration });
        }
        if settings.iterations == 0 {
            break;
        }
        if kind == Kind::Chebyshev {
            // m_k = alpha_k p_k with p_k = velocity + beta_k p_{k-1}.
            let previous = step;
            if iteration == 1 {
                step = T::one() / centre;
                inertia = T::zero();
            } else {
                let beta = if iteration == 2 {
                    let x = radius * previous;
                    x * x / two
                } else {
                    let x = radius * previous / two;
                    x * x
                };
                step = T::one() / (centre - beta / previous);
                inertia = step * beta / previous;
            }
        }
        residual = T::zero();
        let mut gradient_squares = T::zero();
        for (above, slot) in problem.slots(lowest + 1, depth) {
            let output_range = slot.output_offset..slot.output_offset + rows * slot.output_width;
            let values = slot.values(rows, regions.beliefs, regions.traces, regions.predictions);
            let vjp = &mut regions.vjp[..rows * slot.input_width];
            problem.backward_layer(
                above,
                &slot,
                &values,
                &regions.errors[output_range],
                regions.scratch,
                Some(&mut *vjp),
                None,
            );
            let here = slot.input_offset..slot.output_offset;
            let errors = &regions.errors[here.clone()];
            residual = max_abs_difference(residual, errors, vjp);
            for (((belief, &error), &pulled), velocity_memory) in regions.beliefs[here.clone()]
                .iter_mut()
                .zip(errors)
                .zip(vjp.iter())
                .zip(momentum[here].iter_mut())
            {
                let velocity = error - pulled;
                gradient_squares = velocity * velocity + gradient_squares;
                let moved = step * velocity + inertia * *velocity_memory;
                *velocity_memory = moved;
                *belief = *belief + moved;
            }
        }
        iterations = iteration;
        if !residual.is_finite() {
            return Err(PcError::Diverged { iteration });
        }
        recompute_predictions(problem, regions, 1 + lowest);
        let absolute = settings
            .tolerance
            .is_some_and(|tolerance| residual <= tolerance);
        let relative = threshold.is_some_and(|threshold| gradient_squares <= threshold);
        if absolute || relative {
            converged = true;
            break;
        }
    }
    converged |= residual <= settings.tolerance.unwrap_or(T::zero());

    let at = At {
        inputs: regions.beliefs,
        traces: regions.traces,
        outputs: regions.predictions,
    };
    let unproven = problem.parameter_updates(&at, regions.errors, regions.scratch, updates, None);
    regions.keep_unproven_updates(unproven);
    Ok(Conditioned {
        report: Report {
            iterations,
            residual,
            energy: Some(energy),
            converged,
        },
        step_size: step,
        spectrum,
    })
}

#[cfg(feature = "safe-step")]
/// The update rule of a conditioned schedule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gradient,
    HeavyBall,
    Chebyshev,
}

#[cfg(feature = "safe-step")]
/// The plain schedule never reaches [`run`] (the dispatch sends it to `strict::run`).
fn unreachable_plain<T>() -> Result<(Kind, Conditioning<T>), PcError> {
    Err(PcError::InvalidSettings {
        reason: "the plain schedule has no conditioning",
    })
}

#[cfg(feature = "safe-step")]
/// `predictions_l = f_l(v_{l-1})` for layers `from..=L`, refreshing their traces.
fn recompute_predictions<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    from: usize,
) {
    for (layer, slot) in problem.slots(from, problem.depth()) {
        let input = &regions.beliefs[slot.input_offset..slot.output_offset];
        let trace = &mut regions.traces[slot.trace_offset..slot.trace_offset + slot.trace_len];
        let output = &mut regions.predictions
            [slot.output_offset..slot.output_offset + problem.rows * slot.output_width];
        problem.forward_layer(layer, &slot, input, trace, output);
    }
}
