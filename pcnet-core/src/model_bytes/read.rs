//! Reading a model: [`read_info`], [`read_model`], [`read_sgd`]; every reader validates the
//! whole model before it writes into a caller's slice.

use super::{
    crc32, ModelInfo, OptimizerKind, ScalarKind, CRC_LEN, HEADER_LEN, MAGIC, OPTIMIZER_NONE,
    OPTIMIZER_SGD, SGD_SCALARS, TAG_ACTIVATION, TAG_AVG_POOL2D, TAG_CONV2D, TAG_FLATTEN,
    TAG_LINEAR, TAG_MAX_POOL2D, VERSION,
};
use super::{RESIDUAL_FLAG, VERSION_RESIDUAL};
use crate::{
    Activation, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Optimizer, PcError, Pool2d,
    Scalar, Sgd, MAX_OPS_PER_LAYER,
};

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

    /// A layer's op count and whether it is residual (the flag exists from version 2).
    fn op_count(&mut self, version: u16) -> Result<(usize, bool), PcError> {
        let byte = self.u8()?;
        let residual = version >= VERSION_RESIDUAL && byte & RESIDUAL_FLAG != 0;
        let count = (if residual {
            byte & !RESIDUAL_FLAG
        } else {
            byte
        }) as usize;
        if count == 0 || count > MAX_OPS_PER_LAYER {
            return Err(corrupt("op count of a layer out of range"));
        }
        Ok((count, residual))
    }

    /// A residual layer's scale, after its ops.
    fn residual_scale(&mut self) -> Result<f64, PcError> {
        let scale = f64::from_le_bytes(self.array()?);
        if scale.is_finite() {
            Ok(scale)
        } else {
            Err(corrupt("non-finite residual scale"))
        }
    }

    fn layer(&mut self, version: u16) -> Result<Layer, PcError> {
        let (count, residual) = self.op_count(version)?;
        let mut ops = [Op::Activation(Activation::Identity); MAX_OPS_PER_LAYER];
        for op in ops.iter_mut().take(count) {
            *op = self.op()?;
        }
        let layer = if residual {
            Layer::residual(&ops[..count], self.residual_scale()?)
        } else {
            Layer::from_ops(&ops[..count])
        };
        layer.map_err(|_| corrupt("invalid layer"))
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
    if version != VERSION && version != VERSION_RESIDUAL {
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
    let mut any_residual = false;
    for layer in 1..=info.layers {
        let (count, residual) = r.op_count(info.version)?;
        any_residual |= residual;
        if residual && !cfg!(feature = "residual") {
            return Err(PcError::InvalidNetwork {
                layer,
                reason: crate::spec::RESIDUAL_NEEDS_FEATURE,
            });
        }
        let layer_input = width;
        for index in 0..count {
            let op = r.op()?;
            built(&op, layer, index)?;
            width = check_op(&op, width)?;
            parameters = parameters
                .checked_add(op.parameter_len())
                .filter(|&n| n != usize::MAX)
                .ok_or(corrupt("too many parameters"))?;
        }
        if residual {
            r.residual_scale()?;
            if width != layer_input {
                return Err(corrupt("a residual branch changes the width"));
            }
        }
        activations = activations
            .checked_add(width)
            .filter(|&n| n != usize::MAX)
            .ok_or(corrupt("too many activations"))?;
    }
    // One model, one encoding: version 2 is written only when some layer is residual, so
    // a version-2 model without one is not something `write_model` produced.
    if info.version == VERSION_RESIDUAL && !any_residual {
        return Err(corrupt("version 2 without a residual layer"));
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
        *layer = r.layer(info.version)?;
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
