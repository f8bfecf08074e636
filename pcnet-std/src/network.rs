//! Owned networks: layers, loss and parameters in one value, initialised as PyTorch
//! initialises `nn.Linear`, convertible to nalgebra matrices and to safetensors files with
//! PyTorch `state_dict` names.
//!
//! # Example
//! ```
//! use pcnet_std::core::{Activation, Loss, Settings};
//! use pcnet_std::network::Network;
//!
//! // 4 inputs, two tanh hidden layers of 8, 3 outputs, cross-entropy, seed 7.
//! let net = Network::<f64>::mlp("4-8-8-3", Activation::Tanh, Loss::CrossEntropy, 7)?;
//! assert_eq!(net.depth(), 3);
//! assert_eq!(net.weight(1)?.shape(), (8, 4)); // out x in, as PyTorch
//!
//! // Gradients by backprop and by FixedPred with eta = 1, n = L: the same numbers.
//! let inputs = [0.1, -0.2, 0.3, 0.4, 1.0, 0.5, -0.5, 0.0];
//! let classes = [2, 0];
//! let exact = net.updates(&inputs, net.targets(&classes)?.as_targets(), &Settings::exact())?;
//! let fixed = net.updates(&inputs, net.targets(&classes)?.as_targets(), &Settings::fixed_pred(1.0, 3))?;
//! for (a, b) in exact.updates.iter().zip(&fixed.updates) {
//!     assert!((a - b).abs() <= 1e-12 * a.abs().max(1e-300));
//! }
//! # Ok::<(), pcnet_std::Error>(())
//! ```

use crate::{batch::Par, fast::Fast, rng::SplitMix64, train::Relaxer, Error};
use nalgebra::{DMatrix, DVector};
use pcnet_core::{
    Activation, Batch, Layer, Loss, NetworkSpec, Op, PcError, Report, Scalar, Targets,
};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::{collections::BTreeMap, path::Path};

/// A network that owns its layers, loss and parameters.
///
/// Parameters are one flat vector in pcnet-core's layout: layer after layer, op after op, each
/// linear op as its weight (`out x in`, row-major) then its bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Network<T> {
    layers: Vec<Layer>,
    loss: Loss,
    input_len: usize,
    parameters: Vec<T>,
}

/// Where the parameters of one op with a weight and a bias (`nn.Linear`, `nn.Conv2d`)
/// live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightLocation {
    /// Layer, 1-based as in the paper (`model[layer - 1]` in PyTorch).
    pub layer: usize,
    /// Index of the op within its layer (the module index inside the nested `Sequential`).
    pub module: usize,
    /// Input features (linear) or input channels (convolution).
    pub inputs: usize,
    /// Output features (linear) or output channels (convolution).
    pub outputs: usize,
    /// The kernel `[kh, kw]` of a convolution; `None` for a linear op.
    pub kernel: Option<[usize; 2]>,
    /// Offset of the weight in the flat parameter vector; the bias follows it.
    pub offset: usize,
}

impl WeightLocation {
    /// Weights per output: `inputs` for a linear op, `inputs * kh * kw` for a convolution.
    pub fn filter_len(&self) -> usize {
        let [kh, kw] = self.kernel.unwrap_or([1, 1]);
        self.inputs * kh * kw
    }

    /// Range of the weight (`outputs x filter_len`, row-major; PyTorch's layout) in the
    /// parameter vector.
    pub fn weight_range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.outputs * self.filter_len()
    }

    /// Range of the bias in the parameter vector.
    pub fn bias_range(&self) -> std::ops::Range<usize> {
        let start = self.weight_range().end;
        start..start + self.outputs
    }

    /// The weight's shape in PyTorch: `[out, in]` or `[out, in, kh, kw]`.
    pub fn torch_shape(&self) -> Vec<usize> {
        match self.kernel {
            None => vec![self.outputs, self.inputs],
            Some([kh, kw]) => vec![self.outputs, self.inputs, kh, kw],
        }
    }

    /// PyTorch `state_dict` name prefix of a Torch2PC-style `nn.Sequential` of nested
    /// `Sequential`s: `"{layer - 1}.{module}"`.
    pub fn torch_prefix(&self) -> String {
        format!("{}.{}", self.layer - 1, self.module)
    }
}

/// Targets built for a network's loss from class labels: class indices for
/// cross-entropy, one-hot rows for the MSE losses (as the paper's MSE experiments do).
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedTargets<T> {
    /// Class indices.
    Classes(Vec<usize>),
    /// Rows of target values.
    Values(Vec<T>),
}

impl<T: Scalar> OwnedTargets<T> {
    /// Borrowed as pcnet-core's [`Targets`].
    pub fn as_targets(&self) -> Targets<'_, T> {
        match self {
            OwnedTargets::Classes(classes) => Targets::Classes(classes),
            OwnedTargets::Values(values) => Targets::Values(values),
        }
    }
}

