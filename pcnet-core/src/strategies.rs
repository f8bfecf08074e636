//! [proptest](https://docs.rs/proptest) strategies for random dense networks, their
//! inputs and targets (feature `proptest-support`, as nalgebra's).
//!
//! [`networks`] draws a [`RandomNetwork`]: depth, widths, one activation per layer, a
//! loss, a batch size, a weight scale, the parameters, the inputs and the targets, all
//! owned, so a failing case prints (through `Debug`) everything needed to rebuild it with
//! [`RandomNetwork::from_parts`], after proptest has shrunk it.
//!
//! The defaults ([`NetworkConfig::default`]) cover depth 1 to 8, widths 1 to 32, every
//! activation (identity, ReLU, leaky ReLU with slopes 0.01 and 0.2, tanh, sigmoid,
//! softplus), both loss families (MSE, summed MSE, cross-entropy), batches of 1 to 8 rows
//! and weight scales from 0.25 to 2.
//!
//! [`cnns`] and [`smooth_cnns`] draw small convolutional networks of the same type (op-chain
//! layers of conv2d, activation, max or average pooling and flatten, then dense layers;
//! see [`random_cnn`]); the theory suite runs its CNN statements on them.
//!
//! [`residual_networks`] and [`smooth_residual_networks`] (feature `residual`) draw small
//! residual networks `v + alpha g(v)` of the same type (see [`random_residual`]).
//!
//! **Smoothness.** ReLU and leaky ReLU have a kink at 0, where a finite difference or a
//! Taylor argument fails. Properties that need smoothness either draw from
//! [`NetworkConfig::smooth`] (identity, tanh, sigmoid, softplus only) or keep every
//! ReLU-type pre-activation of the feedforward pass at least a margin away from 0 with
//! [`NetworkConfig::with_relu_margin`] (networks that violate it are rejected, so proptest
//! draws another). The margin protects the feedforward point only; properties that move
//! far from it (Strict relaxation) use the smooth variant.
//!
//! # Example
//!
//! Why one file of ~900 lines: every proptest strategy of the public `strategies` API, each short, in one module so that users find them in one place.
#![cfg_attr(feature = "exact", doc = "```")]
#![cfg_attr(not(feature = "exact"), doc = "```ignore")]
//! use pcnet_core::strategies::{networks, NetworkConfig};
//! use pcnet_core::{infer, Settings};
//! use proptest::prelude::*;
//!
//! proptest!(ProptestConfig::with_cases(8), |(net in networks(NetworkConfig::default().with_depth(1..=3)))| {
//!     let spec = net.spec();
//!     let mut workspace = vec![0.0; spec.workspace_len(net.rows)];
//!     let mut updates = vec![0.0; spec.parameter_len()];
//!     let exact = infer(&spec, &net.params, net.batch(), &Settings::exact(), &mut workspace, &mut updates);
//!     prop_assert!(exact.is_ok(), "{:?}", exact.err());
//! });
//! ```

use core::fmt;
use core::ops::RangeInclusive;
use std::vec::Vec;

use proptest::prelude::*;

use crate::{
    Activation, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d, Scalar, Targets,
};

/// Every activation the strategies draw from by default.
pub const ALL_ACTIVATIONS: [Activation; 7] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LEAKY_RELU,
    Activation::LeakyRelu { slope: 0.2 },
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
];

/// The activations with a continuous derivative everywhere.
pub const SMOOTH_ACTIVATIONS: [Activation; 4] = [
    Activation::Identity,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
];

/// Every loss: both families (squared error, mean and summed; cross-entropy).
pub const ALL_LOSSES: [Loss; 3] = [Loss::Mse, Loss::MseSum, Loss::CrossEntropy];

