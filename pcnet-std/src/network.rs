//! Owned networks: layers, loss and parameters in one value, initialised as PyTorch
//! initialises `nn.Linear`, convertible to nalgebra matrices and to safetensors files with
//! PyTorch `state_dict` names.
//!
//! # Example
//! ```
//! use pcnet_core::{Activation, Loss, Settings};
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
//!
//! Why one file of ~1500 lines: everything here is the one owned type `Network` (its builder, constructors and parameterisations, accessors, training and prediction entry points, safetensors and nalgebra interop) and their tests; splitting the impl blocks across files would scatter one type's documentation.

use crate::{batch::Par, fast::Fast, rng::SplitMix64, train::Relaxer, Error};
#[cfg(feature = "nalgebra")]
use nalgebra::{DMatrix, DVector};
use pcnet_core::{
    Activation, Batch, Layer, Loss, NetworkSpec, Op, PcError, Report, Scalar, Targets,
};
#[cfg(feature = "safetensors")]
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::marker::PhantomData;
#[cfg(feature = "safetensors")]
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

/// Reusable buffers for [`Network::predict_with`] and [`Network::predict_classes_with`]:
/// the forward workspace ([`NetworkSpec::forward_workspace_len`]), the outputs and the
/// classes. They grow to the largest batch seen and are kept, so predicting again on a
/// batch no larger allocates nothing. One predictor serves any network.
///
/// ```
/// use pcnet_std::network::Predictor;
/// let predictor = Predictor::<f32>::new(); // empty until its first use
/// # let _ = predictor;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Predictor<T> {
    workspace: Vec<T>,
    outputs: Vec<T>,
    classes: Vec<usize>,
}

impl<T> Predictor<T> {
    /// A predictor with no buffers yet.
    #[must_use]
    pub fn new() -> Self {
        Predictor {
            workspace: Vec::new(),
            outputs: Vec::new(),
            classes: Vec::new(),
        }
    }
}

/// Builds a [`Network`] layer by layer.
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_std::network::Network;
/// let net: Network<f32> = Network::<f32>::builder(784)
///     .dense(256, Activation::Relu)
///     .dense(10, Activation::Identity)
///     .loss(Loss::CrossEntropy)
///     .seed(1)
///     .build()?;
/// assert_eq!(net.parameters().len(), 784 * 256 + 256 + 256 * 10 + 10);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
///
/// The scalar is fixed once, by [`Network::builder`]: `build` takes no type of its own, so
/// asking an `f32` builder for an `f64` network does not compile.
///
/// ```compile_fail,E0107
/// use pcnet_core::Activation;
/// use pcnet_std::network::Network;
/// let net = Network::<f32>::builder(4).dense(2, Activation::Relu).build::<f64>();
/// ```
///
/// ```compile_fail,E0308
/// use pcnet_core::Activation;
/// use pcnet_std::network::Network;
/// let net: Network<f64> = Network::<f32>::builder(4).dense(2, Activation::Relu).build().unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct NetworkBuilder<T> {
    input_len: usize,
    width: usize,
    layers: Vec<Layer>,
    loss: Loss,
    seed: u64,
    scalar: PhantomData<T>,
}

