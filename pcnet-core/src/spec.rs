//! Network descriptions: operations, layers, and the storage they need.
//!
//! A network is a list of PC layers; each layer is a short chain of operations (as a
//! Torch2PC user writes a nested `nn.Sequential`: linear then tanh is one layer). The
//! description owns no parameters: those live in one flat slice the caller provides,
//! layer after layer, op after op, each linear op as its weight (`out x in`, row-major,
//! PyTorch's layout) followed by its bias.
//!
//! Every size is a `const fn`, so firmware can size static arrays at compile time:
//!
//! ```
//! use pcnet_core::{Activation, Layer, Loss, NetworkSpec};
//! const LAYERS: [Layer; 2] = [
//!     Layer::dense(2, 8, Activation::Tanh),
//!     Layer::dense(8, 1, Activation::Identity),
//! ];
//! const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
//! const PARAMS: usize = SPEC.parameter_len();
//! const WORK: usize = SPEC.workspace_len(4);
//! static _PARAMETERS: [f32; PARAMS] = [0.0; PARAMS];
//! assert_eq!(PARAMS, 2 * 8 + 8 + 8 + 1);
//! assert!(WORK > 0);
//! ```

use crate::{Activation, Conv2d, Loss, PcError, Pool2d};

/// The most operations one layer may chain.
pub const MAX_OPS_PER_LAYER: usize = 6;

/// One operation inside a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// `y = x W^T + b` with `W` of shape `outputs x inputs` (`nn.Linear`).
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
    },
    /// An elementwise nonlinearity.
    Activation(Activation),
    /// A 2-d convolution (`nn.Conv2d`) on NCHW samples; see [`Conv2d`].
    Conv2d(Conv2d),
    /// Max pooling (`nn.MaxPool2d`) on NCHW samples; see [`Pool2d`].
    MaxPool2d(Pool2d),
    /// Average pooling (`nn.AvgPool2d`) on NCHW samples; see [`Pool2d`].
    AvgPool2d(Pool2d),
    /// `nn.Flatten`: NCHW samples to feature rows. Samples are already stored as rows, so
    /// this is the identity on the data; it exists so descriptions mirror PyTorch's.
    Flatten,
}

impl Op {
    /// Number of parameters the op owns.
    pub const fn parameter_len(&self) -> usize {
        match *self {
            Op::Linear { inputs, outputs } => {
                inputs.saturating_mul(outputs).saturating_add(outputs)
            }
            Op::Conv2d(conv) => conv.parameter_len(),
            Op::Activation(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::Flatten => 0,
        }
    }

    /// Features per sample the op produces from `input` features per sample.
    pub const fn output_len(&self, input: usize) -> usize {
        match *self {
            Op::Linear { outputs, .. } => outputs,
            Op::Conv2d(conv) => conv.output_shape().len(),
            Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => pool.output_shape().len(),
            Op::Activation(_) | Op::Flatten => input,
        }
    }

    /// Features per sample the op accepts, or `None` when it accepts any.
    pub const fn required_input_len(&self) -> Option<usize> {
        match *self {
            Op::Linear { inputs, .. } => Some(inputs),
            Op::Conv2d(conv) => Some(conv.input.len()),
            Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => Some(pool.input.len()),
            Op::Activation(_) | Op::Flatten => None,
        }
    }
}

/// Why a convolution or pooling op is unusable in a build without the `conv` feature.
#[cfg(not(feature = "conv"))]
pub(crate) const IMAGE_OPS_NEED_CONV: &str = "image ops need pcnet-core's `conv` feature";

impl Op {
    /// Why this build of pcnet-core cannot run the op (its cargo feature is off), if it
    /// cannot: an image op without `conv`, an activation without its feature. One answer
    /// for [`NetworkSpec::validate`] and the model reader.
    pub(crate) const fn missing_feature(&self) -> Option<&'static str> {
        match self {
            #[cfg(not(feature = "conv"))]
            Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) => Some(IMAGE_OPS_NEED_CONV),
            Op::Activation(activation) => activation.missing_feature(),
            _ => None,
        }
    }

    /// Why the op's own description is unusable, if it is (checked by
    /// [`NetworkSpec::validate`]); an op this build lacks
    /// has no shape to check here ([`missing_feature`](Self::missing_feature)).
    pub(crate) const fn shape_problem(&self) -> Option<&'static str> {
        match self {
            #[cfg(feature = "conv")]
            Op::Conv2d(conv) => conv.problem(),
            #[cfg(feature = "conv")]
            Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => pool.problem(),
            _ => None,
        }
    }
}

