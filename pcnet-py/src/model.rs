//! A network described op by op, as the Python side hands it over, turned into
//! pcnet-core's [`Layer`]s, with the shapes Python needs to cut results and parameters.

use pcnet_core::{
    Activation, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d, MAX_OPS_PER_LAYER,
};

/// One operation of a layer, in PyTorch's terms (`nn.Linear`, `nn.Conv2d`, ...). Image
/// ops take their input shape from the op before them, so a description carries only
/// what the PyTorch module carries.
///
/// ```
/// use pcnet_py::model::OpDesc;
/// let op = OpDesc::Conv2d { in_channels: 1, out_channels: 4, kernel: [3, 3], stride: [1, 1], padding: [0, 0] };
/// assert!(matches!(op, OpDesc::Conv2d { .. }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpDesc {
    /// `nn.Linear(inputs, outputs)` (with bias).
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
    },
    /// `nn.Conv2d` (with bias, dilation 1, groups 1, zero padding).
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[ph, pw]`.
        padding: [usize; 2],
    },
    /// `nn.MaxPool2d(kernel, stride)` (no padding, floor).
    MaxPool2d {
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
    },
    /// `nn.AvgPool2d(kernel, stride)` (no padding, floor).
    AvgPool2d {
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
    },
    /// `nn.Flatten()`.
    Flatten,
    /// An elementwise activation.
    Activation(Activation),
}

/// The per-sample shape flowing through a description.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flow {
    Image(ImageShape),
    Flat(usize),
}

impl Flow {
    fn dims(self) -> Vec<usize> {
        match self {
            Flow::Image(s) => vec![s.channels, s.height, s.width],
            Flow::Flat(n) => vec![n],
        }
    }

    fn len(self) -> usize {
        match self {
            Flow::Image(s) => s.len(),
            Flow::Flat(n) => n,
        }
    }
}

/// A described network, checked: pcnet-core's layers, the loss, and the shapes of every
/// activation and parameter array (PyTorch's layouts).
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_py::model::{Model, OpDesc};
/// let model = Model::new(
///     &[
///         vec![OpDesc::Linear { inputs: 4, outputs: 8 }, OpDesc::Activation(Activation::Relu)],
///         vec![OpDesc::Linear { inputs: 8, outputs: 3 }],
///     ],
///     &[4],
///     Loss::CrossEntropy,
/// )?;
/// assert_eq!(model.parameter_shapes(), &[vec![8, 4], vec![8], vec![3, 8], vec![3]]);
/// assert_eq!(model.activation_shapes(), &[vec![4], vec![8], vec![3]]);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    layers: Vec<Layer>,
    loss: Loss,
    activation_shapes: Vec<Vec<usize>>,
    parameter_shapes: Vec<Vec<usize>>,
}

impl Model {
    /// Builds and checks a network from its layers (each a chain of ops), the per-sample
    /// input shape (`[features]` or `[channels, height, width]`) and the loss.
    ///
    /// # Errors
    /// A message naming the layer and op for an op that does not fit its input (a linear
    /// op on images, a conv whose `in_channels` is not the input's, an empty or too long
    /// layer, ...) and every error of [`NetworkSpec::validate`].
    pub fn new(layers: &[Vec<OpDesc>], input_shape: &[usize], loss: Loss) -> Result<Model, String> {
        if layers.is_empty() {
            return Err("the network has no layers".into());
        }
        let mut flow = match *input_shape {
            [n] => Flow::Flat(n),
            [c, h, w] => Flow::Image(ImageShape::new(c, h, w)),
            _ => {
                return Err(format!(
                    "the input's per-sample shape must be (features,) or (channels, height, width), not {input_shape:?}"
                ))
            }
        };
        let mut built = Vec::with_capacity(layers.len());
        let mut activation_shapes = vec![flow.dims()];
        let mut parameter_shapes = Vec::new();
        for (l, ops) in layers.iter().enumerate() {
            let at = |k: usize| format!("layer {} (index {l}), op {k}", l + 1);
            if ops.is_empty() {
                return Err(format!("layer {} (index {l}) has no ops", l + 1));
            }
            if ops.len() > MAX_OPS_PER_LAYER {
                return Err(format!(
                    "layer {} (index {l}) has {} ops; at most {MAX_OPS_PER_LAYER} are supported",
                    l + 1,
                    ops.len()
                ));
            }
            let mut chain = Vec::with_capacity(ops.len());
            for (k, op) in ops.iter().enumerate() {
                let image = |flow: Flow, what: &str| match flow {
                    Flow::Image(shape) => Ok(shape),
                    Flow::Flat(_) => Err(format!(
                        "{}: {what} needs an image input (N, C, H, W)",
                        at(k)
                    )),
                };
                let made = match *op {
                    OpDesc::Linear { inputs, outputs } => {
                        let width = match flow {
                            Flow::Flat(width) => width,
                            Flow::Image(_) => {
                                return Err(format!(
                                    "{}: Linear needs a flat input (add a Flatten before it)",
                                    at(k)
                                ))
                            }
                        };
                        if inputs != width {
                            return Err(format!(
                                "{}: Linear has in_features {inputs}, but its input has {width} features",
                                at(k)
                            ));
                        }
                        parameter_shapes.push(vec![outputs, inputs]);
                        parameter_shapes.push(vec![outputs]);
                        flow = Flow::Flat(outputs);
                        Op::Linear { inputs, outputs }
                    }
                    OpDesc::Conv2d {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        padding,
                    } => {
                        let input = image(flow, "Conv2d")?;
                        if in_channels != input.channels {
                            return Err(format!(
                                "{}: Conv2d has in_channels {in_channels}, but its input has {} channels",
                                at(k),
                                input.channels
                            ));
                        }
                        let conv = Conv2d::new(input, out_channels, kernel)
                            .with_stride(stride)
                            .with_padding(padding);
                        parameter_shapes.push(vec![
                            out_channels,
                            in_channels,
                            kernel[0],
                            kernel[1],
                        ]);
                        parameter_shapes.push(vec![out_channels]);
                        flow = Flow::Image(conv.output_shape());
                        Op::Conv2d(conv)
                    }
                    OpDesc::MaxPool2d { kernel, stride } | OpDesc::AvgPool2d { kernel, stride } => {
                        let name = if matches!(op, OpDesc::MaxPool2d { .. }) {
                            "MaxPool2d"
                        } else {
                            "AvgPool2d"
                        };
                        let input = image(flow, name)?;
                        if kernel[0] > input.height || kernel[1] > input.width {
                            return Err(format!(
                                "{}: {name} window {kernel:?} is larger than its input ({} x {})",
                                at(k),
                                input.height,
                                input.width
                            ));
                        }
                        let pool = Pool2d::new(input, kernel).with_stride(stride);
                        flow = Flow::Image(pool.output_shape());
                        if name == "MaxPool2d" {
                            Op::MaxPool2d(pool)
                        } else {
                            Op::AvgPool2d(pool)
                        }
                    }
                    OpDesc::Flatten => {
                        flow = Flow::Flat(flow.len());
                        Op::Flatten
                    }
                    OpDesc::Activation(activation) => Op::Activation(activation),
                };
                chain.push(made);
            }
            let layer = Layer::from_ops(&chain)
                .map_err(|error| format!("layer {} (index {l}): {error}", l + 1))?;
            built.push(layer);
            activation_shapes.push(flow.dims());
        }
        let input_len: usize = input_shape.iter().product();
        let spec = NetworkSpec::new(&built, loss).with_input_len(input_len);
        spec.validate().map_err(|error| error.to_string())?;
        Ok(Model {
            layers: built,
            loss,
            activation_shapes,
            parameter_shapes,
        })
    }

    /// pcnet-core's view of the network.
    pub fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss).with_input_len(self.input_len())
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Depth `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Features per input sample.
    pub fn input_len(&self) -> usize {
        self.activation_shapes[0].iter().product()
    }

    /// Per-sample shape of `v_l`, `l = 0..=L` (`[features]` or `[C, H, W]`).
    pub fn activation_shapes(&self) -> &[Vec<usize>] {
        &self.activation_shapes
    }

    /// The shapes of the parameter arrays, PyTorch's order (weight, then bias, per op
    /// that has parameters, layer after layer).
    pub fn parameter_shapes(&self) -> &[Vec<usize>] {
        &self.parameter_shapes
    }

    /// Widths (features per sample) of `v_0..=v_L`.
    pub fn widths(&self) -> Vec<usize> {
        self.activation_shapes
            .iter()
            .map(|shape| shape.iter().product())
            .collect()
    }

    /// Length of the results buffer [`crate::runner::Runner::run`] fills for `rows` rows:
    /// `vhat_0..=vhat_L`, `v_0..=v_L`, `epsilon_0..=epsilon_L` (each rows x width), then
    /// dLoss/dy (rows x outputs).
    pub fn results_len(&self, rows: usize) -> usize {
        let widths = self.widths();
        let activations: usize = widths.iter().sum();
        rows * (3 * activations + widths[self.depth()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnn_shapes_follow_pytorch() {
        let model = Model::new(
            &[
                vec![
                    OpDesc::Conv2d {
                        in_channels: 1,
                        out_channels: 2,
                        kernel: [3, 3],
                        stride: [1, 1],
                        padding: [1, 1],
                    },
                    OpDesc::Activation(Activation::Relu),
                    OpDesc::MaxPool2d {
                        kernel: [2, 2],
                        stride: [2, 2],
                    },
                ],
                vec![
                    OpDesc::Flatten,
                    OpDesc::Linear {
                        inputs: 32,
                        outputs: 3,
                    },
                ],
            ],
            &[1, 8, 8],
            Loss::CrossEntropy,
        )
        .unwrap();
        assert_eq!(
            model.activation_shapes(),
            &[vec![1, 8, 8], vec![2, 4, 4], vec![3]]
        );
        assert_eq!(
            model.parameter_shapes(),
            &[vec![2, 1, 3, 3], vec![2], vec![3, 32], vec![3]]
        );
        let total: usize = model
            .parameter_shapes()
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum();
        assert_eq!(total, model.spec().parameter_len());
        assert_eq!(model.results_len(2), 2 * (3 * (64 + 32 + 3) + 3));
    }

    #[test]
    fn misfits_are_named() {
        let linear_on_image = Model::new(
            &[vec![OpDesc::Linear {
                inputs: 4,
                outputs: 2,
            }]],
            &[1, 2, 2],
            Loss::Mse,
        )
        .unwrap_err();
        assert!(linear_on_image.contains("Flatten"), "{linear_on_image}");
        let wrong_width = Model::new(
            &[
                vec![OpDesc::Linear {
                    inputs: 4,
                    outputs: 2,
                }],
                vec![OpDesc::Linear {
                    inputs: 3,
                    outputs: 1,
                }],
            ],
            &[4],
            Loss::Mse,
        )
        .unwrap_err();
        assert!(wrong_width.contains("layer 2") && wrong_width.contains("in_features 3"));
        assert!(Model::new(&[], &[4], Loss::Mse)
            .unwrap_err()
            .contains("no layers"));
        assert!(Model::new(&[vec![]], &[4], Loss::Mse)
            .unwrap_err()
            .contains("no ops"));
    }
}
