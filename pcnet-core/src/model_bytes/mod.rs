//! Model bytes: a network, its parameters and optionally its optimizer, as a self-checking
//! byte string in a caller's buffer (a flash page, a file, a radio packet).
//!
//! Nothing allocates. [`model_len`] gives the length a model needs (a `const fn`, so a
//! firmware sizes its "flash" region at compile time), [`write_model`] writes it,
//! [`read_info`] checks every byte of it and describes it, [`read_model`] copies the layer
//! descriptions and parameters into caller slices and returns the [`NetworkSpec`], and
//! [`read_sgd`] restores the optimizer. Every reader validates the whole model (magic,
//! version, scalar type, length, CRC-32, every op, the network's shapes, finiteness of
//! every value) before it writes anything into a caller's slice, and reports a malformed
//! model as [`PcError::CorruptModel`], never by panicking. A well-formed model with an op
//! this build lacks (a convolution or pooling op without the `conv` feature, an
//! activation without its feature) is [`PcError::InvalidOp`], with a loss or a residual
//! layer it lacks [`PcError::InvalidNetwork`].
//!
//! # Format, versions 1 and 2
//!
//! Version 2 ([`VERSION_RESIDUAL`]) is version 1 with residual layers
//! ([`Layer::residual`](crate::Layer::residual)); a network without them is written as
//! version 1, byte for byte as before version 2 existed, and both are read. Each model
//! has one encoding: a version-2 model in which no layer is residual is refused.
//!
//! All integers little-endian; scalars are `f32` or `f64` (IEEE 754 bits, little-endian),
//! as the header says.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"PCNN"` |
//! | 4 | 2 | version (`1`, or `2` when some layer is residual) |
//! | 6 | 1 | scalar size in bytes: 4 (`f32`) or 8 (`f64`) |
//! | 7 | 1 | loss: 0 `Mse`, 1 `MseSum`, 2 `CrossEntropy` |
//! | 8 | 4 | total length in bytes, CRC included |
//! | 12 | 4 | input features per sample |
//! | 16 | 4 | number of layers `L` |
//! | 20 | 4 | number of parameters `P` |
//! | 24 | 1 | optimizer: 0 none, 1 SGD |
//! | 25 | 3 | reserved, zero |
//! | 28 | | `L` layers: an op count (1 byte; version 2: plus `0x80` for a residual layer) then the ops (version 2, residual layer: then its scale `alpha` as 8 bytes of `f64`) |
//! | | | `P` parameters, in [`NetworkSpec`]'s flat layout |
//! | | | SGD only: learning rate, momentum, dampening, weight decay (4 scalars), Nesterov (1 byte, 0 or 1), steps (8 bytes), momentum buffers (`P` scalars) |
//! | end - 4 | 4 | CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`) of all bytes before it |
//!
//! An op is a tag byte and its payload, every count 4 bytes:
//!
//! | tag | op | payload |
//! |---|---|---|
//! | 1 | `Linear` | inputs, outputs |
//! | 2 | `Activation` | a kind byte: 0 identity, 1 ReLU, 2 leaky ReLU followed by its slope as 8 bytes of `f64`, 3 tanh, 4 sigmoid, 5 softplus |
//! | 3 | `Conv2d` | input channels, height, width, output channels, kernel (2), stride (2), padding (2) |
//! | 4 | `MaxPool2d` | input channels, height, width, kernel (2), stride (2) |
//! | 5 | `AvgPool2d` | as `MaxPool2d` |
//! | 6 | `Flatten` | none |
//!
//! # Example
//! ```
//! use pcnet_core::model_bytes::{model_len, read_model, write_model, OptimizerKind};
//! use pcnet_core::{Activation, Layer, Loss, NetworkSpec};
//!
//! const LAYERS: [Layer; 2] = [
//!     Layer::dense(2, 3, Activation::Tanh),
//!     Layer::dense(3, 1, Activation::Identity),
//! ];
//! const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
//! const BYTES: usize = model_len::<f32>(&SPEC, OptimizerKind::None);
//!
//! let params: [f32; SPEC.parameter_len()] = core::array::from_fn(|i| i as f32 / 8.0);
//! let mut flash = [0u8; BYTES];
//! write_model(&SPEC, &params, None, &mut flash)?;
//!
//! let mut layers = [Layer::dense(1, 1, Activation::Identity); 4];
//! let mut restored = [0.0_f32; SPEC.parameter_len()];
//! let spec = read_model(&flash, &mut layers, &mut restored)?;
//! assert_eq!(spec, SPEC);
//! assert_eq!(restored, params);
//!
//! flash[40] ^= 0x10; // one flipped bit
//! assert!(read_model(&flash, &mut layers, &mut restored).is_err());
//! # Ok::<(), pcnet_core::PcError>(())
//! ```