impl<T: Scalar> NetworkBuilder<T> {
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
    pub fn build(self) -> Result<Network<T>, PcError> {
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
    pub fn builder(input_len: usize) -> NetworkBuilder<T> {
        NetworkBuilder {
            input_len,
            width: input_len,
            layers: Vec::new(),
            loss: Loss::Mse,
            seed: 0,
            scalar: PhantomData,
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

    #[cfg(feature = "nalgebra")]
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

    /// The first weighted op of layer `layer`: the paper's per-layer metrics use
    /// `model[layer - 1][0].weight`.
    ///
    /// Layers are numbered from 1 to [`Network::depth`], as in the paper (layer `l` maps
    /// `v_{l-1}` to `v_l`, `v_0` being the input) and as every [`PcError`] names them;
    /// only the safetensors names count from 0, as PyTorch's `Sequential` does
    /// ([`WeightLocation::torch_prefix`]).
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
    /// use pcnet_std::network::Network;
    /// let net = Network::<f64>::mlp("4-8-3", Activation::Relu, Loss::Mse, 1)?;
    /// assert_eq!(net.weight_op(2)?.inputs, 8);
    /// assert_eq!(
    ///     net.weight_op(0).unwrap_err().to_string(),
    ///     "there is no layer 0: this network's layers are numbered 1 to 2"
    /// );
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoSuchLayer`] when `layer` is not in `1..=depth`, [`Error::NoWeight`] when
    /// the layer has no linear or convolution op.
    pub fn weight_op(&self, layer: usize) -> Result<WeightLocation, Error> {
        if layer == 0 || layer > self.depth() {
            return Err(Error::NoSuchLayer {
                layer,
                depth: self.depth(),
            });
        }
        self.weight_ops()
            .into_iter()
            .find(|location| location.layer == layer)
            .ok_or(Error::NoWeight { layer })
    }

    #[cfg(feature = "nalgebra")]
    /// The weight of layer `layer`'s first weighted op as a matrix (`out x in`; for a
    /// convolution `out x (in * kh * kw)`, one flattened filter per row).
    ///
    /// # Errors
    /// As [`Network::weight_op`].
    pub fn weight(&self, layer: usize) -> Result<DMatrix<T>, Error> {
        let at = self.weight_op(layer)?;
        Ok(DMatrix::from_row_slice(
            at.outputs,
            at.filter_len(),
            &self.parameters[at.weight_range()],
        ))
    }

    #[cfg(feature = "nalgebra")]
    /// The bias of layer `layer`'s first weighted op.
    ///
    /// # Errors
    /// As [`Network::weight_op`].
    pub fn bias(&self, layer: usize) -> Result<DVector<T>, Error> {
        let at = self.weight_op(layer)?;
        Ok(DVector::from_column_slice(
            &self.parameters[at.bias_range()],
        ))
    }

    #[cfg(feature = "nalgebra")]
    /// Sets the weight of layer `layer`'s first weighted op, all or nothing.
    ///
    /// # Errors
    /// As [`Network::weight_op`]; [`Error::WeightShape`] for a matrix of the wrong shape,
    /// [`PcError::NonFinite`] (in [`Error::Pc`]).
    pub fn set_weight(&mut self, layer: usize, weight: &DMatrix<T>) -> Result<(), Error> {
        let at = self.weight_op(layer)?;
        if weight.shape() != (at.outputs, at.filter_len()) {
            return Err(Error::WeightShape {
                layer,
                expected: (at.outputs, at.filter_len()),
                given: weight.shape(),
            });
        }
        let row_major: Vec<T> = weight.transpose().iter().copied().collect();
        check_finite_vec("weight", &row_major)?;
        self.parameters[at.weight_range()].copy_from_slice(&row_major);
        Ok(())
    }

    #[cfg(feature = "nalgebra")]
    /// Sets the bias of layer `layer`'s first weighted op, all or nothing.
    ///
    /// # Errors
    /// As [`Network::weight_op`]; [`PcError::LengthMismatch`] for a vector of the wrong
    /// length, [`PcError::NonFinite`] (in [`Error::Pc`]).
    pub fn set_bias(&mut self, layer: usize, bias: &DVector<T>) -> Result<(), Error> {
        let at = self.weight_op(layer)?;
        if bias.len() != at.outputs {
            return Err(PcError::LengthMismatch {
                what: "bias",
                expected: at.outputs,
                given: bias.len(),
            }
            .into());
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
    /// `output` of [`Network::updates`] (which is the feedforward output). Computed by
    /// [`pcnet_core::forward_with`] on the [`Fast`] kernels, in new buffers; see
    /// [`Network::predict_with`] to reuse them (no allocation after the first call on a
    /// shape).
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
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
    /// The errors of [`pcnet_core::forward`], in [`Error::Pc`]: [`PcError::EmptyBatch`]
    /// for no inputs, [`PcError::LengthMismatch`] when `inputs` is not whole rows,
    /// [`PcError::NonFinite`] for a NaN or infinite input or parameter (or outputs that
    /// overflow).
    pub fn predict(&self, inputs: &[T]) -> Result<Vec<T>, Error>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        Ok(self.predict_with(&mut Predictor::new(), inputs)?.to_vec())
    }

    /// As [`Network::predict`], in `predictor`'s buffers: they grow on the first call on a
    /// shape and are reused after it, so later calls with at most as many rows allocate
    /// nothing. The outputs are borrowed from the predictor until its next use.
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
    /// use pcnet_std::network::{Network, Predictor};
    ///
    /// let net = Network::<f32>::mlp("2-8-3", Activation::Relu, Loss::CrossEntropy, 5)?;
    /// let mut predictor = Predictor::new();
    /// let inputs = [0.25, -1.0, 0.5, 0.5];
    /// let first = net.predict_with(&mut predictor, &inputs)?.to_vec();
    /// assert_eq!(net.predict_with(&mut predictor, &inputs)?, &first[..]); // same bits
    /// assert_eq!(first, net.predict(&inputs)?);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Network::predict`].
    pub fn predict_with<'p>(
        &self,
        predictor: &'p mut Predictor<T>,
        inputs: &[T],
    ) -> Result<&'p [T], Error>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        let spec = self.spec();
        let rows = inputs.len() / self.input_len.max(1);
        predictor
            .outputs
            .resize(rows * self.output_len(), T::zero());
        predictor
            .workspace
            .resize(spec.forward_workspace_len(rows), T::zero());
        pcnet_core::forward_with(
            &Fast::default(),
            &spec,
            &self.parameters,
            inputs,
            &mut predictor.workspace,
            &mut predictor.outputs,
        )?;
        Ok(&predictor.outputs)
    }

