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
//! activation without its feature) is [`PcError::InvalidOp`], with a loss it lacks
//! [`PcError::InvalidNetwork`].
//!
//! # Format, version 1
//!
//! All integers little-endian; scalars are `f32` or `f64` (IEEE 754 bits, little-endian),
//! as the header says.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"PCNN"` |
//! | 4 | 2 | version (`1`) |
//! | 6 | 1 | scalar size in bytes: 4 (`f32`) or 8 (`f64`) |
//! | 7 | 1 | loss: 0 `Mse`, 1 `MseSum`, 2 `CrossEntropy` |
//! | 8 | 4 | total length in bytes, CRC included |
//! | 12 | 4 | input features per sample |
//! | 16 | 4 | number of layers `L` |
//! | 20 | 4 | number of parameters `P` |
//! | 24 | 1 | optimizer: 0 none, 1 SGD |
//! | 25 | 3 | reserved, zero |
//! | 28 | | `L` layers: an op count (1 byte) then the ops |
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

use crate::MAX_OPS_PER_LAYER;
use crate::{
    Activation, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Optimizer, PcError, Pool2d,
    Scalar, Sgd,
};

/// The first four bytes of every model.
pub const MAGIC: [u8; 4] = *b"PCNN";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
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

/// CRC-32 lookup table (reflected polynomial `0xEDB88320`), computed at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32 of `bytes` as zlib's `crc32` and IEEE 802.3 compute it (reflected polynomial
/// `0xEDB88320`, initial value and final xor `0xFFFFFFFF`).
///
/// ```
/// assert_eq!(pcnet_core::model_bytes::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

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

/// Writes bytes into a slice front to back.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn put_u32(&mut self, value: usize) {
        // Callers check that every count fits in `u32` first.
        self.put(&(value as u32).to_le_bytes());
    }

    fn put_scalar<T: Scalar>(&mut self, value: T) {
        match ScalarKind::of::<T>() {
            // `T` is `f32` here, so the round trip through `f64` is exact.
            ScalarKind::F32 => self.put(&(value.to_f64() as f32).to_le_bytes()),
            ScalarKind::F64 => self.put(&value.to_f64().to_le_bytes()),
        }
    }
}

fn too_large() -> PcError {
    PcError::InvalidNetwork {
        layer: 0,
        reason: "the network is too large for model bytes (counts are 32-bit)",
    }
}

const fn loss_tag(loss: Loss) -> u8 {
    match loss {
        Loss::Mse => 0,
        Loss::MseSum => 1,
        Loss::CrossEntropy => 2,
    }
}

const fn activation_tag(activation: Activation) -> u8 {
    match activation {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::LeakyRelu { .. } => 2,
        Activation::Tanh => 3,
        Activation::Sigmoid => 4,
        Activation::Softplus => 5,
    }
}