/// What [`networks`] draws from.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Number of layers `L`.
    pub depth: RangeInclusive<usize>,
    /// Features per sample of every `v_l`, input and output included (cross-entropy
    /// outputs get at least 2 classes, so that the loss is not constant).
    pub width: RangeInclusive<usize>,
    /// Samples per batch.
    pub rows: RangeInclusive<usize>,
    /// Activations, one drawn per layer.
    pub activations: Vec<Activation>,
    /// Losses, one drawn per network.
    pub losses: Vec<Loss>,
    /// The weight scale `s`: weights are uniform with variance `s^2 / fan_in`, biases
    /// uniform in `[-s/2, s/2]`.
    pub weight_scale: RangeInclusive<f64>,
    /// Reject networks with a ReLU-type pre-activation closer than this to 0 at the
    /// feedforward pass.
    pub relu_margin: Option<f64>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            depth: 1..=8,
            width: 1..=32,
            rows: 1..=8,
            activations: ALL_ACTIVATIONS.to_vec(),
            losses: ALL_LOSSES.to_vec(),
            weight_scale: 0.25..=2.0,
            relu_margin: None,
        }
    }
}

impl NetworkConfig {
    /// The defaults with smooth activations only ([`SMOOTH_ACTIVATIONS`]).
    pub fn smooth() -> Self {
        NetworkConfig {
            activations: SMOOTH_ACTIVATIONS.to_vec(),
            ..NetworkConfig::default()
        }
    }

    /// Depths in `depth`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_depth(self, depth: RangeInclusive<usize>) -> Self {
        NetworkConfig { depth, ..self }
    }

    /// Widths in `width`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_width(self, width: RangeInclusive<usize>) -> Self {
        NetworkConfig { width, ..self }
    }

    /// Batch sizes in `rows`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_rows(self, rows: RangeInclusive<usize>) -> Self {
        NetworkConfig { rows, ..self }
    }

    /// Activations drawn from `activations`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_activations(self, activations: &[Activation]) -> Self {
        NetworkConfig {
            activations: activations.to_vec(),
            ..self
        }
    }

    /// Losses drawn from `losses`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_losses(self, losses: &[Loss]) -> Self {
        NetworkConfig {
            losses: losses.to_vec(),
            ..self
        }
    }

    /// Weight scales in `scale`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_weight_scale(self, weight_scale: RangeInclusive<f64>) -> Self {
        NetworkConfig {
            weight_scale,
            ..self
        }
    }

    /// Keeps every ReLU-type pre-activation at least `margin` away from 0 at the
    /// feedforward pass (by rejection).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_relu_margin(self, margin: f64) -> Self {
        NetworkConfig {
            relu_margin: Some(margin),
            ..self
        }
    }
}

/// Targets of a [`RandomNetwork`], owned.
#[derive(Clone, Debug, PartialEq)]
pub enum RandomTargets<T> {
    /// One value per output (rows x outputs), for the squared-error losses.
    Values(Vec<T>),
    /// One class per row, for cross-entropy.
    Classes(Vec<usize>),
}

/// A random network with its parameters and one batch, all owned.
///
/// `Debug` prints the widths, activations, loss, batch size and every number in full
/// precision, so a shrunk failing case can be rebuilt with
/// [`from_parts`](Self::from_parts).
#[derive(Clone, PartialEq)]
pub struct RandomNetwork<T = f64> {
    /// The layers: dense from [`networks`], op chains from [`cnns`].
    pub layers: Vec<Layer>,
    /// The loss.
    pub loss: Loss,
    /// Flat parameters in pcnet-core's layout.
    pub params: Vec<T>,
    /// Samples in the batch.
    pub rows: usize,
    /// Inputs, rows x input width.
    pub inputs: Vec<T>,
    /// Targets.
    pub targets: RandomTargets<T>,
    /// The weight scale the parameters were drawn with (informative).
    pub weight_scale: f64,
    /// The rows the loss averages over ([`Batch::loss_rows`]); `None` (as drawn) for the
    /// batch's own rows. `Some(k * rows)` scales the mean losses and their gradients by `1/k`.
    pub loss_rows: Option<usize>,
}

