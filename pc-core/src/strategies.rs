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
//! **Smoothness.** ReLU and leaky ReLU have a kink at 0, where a finite difference or a
//! Taylor argument fails. Properties that need smoothness either draw from
//! [`NetworkConfig::smooth`] (identity, tanh, sigmoid, softplus only) or keep every
//! ReLU-type pre-activation of the feedforward pass at least a margin away from 0 with
//! [`NetworkConfig::with_relu_margin`] (networks that violate it are rejected, so proptest
//! draws another). The margin protects the feedforward point only; properties that move
//! far from it (Strict relaxation) use the smooth variant.
//!
//! # Example
#![cfg_attr(feature = "exact", doc = "```")]
#![cfg_attr(not(feature = "exact"), doc = "```ignore")]
//! use pc_core::strategies::{networks, NetworkConfig};
//! use pc_core::{infer, Settings};
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

use crate::{Activation, Batch, Layer, Loss, NetworkSpec, Scalar, Targets};

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
    pub fn with_depth(self, depth: RangeInclusive<usize>) -> Self {
        NetworkConfig { depth, ..self }
    }

    /// Widths in `width`.
    pub fn with_width(self, width: RangeInclusive<usize>) -> Self {
        NetworkConfig { width, ..self }
    }

    /// Batch sizes in `rows`.
    pub fn with_rows(self, rows: RangeInclusive<usize>) -> Self {
        NetworkConfig { rows, ..self }
    }

    /// Activations drawn from `activations`.
    pub fn with_activations(self, activations: &[Activation]) -> Self {
        NetworkConfig {
            activations: activations.to_vec(),
            ..self
        }
    }

    /// Losses drawn from `losses`.
    pub fn with_losses(self, losses: &[Loss]) -> Self {
        NetworkConfig {
            losses: losses.to_vec(),
            ..self
        }
    }

    /// Weight scales in `scale`.
    pub fn with_weight_scale(self, weight_scale: RangeInclusive<f64>) -> Self {
        NetworkConfig {
            weight_scale,
            ..self
        }
    }

    /// Keeps every ReLU-type pre-activation at least `margin` away from 0 at the
    /// feedforward pass (by rejection).
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

/// A random dense network with its parameters and one batch, all owned.
///
/// `Debug` prints the widths, activations, loss, batch size and every number in full
/// precision, so a shrunk failing case can be rebuilt with
/// [`from_parts`](Self::from_parts).
#[derive(Clone, PartialEq)]
pub struct RandomNetwork<T = f64> {
    /// The layers, dense.
    pub layers: Vec<Layer>,
    /// The loss.
    pub loss: Loss,
    /// Flat parameters in pc-core's layout.
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
    /// use pc_core::strategies::{RandomNetwork, RandomTargets};
    /// use pc_core::{Activation, Loss};
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

    /// The targets as pc-core takes them.
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
        f.debug_struct("RandomNetwork")
            .field("widths", &self.widths())
            .field("activations", &names)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

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
