//! `pcnet-bench`: the library side of pc's command-line program `pc-bench`, one module per
//! command, so the commands are callable (and tested) without spawning the binary:
//!
//! * [`reference`](mod@reference): `pc-bench reference DIR`, the Torch2PC reference cases (the format
//!   and runner are the crate `pcnet-reference`);
//! * [`reproduce`]: `pc-bench reproduce`, the paper's experiments, figures and report;
//! * [`speed`]: `pc-bench speed`, the time of one PCInfer-equivalent call;
//! * [`peak`]: `pc-bench peak`, the GFLOP/s of pc's own matrix product.
//!
//! Beside them: [`models`] (the paper's CNNs by name, FLOP counts), [`timing`] (the one
//! timing loop of `speed` and `peak`) and [`Error`]. The command line itself (clap) is
//! the binary's `cli` module.
//!
//! ```
//! let spec = pcnet_bench::models::paper_mnist_cnn();
//! assert_eq!(spec.spec().depth(), 5);
//! ```

pub mod depth;
pub mod error;
pub mod models;
pub mod peak;
pub mod reference;
pub mod reproduce;
pub mod speed;
pub mod timing;

pub use error::Error;