    /// The predicted class of each row of `inputs`: the index of its largest output
    /// (ties go to the first maximum), as [`crate::train::evaluate`] counts accuracy.
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
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
        Ok(self
            .predict_classes_with(&mut Predictor::new(), inputs)?
            .to_vec())
    }

    /// As [`Network::predict_classes`], in `predictor`'s buffers (no allocation after the
    /// first call on a shape).
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
    /// use pcnet_std::network::{Network, Predictor};
    ///
    /// let net = Network::<f64>::mlp("2-4-3", Activation::Tanh, Loss::CrossEntropy, 3)?;
    /// let mut predictor = Predictor::new();
    /// let inputs = [0.5, -0.5, 1.0, 0.0];
    /// let classes = net.predict_classes_with(&mut predictor, &inputs)?.to_vec();
    /// assert_eq!(classes, net.predict_classes(&inputs)?);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Network::predict`].
    pub fn predict_classes_with<'p>(
        &self,
        predictor: &'p mut Predictor<T>,
        inputs: &[T],
    ) -> Result<&'p [usize], Error>
    where
        Fast: crate::batch::RunnerBackend<T>,
    {
        self.predict_with(predictor, inputs)?;
        let Predictor {
            outputs, classes, ..
        } = predictor;
        classes.clear();
        classes.extend(
            outputs
                .chunks_exact(self.output_len())
                .map(crate::train::argmax),
        );
        Ok(classes)
    }

    #[cfg(feature = "safetensors")]
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

    #[cfg(feature = "safetensors")]
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

    #[cfg(feature = "safetensors")]
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

    #[cfg(feature = "safetensors")]
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

#[cfg(feature = "nalgebra")]
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

