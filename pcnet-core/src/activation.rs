//! Elementwise activation functions and their derivatives.
//!
//! Each function matches PyTorch's definition, including the value of the derivative at
//! the kinks (ReLU and leaky ReLU take the left derivative at 0, as `threshold_backward`
//! does) and softplus's linear regime above 20 (`nn.Softplus(beta=1, threshold=20)`).

use crate::{ParseNameError, Scalar};

/// An elementwise nonlinearity.
///
/// # Example
/// ```
/// use pcnet_core::Activation;
/// let mut out = [0.0_f64; 3];
/// Activation::Relu.forward(&[-1.0, 0.0, 2.0], &mut out);
/// assert_eq!(out, [0.0, 0.0, 2.0]);
/// ```
///
/// New activations may be added in a minor release (the enum is `#[non_exhaustive]`): a
/// `match` on it needs a `_` arm.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Activation {
    /// `a = z`.
    #[default]
    Identity,
    /// `a = max(z, 0)`; derivative 0 at `z = 0`.
    Relu,
    /// `a = z` for `z > 0`, `slope * z` otherwise (`nn.LeakyReLU(negative_slope)`).
    LeakyRelu {
        /// Slope for negative inputs (PyTorch's default is 0.01).
        slope: f64,
    },
    /// `a = tanh(z)`.
    Tanh,
    /// `a = 1 / (1 + e^-z)`.
    Sigmoid,
    /// `a = ln(1 + e^z)`, and `a = z` for `z > 20` as PyTorch does.
    Softplus,
}

/// Parses an activation's [`name`](Activation::name) (and the aliases of
/// [`Activation::from_name`]); the error names what was given and the valid names.
///
/// ```
/// use pcnet_core::Activation;
/// assert_eq!("relu".parse::<Activation>(), Ok(Activation::Relu));
/// assert_eq!("leaky_relu".parse::<Activation>(), Ok(Activation::LEAKY_RELU));
/// assert!("swish".parse::<Activation>().unwrap_err().to_string().contains("relu, leaky_relu, tanh"));
/// ```
impl core::str::FromStr for Activation {
    type Err = ParseNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Activation::lookup(name)
            .ok_or_else(|| ParseNameError::new("activation", Activation::NAMES, name))
    }
}

/// Above this input softplus is the identity (PyTorch's default `threshold`).
const SOFTPLUS_THRESHOLD: f64 = 20.0;

#[inline(always)]
fn sigmoid<T: Scalar>(z: T) -> T {
    // Evaluated on the side where the exponential cannot overflow.
    if z >= T::zero() {
        T::one() / (T::one() + (-z).exp_libm())
    } else {
        let e = z.exp_libm();
        e / (T::one() + e)
    }
}

impl Activation {
    /// PyTorch's default leaky ReLU (`negative_slope = 0.01`).
    pub const LEAKY_RELU: Activation = Activation::LeakyRelu { slope: 0.01 };