/// Writes the model of `spec` with `parameters`, and optionally an SGD optimizer with its
/// state, into the front of `out`; returns the number of bytes written
/// ([`model_len`]). The rest of `out` is untouched.
///
/// # Errors
/// Every error of [`NetworkSpec::check_parameters`]; [`PcError::BufferTooSmall`] when
/// `out` is shorter than [`model_len`]; [`PcError::InvalidNetwork`] for an op kind without
/// an encoding or counts beyond `u32`; the optimizer's hyperparameter errors, and
/// [`PcError::LengthMismatch`] / [`PcError::NonFinite`] for its state. On error nothing is
/// written.
pub fn write_model<T: Scalar>(
    spec: &NetworkSpec<'_>,
    parameters: &[T],
    optimizer: Option<(&Sgd<T>, &[T])>,
    out: &mut [u8],
) -> Result<usize, PcError> {
    spec.check_parameters(parameters)?;
    let kind = match optimizer {
        None => OptimizerKind::None,
        Some((sgd, state)) => {
            sgd.validate()?;
            crate::error::check_len(
                "optimizer state",
                <Sgd<T> as Optimizer<T>>::state_len(parameters.len()),
                state.len(),
            )?;
            crate::error::check_finite("optimizer state", state)?;
            OptimizerKind::Sgd
        }
    };
    if layers_len(spec).is_none() {
        return Err(PcError::InvalidNetwork {
            layer: 0,
            reason: "an op kind has no model-bytes encoding",
        });
    }
    let total = model_len::<T>(spec, kind);
    let fits = |n: usize| n <= u32::MAX as usize;
    if !(fits(total) && fits(spec.input_len()) && fits(spec.depth())) {
        return Err(too_large());
    }
    for layer in spec.layers() {
        for op in layer.ops() {
            let mut counts = [0usize; CONV_COUNTS];
            if !op_counts(op, &mut counts).iter().all(|&n| fits(n)) {
                return Err(too_large());
            }
        }
    }
    if out.len() < total {
        return Err(PcError::BufferTooSmall {
            what: "model bytes",
            needed: total,
            given: out.len(),
        });
    }
    let mut w = Writer {
        out: &mut out[..total],
        at: 0,
    };
    w.put(&MAGIC);
    w.put(&VERSION.to_le_bytes());
    w.put(&[ScalarKind::of::<T>().size() as u8, loss_tag(spec.loss())]);
    w.put_u32(total);
    w.put_u32(spec.input_len());
    w.put_u32(spec.depth());
    w.put_u32(parameters.len());
    let optimizer_tag = match kind {
        OptimizerKind::None => OPTIMIZER_NONE,
        OptimizerKind::Sgd => OPTIMIZER_SGD,
    };
    w.put(&[optimizer_tag, 0, 0, 0]);
    for layer in spec.layers() {
        w.put(&[layer.op_count() as u8]);
        for op in layer.ops() {
            match *op {
                Op::Linear { inputs, outputs } => {
                    w.put(&[TAG_LINEAR]);
                    w.put_u32(inputs);
                    w.put_u32(outputs);
                }
                Op::Activation(activation) => {
                    w.put(&[TAG_ACTIVATION, activation_tag(activation)]);
                    if let Activation::LeakyRelu { slope } = activation {
                        w.put(&slope.to_le_bytes());
                    }
                }
                Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::Flatten => {
                    let tag = match *op {
                        Op::Conv2d(_) => TAG_CONV2D,
                        Op::MaxPool2d(_) => TAG_MAX_POOL2D,
                        Op::AvgPool2d(_) => TAG_AVG_POOL2D,
                        _ => TAG_FLATTEN,
                    };
                    w.put(&[tag]);
                    let mut counts = [0usize; CONV_COUNTS];
                    for &count in op_counts(op, &mut counts) {
                        w.put_u32(count);
                    }
                }
                // Unreachable: `layers_len` rejected every other kind above.
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    }
    for &value in parameters {
        w.put_scalar(value);
    }
    if let Some((sgd, state)) = optimizer {
        for value in [
            sgd.learning_rate,
            sgd.momentum,
            sgd.dampening,
            sgd.weight_decay,
        ] {
            w.put_scalar(value);
        }
        w.put(&[sgd.nesterov as u8]);
        w.put(&sgd.steps.to_le_bytes());
        for &value in state {
            w.put_scalar(value);
        }
    }
    let crc = crc32(&w.out[..total - CRC_LEN]);
    w.put(&crc.to_le_bytes());
    Ok(total)
}

/// The counts an op stores as 4-byte fields: a linear op's widths, a convolution's or
/// pooling's shape (empty for the others).
fn op_counts<'c>(op: &Op, counts: &'c mut [usize; CONV_COUNTS]) -> &'c [usize] {
    let len = match *op {
        Op::Linear { inputs, outputs } => {
            counts[..2].copy_from_slice(&[inputs, outputs]);
            2
        }
        Op::Conv2d(conv) => {
            let ImageShape {
                channels,
                height,
                width,
            } = conv.input;
            let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
            *counts = [
                channels,
                height,
                width,
                conv.out_channels,
                kh,
                kw,
                sh,
                sw,
                ph,
                pw,
            ];
            CONV_COUNTS
        }
        Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => {
            let ImageShape {
                channels,
                height,
                width,
            } = pool.input;
            let ([kh, kw], [sh, sw]) = (pool.kernel, pool.stride);
            counts[..POOL_COUNTS].copy_from_slice(&[channels, height, width, kh, kw, sh, sw]);
            POOL_COUNTS
        }
        _ => 0,
    };
    &counts[..len]
}

const fn corrupt(reason: &'static str) -> PcError {
    PcError::CorruptModel { reason }
}

