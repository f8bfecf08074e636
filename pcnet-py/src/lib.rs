//! # pcnet-py: pc from Python (`import pc_kernels`)
//!
//! The Rust half of the Python package `pc-kernels` (import name `pc_kernels`), built
//! into a wheel by maturin (`pip install ./pcnet-py`). The package offers
//! `pc_kernels.infer` (numpy arrays in, numpy arrays out) and
//! `pc_kernels.torch.PCInfer`, a drop-in for Torch2PC's `PCInfer`; see the package's
//! README.md.
//!
//! This crate holds what does not need Python, tested by `cargo test`:
//!
//! * [`model`]: a network described op by op as PyTorch modules describe it, checked and
//!   turned into pcnet-core's layers, with the shapes of every activation and parameter;
//! * [`runner`]: the row-block runner (the same blocks and sums as
//!   [`pcnet_std::batch::BatchRunner`], so the same bits for any thread count) that also
//!   returns every layer's feedforward values, beliefs and errors.
//!
//! With the `python` feature (maturin turns it on) it also builds the extension module
//! `pc_kernels._native` on PyO3 and the numpy crate.
//!
//! ```
//! use pcnet_core::{Activation, Loss};
//! use pcnet_py::model::{Model, OpDesc};
//! let model = Model::new(
//!     &[vec![OpDesc::Linear { inputs: 784, outputs: 10 }, OpDesc::Activation(Activation::Identity)]],
//!     &[784],
//!     Loss::CrossEntropy,
//! )?;
//! assert_eq!(model.spec().parameter_len(), 784 * 10 + 10);
//! # Ok::<(), String>(())
//! ```

pub mod model;
#[cfg(feature = "python")]
mod python;
pub mod runner;
