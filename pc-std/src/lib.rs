//! # pc-std: the std companion of pc-core
//!
//! Owned networks, batched and parallel paths and datasets grow here on top of
//! [`pc_core`]'s relaxation schedule. For now it re-exports pc-core.
//!
//! ```
//! assert_eq!(pc_std::core::Algorithm::from_name("strict"), Some(pc_std::core::Algorithm::Strict));
//! ```

pub use pc_core as core;

/// The nalgebra release pc-std's API is written against ([`network::Network::weight`],
/// [`network::Network::set_weight`], ...). Use it through this path, or depend on the same
/// nalgebra version, so the matrix types are the same types.
///
/// ```
/// use pc_std::core::{Activation, Loss};
/// use pc_std::nalgebra::DMatrix;
/// use pc_std::network::Network;
///
/// let mut net = Network::<f64>::mlp("2-3-1", Activation::Tanh, Loss::Mse, 1)?;
/// let weight: DMatrix<f64> = DMatrix::from_element(3, 2, 0.5);
/// net.set_weight(1, &weight)?;
/// assert_eq!(net.weight(1)?, weight);
/// # Ok::<(), pc_std::Error>(())
/// ```
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
