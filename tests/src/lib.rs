//! Integration and property tests of pc live in `tests/` beside this file; the fuzz
//! harness that the cargo-fuzz targets and the corpus replay test share is [`harness`].
// The README's code is copied by users as it stands: a warning in it is a failure.
#![doc(test(attr(deny(warnings))))]

pub mod harness;

/// The README's examples compile and run as doc tests, warning-free: each block is a
/// whole program (`fn main`), so what the README shows is what runs.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
