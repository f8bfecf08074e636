//! # pcnet-std: the std companion of pcnet-core
//!
//! [`pcnet_core`] computes predictive coding's learning signals (Strict, FixedPred, Exact)
//! with caller-owned buffers and portable loops. pcnet-std adds, on top of the same schedule:
//!
//! * [`fast`]: pc's own SIMD matrix kernels as a [`pcnet_core::Backend`] for f32 and f64;
//! * [`batch`]: a batch runner that relaxes row blocks in parallel, with the same bits for
//!   any thread count;
//! * [`network`]: owned networks with builders, [`nalgebra`] views of the weights,
//!   safetensors in PyTorch's `state_dict` layout, and label-free [`network::Network::predict`];
//! * [`data`]: the bundled handwritten digits, IDX and CSV readers;
//! * [`train`]: a training loop with predictive-coding-versus-backprop diagnostics.
//!
//! ## Cargo features
//!
//! The integrations are on by default; `default-features = false` drops them (the batch
//! runner's rayon threads stay):
//!
//! | feature | adds |
//! |---|---|
//! | `nalgebra` | `Network::weight`, `bias`, `set_weight`, `set_bias`, `mlp_from_matrices` as nalgebra matrices, and the `nalgebra` re-export |
//! | `safetensors` | `Network::to_safetensors`, `load_safetensors`, `save_safetensors`, `open_safetensors` (PyTorch `state_dict` layout) |
//! | `progress` | a progress bar on standard error while training (indicatif) |
//! | `gzip` | the bundled digits (`data::digits`, `data::digits_split`) and `.gz` IDX files (flate2) |
//!
//! pcnet-core is re-exported under its own name ([`pcnet_core`], path
//! `pcnet_std::pcnet_core`, which does not shadow Rust's `core`), so one dependency is
//! enough; the examples here use `pcnet_core::` directly, as a crate depending on both does:
//!
//! ```
//! use pcnet_std::pcnet_core::Algorithm;
//! assert_eq!(Algorithm::from_name("strict"), Some(Algorithm::Strict));
//! ```

pub use pcnet_core;

/// The nalgebra release pcnet-std's API is written against ([`network::Network::weight`],
/// [`network::Network::set_weight`], ...). Use it through this path, or depend on the same
/// nalgebra version, so the matrix types are the same types.
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_std::nalgebra::DMatrix;
/// use pcnet_std::network::Network;
///
/// let mut net = Network::<f64>::mlp("2-3-1", Activation::Tanh, Loss::Mse, 1)?;
/// let weight: DMatrix<f64> = DMatrix::from_element(3, 2, 0.5);
/// net.set_weight(1, &weight)?;
/// assert_eq!(net.weight(1)?, weight);
/// # Ok::<(), pcnet_std::Error>(())
/// ```
#[cfg(feature = "nalgebra")]
pub use nalgebra;

pub use error::Error;

pub mod batch;
pub mod data;
mod error;
pub mod fast;
pub mod network;
pub mod rng;
pub mod train;

/// The package README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