/// One PC layer: a chain of at most [`MAX_OPS_PER_LAYER`] operations, `f_l` in the paper.
///
/// ```
/// use pcnet_core::{Activation, Layer, Op};
/// let layer = Layer::dense(4, 3, Activation::Relu);
/// assert_eq!(layer.ops(), &[Op::Linear { inputs: 4, outputs: 3 }, Op::Activation(Activation::Relu)]);
/// assert_eq!(layer.parameter_len(), 15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer {
    ops: [Op; MAX_OPS_PER_LAYER],
    len: usize,
}

impl Layer {
    /// A dense layer `act(x W^T + b)`.
    pub const fn dense(inputs: usize, outputs: usize, activation: Activation) -> Layer {
        let mut ops = [Op::Activation(Activation::Identity); MAX_OPS_PER_LAYER];
        ops[0] = Op::Linear { inputs, outputs };
        ops[1] = Op::Activation(activation);
        Layer { ops, len: 2 }
    }

    /// A layer from a chain of ops (1 to [`MAX_OPS_PER_LAYER`] of them).
    ///
    /// ```
    /// use pcnet_core::{Activation, Layer, Op, PcError};
    /// let ops = [Op::Linear { inputs: 2, outputs: 2 }];
    /// assert!(Layer::from_ops(&ops).is_ok());
    /// assert!(matches!(Layer::from_ops(&[]), Err(PcError::InvalidNetwork { .. })));
    /// ```
    pub const fn from_ops(chain: &[Op]) -> Result<Layer, PcError> {
        if chain.is_empty() {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "a layer needs at least one op",
            });
        }
        if chain.len() > MAX_OPS_PER_LAYER {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "a layer has too many ops",
            });
        }
        let mut ops = [Op::Activation(Activation::Identity); MAX_OPS_PER_LAYER];
        let mut i = 0;
        while i < chain.len() {
            ops[i] = chain[i];
            i += 1;
        }
        Ok(Layer {
            ops,
            len: chain.len(),
        })
    }

    /// The ops of the layer, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops[..self.len.min(MAX_OPS_PER_LAYER)]
    }

    /// Number of ops.
    pub const fn op_count(&self) -> usize {
        self.len
    }

    /// The op at `index` (an identity activation past [`Layer::op_count`]), for `const`
    /// code that cannot call [`Layer::ops`].
    pub const fn op_at(&self, index: usize) -> Op {
        if index < self.len && index < MAX_OPS_PER_LAYER {
            self.ops[index]
        } else {
            Op::Activation(Activation::Identity)
        }
    }

    /// Number of parameters of all ops.
    pub const fn parameter_len(&self) -> usize {
        let mut total = 0usize;
        let mut i = 0;
        while i < self.len && i < MAX_OPS_PER_LAYER {
            total = total.saturating_add(self.ops[i].parameter_len());
            i += 1;
        }
        total
    }

    /// Features per sample this layer produces from `input` features per sample.
    pub const fn output_len(&self, input: usize) -> usize {
        let mut width = input;
        let mut i = 0;
        while i < self.len && i < MAX_OPS_PER_LAYER {
            width = self.ops[i].output_len(width);
            i += 1;
        }
        width
    }

    /// Features per sample stored for the intermediate ops (all but the last), per sample.
    pub const fn trace_len(&self, input: usize) -> usize {
        let mut width = input;
        let mut total = 0usize;
        let mut i = 0;
        while i < self.len && i < MAX_OPS_PER_LAYER {
            width = self.ops[i].output_len(width);
            if i + 1 < self.len {
                total = total.saturating_add(width);
            }
            i += 1;
        }
        total
    }

    /// The widest input or output of any op, per sample.
    pub const fn max_width(&self, input: usize) -> usize {
        let mut width = input;
        let mut widest = input;
        let mut i = 0;
        while i < self.len && i < MAX_OPS_PER_LAYER {
            width = self.ops[i].output_len(width);
            if width > widest {
                widest = width;
            }
            i += 1;
        }
        widest
    }

    /// The activation of the layer when it is a dense layer `[Linear, Activation]` or a bare
    /// `[Linear]` (identity), else `None`.
    pub fn dense_activation(&self) -> Option<Activation> {
        match self.ops() {
            [Op::Linear { .. }] => Some(Activation::Identity),
            [Op::Linear { .. }, Op::Activation(activation)] => Some(*activation),
            _ => None,
        }
    }
}

