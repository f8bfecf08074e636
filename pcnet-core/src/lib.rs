//! # pcnet-core: predictive coding kernels without std or an allocator
//!
//! pcnet-core computes the learning signal of a feedforward network in the three ways of
//! R. Rosenbaum, "On the relationship between predictive coding and backpropagation",
//! *PLoS ONE* 17(3): e0266102 (2022), and of its PyTorch code Torch2PC (`PCInfer`):
//!
//! * [`Algorithm::Exact`]: backpropagation. `delta_L = dLoss/dy`,
//!   `delta_l = J_{l+1}(vhat_l)^T delta_{l+1}`; errors `epsilon_l = delta_l`, beliefs
//!   `v_l = vhat_l - epsilon_l`. One reverse sweep.
//! * [`Algorithm::FixedPred`]: predictive coding under the fixed prediction assumption.
//!   Starting from `v = vhat`, each of `n` iterations computes every error from the beliefs
//!   as they stand (`epsilon_L = delta_L`, `epsilon_l = vhat_l - v_l`) and then moves every
//!   belief, `v_l += eta (epsilon_l - J_{l+1}(vhat_l)^T epsilon_{l+1})`. Its errors are
//!   `P[Binomial(n-1, eta) >= L - l] * delta_l`; with `eta = 1` and `n >= L` they *are* the
//!   backprop deltas.
//! * [`Algorithm::Strict`]: strict predictive coding, gradient descent with step `eta` on
//!   the energy `F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + Loss(f_L(v_{L-1}), y)`,
//!   every Jacobian at the current beliefs, input clamped.
//!
//! Parameter updates are the vector-Jacobian products of each layer with respect to its
//! parameters with that layer's errors (what Torch2PC writes into `.grad`), at the
//! feedforward inputs (Exact, FixedPred) or at the final beliefs (Strict). Updates are
//! synchronous; the returned errors are those of the last iteration, the returned beliefs
//! one step later, exactly as Torch2PC.
//!
//! ## Storage
//!
//! Nothing allocates. A [`NetworkSpec`] describes the layers; `const fn`s give the lengths
//! of the parameter slice ([`NetworkSpec::parameter_len`]) and of the workspace
//! ([`NetworkSpec::workspace_len`]), so firmware sizes static arrays at compile time.
//! [`forward`] computes the outputs alone (inference, no targets) in a smaller workspace
//! ([`NetworkSpec::forward_workspace_len`]).
//! Weights are `out x in`, row-major, as PyTorch.
//!
//! ## Cargo features
//!
//! All on by default; each only adds code, so a firmware turns off what it does not use
//! and links less (`default-features = false, features = ["strict"]` for a tanh network
//! with MSE trained by Strict: 12 148 B of code for one learning step with SGD on a
//! Cortex-M4F, against 37 098 B with everything; see `firmware/README.md`):
//!
//! | feature | adds |
//! |---|---|
//! | `conv` | the kernels of [`Op::Conv2d`], [`Op::MaxPool2d`] and [`Op::AvgPool2d`] ([`kernels::conv`], [`kernels::pool`], the `conv2d_*` methods of [`Backend`]) |
//! | `safe-step` | Strict's step size from the energy's curvature ([`Settings::with_safe_step_size`], [`safe_step_size`], [`stability::hessian_vector_product`]), the conditioned Strict schedules ([`StrictSchedule`]: heavy ball, Chebyshev, the relative stop) and the activity Hessian's extreme eigenvalues ([`analysis::hessian_spectrum`]); implies `strict` |
//! | `exact` | [`Algorithm::Exact`] |
//! | `fixed-pred` | [`Algorithm::FixedPred`] |
//! | `strict` | [`Algorithm::Strict`], and the closed-form equilibrium of linear networks ([`analysis::linear_equilibrium`]) |
//! | `leaky-relu`, `sigmoid`, `softplus` | networks with that [`Activation`] |
//! | `cross-entropy` | networks with [`Loss::CrossEntropy`] |
//! | `residual` | residual layers `v + alpha * g(v)` ([`Layer::residual`], [`Layer::residual_mlp`]) |
//! | `finiteness-proofs` | the bad-input checks prove the parameters and the parameter updates finite from values the kernels already touch, instead of scanning them, where that reads less (same errors; see [`infer`]) |
//!
//! Linear ops with the identity, ReLU and tanh activations, the MSE losses, the
//! optimizers and [`model_bytes`] are always built ([`Activation`]'s and [`Loss`]'s own
//! methods compute every kind in every build; the features decide what a network's
//! schedule links). The *descriptions* exist in every build: every
//! [`Op`] and [`Algorithm`] variant, [`Conv2d`], [`Pool2d`], [`SafeStep`] and the
//! `const fn` sizes, so code that describes a network compiles the same whatever the
//! features. Asking a build for what it lacks is a typed error before any output is
//! written: [`NetworkSpec::validate`] (run by every entry point) and
//! [`model_bytes::read_model`] give [`PcError::InvalidOp`] for an image op without
//! `conv` or an activation without its feature and [`PcError::InvalidNetwork`] for a loss
//! or a residual layer without its feature; [`infer`] and [`Learner::step`] give [`PcError::InvalidSettings`]
//! for an algorithm or the safe step size without its feature.
//!
//! ## Example
//!
#![cfg_attr(all(feature = "strict", feature = "cross-entropy"), doc = "```")]
#![cfg_attr(
    not(all(feature = "strict", feature = "cross-entropy")),
    doc = "```ignore"
)]
//! use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
//!
//! const LAYERS: [Layer; 3] = [
//!     Layer::dense(4, 8, Activation::Tanh),
//!     Layer::dense(8, 8, Activation::Tanh),
//!     Layer::dense(8, 3, Activation::Identity),
//! ];
//! const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
//! const ROWS: usize = 2;
//!
//! let mut params = [0.0_f64; SPEC.parameter_len()];
//! for (i, p) in params.iter_mut().enumerate() {
//!     *p = (((i * 37) % 17) as f64 - 8.0) / 20.0;
//! }
//! let inputs = [0.5, -1.0, 0.25, 2.0, -0.5, 0.0, 1.0, 0.75];
//! let classes = [2, 0];
//! let batch = Batch::new(&inputs, Targets::Classes(&classes));
//! let mut workspace = [0.0; SPEC.workspace_len(ROWS)];
//! let mut updates = [0.0; SPEC.parameter_len()];
//!
//! let strict = infer(&SPEC, &params, batch, &Settings::strict(0.1, 20), &mut workspace, &mut updates)?;
//! assert_eq!(strict.report().iterations, 20);
//! assert!(strict.report().energy.unwrap() <= strict.loss()); // F starts at the loss and descends
//! # Ok::<(), pcnet_core::PcError>(())
//! ```
#![no_std]
#![deny(missing_docs)]
// With no algorithm feature every `infer` is an error, and the schedule is dead code.
#![cfg_attr(
    not(any(feature = "exact", feature = "fixed-pred", feature = "strict")),
    allow(dead_code, unused_variables, unreachable_code)
)]