// ---------------------------------------------------------------------------------------
// Residual layers and parameterisations (issue 15). Kept apart from the code above.
// ---------------------------------------------------------------------------------------

/// How [`Network::parameterised`] (and [`NetworkBuilder::build_parameterised`]) draws the
/// parameters and scales the residual branches. `N` below is an op's fan-in (a linear op's
/// input features, a convolution's `in_channels * kh * kw`), `L_res` the number of
/// residual layers of the network.
///
/// | | weights | biases | residual scale `alpha` |
/// |---|---|---|---|
/// | `Standard` | `U[-1/sqrt(N), 1/sqrt(N))` | `U[-1/sqrt(N), 1/sqrt(N))` | as the layers give it |
/// | `WidthStable` | `U[-sqrt(3/N), sqrt(3/N))` (variance `1/N`) | 0 | as the layers give it |
/// | `DepthStable` | as `WidthStable` | 0 | `1/sqrt(L_res)` for every residual layer |
///
/// `Standard` is PyTorch's default (`nn.Linear.reset_parameters`) and draws exactly what
/// [`Network::initialised`] draws, bit for bit. `WidthStable` is the μP-style width
/// scaling: weights of standard deviation `1/sqrt(N)`, so every pre-activation has
/// variance independent of the width at any width, and biases zero (a linear network
/// stays linear, as the width- and depth-limit theory of predictive coding assumes).
/// `DepthStable` adds the depth-stable residual scaling `alpha = 1/sqrt(L_res)` (the
/// residual stream's variance then stays bounded as `L_res` grows). The draws come, as in
/// `Standard`, from [`SplitMix64`] seeded with the seed, layer after layer, op after op,
/// weight (row-major) then bias, in `f64`, rounded to `T` (zero biases draw nothing).
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_std::network::{Network, Parameterisation};
/// let builder = Network::<f64>::builder(8)
///     .residual_linear(1.0)?
///     .residual_mlp(16, Activation::Tanh, 1.0)?
///     .dense(2, Activation::Identity)
///     .seed(3);
/// let deep: Network<f64> = builder.clone().build_parameterised(Parameterisation::DepthStable)?;
/// // Two residual layers: alpha = 1/sqrt(2) for both.
/// let alpha = 1.0 / 2.0_f64.sqrt();
/// assert_eq!(deep.layers()[0].residual_scale(), Some(alpha));
/// assert_eq!(deep.layers()[1].residual_scale(), Some(alpha));
/// // Standard is the builder's default initialisation, bit for bit.
/// let standard: Network<f64> = builder.clone().build_parameterised(Parameterisation::Standard)?;
/// assert_eq!(standard, builder.build()?);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Parameterisation {
    /// PyTorch's default initialisation; residual scales as given.
    #[default]
    Standard,
    /// μP-style: weights of variance `1/fan_in`, zero biases; residual scales as given.
    WidthStable,
    /// `WidthStable` with every residual layer's scale set to `1/sqrt(L_res)`.
    DepthStable,
}

impl Parameterisation {
    /// The residual scale this parameterisation gives a residual layer whose description
    /// says `given`, in a network of `residual_layers` residual layers.
    ///
    /// ```
    /// use pcnet_std::network::Parameterisation;
    /// assert_eq!(Parameterisation::Standard.residual_scale(0.3, 16), 0.3);
    /// assert_eq!(Parameterisation::DepthStable.residual_scale(0.3, 16), 0.25);
    /// ```
    pub fn residual_scale(self, given: f64, residual_layers: usize) -> f64 {
        match self {
            Parameterisation::DepthStable => 1.0 / (residual_layers.max(1) as f64).sqrt(),
            Parameterisation::Standard | Parameterisation::WidthStable => given,
        }
    }