/// A network: its layers, the features per input sample, and the loss on its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetworkSpec<'a> {
    layers: &'a [Layer],
    input_len: usize,
    loss: Loss,
}

impl<'a> NetworkSpec<'a> {
    /// A network whose input width is what its first op requires (a linear op's `inputs`).
    pub const fn new(layers: &'a [Layer], loss: Loss) -> NetworkSpec<'a> {
        let input_len = if layers.is_empty() || layers[0].len == 0 {
            0
        } else {
            match layers[0].ops[0].required_input_len() {
                Some(width) => width,
                None => 0,
            }
        };
        NetworkSpec {
            layers,
            input_len,
            loss,
        }
    }

    /// The same network with an explicit input width (for networks whose first op accepts
    /// any width).
    #[must_use = "returns the changed value; the original is not modified"]
    pub const fn with_input_len(self, input_len: usize) -> NetworkSpec<'a> {
        NetworkSpec { input_len, ..self }
    }

    /// The layers.
    pub const fn layers(&self) -> &'a [Layer] {
        self.layers
    }

    /// The loss.
    pub const fn loss(&self) -> Loss {
        self.loss
    }

    /// Number of layers `L`.
    pub const fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Features per sample of `v_l`, for `l = 0..=L` (`l = 0` is the input).
    pub const fn width(&self, layer: usize) -> usize {
        let mut width = self.input_len;
        let mut l = 0;
        while l < layer && l < self.layers.len() {
            width = self.layers[l].output_len(width);
            l += 1;
        }
        width
    }

    /// Features per input sample.
    pub const fn input_len(&self) -> usize {
        self.input_len
    }

    /// Features per output sample.
    pub const fn output_len(&self) -> usize {
        self.width(self.layers.len())
    }

    /// Total number of parameters (the length of the parameter and update slices).
    pub const fn parameter_len(&self) -> usize {
        let mut total = 0usize;
        let mut l = 0;
        while l < self.layers.len() {
            total = total.saturating_add(self.layers[l].parameter_len());
            l += 1;
        }
        total
    }

    /// Offset of layer `l`'s parameters (1-based `l`) in the flat parameter slice.
    pub const fn parameter_offset(&self, layer: usize) -> usize {
        let mut total = 0usize;
        let mut l = 0;
        while l + 1 < layer && l < self.layers.len() {
            total = total.saturating_add(self.layers[l].parameter_len());
            l += 1;
        }
        total
    }

    /// Sum of the widths of `v_0..=v_L`, per sample.
    pub const fn activation_len(&self) -> usize {
        let mut width = self.input_len;
        let mut total = width;
        let mut l = 0;
        while l < self.layers.len() {
            width = self.layers[l].output_len(width);
            total = total.saturating_add(width);
            l += 1;
        }
        total
    }

    /// Sum of all layers' intermediate op widths, per sample.
    pub const fn trace_len(&self) -> usize {
        let mut width = self.input_len;
        let mut total = 0usize;
        let mut l = 0;
        while l < self.layers.len() {
            total = total.saturating_add(self.layers[l].trace_len(width));
            width = self.layers[l].output_len(width);
            l += 1;
        }
        total
    }

    /// The widest input or output of any op in the network, per sample.
    pub const fn max_width(&self) -> usize {
        let mut width = self.input_len;
        let mut widest = width;
        let mut l = 0;
        while l < self.layers.len() {
            let layer_widest = self.layers[l].max_width(width);
            if layer_widest > widest {
                widest = layer_widest;
            }
            width = self.layers[l].output_len(width);
            l += 1;
        }
        widest
    }

    /// Length of the workspace slice that [`infer`](crate::infer) needs for `rows` samples.
    ///
    /// It holds, for every layer, the feedforward values, the beliefs, the errors and the
    /// predictions (`4 x activation_len`), the intermediate op values (`trace_len`), the
    /// output gradient, and three scratch blocks of `max_width` per sample.
    pub const fn workspace_len(&self, rows: usize) -> usize {
        let per_row = self
            .activation_len()
            .saturating_mul(4)
            .saturating_add(self.trace_len())
            .saturating_add(self.output_len())
            .saturating_add(self.max_width().saturating_mul(3));
        per_row.saturating_mul(rows)
    }

    /// Checks that the layers chain together: each op gets the width it requires, no
    /// layer has zero width, and the network has at least one layer.
    pub fn validate(&self) -> Result<(), PcError> {
        if self.layers.is_empty() {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "the network has no layers",
            });
        }
        if self.input_len == 0 {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "the input has zero width",
            });
        }
        let mut width = self.input_len;
        for (index, layer) in self.layers.iter().enumerate() {
            if layer.len == 0 || layer.len > MAX_OPS_PER_LAYER {
                return Err(PcError::InvalidNetwork {
                    layer: index + 1,
                    reason: "a layer needs 1 to MAX_OPS_PER_LAYER ops",
                });
            }
            for (op_index, op) in layer.ops().iter().enumerate() {
                if let Some(reason) = op.missing_feature().or(op.shape_problem()) {
                    return Err(PcError::InvalidOp {
                        layer: index + 1,
                        op: op_index,
                        reason,
                    });
                }
                if let Some(required) = op.required_input_len() {
                    if required != width {
                        return Err(PcError::ShapeMismatch {
                            layer: index + 1,
                            op: op_index,
                            expected: required,
                            given: width,
                        });
                    }
                }
                if let Op::Activation(Activation::LeakyRelu { slope }) = op {
                    if !slope.is_finite() {
                        return Err(PcError::InvalidHyperparameter {
                            name: "leaky relu slope",
                            value: *slope,
                            min: core::ops::Bound::Unbounded,
                            max: core::ops::Bound::Unbounded,
                        });
                    }
                }
                width = op.output_len(width);
                if width == 0 {
                    return Err(PcError::InvalidNetwork {
                        layer: index + 1,
                        reason: "an op produces zero features",
                    });
                }
            }
        }
        if let Some(reason) = self.loss.missing_feature() {
            return Err(PcError::InvalidNetwork { layer: 0, reason });
        }
        // Guard against sizes whose products overflow `usize` (saturated above).
        if self.parameter_len() == usize::MAX || self.activation_len() == usize::MAX {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "the network is too large",
            });
        }
        Ok(())
    }

    /// Checks a parameter slice: its length and that every value is finite.
    pub fn check_parameters<T: crate::Scalar>(&self, parameters: &[T]) -> Result<(), PcError> {
        self.validate()?;
        crate::error::check_len("parameters", self.parameter_len(), parameters.len())?;
        crate::error::check_finite("parameters", parameters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "cross-entropy")]
    #[test]
    fn sizes_of_a_dense_network() {
        let layers = [
            Layer::dense(784, 256, Activation::Relu),
            Layer::dense(256, 10, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
        assert_eq!(spec.parameter_len(), 784 * 256 + 256 + 256 * 10 + 10);
        assert_eq!(spec.parameter_offset(2), 784 * 256 + 256);
        assert_eq!(spec.width(0), 784);
        assert_eq!(spec.width(2), 10);
        assert_eq!(spec.activation_len(), 784 + 256 + 10);
        assert_eq!(spec.trace_len(), 256 + 10);
        assert_eq!(spec.max_width(), 784);
        assert!(spec.validate().is_ok());
    }

    #[cfg(all(feature = "cross-entropy", feature = "leaky-relu"))]
    #[test]
    fn mismatched_layers_are_named() {
        let layers = [
            Layer::dense(3, 4, Activation::Relu),
            Layer::dense(5, 1, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        assert_eq!(
            spec.validate(),
            Err(PcError::ShapeMismatch {
                layer: 2,
                op: 0,
                expected: 5,
                given: 4
            })
        );
        let empty = NetworkSpec::new(&[], Loss::Mse);
        assert!(matches!(
            empty.validate(),
            Err(PcError::InvalidNetwork { layer: 0, .. })
        ));
        let zero = [Layer::dense(3, 0, Activation::Relu)];
        assert!(matches!(
            NetworkSpec::new(&zero, Loss::Mse).validate(),
            Err(PcError::InvalidNetwork { layer: 1, .. })
        ));
        let too_many = [Op::Activation(Activation::Relu); MAX_OPS_PER_LAYER + 1];
        assert!(Layer::from_ops(&too_many).is_err());
        let nan_slope = [Layer::dense(
            1,
            1,
            Activation::LeakyRelu { slope: f64::NAN },
        )];
        assert!(matches!(
            NetworkSpec::new(&nan_slope, Loss::Mse).validate(),
            Err(PcError::InvalidHyperparameter { .. })
        ));
    }

    #[test]
    fn huge_networks_do_not_overflow() {
        let layers = [Layer::dense(usize::MAX / 2, 4, Activation::Relu)];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        assert!(spec.validate().is_err());
        assert_eq!(spec.workspace_len(usize::MAX), usize::MAX);
    }
}
