//! Writing a model: [`write_model`].

use super::{
    crc32, layers_len, model_len, OptimizerKind, ScalarKind, CONV_COUNTS, CRC_LEN, MAGIC,
    OPTIMIZER_NONE, OPTIMIZER_SGD, POOL_COUNTS, TAG_ACTIVATION, TAG_AVG_POOL2D, TAG_CONV2D,
    TAG_FLATTEN, TAG_LINEAR, TAG_MAX_POOL2D, VERSION,
};
use crate::{Activation, ImageShape, Loss, NetworkSpec, Op, Optimizer, PcError, Scalar, Sgd};

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