    /// The half-width `b` of the uniform weight draw `U[-b, b)` for fan-in `fan_in`, and
    /// whether biases are drawn (with the same bound) or zero.
    fn weight_bound(self, fan_in: usize) -> (f64, bool) {
        match self {
            Parameterisation::Standard => (1.0 / (fan_in as f64).sqrt(), true),
            Parameterisation::WidthStable | Parameterisation::DepthStable => {
                ((3.0 / fan_in as f64).sqrt(), false)
            }
        }
    }
}

impl<T: Scalar> NetworkBuilder<T> {
    /// Appends a residual layer `v + alpha * (act(v W1^T + b1) W2^T + b2)` with a branch
    /// through `hidden` features ([`Layer::residual_mlp`]); its width is the current one.
    ///
    /// ```
    /// use pcnet_core::{Activation, Loss};
    /// use pcnet_std::network::Network;
    /// let net: Network<f32> = Network::<f32>::builder(4)
    ///     .residual_mlp(8, Activation::Relu, 0.5)?
    ///     .dense(1, Activation::Identity)
    ///     .build()?;
    /// assert_eq!(net.layers()[0].residual_scale(), Some(0.5));
    /// assert_eq!(net.parameters().len(), (4 * 8 + 8) + (8 * 4 + 4) + (4 + 1));
    /// # Ok::<(), pcnet_core::PcError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Layer::residual`] (never with pcnet-std's pcnet-core, which has the
    /// `residual` feature); a non-finite `alpha` is refused by [`NetworkBuilder::build`].
    pub fn residual_mlp(
        self,
        hidden: usize,
        activation: Activation,
        alpha: f64,
    ) -> Result<Self, PcError> {
        let layer = Layer::residual_mlp(self.width, hidden, activation, alpha)?;
        Ok(self.layer(layer))
    }

    /// Appends a linear residual layer `v + alpha * (v W^T + b)`, `W` square of the
    /// current width (the layers of a linear residual network).
    ///
    /// ```
    /// use pcnet_std::network::Network;
    /// let net: Network<f64> = Network::<f64>::builder(3).residual_linear(0.25)?.build()?;
    /// assert_eq!(net.output_len(), 3);
    /// # Ok::<(), pcnet_core::PcError>(())
    /// ```
    ///
    /// # Errors
    /// As [`NetworkBuilder::residual_mlp`].
    pub fn residual_linear(self, alpha: f64) -> Result<Self, PcError> {
        let branch = [Op::Linear {
            inputs: self.width,
            outputs: self.width,
        }];
        let layer = Layer::residual(&branch, alpha)?;
        Ok(self.layer(layer))
    }

    /// Builds the network with `parameterisation` from the seed ([`Network::parameterised`]).
    ///
    /// # Errors
    /// As [`Network::parameterised`].
    pub fn build_parameterised(
        self,
        parameterisation: Parameterisation,
    ) -> Result<Network<T>, PcError> {
        Network::parameterised(
            self.layers,
            self.loss,
            self.input_len,
            self.seed,
            parameterisation,
        )
    }
}

