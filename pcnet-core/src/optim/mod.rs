//! Optimizers over flat parameter slices, with PyTorch's update formulas and defaults.
//!
//! An optimizer keeps its hyperparameters and step count; its per-parameter state (momentum
//! buffers, moment estimates) lives in a slice the caller provides, of
//! [`Optimizer::state_len`] values, laid out as whole planes (`state[k * P + i]` is state
//! value `k` of parameter `i`). A step is all-or-nothing: [`Optimizer::step`] first computes
//! every new value, and writes parameters and state only when all of them are finite.

mod adam;
mod sgd;

pub use adam::{Adam, AdamW, BiasCorrection};
pub use sgd::Sgd;

#[cfg(test)]
mod tests;

use crate::{error::check_len, PcError, Scalar};
use core::ops::Bound;

/// The most state values an optimizer keeps per parameter.
pub const MAX_STATE_PER_PARAMETER: usize = 2;

/// An optimizer: a per-element update rule plus a step counter.
///
/// # Example
/// ```
/// use pcnet_core::{Optimizer, Sgd};
/// let mut sgd = Sgd::new(0.5_f64);
/// let mut params = [1.0, 2.0];
/// let mut momentum = [0.0; 2]; // one buffer per parameter, unused without momentum
/// sgd.step(&mut params, &[0.2, -0.4], &mut momentum)?;
/// assert_eq!(params, [0.9, 2.2]);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
pub trait Optimizer<T: Scalar> {
    /// State values kept per parameter (at most [`MAX_STATE_PER_PARAMETER`]).
    const STATE_PER_PARAMETER: usize;

    /// Length of the state slice for `parameters` parameters.
    fn state_len(parameters: usize) -> usize {
        parameters * Self::STATE_PER_PARAMETER
    }

    /// Checks the hyperparameters.
    fn validate(&self) -> Result<(), PcError>;

    /// Steps taken so far.
    fn steps(&self) -> u64;

    /// Sets the step counter (for restoring a saved optimizer).
    fn set_steps(&mut self, steps: u64);

    /// Whatever an update needs that depends on the step number only (Adam's bias
    /// corrections), computed once per step rather than once per parameter.
    type StepConstants: Copy;

    /// The step constants of 1-based step `step`.
    fn step_constants(&self, step: u64) -> Self::StepConstants;

    /// The new value of one parameter and its state, with the current step's constants.
    fn update(
        &self,
        constants: Self::StepConstants,
        parameter: T,
        gradient: T,
        state: &mut [T; MAX_STATE_PER_PARAMETER],
    ) -> T;

    /// One step: `parameters` move against `gradients`. All-or-nothing: if any new
    /// parameter or state value would be non-finite, nothing is written and the step count
    /// is unchanged.
    ///
    /// # Errors
    /// [`PcError::LengthMismatch`] for slices of the wrong length,
    /// [`PcError::InvalidHyperparameter`] for bad hyperparameters, [`PcError::NonFinite`]
    /// for a non-finite gradient or a step that would produce a non-finite value.
    fn step(
        &mut self,
        parameters: &mut [T],
        gradients: &[T],
        state: &mut [T],
    ) -> Result<(), PcError> {
        self.validate()?;
        let count = parameters.len();
        check_len("gradients", count, gradients.len())?;
        check_len("optimizer state", Self::state_len(count), state.len())?;
        crate::error::check_finite("gradients", gradients)?;
        let step = self.steps().saturating_add(1);
        let constants = self.step_constants(step);
        // Dry run: every new value must be finite.
        for i in 0..count {
            let mut local = gather::<T, Self>(state, count, i);
            let new = self.update(constants, parameters[i], gradients[i], &mut local);
            let state_ok = local[..Self::STATE_PER_PARAMETER]
                .iter()
                .all(|v| v.is_finite());
            if !new.is_finite() || !state_ok {
                return Err(PcError::NonFinite {
                    what: "new parameters",
                    index: i,
                });
            }
        }
        for i in 0..count {
            let mut local = gather::<T, Self>(state, count, i);
            parameters[i] = self.update(constants, parameters[i], gradients[i], &mut local);
            for (k, value) in local.iter().enumerate().take(Self::STATE_PER_PARAMETER) {
                state[k * count + i] = *value;
            }
        }
        self.set_steps(step);
        Ok(())
    }
}

fn gather<T: Scalar, O: Optimizer<T> + ?Sized>(
    state: &[T],
    count: usize,
    index: usize,
) -> [T; MAX_STATE_PER_PARAMETER] {
    let mut local = [T::zero(); MAX_STATE_PER_PARAMETER];
    for (k, value) in local.iter_mut().enumerate().take(O::STATE_PER_PARAMETER) {
        *value = state[k * count + index];
    }
    local
}

/// Checks that a hyperparameter is finite and at least zero: accepts exactly what
/// `check_range(name, value, 0.0, f64::MAX)` accepts (every finite `f32` or `f64` is at most
/// `f64::MAX`, and the conversion to `f64` is exact), and reports the range as unbounded
/// above ("at least 0"). Compared in `T` so that an `f32`
/// build does no `f64` arithmetic (software routines on a single-precision FPU). Out of
/// line: one copy serves every hyperparameter.
#[inline(never)]
pub(crate) fn check_non_negative<T: Scalar>(name: &'static str, value: T) -> Result<(), PcError> {
    if value.is_finite() && value >= T::zero() {
        Ok(())
    } else {
        Err(PcError::InvalidHyperparameter {
            name,
            value: value.to_f64(),
            min: Bound::Included(0.0),
            max: Bound::Unbounded,
        })
    }
}

/// Checks that a hyperparameter is finite: accepts exactly what `check_range(name, value,
/// f64::MIN, f64::MAX)` accepts, reports the range as "finite", compares in `T` (see
/// [`check_non_negative`]).
pub(crate) fn check_finite_value<T: Scalar>(name: &'static str, value: T) -> Result<(), PcError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(PcError::InvalidHyperparameter {
            name,
            value: value.to_f64(),
            min: Bound::Unbounded,
            max: Bound::Unbounded,
        })
    }
}

/// Checks that a hyperparameter lies in `[min, max]` and is finite.
pub(crate) fn check_range<T: Scalar>(
    name: &'static str,
    value: T,
    min: f64,
    max: f64,
) -> Result<(), PcError> {
    let v = value.to_f64();
    if v.is_finite() && v >= min && v <= max {
        Ok(())
    } else {
        Err(PcError::InvalidHyperparameter {
            name,
            value: v,
            min: Bound::Included(min),
            max: Bound::Included(max),
        })
    }
}