impl<T: Scalar> RandomNetwork<T> {
    /// Rebuilds a network from printed parts: `widths` has `L + 1` entries and
    /// `activations` `L`.
    ///
    /// ```
    /// use pcnet_core::strategies::{RandomNetwork, RandomTargets};
    /// use pcnet_core::{Activation, Loss};
    /// let net = RandomNetwork::from_parts(
    ///     &[1, 1], &[Activation::Tanh], Loss::Mse,
    ///     vec![0.5_f64, 0.1], vec![2.0], RandomTargets::Values(vec![0.0]),
    /// );
    /// assert_eq!(net.rows, 1);
    /// assert_eq!(net.spec().parameter_len(), 2);
    /// ```
    pub fn from_parts(
        widths: &[usize],
        activations: &[Activation],
        loss: Loss,
        params: Vec<T>,
        inputs: Vec<T>,
        targets: RandomTargets<T>,
    ) -> Self {
        let layers: Vec<Layer> = widths
            .windows(2)
            .zip(activations)
            .map(|(pair, &activation)| Layer::dense(pair[0], pair[1], activation))
            .collect();
        let rows = inputs.len() / widths.first().copied().unwrap_or(1).max(1);
        RandomNetwork {
            layers,
            loss,
            params,
            rows,
            inputs,
            targets,
            weight_scale: f64::NAN,
            loss_rows: None,
        }
    }

    /// The network description.
    pub fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss)
    }

    /// The batch (a block of `loss_rows` rows when that is set).
    pub fn batch(&self) -> Batch<'_, T> {
        let batch = Batch::new(&self.inputs, self.target_view());
        match self.loss_rows {
            Some(rows) => batch.block_of(rows),
            None => batch,
        }
    }

    /// The targets as pcnet-core takes them.
    pub fn target_view(&self) -> Targets<'_, T> {
        match &self.targets {
            RandomTargets::Values(values) => Targets::Values(values),
            RandomTargets::Classes(classes) => Targets::Classes(classes),
        }
    }

    /// Number of layers `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Widths of `v_0..=v_L`.
    pub fn widths(&self) -> Vec<usize> {
        let spec = self.spec();
        (0..=self.depth()).map(|l| spec.width(l)).collect()
    }

    /// The activation of every layer.
    pub fn activations(&self) -> Vec<Activation> {
        self.layers
            .iter()
            .map(|layer| layer.dense_activation().unwrap_or(Activation::Identity))
            .collect()
    }

    /// True when every activation is smooth.
    pub fn is_smooth(&self) -> bool {
        self.activations().iter().all(Activation::is_smooth)
    }

    /// The same network in another precision (every number rounded to nearest).
    pub fn cast<U: Scalar>(&self) -> RandomNetwork<U> {
        let cast = |values: &[T]| -> Vec<U> {
            values
                .iter()
                .map(|v| U::from_f64(Scalar::to_f64(*v)))
                .collect()
        };
        RandomNetwork {
            layers: self.layers.clone(),
            loss: self.loss,
            params: cast(&self.params),
            rows: self.rows,
            inputs: cast(&self.inputs),
            targets: match &self.targets {
                RandomTargets::Values(values) => RandomTargets::Values(cast(values)),
                RandomTargets::Classes(classes) => RandomTargets::Classes(classes.clone()),
            },
            weight_scale: self.weight_scale,
            loss_rows: self.loss_rows,
        }
    }

    /// The smallest `|z|` over the pre-activations `z` of ReLU and leaky ReLU units at the
    /// feedforward pass (infinity when there are none), computed with plain loops in f64.
    pub fn relu_margin(&self) -> f64 {
        let mut values: Vec<f64> = self.inputs.iter().map(|&v| Scalar::to_f64(v)).collect();
        let mut margin = f64::INFINITY;
        let mut offset = 0;
        let widths = self.widths();
        for (l, activation) in self.activations().into_iter().enumerate() {
            let (inputs, outputs) = (widths[l], widths[l + 1]);
            let weight = &self.params[offset..offset + inputs * outputs];
            let bias = &self.params[offset + inputs * outputs..offset + (inputs + 1) * outputs];
            offset += (inputs + 1) * outputs;
            let mut next = Vec::with_capacity(self.rows * outputs);
            for row in values.chunks_exact(inputs) {
                for o in 0..outputs {
                    let mut z = Scalar::to_f64(bias[o]);
                    for (w, x) in weight[o * inputs..(o + 1) * inputs].iter().zip(row) {
                        z += Scalar::to_f64(*w) * x;
                    }
                    if !activation.is_smooth() {
                        margin = margin.min(z.abs());
                    }
                    next.push(activation.apply(z));
                }
            }
            values = next;
        }
        margin
    }
}

