//! The public vocabulary of a relaxation: which [`Algorithm`], how it runs
//! ([`Settings`]), and the validation of those settings against the build's features.

use super::safe_step::SafeStep;
use crate::{PcError, Scalar};
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
    /// [`crate::stability`]). [`Inference::step_size`](crate::Inference::step_size) tells the step size used.
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

    /// Checks every field against its range and against the build's features.
    pub(super) fn validate(&self) -> Result<(), PcError> {
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
pub(super) fn unbuilt<T>(settings: &Settings<'_, T>) -> PcError {
    match missing_feature(settings) {
        Err(error) => error,
        Ok(()) => PcError::InvalidSettings {
            reason: "this build of pcnet-core lacks the algorithm",
        },
    }
}