/// The result of [`Network::updates`]: the batch loss at the feedforward output, the
/// parameter updates (what Torch2PC writes into `.grad`), the output, and the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Updates<T> {
    /// The batch loss at the feedforward output.
    pub loss: T,
    /// The parameter updates, in the parameter vector's layout.
    pub updates: Vec<T>,
    /// The feedforward output, rows x outputs.
    pub output: Vec<T>,
    /// The relaxation report.
    pub report: Report<T>,
}

/// Builds a [`Network`] layer by layer.
///
/// ```
/// use pcnet_std::core::{Activation, Loss};
/// use pcnet_std::network::Network;
/// let net: Network<f32> = Network::<f32>::builder(784)
///     .dense(256, Activation::Relu)
///     .dense(10, Activation::Identity)
///     .loss(Loss::CrossEntropy)
///     .seed(1)
///     .build()?;
/// assert_eq!(net.parameters().len(), 784 * 256 + 256 + 256 * 10 + 10);
/// # Ok::<(), pcnet_std::core::PcError>(())
/// ```
#[derive(Clone, Debug)]
pub struct NetworkBuilder {
    input_len: usize,
    width: usize,
    layers: Vec<Layer>,
    loss: Loss,
    seed: u64,
}

impl NetworkBuilder {
    /// Appends a dense layer `act(x W^T + b)` with `outputs` features.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn dense(mut self, outputs: usize, activation: Activation) -> Self {
        self.layers
            .push(Layer::dense(self.width, outputs, activation));
        self.width = outputs;
        self
    }

    /// Appends any layer (its input width must match the current width).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn layer(mut self, layer: Layer) -> Self {
        self.width = layer.output_len(self.width);
        self.layers.push(layer);
        self
    }

    /// Sets the loss (default: MSE, as PyTorch's `MSELoss()`).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Sets the initialisation seed (default 0).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Builds the network with PyTorch's `nn.Linear` initialisation from the seed.
    ///
    /// # Errors
    /// [`PcError::InvalidNetwork`] / [`PcError::ShapeMismatch`] when the layers do not chain.
    pub fn build<T: Scalar>(self) -> Result<Network<T>, PcError> {
        Network::initialised(self.layers, self.loss, self.input_len, self.seed)
    }
}

impl<T: Scalar> Network<T> {
    /// A multilayer perceptron from a description of its widths, `"784-256-256-10"`:
    /// every layer but the last has the activation `hidden`, the last is linear.
    /// Initialised as PyTorch's `nn.Linear` from `seed` (see [`Network::initialised`]).
    ///
    /// # Errors
    /// [`Error::Format`] for a description that is not at least two positive integers
    /// joined by `-`.
    pub fn mlp(
        description: &str,
        hidden: Activation,
        loss: Loss,
        seed: u64,
    ) -> Result<Self, Error> {
        let widths = parse_widths(description)?;
        let mut builder = Network::<T>::builder(widths[0]).loss(loss).seed(seed);
        for (index, &width) in widths[1..].iter().enumerate() {
            let last = index + 2 == widths.len();
            builder = builder.dense(width, if last { Activation::Identity } else { hidden });
        }
        Ok(builder.build()?)
    }

    /// A builder for a network with `input_len` input features.
    pub fn builder(input_len: usize) -> NetworkBuilder {
        NetworkBuilder {
            input_len,
            width: input_len,
            layers: Vec::new(),
            loss: Loss::Mse,
            seed: 0,
        }
    }

    /// A network with these layers, initialised as PyTorch initialises `nn.Linear` and
    /// `nn.Conv2d`: every weight and bias of an op with fan-in `k` (input features, or
    /// `in_channels * kh * kw`) is drawn uniformly from `[-1/sqrt(k), 1/sqrt(k))` (what
    /// `kaiming_uniform_(a = sqrt(5))` and the bias rule of `reset_parameters` amount to). Values are drawn in `f64`
    /// from [`SplitMix64`] seeded with `seed`, layer after layer, weight (row-major) then
    /// bias, and rounded to `T`: the same seed gives the same network on every machine,
    /// and an `f32` network is the `f64` one rounded.
    ///
    /// # Errors
    /// [`PcError::InvalidNetwork`] / [`PcError::ShapeMismatch`] when the layers do not
    /// chain, or a layer has parameters of an op kind pcnet-std cannot initialise.
    pub fn initialised(
        layers: Vec<Layer>,
        loss: Loss,
        input_len: usize,
        seed: u64,
    ) -> Result<Self, PcError> {
        let spec = NetworkSpec::new(&layers, loss).with_input_len(input_len);
        spec.validate()?;
        let mut parameters = Vec::with_capacity(spec.parameter_len());
        let mut rng = SplitMix64::new(seed);
        for (index, layer) in layers.iter().enumerate() {
            for op in layer.ops() {
                match *op {
                    Op::Linear { inputs, outputs } => {
                        let bound = 1.0 / (inputs as f64).sqrt();
                        for _ in 0..inputs * outputs + outputs {
                            parameters.push(T::from_f64(rng.uniform(-bound, bound)));
                        }
                    }
                    Op::Conv2d(conv) => {
                        // nn.Conv2d: the same rule with fan-in in * kh * kw.
                        let bound = 1.0 / (conv.filter_len() as f64).sqrt();
                        for _ in 0..conv.parameter_len() {
                            parameters.push(T::from_f64(rng.uniform(-bound, bound)));
                        }
                    }
                    other if other.parameter_len() == 0 => {}
                    _ => {
                        return Err(PcError::InvalidNetwork {
                            layer: index + 1,
                            reason: "pcnet-std cannot initialise this op kind",
                        })
                    }
                }
            }
        }
        Ok(Network {
            layers,
            loss,
            input_len,
            parameters,
        })
    }