/// Reads bytes front to back; running past the end is an error, never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PcError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(corrupt("truncated"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, PcError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PcError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<usize, PcError> {
        let value = u32::from_le_bytes(self.array()?);
        usize::try_from(value).map_err(|_| corrupt("a count does not fit this machine"))
    }

    fn scalar<T: Scalar>(&mut self, kind: ScalarKind) -> Result<T, PcError> {
        let value = match kind {
            ScalarKind::F32 => f32::from_le_bytes(self.array()?) as f64,
            ScalarKind::F64 => f64::from_le_bytes(self.array()?),
        };
        Ok(T::from_f64(value))
    }

    fn op(&mut self) -> Result<Op, PcError> {
        match self.u8()? {
            TAG_LINEAR => {
                let inputs = self.u32()?;
                let outputs = self.u32()?;
                Ok(Op::Linear { inputs, outputs })
            }
            TAG_ACTIVATION => {
                let activation = match self.u8()? {
                    0 => Activation::Identity,
                    1 => Activation::Relu,
                    2 => Activation::LeakyRelu {
                        slope: f64::from_le_bytes(self.array()?),
                    },
                    3 => Activation::Tanh,
                    4 => Activation::Sigmoid,
                    5 => Activation::Softplus,
                    _ => return Err(corrupt("unknown activation")),
                };
                Ok(Op::Activation(activation))
            }
            TAG_CONV2D => {
                let input = self.shape()?;
                let out_channels = self.u32()?;
                let kernel = [self.u32()?, self.u32()?];
                let stride = [self.u32()?, self.u32()?];
                let padding = [self.u32()?, self.u32()?];
                Ok(Op::Conv2d(
                    Conv2d::new(input, out_channels, kernel)
                        .with_stride(stride)
                        .with_padding(padding),
                ))
            }
            tag @ (TAG_MAX_POOL2D | TAG_AVG_POOL2D) => {
                let input = self.shape()?;
                let kernel = [self.u32()?, self.u32()?];
                let stride = [self.u32()?, self.u32()?];
                let pool = Pool2d::new(input, kernel).with_stride(stride);
                Ok(if tag == TAG_MAX_POOL2D {
                    Op::MaxPool2d(pool)
                } else {
                    Op::AvgPool2d(pool)
                })
            }
            TAG_FLATTEN => Ok(Op::Flatten),
            _ => Err(corrupt("unknown op kind")),
        }
    }

    fn shape(&mut self) -> Result<ImageShape, PcError> {
        Ok(ImageShape::new(self.u32()?, self.u32()?, self.u32()?))
    }

    fn op_count(&mut self) -> Result<usize, PcError> {
        let count = self.u8()? as usize;
        if count == 0 || count > MAX_OPS_PER_LAYER {
            return Err(corrupt("op count of a layer out of range"));
        }
        Ok(count)
    }

    fn layer(&mut self) -> Result<Layer, PcError> {
        let count = self.op_count()?;
        let mut ops = [Op::Activation(Activation::Identity); MAX_OPS_PER_LAYER];
        for op in ops.iter_mut().take(count) {
            *op = self.op()?;
        }
        Layer::from_ops(&ops[..count]).map_err(|_| corrupt("invalid layer"))
    }
}

/// A well-formed op that this build of pcnet-core cannot run (its cargo feature is off) is
/// [`PcError::InvalidOp`], as [`NetworkSpec::validate`] reports it, not a corrupt model.
fn built(op: &Op, layer: usize, index: usize) -> Result<(), PcError> {
    match op.missing_feature() {
        Some(reason) => Err(PcError::InvalidOp {
            layer,
            op: index,
            reason,
        }),
        None => Ok(()),
    }
}

/// The checks [`NetworkSpec::validate`] makes of one op that receives `width` features per
/// sample; returns the op's output width.
fn check_op(op: &Op, width: usize) -> Result<usize, PcError> {
    if op.shape_problem().is_some() {
        return Err(corrupt("an op's shape is unusable"));
    }
    if op
        .required_input_len()
        .is_some_and(|required| required != width)
    {
        return Err(corrupt("an op does not fit the width before it"));
    }
    if let Op::Activation(Activation::LeakyRelu { slope }) = op {
        if !slope.is_finite() {
            return Err(corrupt("non-finite leaky ReLU slope"));
        }
    }
    match op.output_len(width) {
        0 => Err(corrupt("an op produces zero features")),
        out => Ok(out),
    }
}

/// The parsed fixed header and where the sections start.
struct Parsed {
    info: ModelInfo,
    /// Offset of the first layer description.
    layers_at: usize,
    /// Offset of the parameters.
    parameters_at: usize,
    /// Offset of the optimizer section.
    optimizer_at: usize,
}

