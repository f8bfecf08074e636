//! Adam and AdamW, as `torch.optim.Adam` and `torch.optim.AdamW`.

use super::{check_non_negative, check_range, Optimizer, MAX_STATE_PER_PARAMETER};
use crate::{PcError, Scalar};

/// Adam's per-step constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiasCorrection<T> {
    /// `lr / (1 - beta1^t)`.
    pub step_size: T,
    /// `sqrt(1 - beta2^t)`.
    pub second_moment_root: T,
}

/// Shared hyperparameters of Adam and AdamW.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Moments<T> {
    learning_rate: T,
    beta1: T,
    beta2: T,
    epsilon: T,
}

impl<T: Scalar> Moments<T> {
    fn validate(&self) -> Result<(), PcError> {
        check_non_negative("learning rate", self.learning_rate)?;
        check_range("beta1", self.beta1, 0.0, 1.0 - f64::EPSILON)?;
        check_range("beta2", self.beta2, 0.0, 1.0 - f64::EPSILON)?;
        check_non_negative("epsilon", self.epsilon)
    }

    /// The bias corrections of step `step`: `lr / (1 - b1^t)` and `sqrt(1 - b2^t)`.
    fn constants(&self, step: u64) -> BiasCorrection<T> {
        let one = T::one();
        let t = i32::try_from(step).unwrap_or(i32::MAX);
        BiasCorrection {
            step_size: self.learning_rate / (one - self.beta1.powi_libm(t)),
            second_moment_root: (one - self.beta2.powi_libm(t)).sqrt_libm(),
        }
    }

    /// PyTorch's update: `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
    /// `p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
    fn apply(
        &self,
        correction: BiasCorrection<T>,
        parameter: T,
        gradient: T,
        state: &mut [T; MAX_STATE_PER_PARAMETER],
    ) -> T {
        let one = T::one();
        let m = self.beta1 * state[0] + (one - self.beta1) * gradient;
        let v = self.beta2 * state[1] + (one - self.beta2) * gradient * gradient;
        state[0] = m;
        state[1] = v;
        let denominator = v.sqrt_libm() / correction.second_moment_root + self.epsilon;
        parameter - correction.step_size * (m / denominator)
    }
}

// Adam and AdamW hold the same fields (`moments`, `weight_decay`, `steps`) and differ only
// in where the weight decay enters the update, which each writes in its own `update`;
// these two macros write what is the same, once.

/// The builder methods on the shared moments (inside `impl<T: Scalar> Adam<T>` / `AdamW<T>`).
macro_rules! moment_builders {
    () => {
        /// With decay rates `(beta1, beta2)`.
        #[must_use = "returns the changed value; the original is not modified"]
        pub fn with_betas(mut self, beta1: T, beta2: T) -> Self {
            self.moments.beta1 = beta1;
            self.moments.beta2 = beta2;
            self
        }

        /// With `eps`.
        #[must_use = "returns the changed value; the original is not modified"]
        pub fn with_epsilon(mut self, epsilon: T) -> Self {
            self.moments.epsilon = epsilon;
            self
        }
    };
}

/// The `Optimizer` items other than `update` (inside `impl<T: Scalar> Optimizer<T> for ...`).
macro_rules! moment_bookkeeping {
    () => {
        /// First and second moment estimates.
        const STATE_PER_PARAMETER: usize = 2;

        fn validate(&self) -> Result<(), PcError> {
            self.moments.validate()?;
            check_non_negative("weight decay", self.weight_decay)
        }

        fn steps(&self) -> u64 {
            self.steps
        }

        fn set_steps(&mut self, steps: u64) {
            self.steps = steps;
        }

        type StepConstants = BiasCorrection<T>;

        fn step_constants(&self, step: u64) -> BiasCorrection<T> {
            self.moments.constants(step)
        }
    };
}

/// `torch.optim.Adam` (L2 weight decay added to the gradient). Defaults: `lr = 1e-3`,
/// `betas = (0.9, 0.999)`, `eps = 1e-8`, no weight decay.
///
/// # Example
/// ```
/// use pcnet_core::{Adam, Optimizer};
/// let mut adam = Adam::new(0.1_f64);
/// let mut params = [1.0];
/// let mut state = [0.0; 2];
/// adam.step(&mut params, &[3.0], &mut state)?;
/// // The first Adam step moves every parameter by about lr, whatever the gradient's scale.
/// assert!((params[0] - 0.9).abs() < 1e-8);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam<T> {
    moments: Moments<T>,
    /// L2 penalty added to the gradient.
    pub weight_decay: T,
    /// Steps taken.
    pub steps: u64,
}

impl<T: Scalar> Adam<T> {
    /// Adam with learning rate `learning_rate` and PyTorch's other defaults.
    pub fn new(learning_rate: T) -> Self {
        Adam {
            moments: Moments {
                learning_rate,
                beta1: T::from_f64(0.9),
                beta2: T::from_f64(0.999),
                epsilon: T::from_f64(1e-8),
            },
            weight_decay: T::zero(),
            steps: 0,
        }
    }

    moment_builders!();

    /// With an L2 weight decay.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_weight_decay(self, weight_decay: T) -> Self {
        Adam {
            weight_decay,
            ..self
        }
    }
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    moment_bookkeeping!();

    fn update(
        &self,
        correction: BiasCorrection<T>,
        parameter: T,
        gradient: T,
        state: &mut [T; MAX_STATE_PER_PARAMETER],
    ) -> T {
        let gradient = gradient + self.weight_decay * parameter;
        self.moments.apply(correction, parameter, gradient, state)
    }
}

/// `torch.optim.AdamW` (decoupled weight decay `p <- p (1 - lr wd)` before the Adam step).
/// Defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 1e-2`.
///
/// # Example
/// ```
/// use pcnet_core::{AdamW, Optimizer};
/// let mut adamw = AdamW::new(0.1_f64).with_weight_decay(0.5);
/// let mut params = [2.0];
/// let mut state = [0.0; 2];
/// adamw.step(&mut params, &[0.0], &mut state)?;
/// assert_eq!(params[0], 2.0 * (1.0 - 0.1 * 0.5)); // zero gradient: decay only
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW<T> {
    moments: Moments<T>,
    /// Decoupled weight decay.
    pub weight_decay: T,
    /// Steps taken.
    pub steps: u64,
}

impl<T: Scalar> AdamW<T> {
    /// AdamW with learning rate `learning_rate` and PyTorch's other defaults.
    pub fn new(learning_rate: T) -> Self {
        AdamW {
            moments: Adam::new(learning_rate).moments,
            weight_decay: T::from_f64(1e-2),
            steps: 0,
        }
    }

    moment_builders!();

    /// With a decoupled weight decay.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_weight_decay(self, weight_decay: T) -> Self {
        AdamW {
            weight_decay,
            ..self
        }
    }
}

impl<T: Scalar> Optimizer<T> for AdamW<T> {
    moment_bookkeeping!();

    fn update(
        &self,
        correction: BiasCorrection<T>,
        parameter: T,
        gradient: T,
        state: &mut [T; MAX_STATE_PER_PARAMETER],
    ) -> T {
        let decayed = parameter * (T::one() - self.moments.learning_rate * self.weight_decay);
        self.moments.apply(correction, decayed, gradient, state)
    }
}