impl<T: Scalar> fmt::Debug for RandomNetwork<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.activations().iter().map(Activation::name).collect();
        let mut debug = f.debug_struct("RandomNetwork");
        if self
            .layers
            .iter()
            .all(|layer| layer.dense_activation().is_some())
        {
            debug
                .field("widths", &self.widths())
                .field("activations", &names);
        } else {
            let ops: Vec<&[crate::Op]> = self.layers.iter().map(Layer::ops).collect();
            debug.field("layers", &ops);
            let scales: Vec<Option<f64>> = self.layers.iter().map(Layer::residual_scale).collect();
            if scales.iter().any(Option::is_some) {
                debug.field("residual_scales", &scales);
            }
        }
        debug
            .field("loss", &self.loss)
            .field("rows", &self.rows)
            .field("loss_rows", &self.loss_rows)
            .field("weight_scale", &self.weight_scale)
            .field("params", &self.params)
            .field("inputs", &self.inputs)
            .field("targets", &self.targets)
            .finish()
    }
}

/// The sizes and kinds of a network, drawn before its numbers.
#[derive(Clone, Debug)]
struct Shape {
    widths: Vec<usize>,
    activations: Vec<Activation>,
    loss: Loss,
    rows: usize,
    weight_scale: f64,
}

fn shapes(config: &NetworkConfig) -> impl Strategy<Value = Shape> {
    let activations = config.activations.clone();
    let losses = config.losses.clone();
    let width = config.width.clone();
    (
        config.depth.clone(),
        config.rows.clone(),
        config.weight_scale.clone(),
        proptest::sample::select(losses),
    )
        .prop_flat_map(move |(depth, rows, weight_scale, loss)| {
            let widths = proptest::collection::vec(width.clone(), depth + 1);
            let activations =
                proptest::collection::vec(proptest::sample::select(activations.clone()), depth);
            (widths, activations).prop_map(move |(mut widths, activations)| {
                if loss == Loss::CrossEntropy {
                    let last = widths.len() - 1;
                    widths[last] = widths[last].max(2);
                }
                Shape {
                    widths,
                    activations,
                    loss,
                    rows,
                    weight_scale,
                }
            })
        })
}

/// Random dense networks with their parameters, inputs (uniform in `[-1, 1]`) and
/// targets (uniform in `[-1, 1]`, or uniform classes), in f64; see the
/// [module docs](self).
pub fn networks(config: NetworkConfig) -> impl Strategy<Value = RandomNetwork> {
    let margin = config.relu_margin;
    let strategy = shapes(&config).prop_flat_map(|shape| {
        let parameter_len: usize = shape.widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
        let outputs = *shape.widths.last().unwrap_or(&1);
        let unit = || -1.0..=1.0_f64;
        let params = proptest::collection::vec(unit(), parameter_len);
        let inputs = proptest::collection::vec(unit(), shape.rows * shape.widths[0]);
        let targets = if shape.loss == Loss::CrossEntropy {
            proptest::collection::vec(0..outputs, shape.rows)
                .prop_map(RandomTargets::Classes)
                .boxed()
        } else {
            proptest::collection::vec(unit(), shape.rows * outputs)
                .prop_map(RandomTargets::Values)
                .boxed()
        };
        (Just(shape), params, inputs, targets)
            .prop_map(|(shape, raw, inputs, targets)| build(shape, &raw, inputs, targets))
    });
    strategy.prop_filter(
        "a ReLU pre-activation is too close to 0",
        move |net| match margin {
            None => true,
            Some(margin) => net.relu_margin() >= margin,
        },
    )
}

/// [`networks`] with the defaults: depth 1 to 8, widths 1 to 32, every activation and loss.
pub fn any_network() -> impl Strategy<Value = RandomNetwork> {
    networks(NetworkConfig::default())
}

/// [`networks`] with smooth activations only.
pub fn smooth_network() -> impl Strategy<Value = RandomNetwork> {
    networks(NetworkConfig::smooth())
}