use crate::{Activation, Loss, NetworkSpec, Op, Scalar, MAX_OPS_PER_LAYER};
#[cfg(doc)]
use crate::{PcError, Sgd};

/// The first four bytes of every model.
pub const MAGIC: [u8; 4] = *b"PCNN";
/// The format version this code writes for networks without residual layers, and reads.
pub const VERSION: u16 = 1;
/// The format version this code writes for networks with residual layers, and reads:
/// version 1 plus a residual flag (`0x80`) in a layer's op-count byte, its ops followed
/// by the scale as 8 bytes of `f64`.
pub const VERSION_RESIDUAL: u16 = 2;
/// The flag of a residual layer in its op-count byte (version 2).
const RESIDUAL_FLAG: u8 = 0x80;
/// Bytes of a residual layer's scale after its ops (version 2).
const RESIDUAL_SCALE_LEN: usize = 8;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 28;
/// Length of the CRC-32 trailer.
pub const CRC_LEN: usize = 4;

const TAG_LINEAR: u8 = 1;
const TAG_ACTIVATION: u8 = 2;
const TAG_CONV2D: u8 = 3;
const TAG_MAX_POOL2D: u8 = 4;
const TAG_AVG_POOL2D: u8 = 5;
const TAG_FLATTEN: u8 = 6;
/// Counts in a `Conv2d` payload: input shape (3), output channels, kernel, stride, padding.
const CONV_COUNTS: usize = 3 + 1 + 2 + 2 + 2;
/// Counts in a pooling payload: input shape (3), kernel, stride.
const POOL_COUNTS: usize = 3 + 2 + 2;
const OPTIMIZER_NONE: u8 = 0;
const OPTIMIZER_SGD: u8 = 1;
/// Hyperparameter scalars of SGD: learning rate, momentum, dampening, weight decay.
const SGD_SCALARS: usize = 4;

/// The scalar type of a model's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl ScalarKind {
    /// The kind of `T`.
    pub const fn of<T: Scalar>() -> ScalarKind {
        if core::mem::size_of::<T>() == 4 {
            ScalarKind::F32
        } else {
            ScalarKind::F64
        }
    }

    /// Bytes per value.
    pub const fn size(self) -> usize {
        match self {
            ScalarKind::F32 => 4,
            ScalarKind::F64 => 8,
        }
    }
}

/// Which optimizer a model carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// None: the model holds the network and its parameters only.
    None,
    /// [`Sgd`]: its hyperparameters, step count and momentum buffers.
    Sgd,
}

/// What a valid model holds, from [`read_info`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelInfo {
    /// Format version.
    pub version: u16,
    /// Scalar type of the parameters and optimizer values.
    pub scalar: ScalarKind,
    /// The loss.
    pub loss: Loss,
    /// Features per input sample.
    pub input_len: usize,
    /// Number of layers.
    pub layers: usize,
    /// Number of parameters.
    pub parameter_len: usize,
    /// The optimizer stored with the network.
    pub optimizer: OptimizerKind,
    /// Length of the model in bytes (a buffer may be longer: the rest is ignored).
    pub total_len: usize,
}

