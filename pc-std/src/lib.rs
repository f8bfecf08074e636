//! # pc-std: the std companion of pc-core
//!
//! Owned networks, batched and parallel paths and datasets grow here on top of
//! [`pc_core`]'s relaxation schedule. For now it re-exports pc-core.
//!
//! ```
//! assert_eq!(pc_std::core::Algorithm::from_name("strict"), Some(pc_std::core::Algorithm::Strict));
//! ```

pub use pc_core as core;

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