    /// A network with these layers and parameters (pcnet-core's flat layout).
    ///
    /// # Errors
    /// As [`NetworkSpec::check_parameters`]: a network that does not chain, a parameter
    /// vector of the wrong length or with non-finite values.
    pub fn with_parameters(
        layers: Vec<Layer>,
        loss: Loss,
        input_len: usize,
        parameters: Vec<T>,
    ) -> Result<Self, PcError> {
        NetworkSpec::new(&layers, loss)
            .with_input_len(input_len)
            .check_parameters(&parameters)?;
        Ok(Network {
            layers,
            loss,
            input_len,
            parameters,
        })
    }

    /// An MLP from nalgebra matrices: layer `l` is `act(x W_l^T + b_l)` with `W_l` of shape
    /// `out x in`, `hidden` on every layer but the last, which is linear.
    ///
    /// # Errors
    /// [`PcError::ShapeMismatch`] when consecutive matrices do not chain or a bias length
    /// differs from its weight's rows, [`PcError::NonFinite`] for non-finite entries.
    pub fn mlp_from_matrices(
        layers: &[(DMatrix<T>, DVector<T>)],
        hidden: Activation,
        loss: Loss,
    ) -> Result<Self, PcError> {
        let Some((first, _)) = layers.first() else {
            return Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "the network has no layers",
            });
        };
        let mut specs = Vec::with_capacity(layers.len());
        let mut parameters = Vec::new();
        for (index, (weight, bias)) in layers.iter().enumerate() {
            if bias.len() != weight.nrows() {
                return Err(PcError::ShapeMismatch {
                    layer: index + 1,
                    op: 0,
                    expected: weight.nrows(),
                    given: bias.len(),
                });
            }
            let last = index + 1 == layers.len();
            let activation = if last { Activation::Identity } else { hidden };
            specs.push(Layer::dense(weight.ncols(), weight.nrows(), activation));
            parameters.extend(weight.transpose().iter().copied());
            parameters.extend(bias.iter().copied());
        }
        Network::with_parameters(specs, loss, first.ncols(), parameters)
    }

    /// The pcnet-core description of the network.
    pub fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss).with_input_len(self.input_len)
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The same network with another loss (the parameters are kept).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Number of layers `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Features per input sample.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Features per output sample.
    pub fn output_len(&self) -> usize {
        self.spec().output_len()
    }

    /// The flat parameter vector.
    pub fn parameters(&self) -> &[T] {
        &self.parameters
    }

    /// Replaces every parameter, all or nothing.
    ///
    /// # Errors
    /// [`PcError::LengthMismatch`] or [`PcError::NonFinite`]; the network is unchanged then.
    pub fn set_parameters(&mut self, parameters: &[T]) -> Result<(), PcError> {
        self.spec().check_parameters(parameters)?;
        self.parameters.copy_from_slice(parameters);
        Ok(())
    }

    /// Mutable access to the parameters, for optimizers (pcnet-core's optimizers and
    /// learning step never write non-finite values).
    pub fn parameters_mut(&mut self) -> &mut [T] {
        &mut self.parameters
    }

    /// Every op with a weight and a bias (linear and convolution), in parameter order.
    pub fn weight_ops(&self) -> Vec<WeightLocation> {
        let mut found = Vec::new();
        let mut offset = 0;
        for (index, layer) in self.layers.iter().enumerate() {
            for (module, op) in layer.ops().iter().enumerate() {
                let (inputs, outputs, kernel) = match *op {
                    Op::Linear { inputs, outputs } => (inputs, outputs, None),
                    Op::Conv2d(conv) => (conv.input.channels, conv.out_channels, Some(conv.kernel)),
                    _ => {
                        offset += op.parameter_len();
                        continue;
                    }
                };
                found.push(WeightLocation {
                    layer: index + 1,
                    module,
                    inputs,
                    outputs,
                    kernel,
                    offset,
                });
                offset += op.parameter_len();
            }
        }
        found
    }

    /// The first weighted op of layer `layer` (1-based): the paper's per-layer metrics use
    /// `model[layer - 1][0].weight`.
    ///
    /// # Errors
    /// [`PcError::InvalidNetwork`] when the layer does not exist or has no weighted op.
    pub fn weight_op(&self, layer: usize) -> Result<WeightLocation, PcError> {
        self.weight_ops()
            .into_iter()
            .find(|location| location.layer == layer)
            .ok_or(PcError::InvalidNetwork {
                layer,
                reason: "no such layer, or it has no linear or convolution op",
            })
    }

    /// The weight of layer `layer`'s first weighted op as a matrix (`out x in`; for a
    /// convolution `out x (in * kh * kw)`, one flattened filter per row).
    ///
    /// # Errors
    /// As [`Network::weight_op`].
    pub fn weight(&self, layer: usize) -> Result<DMatrix<T>, PcError> {
        let at = self.weight_op(layer)?;
        Ok(DMatrix::from_row_slice(
            at.outputs,
            at.filter_len(),
            &self.parameters[at.weight_range()],
        ))
    }

    /// The bias of layer `layer`'s first weighted op.
    ///
    /// # Errors
    /// As [`Network::weight_op`].
    pub fn bias(&self, layer: usize) -> Result<DVector<T>, PcError> {
        let at = self.weight_op(layer)?;
        Ok(DVector::from_column_slice(
            &self.parameters[at.bias_range()],
        ))
    }

    /// Sets the weight of layer `layer`'s first weighted op, all or nothing.
    ///
    /// # Errors
    /// [`PcError::ShapeMismatch`] for a matrix of the wrong shape, [`PcError::NonFinite`].
    pub fn set_weight(&mut self, layer: usize, weight: &DMatrix<T>) -> Result<(), PcError> {
        let at = self.weight_op(layer)?;
        if weight.shape() != (at.outputs, at.filter_len()) {
            return Err(PcError::ShapeMismatch {
                layer,
                op: at.module,
                expected: at.outputs * at.filter_len(),
                given: weight.len(),
            });
        }
        let row_major: Vec<T> = weight.transpose().iter().copied().collect();
        check_finite_vec("weight", &row_major)?;
        self.parameters[at.weight_range()].copy_from_slice(&row_major);
        Ok(())
    }

    /// Sets the bias of layer `layer`'s first weighted op, all or nothing.
    ///
    /// # Errors
    /// [`PcError::LengthMismatch`] for a vector of the wrong length, [`PcError::NonFinite`].
    pub fn set_bias(&mut self, layer: usize, bias: &DVector<T>) -> Result<(), PcError> {
        let at = self.weight_op(layer)?;
        if bias.len() != at.outputs {
            return Err(PcError::LengthMismatch {
                what: "bias",
                expected: at.outputs,
                given: bias.len(),
            });
        }
        check_finite_vec("bias", bias.as_slice())?;
        self.parameters[at.bias_range()].copy_from_slice(bias.as_slice());
        Ok(())
    }

    /// The same network in another precision (every parameter rounded to nearest).
    pub fn cast<U: Scalar>(&self) -> Network<U> {
        Network {
            layers: self.layers.clone(),
            loss: self.loss,
            input_len: self.input_len,
            parameters: self
                .parameters
                .iter()
                .map(|p| U::from_f64(Scalar::to_f64(*p)))
                .collect(),
        }
    }

    /// Targets for this network's loss from class labels: the labels for cross-entropy,
    /// one-hot rows for the MSE losses.
    ///
    /// # Errors
    /// [`PcError::ClassOutOfRange`] for a label not below the number of outputs.
    pub fn targets(&self, labels: &[usize]) -> Result<OwnedTargets<T>, PcError> {
        let classes = self.output_len();
        if let Some(row) = labels.iter().position(|&label| label >= classes) {
            return Err(PcError::ClassOutOfRange {
                row,
                class: labels[row],
                classes,
            });
        }
        Ok(match self.loss {
            Loss::CrossEntropy => OwnedTargets::Classes(labels.to_vec()),
            _ => {
                let mut values = vec![T::zero(); labels.len() * classes];
                for (row, &label) in labels.iter().enumerate() {
                    values[row * classes + label] = T::one();
                }
                OwnedTargets::Values(values)
            }
        })
    }

    /// Runs one relaxation on a batch and returns the loss, the parameter updates and
    /// the output (through pcnet-std's [`Relaxer`] with new buffers; see
    /// [`Network::updates_with`] to reuse them).
    ///
    /// # Errors
    /// Every error of [`pcnet_core::infer`].
    pub fn updates(
        &self,
        inputs: &[T],
        targets: Targets<'_, T>,
        settings: &pcnet_core::Settings<'_, T>,
    ) -> Result<Updates<T>, PcError>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        self.updates_with(&mut Relaxer::new(Par::Rayon(0)), inputs, targets, settings)
    }

    /// As [`Network::updates`], reusing a [`Relaxer`]'s buffers and threads.
    ///
    /// # Errors
    /// Every error of [`pcnet_core::infer`].
    pub fn updates_with(
        &self,
        relaxer: &mut Relaxer<T>,
        inputs: &[T],
        targets: Targets<'_, T>,
        settings: &pcnet_core::Settings<'_, T>,
    ) -> Result<Updates<T>, PcError>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        let spec = self.spec();
        let outcome = relaxer.run(
            &spec,
            &self.parameters,
            Batch::new(inputs, targets),
            settings,
        )?;
        Ok(Updates {
            loss: outcome.loss(),
            output: outcome.outputs().to_vec(),
            report: outcome.report(),
            updates: outcome.updates().to_vec(),
        })
    }

    /// The network's outputs for a batch of inputs: the feedforward pass alone, with no
    /// targets and no backward work. `inputs` holds rows of [`Network::input_len`] values;
    /// the result holds rows of [`Network::output_len`] values, the same numbers as the
    /// `output` of [`Network::updates`] (which is the feedforward output).
    ///
    /// ```
    /// use pcnet_std::core::{Activation, Loss};
    /// use pcnet_std::network::Network;
    ///
    /// let net = Network::<f64>::mlp("2-4-3", Activation::Tanh, Loss::CrossEntropy, 3)?;
    /// let outputs = net.predict(&[0.5, -0.5, 1.0, 0.0])?; // two rows of two inputs
    /// assert_eq!(outputs.len(), 2 * 3);
    /// assert!(net.predict(&[0.5, -0.5, 1.0]).is_err()); // not whole rows
    /// assert!(net.predict(&[0.5, f64::NAN]).is_err());
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PcError::EmptyBatch`] for no inputs, [`PcError::LengthMismatch`] when `inputs` is
    /// not whole rows, [`PcError::NonFinite`] for a NaN or infinite input or parameter.
    pub fn predict(&self, inputs: &[T]) -> Result<Vec<T>, Error>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        let rows = self.check_prediction_inputs(inputs)?;
        let widest = self.widest_op_output(self.input_len);
        let mut current = Vec::with_capacity(rows * widest);
        current.extend_from_slice(inputs);
        let mut next = vec![T::zero(); rows * widest];
        let mut width = self.input_len;
        let mut offset = 0;
        for (layer_index, layer) in self.layers.iter().enumerate() {
            for (op_index, op) in layer.ops().iter().enumerate() {
                let out_width = op.output_len(width);
                let params = &self.parameters[offset..offset + op.parameter_len()];
                offset += op.parameter_len();
                let (input, output) = (&current[..rows * width], &mut next[..rows * out_width]);
                Self::op_forward(op, rows, input, params, output).map_err(|reason| {
                    PcError::InvalidOp {
                        layer: layer_index + 1,
                        op: op_index,
                        reason,
                    }
                })?;
                core::mem::swap(&mut current, &mut next);
                current.truncate(rows * out_width);
                next.resize(rows * widest, T::zero());
                width = out_width;
            }
        }
        Ok(current)
    }

    /// The predicted class of each row of `inputs`: the index of its largest output
    /// (ties go to the first maximum), as [`crate::train::evaluate`] counts accuracy.
    ///
    /// ```
    /// use pcnet_std::core::{Activation, Loss};
    /// use pcnet_std::network::Network;
    ///
    /// let net = Network::<f32>::mlp("2-4-3", Activation::Relu, Loss::CrossEntropy, 3)?;
    /// let classes = net.predict_classes(&[0.5, -0.5, 1.0, 0.0])?;
    /// assert_eq!(classes.len(), 2);
    /// assert!(classes.iter().all(|&class| class < 3));
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Network::predict`].
    pub fn predict_classes(&self, inputs: &[T]) -> Result<Vec<usize>, Error>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        let outputs = self.predict(inputs)?;
        Ok(outputs
            .chunks_exact(self.output_len())
            .map(crate::train::argmax)
            .collect())
    }

    /// Rows of `inputs` after checking they are whole, finite rows and the parameters finite.
    fn check_prediction_inputs(&self, inputs: &[T]) -> Result<usize, PcError> {
        if inputs.is_empty() {
            return Err(PcError::EmptyBatch);
        }
        if !inputs.len().is_multiple_of(self.input_len) {
            return Err(PcError::LengthMismatch {
                what: "inputs",
                expected: (inputs.len() / self.input_len + 1) * self.input_len,
                given: inputs.len(),
            });
        }
        if let Some(index) = inputs.iter().position(|v| !v.is_finite()) {
            return Err(PcError::NonFinite {
                what: "inputs",
                index,
            });
        }
        self.spec().check_parameters(&self.parameters)?;
        Ok(inputs.len() / self.input_len)
    }

    /// The widest per-sample feature count of any op's output (or the input).
    fn widest_op_output(&self, input_len: usize) -> usize {
        let mut width = input_len;
        let mut widest = input_len;
        for op in self.layers.iter().flat_map(|layer| layer.ops()) {
            width = op.output_len(width);
            widest = widest.max(width);
        }
        widest
    }

    /// One op's forward pass on `rows` rows, on the [`Fast`] kernels; the reason when
    /// the op is one this version of pcnet-std does not know.
    fn op_forward(
        op: &Op,
        rows: usize,
        input: &[T],
        params: &[T],
        output: &mut [T],
    ) -> Result<(), &'static str>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        use pcnet_core::{ops::pool, Backend, LinearDims};
        match *op {
            Op::Linear { inputs, outputs } => {
                let (weight, bias) = params.split_at(inputs * outputs);
                let dims = LinearDims {
                    rows,
                    inputs,
                    outputs,
                };
                Fast::default().linear_forward(
                    pcnet_core::OpKey::NONE,
                    dims,
                    input,
                    weight,
                    bias,
                    output,
                );
            }
            Op::Activation(activation) => activation.forward(input, output),
            Op::Conv2d(conv) => {
                let (weight, bias) = params.split_at(conv.weight_len());
                Fast::default().conv2d_forward(
                    pcnet_core::OpKey::NONE,
                    &conv,
                    rows,
                    input,
                    weight,
                    bias,
                    output,
                );
            }
            Op::MaxPool2d(window) => pool::max_forward(&window, rows, input, output),
            Op::AvgPool2d(window) => pool::avg_forward(&window, rows, input, output),
            Op::Flatten => output.copy_from_slice(input),
            _ => return Err("an op pcnet-std's predict does not evaluate"),
        }
        Ok(())
    }

    /// Exports the parameters as safetensors bytes with PyTorch `state_dict` names of a
    /// Torch2PC-style model, `nn.Sequential(nn.Sequential(nn.Linear, act), ...)`:
    /// `"0.0.weight"`, `"0.0.bias"`, `"1.0.weight"`, ... (layer index, then the module's
    /// index inside the layer's `Sequential`). `f32` networks write `F32` tensors, `f64`
    /// networks `F64`.
    ///
    /// # Errors
    /// [`Error::Format`] if the safetensors writer fails (it does not for valid networks).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, Error> {
        let wide = core::mem::size_of::<T>() == 8;
        let dtype = if wide { Dtype::F64 } else { Dtype::F32 };
        let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for at in self.weight_ops() {
            let prefix = at.torch_prefix();
            for (suffix, range, shape) in [
                ("weight", at.weight_range(), at.torch_shape()),
                ("bias", at.bias_range(), vec![at.outputs]),
            ] {
                let mut bytes = Vec::with_capacity(range.len() * if wide { 8 } else { 4 });
                for value in &self.parameters[range] {
                    if wide {
                        bytes.extend_from_slice(&Scalar::to_f64(*value).to_le_bytes());
                    } else {
                        bytes.extend_from_slice(&(Scalar::to_f64(*value) as f32).to_le_bytes());
                    }
                }
                buffers.push((format!("{prefix}.{suffix}"), shape, bytes));
            }
        }
        let mut views = BTreeMap::new();
        for (name, shape, bytes) in &buffers {
            let view = TensorView::new(dtype, shape.clone(), bytes)
                .map_err(|e| Error::format("safetensors", e.to_string()))?;
            views.insert(name.clone(), view);
        }
        safetensors::serialize(views, None).map_err(|e| Error::format("safetensors", e.to_string()))
    }

    /// Replaces the parameters with those of safetensors bytes named as
    /// [`Network::to_safetensors`] writes them (what `safetensors.torch.save_file(model.state_dict())`
    /// writes for the matching Torch2PC model). `F32` and `F64` tensors are accepted and
    /// rounded to `T`. All or nothing: on any error the network is unchanged.
    ///
    /// # Errors
    /// [`Error::Format`] naming the tensor for bytes that are not safetensors, a missing or
    /// unexpected tensor, a wrong shape or dtype; [`Error::Pc`] for non-finite values.
    pub fn load_safetensors(&mut self, bytes: &[u8], input_name: &str) -> Result<(), Error> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::format(input_name, format!("not a safetensors file: {e}")))?;
        let mut parameters = self.parameters.clone();
        let mut expected_names = Vec::new();
        for at in self.weight_ops() {
            let prefix = at.torch_prefix();
            for (suffix, range, shape) in [
                ("weight", at.weight_range(), at.torch_shape()),
                ("bias", at.bias_range(), vec![at.outputs]),
            ] {
                let name = format!("{prefix}.{suffix}");
                let tensor = file.tensor(&name).map_err(|_| {
                    Error::format(
                        input_name,
                        format!("tensor `{name}` (layer {}) is missing", at.layer),
                    )
                })?;
                if tensor.shape() != shape.as_slice() {
                    return Err(Error::format(
                        input_name,
                        format!(
                            "tensor `{name}` has shape {:?}, the network needs {shape:?}",
                            tensor.shape()
                        ),
                    ));
                }
                let target = &mut parameters[range];
                let data = tensor.data();
                match tensor.dtype() {
                    Dtype::F32 => {
                        for (value, chunk) in target.iter_mut().zip(data.chunks_exact(4)) {
                            let raw = [chunk[0], chunk[1], chunk[2], chunk[3]];
                            *value = T::from_f64(f64::from(f32::from_le_bytes(raw)));
                        }
                    }
                    Dtype::F64 => {
                        for (value, chunk) in target.iter_mut().zip(data.chunks_exact(8)) {
                            let mut raw = [0u8; 8];
                            raw.copy_from_slice(chunk);
                            *value = T::from_f64(f64::from_le_bytes(raw));
                        }
                    }
                    other => {
                        return Err(Error::format(
                            input_name,
                            format!("tensor `{name}` has dtype {other}; F32 or F64 expected"),
                        ))
                    }
                }
                expected_names.push(name);
            }
        }
        if let Some(extra) = file
            .names()
            .into_iter()
            .find(|name| !expected_names.iter().any(|expected| expected == name))
        {
            return Err(Error::format(
                input_name,
                format!("unexpected tensor `{extra}`: the file does not describe this network"),
            ));
        }
        self.spec().check_parameters(&parameters)?;
        self.parameters = parameters;
        Ok(())
    }

    /// Writes [`Network::to_safetensors`] to a file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.to_safetensors()?;
        std::fs::write(path, bytes).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a safetensors file into the parameters, as [`Network::load_safetensors`].
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, else as [`Network::load_safetensors`].
    pub fn open_safetensors(&mut self, path: &Path) -> Result<(), Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_safetensors(&bytes, &path.display().to_string())
    }
}

fn check_finite_vec<T: Scalar>(what: &'static str, values: &[T]) -> Result<(), PcError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(PcError::NonFinite { what, index }),
    }
}

/// Parses `"784-256-10"` into widths.
fn parse_widths(description: &str) -> Result<Vec<usize>, Error> {
    let widths: Result<Vec<usize>, _> = description
        .split('-')
        .map(|part| part.trim().parse::<usize>())
        .collect();
    match widths {
        Ok(widths) if widths.len() >= 2 && widths.iter().all(|&w| w > 0) => Ok(widths),
        _ => Err(Error::format(
            "network description",
            format!("`{description}` is not two or more positive widths joined by `-` (e.g. 784-256-10)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisation_is_uniform_within_the_pytorch_bound_and_reproducible() {
        let a = Network::<f64>::mlp("64-128-10", Activation::Relu, Loss::Mse, 5).unwrap();
        let b = Network::<f64>::mlp("64-128-10", Activation::Relu, Loss::Mse, 5).unwrap();
        let c = Network::<f64>::mlp("64-128-10", Activation::Relu, Loss::Mse, 6).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.parameters(), c.parameters());
        // Layer 1: 8320 values uniform in +-1/8; mean within 6 standard errors of 0
        // (sd of U(-b, b) is b/sqrt(3)), and the extremes come within 1% of the bound.
        let layer1 = &a.parameters()[..64 * 128 + 128];
        let bound = 1.0 / 8.0;
        assert!(layer1.iter().all(|p| p.abs() <= bound));
        let mean = layer1.iter().sum::<f64>() / layer1.len() as f64;
        let standard_error = bound / 3f64.sqrt() / (layer1.len() as f64).sqrt();
        assert!(mean.abs() < 6.0 * standard_error);
        let largest = layer1.iter().fold(0.0_f64, |m, p| m.max(p.abs()));
        assert!(largest > 0.99 * bound);
        // Layer 2 has fan-in 128.
        let layer2 = &a.parameters()[64 * 128 + 128..];
        assert!(layer2.iter().all(|p| p.abs() <= 1.0 / 128f64.sqrt()));
        // f32 from the same seed is the f64 network rounded.
        let single = Network::<f32>::mlp("64-128-10", Activation::Relu, Loss::Mse, 5).unwrap();
        assert_eq!(single, a.cast::<f32>());
    }

    #[test]
    fn convolutions_are_initialised_and_exported_as_pytorch_does() {
        use pcnet_core::{Conv2d, ImageShape, Pool2d};
        let conv = Conv2d::new(ImageShape::new(2, 5, 5), 3, [3, 3]);
        let pool = Pool2d::new(conv.output_shape(), [3, 3]);
        let first = Layer::from_ops(&[
            Op::Conv2d(conv),
            Op::Activation(Activation::Relu),
            Op::MaxPool2d(pool),
            Op::Flatten,
        ])
        .unwrap();
        let layers = vec![first, Layer::dense(3, 2, Activation::Identity)];
        let net = Network::<f64>::initialised(layers, Loss::Mse, 50, 4).unwrap();
        // Conv weight 3 x 2 x 3 x 3 = 54 and bias 3, fan-in 18: bound 1/sqrt(18).
        let bound = 1.0 / 18f64.sqrt();
        assert!(net.parameters()[..57].iter().all(|p| p.abs() <= bound));
        assert!(net.parameters()[..57].iter().any(|p| p.abs() > 0.9 * bound));
        let ops = net.weight_ops();
        assert_eq!(ops[0].torch_shape(), vec![3, 2, 3, 3]);
        assert_eq!(
            (ops[0].weight_range(), ops[0].bias_range()),
            (0..54, 54..57)
        );
        assert_eq!(ops[1].torch_prefix(), "1.0");
        assert_eq!(net.weight(1).unwrap().shape(), (3, 18));
        let bytes = net.to_safetensors().unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(file.tensor("0.0.weight").unwrap().shape(), &[3, 2, 3, 3]);
        let mut copy =
            Network::<f64>::initialised(net.layers().to_vec(), Loss::Mse, 50, 5).unwrap();
        copy.load_safetensors(&bytes, "conv").unwrap();
        assert_eq!(copy, net);
    }

    #[test]
    fn corrupted_safetensors_bytes_are_errors_and_leave_the_network_unchanged() {
        let net = Network::<f32>::mlp("3-4-2", Activation::Tanh, Loss::Mse, 2).unwrap();
        let bytes = net.to_safetensors().unwrap();
        let mut rng = SplitMix64::new(5);
        let mut target = Network::<f32>::mlp("3-4-2", Activation::Tanh, Loss::Mse, 3).unwrap();
        let before = target.clone();
        for _ in 0..2000 {
            let mut corrupt = bytes.clone();
            let at = rng.below(corrupt.len() as u64) as usize;
            if rng.below(2) == 0 {
                corrupt[at] = rng.next_u64() as u8;
            } else {
                corrupt.truncate(at);
            }
            if target.load_safetensors(&corrupt, "fuzz").is_ok() {
                // A flip inside the data can still be a valid file: then it must hold
                // finite values of the right shapes, which is what was loaded.
                assert!(target.parameters().iter().all(|p| p.is_finite()));
                target = before.clone();
            } else {
                assert_eq!(target, before);
            }
        }
    }

    #[test]
    fn descriptions_are_checked() {
        for bad in ["", "10", "10-", "a-3", "3-0-2"] {
            assert!(matches!(
                Network::<f64>::mlp(bad, Activation::Tanh, Loss::Mse, 0),
                Err(Error::Format { .. })
            ));
        }
    }

    #[test]
    fn matrices_round_trip_in_pytorch_layout() {
        let mut net = Network::<f64>::mlp("3-2-1", Activation::Tanh, Loss::Mse, 1).unwrap();
        let w = net.weight(1).unwrap();
        // Entry (i, j) is flat index i * inputs + j (row-major out x in).
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(w[(i, j)], net.parameters()[i * 3 + j]);
            }
        }
        assert_eq!(net.bias(1).unwrap().as_slice(), &net.parameters()[6..8]);
        let new = DMatrix::from_row_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        net.set_weight(1, &new).unwrap();
        assert_eq!(&net.parameters()[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(net.set_weight(1, &DMatrix::zeros(3, 2)).is_err());
        let mut nan = new.clone();
        nan[(1, 1)] = f64::NAN;
        assert!(net.set_weight(1, &nan).is_err());
        assert_eq!(&net.parameters()[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let rebuilt = Network::mlp_from_matrices(
            &[
                (net.weight(1).unwrap(), net.bias(1).unwrap()),
                (net.weight(2).unwrap(), net.bias(2).unwrap()),
            ],
            Activation::Tanh,
            Loss::Mse,
        )
        .unwrap();
        assert_eq!(rebuilt, net);
    }

    #[test]
    fn safetensors_round_trip_and_reject_mismatches() {
        let net = Network::<f32>::mlp("4-3-2", Activation::Relu, Loss::CrossEntropy, 9).unwrap();
        let bytes = net.to_safetensors().unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = file.names();
        names.sort_unstable();
        assert_eq!(names, ["0.0.bias", "0.0.weight", "1.0.bias", "1.0.weight"]);
        assert_eq!(file.tensor("0.0.weight").unwrap().shape(), &[3, 4]);
        let mut other =
            Network::<f32>::mlp("4-3-2", Activation::Relu, Loss::CrossEntropy, 10).unwrap();
        other.load_safetensors(&bytes, "bytes").unwrap();
        assert_eq!(other, net);
        // f64 reads the f32 file exactly (every f32 is an f64).
        let mut wide =
            Network::<f64>::mlp("4-3-2", Activation::Relu, Loss::CrossEntropy, 10).unwrap();
        wide.load_safetensors(&bytes, "bytes").unwrap();
        assert_eq!(wide.cast::<f32>(), net);
        // A different architecture, garbage, truncation: errors, network unchanged.
        let mut wrong =
            Network::<f32>::mlp("4-5-2", Activation::Relu, Loss::CrossEntropy, 1).unwrap();
        let before = wrong.clone();
        let err = wrong.load_safetensors(&bytes, "bytes").unwrap_err();
        assert!(err.to_string().contains("0.0.weight"), "{err}");
        assert_eq!(wrong, before);
        assert!(wrong.load_safetensors(b"garbage", "g").is_err());
        assert!(wrong
            .load_safetensors(&bytes[..bytes.len() - 3], "t")
            .is_err());
        let mut deeper =
            Network::<f32>::mlp("4-3-2-2", Activation::Relu, Loss::CrossEntropy, 1).unwrap();
        assert!(deeper
            .load_safetensors(&bytes, "b")
            .unwrap_err()
            .to_string()
            .contains("missing"));
        let mut shallower =
            Network::<f32>::mlp("4-3", Activation::Relu, Loss::CrossEntropy, 1).unwrap();
        assert!(shallower
            .load_safetensors(&bytes, "b")
            .unwrap_err()
            .to_string()
            .contains("unexpected"));
    }
}