fn parse_header(bytes: &[u8]) -> Result<(ModelInfo, u8), PcError> {
    let mut r = Reader { bytes, at: 0 };
    if r.array::<4>()? != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let version = u16::from_le_bytes(r.array()?);
    if version != VERSION {
        return Err(corrupt("unsupported version"));
    }
    let scalar = match r.u8()? {
        4 => ScalarKind::F32,
        8 => ScalarKind::F64,
        _ => return Err(corrupt("unknown scalar type")),
    };
    let loss = match r.u8()? {
        0 => Loss::Mse,
        1 => Loss::MseSum,
        2 => Loss::CrossEntropy,
        _ => return Err(corrupt("unknown loss")),
    };
    let total_len = r.u32()?;
    let input_len = r.u32()?;
    let layers = r.u32()?;
    let parameter_len = r.u32()?;
    let optimizer_tag = r.u8()?;
    let optimizer = match optimizer_tag {
        OPTIMIZER_NONE => OptimizerKind::None,
        OPTIMIZER_SGD => OptimizerKind::Sgd,
        _ => return Err(corrupt("unknown optimizer")),
    };
    if r.array::<3>()? != [0; 3] {
        return Err(corrupt("reserved header bytes are not zero"));
    }
    let info = ModelInfo {
        version,
        scalar,
        loss,
        input_len,
        layers,
        parameter_len,
        optimizer,
        total_len,
    };
    Ok((info, optimizer_tag))
}

/// Checks everything about `bytes` that needs no caller buffers, and finds the sections.
/// Out of line, so its frame is not merged into its callers' and is live only while it runs.
#[inline(never)]
fn parse(bytes: &[u8]) -> Result<Parsed, PcError> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(corrupt("shorter than a header"));
    }
    let (info, _) = parse_header(bytes)?;
    let total = info.total_len;
    if total < HEADER_LEN + CRC_LEN || total > bytes.len() {
        return Err(corrupt("total length out of range"));
    }
    let (body, stored) = bytes[..total].split_at(total - CRC_LEN);
    let mut crc = [0u8; CRC_LEN];
    crc.copy_from_slice(stored);
    if crc32(body) != u32::from_le_bytes(crc) {
        return Err(corrupt("CRC mismatch"));
    }
    // The layers, op by op, with the checks of `NetworkSpec::validate`, so the network is
    // validated with no storage for its layers (an `Op` is large: a `Layer` on the stack
    // costs hundreds of bytes).
    let mut r = Reader {
        bytes: body,
        at: HEADER_LEN,
    };
    if info.layers == 0 {
        return Err(corrupt("no layers"));
    }
    if info.input_len == 0 {
        return Err(corrupt("zero input width"));
    }
    if let Some(reason) = info.loss.missing_feature() {
        return Err(PcError::InvalidNetwork { layer: 0, reason });
    }
    let mut width = info.input_len;
    let mut activations = width;
    let mut parameters = 0usize;
    for layer in 1..=info.layers {
        let count = r.op_count()?;
        for index in 0..count {
            let op = r.op()?;
            built(&op, layer, index)?;
            width = check_op(&op, width)?;
            parameters = parameters
                .checked_add(op.parameter_len())
                .filter(|&n| n != usize::MAX)
                .ok_or(corrupt("too many parameters"))?;
        }
        activations = activations
            .checked_add(width)
            .filter(|&n| n != usize::MAX)
            .ok_or(corrupt("too many activations"))?;
    }
    if parameters != info.parameter_len {
        return Err(corrupt("parameter count disagrees with the layers"));
    }
    let parameters_at = r.at;
    let size = info.scalar.size();
    let optimizer_at = parameter_bytes(parameters, size)
        .and_then(|n| n.checked_add(parameters_at))
        .ok_or(corrupt("too many parameters"))?;
    let optimizer_bytes = match info.optimizer {
        OptimizerKind::None => 0,
        OptimizerKind::Sgd => parameters
            .checked_add(SGD_SCALARS)
            .and_then(|n| parameter_bytes(n, size))
            .and_then(|n| n.checked_add(1 + 8))
            .ok_or(corrupt("too many parameters"))?,
    };
    let expected_total = optimizer_at
        .checked_add(optimizer_bytes)
        .and_then(|n| n.checked_add(CRC_LEN))
        .ok_or(corrupt("too many parameters"))?;
    if expected_total != total {
        return Err(corrupt("total length disagrees with the contents"));
    }
    // Every stored value must be finite and the optimizer valid.
    let mut values = Reader {
        bytes: body,
        at: parameters_at,
    };
    for _ in 0..parameters {
        if !values.scalar::<f64>(info.scalar)?.is_finite() {
            return Err(corrupt("non-finite parameter"));
        }
    }
    if info.optimizer == OptimizerKind::Sgd {
        let sgd = read_sgd_section::<f64>(&mut values, info.scalar)?;
        sgd.validate()
            .map_err(|_| corrupt("invalid optimizer hyperparameters"))?;
        for _ in 0..parameters {
            if !values.scalar::<f64>(info.scalar)?.is_finite() {
                return Err(corrupt("non-finite optimizer state"));
            }
        }
    }
    Ok(Parsed {
        info,
        layers_at: HEADER_LEN,
        parameters_at,
        optimizer_at,
    })
}

