//! Integration and property tests of pc live in `tests/` beside this file; the fuzz
//! harness that the cargo-fuzz targets and the corpus replay test share is [`harness`].

pub mod harness;

/// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