impl<T: Scalar> Network<T> {
    /// A network with these layers, its parameters drawn and its residual scales set by
    /// `parameterisation` (see [`Parameterisation`] for the convention). `Standard` is
    /// [`Network::initialised`], bit for bit.
    ///
    /// ```
    /// use pcnet_core::{Activation, Layer, Loss, Op};
    /// use pcnet_std::network::{Network, Parameterisation};
    /// // A linear residual network of width 64 and 8 residual layers, depth-stable.
    /// let mut layers = vec![Layer::dense(4, 64, Activation::Identity)];
    /// for _ in 0..8 {
    ///     layers.push(Layer::residual(&[Op::Linear { inputs: 64, outputs: 64 }], 1.0)?);
    /// }
    /// layers.push(Layer::dense(64, 1, Activation::Identity));
    /// let net = Network::<f64>::parameterised(layers, Loss::Mse, 4, 11, Parameterisation::DepthStable)?;
    /// assert!(net.layers()[1..9].iter().all(|l| l.residual_scale() == Some(1.0 / 8.0_f64.sqrt())));
    /// let (weight, bias) = (net.weight(2)?, net.bias(2)?);
    /// assert!(bias.iter().all(|&b| b == 0.0));
    /// assert!(weight.iter().all(|w| w.abs() <= (3.0 / 64.0_f64).sqrt()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Network::initialised`] (layers that do not chain, a non-finite residual
    /// scale, an op kind pcnet-std cannot initialise).
    pub fn parameterised(
        layers: Vec<Layer>,
        loss: Loss,
        input_len: usize,
        seed: u64,
        parameterisation: Parameterisation,
    ) -> Result<Self, PcError> {
        if parameterisation == Parameterisation::Standard {
            return Network::initialised(layers, loss, input_len, seed);
        }
        NetworkSpec::new(&layers, loss)
            .with_input_len(input_len)
            .validate()?;
        let residual_layers = layers
            .iter()
            .filter(|layer| layer.residual_scale().is_some())
            .count();
        let mut scaled = Vec::with_capacity(layers.len());
        for layer in &layers {
            scaled.push(match layer.residual_scale() {
                Some(given) => Layer::residual(
                    layer.ops(),
                    parameterisation.residual_scale(given, residual_layers),
                )?,
                None => *layer,
            });
        }
        let spec = NetworkSpec::new(&scaled, loss).with_input_len(input_len);
        spec.validate()?;
        let mut parameters = Vec::with_capacity(spec.parameter_len());
        let mut rng = SplitMix64::new(seed);
        for (index, layer) in scaled.iter().enumerate() {
            for op in layer.ops() {
                let (fan_in, weights, biases) = match *op {
                    Op::Linear { inputs, outputs } => (inputs, inputs * outputs, outputs),
                    Op::Conv2d(conv) => (conv.filter_len(), conv.weight_len(), conv.out_channels),
                    other if other.parameter_len() == 0 => continue,
                    _ => {
                        return Err(PcError::InvalidNetwork {
                            layer: index + 1,
                            reason: "pcnet-std cannot initialise this op kind",
                        })
                    }
                };
                let (bound, draw_biases) = parameterisation.weight_bound(fan_in);
                for _ in 0..weights {
                    parameters.push(T::from_f64(rng.uniform(-bound, bound)));
                }
                for _ in 0..biases {
                    let bias = if draw_biases {
                        rng.uniform(-bound, bound)
                    } else {
                        0.0
                    };
                    parameters.push(T::from_f64(bias));
                }
            }
        }
        Ok(Network {
            layers: scaled,
            loss,
            input_len,
            parameters,
        })
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

    #[cfg(feature = "nalgebra")]
    #[cfg(feature = "safetensors")]
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

    #[cfg(feature = "safetensors")]
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

    #[cfg(feature = "nalgebra")]
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

    #[cfg(feature = "nalgebra")]
    #[cfg(feature = "safetensors")]
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

#[cfg(test)]
mod parameterisation_tests {
    use super::*;
    use pcnet_core::Settings;

    fn residual_builder() -> NetworkBuilder<f64> {
        Network::<f64>::builder(5)
            .dense(64, Activation::Tanh)
            .residual_linear(1.0)
            .unwrap()
            .residual_mlp(32, Activation::Relu, 0.3)
            .unwrap()
            .residual_linear(-0.5)
            .unwrap()
            .dense(3, Activation::Identity)
            .seed(42)
    }

    #[test]
    fn standard_is_the_default_initialisation_bit_for_bit() {
        let builder = residual_builder();
        let standard: Network<f64> = builder
            .clone()
            .build_parameterised(Parameterisation::Standard)
            .unwrap();
        let default: Network<f64> = builder.clone().build().unwrap();
        assert_eq!(standard, default);
        let mlp = Network::<f32>::mlp("4-8-2", Activation::Tanh, Loss::Mse, 9).unwrap();
        let again = Network::<f32>::parameterised(
            mlp.layers().to_vec(),
            Loss::Mse,
            4,
            9,
            Parameterisation::Standard,
        )
        .unwrap();
        assert_eq!(again, mlp);
    }

    /// Width-stable weights are uniform in `[-sqrt(3/N), sqrt(3/N))`, so of variance `1/N`:
    /// the sample variance of a 64 x 64 weight (4096 draws) is within 10% of `1/64` (its
    /// relative standard error is `sqrt(0.8 / 4096) = 1.4%` for a uniform law). Biases are 0.
    #[test]
    fn width_stable_weights_have_variance_one_over_fan_in() {
        for parameterisation in [Parameterisation::WidthStable, Parameterisation::DepthStable] {
            let net: Network<f64> = residual_builder()
                .build_parameterised(parameterisation)
                .unwrap();
            for at in net.weight_ops() {
                let weight = &net.parameters()[at.weight_range()];
                let bound = (3.0 / at.inputs as f64).sqrt();
                assert!(weight.iter().all(|w| w.abs() <= bound));
                assert!(net.parameters()[at.bias_range()].iter().all(|&b| b == 0.0));
                if weight.len() >= 4096 {
                    let variance = weight.iter().map(|w| w * w).sum::<f64>() / weight.len() as f64;
                    let expected = 1.0 / at.inputs as f64;
                    assert!(
                        (variance / expected - 1.0).abs() < 0.1,
                        "{variance} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn depth_stable_scales_every_residual_branch_by_one_over_sqrt_depth() {
        let width: Network<f64> = residual_builder()
            .build_parameterised(Parameterisation::WidthStable)
            .unwrap();
        let depth: Network<f64> = residual_builder()
            .build_parameterised(Parameterisation::DepthStable)
            .unwrap();
        let given: Vec<Option<f64>> = width.layers().iter().map(Layer::residual_scale).collect();
        assert_eq!(given, [None, Some(1.0), Some(0.3), Some(-0.5), None]);
        let alpha = 1.0 / 3.0_f64.sqrt();
        let scaled: Vec<Option<f64>> = depth.layers().iter().map(Layer::residual_scale).collect();
        assert_eq!(scaled, [None, Some(alpha), Some(alpha), Some(alpha), None]);
        // The same draws: only the scales differ.
        assert_eq!(width.parameters(), depth.parameters());
        // A non-finite scale is refused.
        let bad = Network::<f64>::builder(2)
            .residual_linear(f64::NAN)
            .unwrap();
        assert!(matches!(
            bad.build_parameterised(Parameterisation::WidthStable),
            Err(PcError::InvalidHyperparameter {
                name: "residual scale",
                ..
            })
        ));
    }

    /// `predict` forms `v + alpha g(v)` as pcnet-core's forward pass does (the Fast kernels
    /// against the portable ones: 1e-12 relative).
    #[test]
    fn predict_evaluates_residual_layers() {
        let net: Network<f64> = residual_builder()
            .build_parameterised(Parameterisation::DepthStable)
            .unwrap();
        let inputs: Vec<f64> = (0..3 * 5).map(|i| (i as f64 * 0.37).sin()).collect();
        let predicted = net.predict(&inputs).unwrap();
        let spec = net.spec();
        let targets = vec![0.0; 3 * 3];
        let mut workspace = vec![0.0; spec.workspace_len(3)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let inference = pcnet_core::infer(
            &spec,
            net.parameters(),
            Batch::new(&inputs, Targets::Values(&targets)),
            &Settings::exact(),
            &mut workspace,
            &mut updates,
        )
        .unwrap();
        let reference = inference.feedforward(spec.depth());
        let scale = reference.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (p, r) in predicted.iter().zip(reference) {
            assert!((p - r).abs() <= 1e-12 * scale, "{p} vs {r}");
        }
    }
}