fn parameter_bytes(count: usize, size: usize) -> Option<usize> {
    count.checked_mul(size)
}

fn read_sgd_section<T: Scalar>(r: &mut Reader<'_>, kind: ScalarKind) -> Result<Sgd<T>, PcError> {
    let mut sgd = Sgd::new(r.scalar::<T>(kind)?);
    sgd.momentum = r.scalar(kind)?;
    sgd.dampening = r.scalar(kind)?;
    sgd.weight_decay = r.scalar(kind)?;
    sgd.nesterov = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(corrupt("Nesterov flag is not 0 or 1")),
    };
    sgd.steps = u64::from_le_bytes(r.array()?);
    Ok(sgd)
}

fn check_scalar<T: Scalar>(info: &ModelInfo) -> Result<(), PcError> {
    if info.scalar == ScalarKind::of::<T>() {
        Ok(())
    } else {
        Err(corrupt("scalar type differs from the reader's"))
    }
}

/// Validates a whole model and describes it, without copying anything out.
///
/// `bytes` may be longer than the model (a flash region): the bytes after
/// [`ModelInfo::total_len`] are ignored.
///
/// # Errors
/// [`PcError::CorruptModel`] naming the first check that failed: magic, version, scalar
/// type, loss, optimizer, reserved bytes, length, CRC, an op or layer, the network's
/// shapes, the parameter count, a non-finite value, or invalid optimizer hyperparameters.
pub fn read_info(bytes: &[u8]) -> Result<ModelInfo, PcError> {
    parse(bytes).map(|parsed| parsed.info)
}

/// Validates a whole model, then copies its layer descriptions into the front of `layers`
/// and its parameters into `parameters`, and returns the network, borrowing `layers`.
///
/// Nothing is written into `layers` or `parameters` unless the whole model is valid and
/// both slices fit.
///
/// # Errors
/// Every error of [`read_info`]; [`PcError::CorruptModel`] when the model's scalar type is
/// not `T`; [`PcError::BufferTooSmall`] when `layers` holds fewer layers than the model;
/// [`PcError::LengthMismatch`] when `parameters` is not exactly the model's parameter count.
pub fn read_model<'l, T: Scalar>(
    bytes: &[u8],
    layers: &'l mut [Layer],
    parameters: &mut [T],
) -> Result<NetworkSpec<'l>, PcError> {
    let parsed = parse(bytes)?;
    let info = parsed.info;
    check_scalar::<T>(&info)?;
    if layers.len() < info.layers {
        return Err(PcError::BufferTooSmall {
            what: "layers",
            needed: info.layers,
            given: layers.len(),
        });
    }
    crate::error::check_len("parameters", info.parameter_len, parameters.len())?;
    // `parse` has checked every byte read below: these reads cannot fail.
    let mut r = Reader {
        bytes,
        at: parsed.layers_at,
    };
    for layer in layers.iter_mut().take(info.layers) {
        *layer = r.layer()?;
    }
    let layers: &'l [Layer] = layers;
    let spec = NetworkSpec::new(&layers[..info.layers], info.loss).with_input_len(info.input_len);
    // `parse` made the same checks op by op; this keeps the two from drifting apart, and
    // runs before any parameter is written.
    spec.validate()
        .map_err(|_| corrupt("invalid network description"))?;
    r.at = parsed.parameters_at;
    for value in parameters.iter_mut() {
        *value = r.scalar(info.scalar)?;
    }
    Ok(spec)
}

/// Validates a whole model, then returns its SGD optimizer (hyperparameters and step
/// count) and copies its momentum buffers into `state`.
///
/// Nothing is written into `state` unless the whole model is valid.
///
/// # Errors
/// Every error of [`read_info`]; [`PcError::CorruptModel`] when the model's scalar type is
/// not `T` or it holds no SGD optimizer; [`PcError::LengthMismatch`] when `state` is not
/// [`Optimizer::state_len`] of the parameter count.
pub fn read_sgd<T: Scalar>(bytes: &[u8], state: &mut [T]) -> Result<Sgd<T>, PcError> {
    let parsed = parse(bytes)?;
    let info = parsed.info;
    check_scalar::<T>(&info)?;
    if info.optimizer != OptimizerKind::Sgd {
        return Err(corrupt("the model holds no SGD optimizer"));
    }
    crate::error::check_len(
        "optimizer state",
        <Sgd<T> as Optimizer<T>>::state_len(info.parameter_len),
        state.len(),
    )?;
    let mut r = Reader {
        bytes,
        at: parsed.optimizer_at,
    };
    let sgd = read_sgd_section(&mut r, info.scalar)?;
    for value in state.iter_mut() {
        *value = r.scalar(info.scalar)?;
    }
    Ok(sgd)
}