mod crc;
mod read;
// The test networks use leaky ReLU and cross-entropy.
#[cfg(all(test, feature = "leaky-relu", feature = "cross-entropy"))]
mod tests;
mod write;

pub use crc::crc32;
pub use read::{read_info, read_model, read_sgd};
pub use write::write_model;

/// Encoded length of one op, or `None` for an op kind model bytes cannot encode.
#[allow(unreachable_patterns)] // new `Op` kinds land before their encodings
const fn op_len(op: &Op) -> Option<usize> {
    match *op {
        Op::Linear { .. } => Some(1 + 4 + 4),
        Op::Activation(Activation::LeakyRelu { .. }) => Some(1 + 1 + 8),
        Op::Activation(_) => Some(1 + 1),
        Op::Conv2d(_) => Some(1 + 4 * CONV_COUNTS),
        Op::MaxPool2d(_) | Op::AvgPool2d(_) => Some(1 + 4 * POOL_COUNTS),
        Op::Flatten => Some(1),
        _ => None,
    }
}

/// Bytes the layer descriptions take, or `None` when an op cannot be encoded.
const fn layers_len(spec: &NetworkSpec<'_>) -> Option<usize> {
    let layers = spec.layers();
    let mut total = 0usize;
    let mut l = 0;
    while l < layers.len() {
        total += 1;
        let layer = &layers[l];
        let mut k = 0;
        // `Layer::ops` is not a const fn: walk the ops through `op_count` and `from_ops`'s
        // invariant that ops past the count are unused.
        while k < layer.op_count() && k < MAX_OPS_PER_LAYER {
            match op_len(&layer.op_at(k)) {
                Some(len) => total += len,
                None => return None,
            }
            k += 1;
        }
        if layer.residual_scale().is_some() {
            total += RESIDUAL_SCALE_LEN;
        }
        l += 1;
    }
    Some(total)
}

/// Bytes the optimizer section takes for `parameters` parameters of `size` bytes.
const fn optimizer_len(optimizer: OptimizerKind, parameters: usize, size: usize) -> usize {
    match optimizer {
        OptimizerKind::None => 0,
        OptimizerKind::Sgd => (SGD_SCALARS + parameters)
            .saturating_mul(size)
            .saturating_add(1 + 8),
    }
}

/// The number of bytes a model of `spec` with scalar type `T` and `optimizer` takes, or
/// `usize::MAX` when the network holds an op kind that has no encoding (then
/// [`write_model`] returns an error).
///
/// ```
/// use pcnet_core::model_bytes::{model_len, OptimizerKind};
/// use pcnet_core::{Activation, Layer, Loss, NetworkSpec};
/// const LAYERS: [Layer; 1] = [Layer::dense(2, 1, Activation::Tanh)];
/// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
/// // header + (op count + linear + tanh) + 3 parameters + CRC
/// assert_eq!(model_len::<f32>(&SPEC, OptimizerKind::None), 28 + (1 + 9 + 2) + 3 * 4 + 4);
/// // ... + 4 SGD hyperparameters and 3 momentum buffers, a Nesterov flag and a step count
/// const WITH_SGD: usize = model_len::<f32>(&SPEC, OptimizerKind::Sgd);
/// assert_eq!(WITH_SGD, 56 + (4 + 3) * 4 + 1 + 8);
/// static FLASH: [u8; WITH_SGD] = [0; WITH_SGD];
/// ```
pub const fn model_len<T: Scalar>(spec: &NetworkSpec<'_>, optimizer: OptimizerKind) -> usize {
    let layers = match layers_len(spec) {
        Some(len) => len,
        None => return usize::MAX,
    };
    let size = core::mem::size_of::<T>();
    let parameters = spec.parameter_len();
    HEADER_LEN
        .saturating_add(layers)
        .saturating_add(parameters.saturating_mul(size))
        .saturating_add(optimizer_len(optimizer, parameters, size))
        .saturating_add(CRC_LEN)
}