// The proptest strategies (and the unit tests) need std; the kernels never do.
#[cfg(any(test, feature = "proptest-support"))]
extern crate std;

mod activation;
pub mod analysis;
mod error;
mod forward;
pub mod kernels;
mod layer;
mod learn;
mod loss;
pub mod model_bytes;
mod name;
pub mod ops;
pub mod optim;
mod relax;
mod scalar;
mod spec;
#[cfg(feature = "proptest-support")]
pub mod strategies;

pub use activation::Activation;
pub use error::PcError;
pub use forward::{forward, forward_with};
pub use kernels::{Backend, LinearDims, OpKey, Portable};
pub use learn::Learner;
pub use loss::{Loss, Targets};
pub use name::ParseNameError;
pub use ops::{Conv2d, ImageShape, Pool2d};
pub use optim::{Adam, AdamW, Optimizer, Sgd};
/// Which step size Strict PC converges with (the module lives in `relax/safe_step.rs`).
pub use relax::safe_step as stability;
pub use relax::{
    infer, infer_with, Algorithm, Batch, Inference, InputBelief, Report, Settings, MAX_ITERATIONS,
};
#[cfg(feature = "safe-step")]
pub use relax::{Conditioning, StrictSchedule};
pub use scalar::{Scalar, ScalarSlice, ScalarSliceMut};
pub use spec::{Layer, NetworkSpec, Op, MAX_OPS_PER_LAYER};
#[cfg(feature = "safe-step")]
pub use stability::safe_step_size;
pub use stability::{Curvature, SafeStep};

/// The package README's examples, compiled and run as doctests so they stay true (they
/// use FixedPred and cross-entropy, so only in builds that have them).
#[cfg(all(doctest, feature = "fixed-pred", feature = "cross-entropy"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