// The test networks use leaky ReLU and cross-entropy.
#[cfg(all(test, feature = "leaky-relu", feature = "cross-entropy"))]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const LAYERS: [Layer; 3] = [
        Layer::dense(3, 4, Activation::LeakyRelu { slope: 0.125 }),
        Layer::dense(4, 2, Activation::Tanh),
        Layer::dense(2, 2, Activation::Identity),
    ];
    const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);

    fn params<T: Scalar>() -> Vec<T> {
        (0..SPEC.parameter_len())
            .map(|i| T::from_f64((i as f64 - 11.0) / 7.0))
            .collect()
    }

    fn saved_with_sgd<T: Scalar>() -> (Vec<u8>, Sgd<T>, Vec<T>) {
        let mut sgd = Sgd::new(T::from_f64(0.05))
            .with_momentum(T::from_f64(0.9))
            .with_weight_decay(T::from_f64(1e-4));
        sgd.steps = 12345;
        let state: Vec<T> = (0..SPEC.parameter_len())
            .map(|i| T::from_f64(i as f64 / 64.0))
            .collect();
        let mut bytes = vec![0u8; model_len::<T>(&SPEC, OptimizerKind::Sgd)];
        let written = write_model(&SPEC, &params::<T>(), Some((&sgd, &state)), &mut bytes).unwrap();
        assert_eq!(written, bytes.len());
        (bytes, sgd, state)
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn crc32_table_matches_the_bitwise_definition() {
        // Bit-at-a-time CRC, written independently of the table.
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= b as u32;
                for _ in 0..8 {
                    let mask = (crc & 1).wrapping_neg();
                    crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
                }
            }
            !crc
        }
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 131 % 251) as u8).collect();
        assert_eq!(crc32(&data), bitwise(&data));
    }

    #[test]
    fn round_trip_restores_network_parameters_and_optimizer_bitwise() {
        fn check<T: Scalar>() {
            let (bytes, sgd, state) = saved_with_sgd::<T>();
            let info = read_info(&bytes).unwrap();
            assert_eq!(info.scalar, ScalarKind::of::<T>());
            assert_eq!(info.layers, 3);
            assert_eq!(info.parameter_len, SPEC.parameter_len());
            assert_eq!(info.optimizer, OptimizerKind::Sgd);
            assert_eq!(info.total_len, bytes.len());
            let mut layers = [Layer::dense(1, 1, Activation::Relu); 5];
            let mut restored = vec![T::zero(); SPEC.parameter_len()];
            let spec = read_model(&bytes, &mut layers, &mut restored).unwrap();
            assert_eq!(spec, SPEC);
            assert_eq!(restored, params::<T>());
            let mut restored_state = vec![T::zero(); state.len()];
            assert_eq!(read_sgd(&bytes, &mut restored_state).unwrap(), sgd);
            assert_eq!(restored_state, state);
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn layout_length_matches_the_documented_format() {
        // Header 28; layers: 3 op counts, 3 linear ops of 9, leaky relu 10, tanh 2,
        // identity 2; parameters (3 + 1) * 4 + (4 + 1) * 2 + (2 + 1) * 2 = 32 f32; CRC 4.
        let expected = 28 + 3 + 3 * 9 + 10 + 2 + 2 + 32 * 4 + 4;
        assert_eq!(SPEC.parameter_len(), 32);
        assert_eq!(model_len::<f32>(&SPEC, OptimizerKind::None), expected);
        // SGD adds 4 hyperparameters, a flag, a step count and one buffer per parameter.
        assert_eq!(
            model_len::<f64>(&SPEC, OptimizerKind::Sgd),
            28 + 3 + 27 + 10 + 4 + (32 + 4 + 32) * 8 + 1 + 8 + 4
        );
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let (bytes, _, state) = saved_with_sgd::<f32>();
        let original = params::<f32>();
        let mut layers = [Layer::dense(1, 1, Activation::Relu); 3];
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(read_info(&flipped), Err(PcError::CorruptModel { .. })),
                "bit {bit} accepted"
            );
            let mut out = original.clone();
            out[0] = 99.0; // a canary: a rejected read must leave the slice untouched
            let before = out.clone();
            assert!(read_model(&flipped, &mut layers, &mut out).is_err());
            assert_eq!(out, before, "bit {bit}: parameters written on error");
            let mut out_state = vec![7.0f32; state.len()];
            assert!(read_sgd(&flipped, &mut out_state).is_err());
            assert!(out_state.iter().all(|&v| v == 7.0));
        }
    }

    /// Re-seals `bytes` with a correct CRC, so the checks behind the CRC are exercised.
    fn reseal(bytes: &mut [u8]) {
        let n = bytes.len();
        let crc = crc32(&bytes[..n - CRC_LEN]);
        bytes[n - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn malformed_models_with_valid_crc_are_rejected() {
        let (bytes, _, _) = saved_with_sgd::<f32>();
        let reject = |edit: &dyn Fn(&mut Vec<u8>), what: &str| {
            let mut b = bytes.clone();
            edit(&mut b);
            reseal(&mut b);
            assert!(
                matches!(read_info(&b), Err(PcError::CorruptModel { .. })),
                "{what} accepted"
            );
        };
        reject(&|b| b[0] = b'X', "magic");
        reject(&|b| b[4] = 2, "version");
        reject(&|b| b[6] = 2, "scalar size");
        reject(&|b| b[7] = 9, "loss");
        reject(&|b| b[8] -= 4, "total length");
        reject(&|b| b[12] = 5, "input width");
        reject(&|b| b[16] = 4, "layer count");
        reject(&|b| b[16] = 0, "zero layers");
        reject(&|b| b[20] = 27, "parameter count");
        reject(&|b| b[24] = 7, "optimizer");
        reject(&|b| b[26] = 1, "reserved");
        reject(&|b| b[28] = 0, "empty layer");
        reject(&|b| b[28] = 7, "too many ops");
        reject(&|b| b[29] = 9, "op tag");
        reject(&|b| b[30] = 0, "zero inputs");
        reject(&|b| b[39] = 9, "activation kind");
        // Leaky ReLU slope (8 bytes at 40) set to NaN.
        reject(
            &|b| b[40..48].copy_from_slice(&f64::NAN.to_le_bytes()),
            "NaN slope",
        );
        // Layer 2's linear inputs (after layer 1: 28 + 1 + 9 + 10 = 48, tag at 49).
        reject(&|b| b[50] = 5, "mismatched widths");
        // First parameter (layers end at 28 + 3 + 27 + 14 = 72) set to infinity.
        reject(
            &|b| b[72..76].copy_from_slice(&f32::INFINITY.to_le_bytes()),
            "infinite parameter",
        );
        let sgd_at = 72 + 32 * 4;
        reject(
            &|b| b[sgd_at..sgd_at + 4].copy_from_slice(&(-1.0f32).to_le_bytes()),
            "negative learning rate",
        );
        reject(&|b| b[sgd_at + 16] = 2, "Nesterov flag");
        reject(&|b| b.truncate(b.len() - 5), "truncated body");
        // Arbitrary short or empty inputs.
        for len in 0..bytes.len() {
            assert!(read_info(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn random_corruptions_behind_a_valid_crc_never_panic() {
        // Up to 4 random bytes changed, then re-sealed, so parsing goes past the CRC; a
        // model that still reads must describe a valid network with finite parameters.
        let (bytes, _, _) = saved_with_sgd::<f32>();
        let mut state = 0x2545_F491u32;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as usize % bound
        };
        let mut layers = [Layer::dense(1, 1, Activation::Relu); 4];
        let mut rejected = 0;
        for _ in 0..5000 {
            let mut b = bytes.clone();
            for _ in 0..1 + next(4) {
                let at = next(b.len() - CRC_LEN);
                b[at] = next(256) as u8;
            }
            reseal(&mut b);
            match read_info(&b) {
                Ok(info) if info.layers <= layers.len() => {
                    let mut out = vec![0.0f32; info.parameter_len];
                    let spec = read_model(&b, &mut layers, &mut out).unwrap();
                    assert!(spec.validate().is_ok());
                    assert!(out.iter().all(|v| v.is_finite()));
                }
                Ok(_) => {}
                Err(error) => {
                    // Without `conv`, an edit that makes a well-formed image op is the
                    // build's limit, not corruption.
                    let lacking_conv =
                        cfg!(not(feature = "conv")) && matches!(error, PcError::InvalidOp { .. });
                    assert!(matches!(error, PcError::CorruptModel { .. }) || lacking_conv);
                    rejected += 1;
                }
            }
        }
        // Most edits land in parameters and stay valid; the structural ones are caught.
        assert!(rejected > 0);
    }

    #[test]
    fn wrong_buffers_are_errors_and_untouched() {
        let (bytes, _, _) = saved_with_sgd::<f32>();
        let mut few_layers = [Layer::dense(1, 1, Activation::Relu); 2];
        let mut out = vec![5.0f32; SPEC.parameter_len()];
        assert!(matches!(
            read_model(&bytes, &mut few_layers, &mut out),
            Err(PcError::BufferTooSmall { .. })
        ));
        assert!(out.iter().all(|&v| v == 5.0));
        let mut layers = [Layer::dense(1, 1, Activation::Relu); 3];
        let mut short = vec![5.0f32; 3];
        assert!(matches!(
            read_model(&bytes, &mut layers, &mut short),
            Err(PcError::LengthMismatch { .. })
        ));
        let mut as_f64 = vec![0.0f64; SPEC.parameter_len()];
        assert!(matches!(
            read_model(&bytes, &mut layers, &mut as_f64),
            Err(PcError::CorruptModel { .. })
        ));
        // A model without an optimizer has no SGD to read.
        let mut plain = vec![0u8; model_len::<f32>(&SPEC, OptimizerKind::None)];
        write_model(&SPEC, &params::<f32>(), None, &mut plain).unwrap();
        let mut state = vec![0.0f32; SPEC.parameter_len()];
        assert!(read_sgd(&plain, &mut state).is_err());
        // A longer buffer (a flash page) reads the same.
        let mut page = plain.clone();
        page.extend_from_slice(&[0xFF; 64]);
        assert_eq!(read_info(&page).unwrap().total_len, plain.len());
    }

    #[cfg(feature = "conv")]
    #[test]
    fn convolution_and_pooling_round_trip_and_reject_every_bit_flip() {
        let conv = Conv2d::new(ImageShape::new(1, 6, 6), 2, [3, 3]).with_padding([1, 1]);
        let max = Pool2d::new(ImageShape::new(2, 6, 6), [2, 2]);
        let avg = Pool2d::new(ImageShape::new(2, 3, 3), [2, 2]).with_stride([1, 1]);
        let layers = [
            Layer::from_ops(&[
                Op::Conv2d(conv),
                Op::Activation(Activation::Relu),
                Op::MaxPool2d(max),
            ])
            .unwrap(),
            Layer::from_ops(&[
                Op::AvgPool2d(avg),
                Op::Flatten,
                Op::Linear {
                    inputs: 8,
                    outputs: 3,
                },
            ])
            .unwrap(),
        ];
        let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
        spec.validate().unwrap();
        let params: Vec<f64> = (0..spec.parameter_len())
            .map(|i| (i as f64 - 20.0) / 9.0)
            .collect();
        let mut bytes = vec![0u8; model_len::<f64>(&spec, OptimizerKind::None)];
        // Header, 2 op counts, conv 1 + 40, relu 2, pools 2 x 29, flatten 1, linear 9,
        // parameters (2 * 9 + 2 + 3 * 8 + 3) f64, CRC.
        assert_eq!(
            bytes.len(),
            28 + 2 + 41 + 2 + 2 * 29 + 1 + 9 + (20 + 27) * 8 + 4
        );
        write_model(&spec, &params, None, &mut bytes).unwrap();
        let mut restored_layers = [Layer::dense(1, 1, Activation::Relu); 2];
        let mut restored = vec![0.0f64; params.len()];
        let restored_spec = read_model(&bytes, &mut restored_layers, &mut restored).unwrap();
        assert_eq!(restored_spec, spec);
        assert_eq!(restored, params);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(read_info(&flipped).is_err(), "bit {bit} accepted");
        }
        // A zero stride behind a valid CRC (conv stride h at 28 + 1 + 1 + 6 * 4).
        let mut zero_stride = bytes.clone();
        zero_stride[54..58].copy_from_slice(&0u32.to_le_bytes());
        reseal(&mut zero_stride);
        assert!(matches!(
            read_info(&zero_stride),
            Err(PcError::CorruptModel { .. })
        ));
    }

    #[test]
    fn writer_rejects_bad_inputs_without_writing() {
        let mut out = vec![0xAAu8; model_len::<f32>(&SPEC, OptimizerKind::None)];
        let mut bad = params::<f32>();
        bad[3] = f32::NAN;
        assert!(write_model(&SPEC, &bad, None, &mut out).is_err());
        let mut short = vec![0xAAu8; out.len() - 1];
        assert!(matches!(
            write_model(&SPEC, &params::<f32>(), None, &mut short),
            Err(PcError::BufferTooSmall { .. })
        ));
        let sgd = Sgd::new(-1.0f32);
        let state = vec![0.0f32; SPEC.parameter_len()];
        assert!(write_model(&SPEC, &params::<f32>(), Some((&sgd, &state)), &mut out).is_err());
        assert!(out.iter().all(|&b| b == 0xAA));
        assert!(short.iter().all(|&b| b == 0xAA));
    }
}
