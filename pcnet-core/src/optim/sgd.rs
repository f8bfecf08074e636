//! Stochastic gradient descent, as `torch.optim.SGD`.

use super::{check_finite_value, check_non_negative, Optimizer, MAX_STATE_PER_PARAMETER};
use crate::{PcError, Scalar};

/// `torch.optim.SGD`: with weight decay `g <- g + wd p`; with momentum `b <- g` on the first
/// step and `b <- mu b + (1 - dampening) g` after; Nesterov uses `g + mu b`, plain momentum
/// `b`; then `p <- p - lr g`. PyTorch's defaults: no momentum, dampening or weight decay.
///
/// # Example
/// ```
/// use pcnet_core::{Optimizer, Sgd};
/// let mut sgd = Sgd::new(0.1_f64).with_momentum(0.9);
/// let mut params = [1.0];
/// let mut state = [0.0]; // one momentum buffer per parameter
/// sgd.step(&mut params, &[1.0], &mut state)?; // b = 1, p = 1 - 0.1
/// sgd.step(&mut params, &[1.0], &mut state)?; // b = 1.9, p = 0.9 - 0.19
/// assert!((params[0] - 0.71).abs() < 1e-15);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd<T> {
    /// Learning rate.
    pub learning_rate: T,
    /// Momentum factor `mu` (0 disables momentum and its state).
    pub momentum: T,
    /// Dampening of the momentum.
    pub dampening: T,
    /// L2 penalty added to the gradient.
    pub weight_decay: T,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Steps taken.
    pub steps: u64,
}

impl<T: Scalar> Sgd<T> {
    /// Plain SGD with learning rate `learning_rate`.
    pub fn new(learning_rate: T) -> Self {
        Sgd {
            learning_rate,
            momentum: T::zero(),
            dampening: T::zero(),
            weight_decay: T::zero(),
            nesterov: false,
            steps: 0,
        }
    }

    /// With momentum `momentum`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_momentum(self, momentum: T) -> Self {
        Sgd { momentum, ..self }
    }

    /// With Nesterov momentum `momentum`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_nesterov(self, momentum: T) -> Self {
        Sgd {
            momentum,
            nesterov: true,
            ..self
        }
    }

    /// With dampening.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_dampening(self, dampening: T) -> Self {
        Sgd { dampening, ..self }
    }

    /// With an L2 weight decay.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_weight_decay(self, weight_decay: T) -> Self {
        Sgd {
            weight_decay,
            ..self
        }
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    /// One momentum buffer per parameter (kept even without momentum, so the state length
    /// does not depend on hyperparameter values).
    const STATE_PER_PARAMETER: usize = 1;

    fn validate(&self) -> Result<(), PcError> {
        check_non_negative("learning rate", self.learning_rate)?;
        check_non_negative("momentum", self.momentum)?;
        check_finite_value("dampening", self.dampening)?;
        check_non_negative("weight decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= T::zero() || self.dampening != T::zero()) {
            return Err(PcError::InvalidSettings {
                reason: "Nesterov momentum requires a momentum and zero dampening",
            });
        }
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Whether this is the first step (the momentum buffer starts as the gradient).
    type StepConstants = bool;

    fn step_constants(&self, step: u64) -> bool {
        step == 1
    }

    fn update(
        &self,
        first_step: bool,
        parameter: T,
        gradient: T,
        state: &mut [T; MAX_STATE_PER_PARAMETER],
    ) -> T {
        let mut gradient = gradient;
        if self.weight_decay != T::zero() {
            gradient = gradient + self.weight_decay * parameter;
        }
        if self.momentum != T::zero() {
            let buffer = if first_step {
                gradient
            } else {
                self.momentum * state[0] + (T::one() - self.dampening) * gradient
            };
            state[0] = buffer;
            gradient = if self.nesterov {
                gradient + self.momentum * buffer
            } else {
                buffer
            };
        }
        parameter - self.learning_rate * gradient
    }
}
