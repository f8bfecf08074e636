//! The test crate of pc: the integration tests and the theory suites live in `tests/`
//! beside this folder; this library holds what several of them share.
//!
//! * [`relaxation`]: one relaxation copied out of pcnet-core's workspace, the norms and
//!   layer slices the suites compare it by, and the network variants they derive;
//! * [`naive`]: an independent, naive f64 model of a dense network (plain loops);
//! * [`closed_form`]: the binomial and Poisson tails the theory predicts.
// The README's code is copied by users as it stands: a warning in it is a failure.
#![doc(test(attr(deny(warnings))))]

pub mod closed_form;
pub mod naive;
pub mod relaxation;

/// The README's examples compile and run as doc tests, warning-free: each block is a
/// whole program (`fn main`), so what the README shows is what runs.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
