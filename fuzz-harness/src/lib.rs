//! The fuzz harness: one function per fuzz target, each taking arbitrary bytes and
//! panicking when an invariant of pc's bad-input contract fails.
//!
//! The cargo-fuzz targets in `fuzz/` are one-line calls of these functions, and the
//! integration test `tests/tests/fuzz_corpus.rs` (package pcnet-tests) replays every committed corpus file through
//! them on stable, so the corpora and the regression inputs are checked by an ordinary
//! `cargo test`. Each target's module states its invariants.
//!
//! ```
//! // Every byte string is a valid fuzz input, the empty one included.
//! for (_name, target) in pcnet_fuzz_harness::TARGETS {
//!     target(&[]);
//!     target(&[7; 64]);
//! }
//! ```

pub mod input;
pub mod kernels;
pub mod model;
pub mod network;
pub mod parsers;

pub use kernels::fast_kernels;
pub use model::model_bytes;
pub use network::network;
pub use parsers::{csv, idx, reference_json};

/// A fuzz target: arbitrary bytes in, a panic when an invariant fails.
pub type Target = fn(&[u8]);

/// Every fuzz target, by the name of its cargo-fuzz binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("network", network),
    ("model_bytes", model_bytes),
    ("reference_json", reference_json),
    ("idx", idx),
    ("csv", csv),
    ("fast_kernels", fast_kernels),
];