/// Scales raw uniform numbers in `[-1, 1]` into weights and biases.
fn build(
    shape: Shape,
    raw: &[f64],
    inputs: Vec<f64>,
    targets: RandomTargets<f64>,
) -> RandomNetwork {
    let mut params = Vec::with_capacity(raw.len());
    let mut offset = 0;
    for pair in shape.widths.windows(2) {
        let (inputs, outputs) = (pair[0], pair[1]);
        // Uniform on [-a, a] has variance a^2 / 3: a = s sqrt(3 / fan_in).
        let weight_bound = shape.weight_scale * libm::sqrt(3.0 / inputs as f64);
        params.extend(
            raw[offset..offset + inputs * outputs]
                .iter()
                .map(|u| u * weight_bound),
        );
        offset += inputs * outputs;
        let bias_bound = shape.weight_scale / 2.0;
        params.extend(raw[offset..offset + outputs].iter().map(|u| u * bias_bound));
        offset += outputs;
    }
    let mut net = RandomNetwork::from_parts(
        &shape.widths,
        &shape.activations,
        shape.loss,
        params,
        inputs,
        targets,
    );
    net.rows = shape.rows;
    net.weight_scale = shape.weight_scale;
    net
}

/// Random small convolutional networks (every activation, max and average pooling),
/// drawn as a seed that [`random_cnn`] turns into the network.
///
/// ```
/// use pcnet_core::strategies::cnns;
/// use proptest::{strategy::{Strategy, ValueTree}, test_runner::TestRunner};
/// let net = cnns().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// assert!(net.spec().validate().is_ok());
/// ```
pub fn cnns() -> impl Strategy<Value = RandomNetwork> {
    any::<u64>().prop_map(|seed| random_cnn(seed, false))
}

/// [`cnns`] with smooth activations and average pooling only, so that Strict PC's energy
/// has a continuous gradient.
pub fn smooth_cnns() -> impl Strategy<Value = RandomNetwork> {
    any::<u64>().prop_map(|seed| random_cnn(seed, true))
}

/// splitmix64: a seed to a stream of uniform numbers.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn pick(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// Uniform in `[-1, 1]`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A conv op that fits `image`, drawn from `stream`.
fn draw_conv(stream: &mut Stream, image: ImageShape) -> Conv2d {
    loop {
        let kernel = [stream.pick(1, 3), stream.pick(1, 3)];
        let conv = Conv2d::new(image, stream.pick(1, 3), kernel)
            .with_stride([stream.pick(1, 2), stream.pick(1, 2)])
            .with_padding([stream.pick(0, 1), stream.pick(0, 1)]);
        if !conv.output_shape().is_empty() {
            return conv;
        }
    }
}