    /// A short lowercase name (`"relu"`, `"leaky_relu"`, ...), as used in files and flags.
    pub const fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus => "softplus",
        }
    }

    /// Looks an activation up by [`name`](Self::name): the [`FromStr`](core::str::FromStr)
    /// parse (`"tanh".parse::<Activation>()`) as an `Option`, for callers that report a
    /// miss their own way. Also accepts `linear` and `none` for the identity and
    /// `leaky-relu`; leaky ReLU gets PyTorch's slope 0.01.
    ///
    /// ```
    /// use pcnet_core::Activation;
    /// assert_eq!(Activation::from_name("tanh"), Some(Activation::Tanh));
    /// assert_eq!(Activation::from_name("swish"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Activation> {
        name.parse().ok()
    }

    /// The names [`Activation::from_str`](core::str::FromStr::from_str) accepts, as its
    /// error lists them.
    const NAMES: &'static str = "identity, relu, leaky_relu, tanh, sigmoid, softplus";

    fn lookup(name: &str) -> Option<Activation> {
        Some(match name {
            "identity" | "linear" | "none" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky_relu" | "leaky-relu" => Activation::LEAKY_RELU,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "softplus" => Activation::Softplus,
            _ => return None,
        })
    }

    /// True where the derivative is continuous everywhere (tanh, sigmoid, softplus, identity).
    pub const fn is_smooth(&self) -> bool {
        !matches!(self, Activation::Relu | Activation::LeakyRelu { .. })
    }

    /// `output[i] = act(input[i])`. Both slices must have the same length; extra elements
    /// of the longer one are left alone.
    pub fn forward<T: Scalar>(&self, input: &[T], output: &mut [T]) {
        self.forward_of::<T, true>(input, output);
    }

    /// Why a network in this build of pcnet-core cannot use this activation (its cargo
    /// feature is off), if it cannot.
    pub(crate) const fn missing_feature(&self) -> Option<&'static str> {
        match self {
            Activation::LeakyRelu { .. } if !cfg!(feature = "leaky-relu") => {
                Some("leaky ReLU needs pcnet-core's `leaky-relu` feature")
            }
            Activation::Sigmoid if !cfg!(feature = "sigmoid") => {
                Some("sigmoid needs pcnet-core's `sigmoid` feature")
            }
            Activation::Softplus if !cfg!(feature = "softplus") => {
                Some("softplus needs pcnet-core's `softplus` feature")
            }
            _ => None,
        }
    }

    /// [`Activation::forward`] for the layers of a network, which
    /// [`NetworkSpec::validate`](crate::NetworkSpec::validate) has checked: the
    /// activations whose feature is off are not compiled in (and never reached).
    pub(crate) fn forward_in_network<T: Scalar>(&self, input: &[T], output: &mut [T]) {
        self.forward_of::<T, false>(input, output);
    }

    /// [`Activation::backward`] for the layers of a network (see
    /// [`forward_in_network`](Self::forward_in_network)).
    pub(crate) fn backward_in_network<T: Scalar>(
        &self,
        input: &[T],
        output: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
    ) {
        self.backward_of::<T, false>(input, output, grad_output, grad_input);
    }

    /// The forward pass; with `ALL` false only the activations this build's features
    /// enable (the guards are constants, so the others are not compiled in).
    #[inline(always)]
    fn forward_of<T: Scalar, const ALL: bool>(&self, input: &[T], output: &mut [T]) {
        let len = input.len().min(output.len());
        let (input, output) = (&input[..len], &mut output[..len]);
        match *self {
            Activation::Identity => output.copy_from_slice(input),
            Activation::Relu => {
                for (a, &z) in output.iter_mut().zip(input) {
                    *a = if z > T::zero() { z } else { T::zero() };
                }
            }
            Activation::LeakyRelu { slope } if ALL || cfg!(feature = "leaky-relu") => {
                let slope = T::from_f64(slope);
                for (a, &z) in output.iter_mut().zip(input) {
                    *a = if z > T::zero() { z } else { z * slope };
                }
            }
            Activation::Tanh => {
                for (a, &z) in output.iter_mut().zip(input) {
                    *a = z.tanh_libm();
                }
            }
            Activation::Sigmoid if ALL || cfg!(feature = "sigmoid") => {
                for (a, &z) in output.iter_mut().zip(input) {
                    *a = sigmoid(z);
                }
            }
            Activation::Softplus if ALL || cfg!(feature = "softplus") => {
                let threshold = T::from_f64(SOFTPLUS_THRESHOLD);
                for (a, &z) in output.iter_mut().zip(input) {
                    *a = if z > threshold {
                        z
                    } else {
                        z.exp_libm().ln_1p_libm()
                    };
                }
            }
            // Only with `ALL` false, for an activation the validation rejected.
            _ => {}
        }
    }

    /// Vector-Jacobian product: `grad_input[i] = grad_output[i] * act'(input[i])`, where
    /// `output = act(input)` is passed too so that tanh and sigmoid reuse it.
    pub fn backward<T: Scalar>(
        &self,
        input: &[T],
        output: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
    ) {
        self.backward_of::<T, true>(input, output, grad_output, grad_input);
    }

    /// The vector-Jacobian product; `ALL` as in `forward_of`.
    #[inline(always)]
    fn backward_of<T: Scalar, const ALL: bool>(
        &self,
        input: &[T],
        output: &[T],
        grad_output: &[T],
        grad_input: &mut [T],
    ) {
        let len = input
            .len()
            .min(output.len())
            .min(grad_output.len())
            .min(grad_input.len());
        let (input, output) = (&input[..len], &output[..len]);
        let (grad_output, grad_input) = (&grad_output[..len], &mut grad_input[..len]);
        match *self {
            Activation::Identity => grad_input.copy_from_slice(grad_output),
            Activation::Relu => {
                for ((gi, &g), &z) in grad_input.iter_mut().zip(grad_output).zip(input) {
                    *gi = if z > T::zero() { g } else { T::zero() };
                }
            }
            Activation::LeakyRelu { slope } if ALL || cfg!(feature = "leaky-relu") => {
                let slope = T::from_f64(slope);
                for ((gi, &g), &z) in grad_input.iter_mut().zip(grad_output).zip(input) {
                    *gi = if z > T::zero() { g } else { g * slope };
                }
            }
            Activation::Tanh => {
                for ((gi, &g), &a) in grad_input.iter_mut().zip(grad_output).zip(output) {
                    *gi = g * (T::one() - a * a);
                }
            }
            Activation::Sigmoid if ALL || cfg!(feature = "sigmoid") => {
                for ((gi, &g), &a) in grad_input.iter_mut().zip(grad_output).zip(output) {
                    *gi = g * (a * (T::one() - a));
                }
            }
            Activation::Softplus if ALL || cfg!(feature = "softplus") => {
                let threshold = T::from_f64(SOFTPLUS_THRESHOLD);
                for ((gi, &g), &z) in grad_input.iter_mut().zip(grad_output).zip(input) {
                    *gi = if z > threshold { g } else { g * sigmoid(z) };
                }
            }
            // Only with `ALL` false, for an activation the validation rejected.
            _ => {}
        }
    }

    /// The derivative `act'(z)` at one point (a convenience for tests and analysis).
    pub fn derivative<T: Scalar>(&self, z: T) -> T {
        let mut a = [T::zero()];
        self.forward(&[z], &mut a);
        let mut d = [T::zero()];
        self.backward(&[z], &a, &[T::one()], &mut d);
        d[0]
    }

    /// The value `act(z)` at one point.
    pub fn apply<T: Scalar>(&self, z: T) -> T {
        let mut a = [T::zero()];
        self.forward(&[z], &mut a);
        a[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LEAKY_RELU,
        Activation::LeakyRelu { slope: 0.3 },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softplus,
    ];

    /// Central differences with h = 1e-6 have truncation error O(h^2 f''') ~ 1e-12 and
    /// rounding error ~ u/h ~ 1e-10; 1e-8 absolute covers both for these functions.
    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-6_f64;
        for act in ALL {
            for &z in &[-3.7, -1.2, -0.31, 0.25, 0.9, 2.5, 19.5, 25.0, -30.0] {
                let numeric = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                let analytic = act.derivative(z);
                assert!(
                    (numeric - analytic).abs() < 1e-8,
                    "{act:?} at {z}: numeric {numeric}, analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn values_match_closed_forms() {
        let z = 0.7_f64;
        assert_eq!(Activation::Tanh.apply(z), libm::tanh(z));
        assert!((Activation::Sigmoid.apply(z) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-15);
        assert!((Activation::Softplus.apply(z) - (1.0 + z.exp()).ln()).abs() < 1e-15);
        assert_eq!(Activation::Softplus.apply(30.0_f64), 30.0);
        assert_eq!(Activation::LEAKY_RELU.apply(-2.0_f64), -0.02);
        // Sigmoid far out does not overflow.
        assert_eq!(Activation::Sigmoid.apply(-1000.0_f64), 0.0);
        assert_eq!(Activation::Sigmoid.apply(1000.0_f64), 1.0);
    }

    #[test]
    fn kinks_take_pytorch_values() {
        assert_eq!(Activation::Relu.derivative(0.0_f64), 0.0);
        assert_eq!(
            Activation::LeakyRelu { slope: 0.2 }.derivative(0.0_f64),
            0.2
        );
    }

    #[test]
    fn names_round_trip() {
        for act in ALL {
            let back = Activation::from_name(act.name()).unwrap();
            assert_eq!(back.name(), act.name());
            let parsed: Activation = act.name().parse().unwrap();
            assert_eq!(parsed.name(), act.name());
            assert!(Activation::NAMES.split(", ").any(|name| name == act.name()));
        }
        for name in Activation::NAMES.split(", ") {
            assert_eq!(name.parse::<Activation>().map(|act| act.name()), Ok(name));
        }
    }
}