/// The small CNN that `seed` fixes, as Torch2PC users build them: one or two op-chain
/// layers [conv2d (1-3 channels, kernels 1-3, strides 1-2, padding 0-1), activation,
/// optionally a 2x2 max or average pool (stride 1-2), optionally flatten] on 1-2 channel
/// images of 4x4 to 8x8, then one or two dense layers (flatten first; the last has
/// identity activation and 2-5 outputs), MSE or cross-entropy, 1-3 rows. Weights are
/// uniform with variance `1 / fan_in`, biases, inputs and value targets uniform in
/// `[-0.5, 0.5]`, `[-1, 1]` and `[-1, 1]`. With `smooth`, activations are identity, tanh,
/// sigmoid or softplus and pools are averages. The same seed gives the same network on
/// every machine (integer arithmetic and exactly rounded scaling only), so a printed seed
/// rebuilds a failing case.
pub fn random_cnn(seed: u64, smooth: bool) -> RandomNetwork {
    let mut stream = Stream(seed);
    let activations: &[Activation] = if smooth {
        &SMOOTH_ACTIVATIONS
    } else {
        &[
            Activation::Identity,
            Activation::Relu,
            Activation::LEAKY_RELU,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softplus,
        ]
    };
    let activation = |stream: &mut Stream| activations[stream.pick(0, activations.len() - 1)];
    let mut image = ImageShape::new(stream.pick(1, 2), stream.pick(4, 8), stream.pick(4, 8));
    let input_len = image.len();
    let mut layers = Vec::new();
    let conv_layers = stream.pick(1, 2);
    for c in 0..conv_layers {
        let conv = draw_conv(&mut stream, image);
        let mut ops = std::vec![Op::Conv2d(conv), Op::Activation(activation(&mut stream))];
        image = conv.output_shape();
        // Pool when a 2x2 window fits: none, max or average (average only when smooth).
        let pool_kind = if smooth {
            stream.pick(0, 1) * 2
        } else {
            stream.pick(0, 2)
        };
        if pool_kind > 0 && image.height >= 2 && image.width >= 2 {
            let pool =
                Pool2d::new(image, [2, 2]).with_stride([stream.pick(1, 2), stream.pick(1, 2)]);
            ops.push(if pool_kind == 1 {
                Op::MaxPool2d(pool)
            } else {
                Op::AvgPool2d(pool)
            });
            image = pool.output_shape();
        }
        if c + 1 == conv_layers && stream.pick(0, 1) == 1 {
            ops.push(Op::Flatten);
        }
        layers.push(Layer::from_ops(&ops).expect("at most four ops"));
    }
    let mut width = image.len();
    let dense_layers = stream.pick(1, 2);
    let loss = if stream.pick(0, 1) == 0 {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    for d in 0..dense_layers {
        let last = d + 1 == dense_layers;
        let outputs = if last {
            stream.pick(2, 5)
        } else {
            stream.pick(2, 8)
        };
        let mut ops = Vec::new();
        if d == 0 {
            ops.push(Op::Flatten);
        }
        ops.push(Op::Linear {
            inputs: width,
            outputs,
        });
        ops.push(Op::Activation(if last {
            Activation::Identity
        } else {
            activation(&mut stream)
        }));
        layers.push(Layer::from_ops(&ops).expect("at most three ops"));
        width = outputs;
    }
    let rows = stream.pick(1, 3);
    // Weights uniform with variance 1 / fan_in, biases in [-0.5, 0.5].
    let mut params = Vec::new();
    for layer in &layers {
        for op in layer.ops() {
            let (fan_in, weights, biases) = match *op {
                Op::Conv2d(conv) => (conv.filter_len(), conv.weight_len(), conv.out_channels),
                Op::Linear { inputs, outputs } => (inputs, inputs * outputs, outputs),
                _ => continue,
            };
            let bound = libm::sqrt(3.0 / fan_in as f64);
            params.extend((0..weights).map(|_| bound * stream.unit()));
            params.extend((0..biases).map(|_| 0.5 * stream.unit()));
        }
    }
    let inputs = (0..rows * input_len).map(|_| stream.unit()).collect();
    let values: Vec<f64> = (0..rows * width).map(|_| stream.unit()).collect();
    let classes: Vec<usize> = (0..rows).map(|_| stream.pick(0, width - 1)).collect();
    RandomNetwork {
        layers,
        loss,
        params,
        rows,
        inputs,
        targets: match loss {
            Loss::CrossEntropy => RandomTargets::Classes(classes),
            _ => RandomTargets::Values(values),
        },
        weight_scale: 1.0,
        loss_rows: None,
    }
}

/// Random residual networks ([`random_residual`]), each fixed by a drawn seed.
///
/// ```
/// use pcnet_core::strategies::residual_networks;
/// use proptest::{strategy::{Strategy, ValueTree}, test_runner::TestRunner};
/// let net = residual_networks().new_tree(&mut TestRunner::deterministic()).unwrap().current();
/// assert!(net.spec().validate().is_ok());
/// assert!(net.layers.iter().any(|layer| layer.residual_scale().is_some()));
/// ```
#[cfg(feature = "residual")]
pub fn residual_networks() -> impl Strategy<Value = RandomNetwork> {
    any::<u64>().prop_map(|seed| random_residual(seed, false))
}

/// [`residual_networks`] with smooth activations only (identity, tanh, sigmoid,
/// softplus), so that Strict PC's energy has a continuous gradient.
#[cfg(feature = "residual")]
pub fn smooth_residual_networks() -> impl Strategy<Value = RandomNetwork> {
    any::<u64>().prop_map(|seed| random_residual(seed, true))
}

/// The small residual network that `seed` fixes: an optional dense stem (input width 1-5
/// to the residual width `N` in 2-8, drawn activation; without it the input has width
/// `N`), 1 to 4 residual layers `v + alpha g(v)` with `g` one of `[Linear N->N]`,
/// `[Linear N->H, act, Linear H->N]`, `[Linear N->H, act, Linear H->N, act]` (`H` in 1-8)
/// or `[act]` (not as the first layer), and `alpha` one of 1, `1/sqrt(blocks)` or uniform in `[-1.5, 1.5]`; then a
/// dense identity head to 1-4 outputs (2-4 for cross-entropy), optional for the squared
/// errors (the last residual layer is then the output). MSE, summed MSE or cross-entropy,
/// 1-4 rows. Weights uniform with variance `1 / fan_in`, biases, inputs and value targets
/// uniform in `[-0.5, 0.5]`, `[-1, 1]` and `[-1, 1]`. With `smooth` the activations are
/// identity, tanh, sigmoid or softplus; otherwise ReLU and leaky ReLU (0.01) too. The same
/// seed gives the same network on every machine (integer arithmetic and exactly rounded
/// scaling only, `sqrt` correctly rounded).
///
/// ```
/// use pcnet_core::strategies::random_residual;
/// let net = random_residual(7, true);
/// assert!(net.spec().validate().is_ok());
/// assert_eq!(net, random_residual(7, true));
/// ```
#[cfg(feature = "residual")]
pub fn random_residual(seed: u64, smooth: bool) -> RandomNetwork {
    let mut stream = Stream(seed);
    let activations: &[Activation] = if smooth {
        &SMOOTH_ACTIVATIONS
    } else {
        &[
            Activation::Identity,
            Activation::Relu,
            Activation::LEAKY_RELU,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softplus,
        ]
    };
    let activation = |stream: &mut Stream| activations[stream.pick(0, activations.len() - 1)];
    let width = stream.pick(2, 8);
    let loss = [Loss::Mse, Loss::MseSum, Loss::CrossEntropy][stream.pick(0, 2)];
    let mut layers = Vec::new();
    let input_len = if stream.pick(0, 1) == 1 {
        let inputs = stream.pick(1, 5);
        layers.push(Layer::dense(inputs, width, activation(&mut stream)));
        inputs
    } else {
        width
    };
    let blocks = stream.pick(1, 4);
    for _ in 0..blocks {
        let alpha = match stream.pick(0, 2) {
            0 => 1.0,
            1 => 1.0 / libm::sqrt(blocks as f64),
            _ => 1.5 * stream.unit(),
        };
        let hidden = stream.pick(1, 8);
        let down = Op::Linear {
            inputs: width,
            outputs: hidden,
        };
        let up = Op::Linear {
            inputs: hidden,
            outputs: width,
        };
        // A network's input width is its first op's: an activation-only branch
        // never comes first.
        let kind = stream.pick(0, 3);
        let kind = if layers.is_empty() && kind == 3 {
            0
        } else {
            kind
        };
        let branch = match kind {
            0 => std::vec![Op::Linear {
                inputs: width,
                outputs: width
            }],
            1 => std::vec![down, Op::Activation(activation(&mut stream)), up],
            2 => {
                let inner = activation(&mut stream);
                std::vec![
                    down,
                    Op::Activation(inner),
                    up,
                    Op::Activation(activation(&mut stream))
                ]
            }
            _ => std::vec![Op::Activation(activation(&mut stream))],
        };
        layers.push(Layer::residual(&branch, alpha).expect("one to four ops"));
    }
    let mut outputs = width;
    if loss == Loss::CrossEntropy || stream.pick(0, 1) == 1 {
        outputs = stream.pick(if loss == Loss::CrossEntropy { 2 } else { 1 }, 4);
        layers.push(Layer::dense(width, outputs, Activation::Identity));
    }
    let rows = stream.pick(1, 4);
    let mut params = Vec::new();
    for layer in &layers {
        for op in layer.ops() {
            if let Op::Linear { inputs, outputs } = *op {
                let bound = libm::sqrt(3.0 / inputs as f64);
                params.extend((0..inputs * outputs).map(|_| bound * stream.unit()));
                params.extend((0..outputs).map(|_| 0.5 * stream.unit()));
            }
        }
    }
    let inputs = (0..rows * input_len).map(|_| stream.unit()).collect();
    let values: Vec<f64> = (0..rows * outputs).map(|_| stream.unit()).collect();
    let classes: Vec<usize> = (0..rows).map(|_| stream.pick(0, outputs - 1)).collect();
    RandomNetwork {
        layers,
        loss,
        params,
        rows,
        inputs,
        targets: match loss {
            Loss::CrossEntropy => RandomTargets::Classes(classes),
            _ => RandomTargets::Values(values),
        },
        weight_scale: 1.0,
        loss_rows: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn drawn_cnns_are_valid_and_fixed_by_their_seed() {
        for seed in 0..200_u64 {
            for smooth in [false, true] {
                let net = random_cnn(seed, smooth);
                let spec = net.spec();
                assert!(
                    spec.validate().is_ok(),
                    "seed {seed}: {:?}",
                    spec.validate()
                );
                assert_eq!(spec.parameter_len(), net.params.len(), "seed {seed}");
                assert_eq!(net.inputs.len(), net.rows * spec.width(0), "seed {seed}");
                assert!(
                    matches!(net.layers[0].ops()[0], Op::Conv2d(_)),
                    "seed {seed}"
                );
                if smooth {
                    for op in net.layers.iter().flat_map(|layer| layer.ops()) {
                        match op {
                            Op::Activation(a) => assert!(a.is_smooth(), "seed {seed}"),
                            Op::MaxPool2d(_) => panic!("seed {seed}: max pool in a smooth CNN"),
                            _ => {}
                        }
                    }
                }
                assert_eq!(
                    random_cnn(seed, smooth),
                    net,
                    "seed {seed}: not reproducible"
                );
            }
        }
    }

    #[cfg(feature = "residual")]
    #[test]
    fn drawn_residual_networks_are_valid_and_fixed_by_their_seed() {
        for seed in 0..300_u64 {
            for smooth in [false, true] {
                let net = random_residual(seed, smooth);
                let spec = net.spec();
                assert!(
                    spec.validate().is_ok(),
                    "seed {seed}: {:?}",
                    spec.validate()
                );
                assert_eq!(spec.parameter_len(), net.params.len(), "seed {seed}");
                assert_eq!(net.inputs.len(), net.rows * spec.width(0), "seed {seed}");
                assert!(net
                    .target_view()
                    .check(net.loss, net.rows, spec.output_len())
                    .is_ok());
                let residual = net.layers.iter().filter(|l| l.residual_scale().is_some());
                assert!((1..=4).contains(&residual.count()), "seed {seed}");
                if smooth {
                    for op in net.layers.iter().flat_map(|layer| layer.ops()) {
                        if let Op::Activation(a) = op {
                            assert!(a.is_smooth(), "seed {seed}");
                        }
                    }
                }
                assert_eq!(random_residual(seed, smooth), net, "seed {seed}");
            }
        }
    }

    #[test]
    fn drawn_networks_are_valid_and_in_range() {
        let mut runner = TestRunner::deterministic();
        let strategy = any_network();
        for _ in 0..64 {
            let net = strategy.new_tree(&mut runner).unwrap().current();
            let spec = net.spec();
            assert!(spec.validate().is_ok(), "{net:?}");
            assert!((1..=8).contains(&net.depth()));
            assert!(net.widths().iter().all(|w| (1..=32).contains(w)));
            assert!((1..=8).contains(&net.rows));
            assert_eq!(net.params.len(), spec.parameter_len());
            assert!(spec.check_parameters(&net.params).is_ok());
            assert!(net
                .target_view()
                .check(net.loss, net.rows, spec.output_len())
                .is_ok());
        }
    }

    #[test]
    fn the_margin_keeps_relu_units_off_the_kink() {
        let mut runner = TestRunner::deterministic();
        let strategy = networks(
            NetworkConfig::default()
                .with_activations(&[Activation::Relu])
                .with_relu_margin(1e-3),
        );
        for _ in 0..16 {
            let net = strategy.new_tree(&mut runner).unwrap().current();
            assert!(net.relu_margin() >= 1e-3);
        }
    }
}
