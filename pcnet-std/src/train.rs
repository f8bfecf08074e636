//! Training loop: epochs over seeded, shuffled minibatches with any algorithm and any
//! optimizer, per-epoch loss and accuracy, and the paper's per-layer comparison of PC's
//! updates with backprop's.
//!
//! # Example
//! ```
//! use pcnet_core::{Activation, Adam, Loss, Settings};
//! use pcnet_std::{data, network::Network, train::{train, TrainConfig}};
//!
//! // The bundled 8x8 digits, split 1,500 / 297; a 64-32-16-10 ReLU MLP from seed 0.
//! let (train_set, test_set) = data::digits_split::<f32>()?;
//! let mut net = Network::<f32>::mlp("64-32-16-10", Activation::Relu, Loss::CrossEntropy, 0)?;
//!
//! // FixedPred (eta 0.1, n 20), Adam, 3 epochs of 100-sample minibatches, comparing every
//! // step's updates with backprop's.
//! let config = TrainConfig::new(Settings::fixed_pred(0.1, 20), 3, 100)
//!     .with_seed(1)
//!     .with_diagnostics(true);
//! let history = train(&mut net, Adam::new(0.01), &train_set, Some(&test_set), &config)
//!     .map_err(|stopped| stopped.error)?;
//! let last = history.epochs.last().unwrap();
//! assert!(last.test_accuracy.unwrap() > 0.5);
//! // Layer 1 of L = 3: relative error P[Binomial(19, 0.1) < 2] = 0.420 at every step.
//! assert!((history.steps[0].layers[0].relative_error - 0.420).abs() < 1e-3);
//!
//! // Weights as nalgebra matrices (out x in) and as a PyTorch state_dict in safetensors.
//! assert_eq!(net.weight(1)?.shape(), (32, 64));
//! let bytes = net.to_safetensors()?; // tensors "0.0.weight", "0.0.bias", "1.0.weight", ...
//! let mut copy = Network::<f32>::mlp("64-32-16-10", Activation::Relu, Loss::CrossEntropy, 9)?;
//! copy.load_safetensors(&bytes, "in memory")?;
//! assert_eq!(copy, net);
//! # Ok::<(), pcnet_std::Error>(())
//! ```

use crate::batch::{BatchOutcome, BatchRunner, Par};
use crate::fast::Fast;
use crate::{data::Dataset, network::Network, rng::SplitMix64, Error};
use pcnet_core::{Algorithm, Batch, NetworkSpec, Optimizer, PcError, Scalar, Settings};
use std::fmt;
#[cfg(feature = "progress")]
use std::io::IsTerminal;

/// The one place pcnet-std runs relaxations: every caller (networks, training, evaluation,
/// the diagnostics) goes through it, so the engine behind it is a one-line choice.
///
/// It is [`BatchRunner`] on the [`Fast`] kernels: the batch is cut into fixed row blocks
/// relaxed in parallel and reduced in block order, so results do not depend on the
/// thread count. It keeps its buffers between calls.
#[derive(Debug)]
pub struct Relaxer<T: Scalar>
where
    Fast: crate::batch::RunnerBackend<T>,
{
    runner: BatchRunner<T, Fast>,
    par: Par,
}

impl<T: Scalar> Relaxer<T>
where
    Fast: crate::batch::RunnerBackend<T>,
{
    /// A relaxer using `par` threads.
    pub fn new(par: Par) -> Self {
        Relaxer {
            runner: BatchRunner::new(),
            par,
        }
    }

    /// Relaxes one batch: loss, parameter updates, outputs, report.
    ///
    /// # Errors
    /// Every error of [`BatchRunner::run`] (those of [`pcnet_core::infer`]).
    pub fn run<'r>(
        &'r mut self,
        spec: &NetworkSpec<'_>,
        parameters: &[T],
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
    ) -> Result<BatchOutcome<'r, T>, PcError> {
        self.runner.run(self.par, spec, parameters, batch, settings)
    }
}

/// How PC's update of one layer's weight compares with backprop's gradient (the paper's
/// metrics, computed for the first linear op of each layer, `model[l][0].weight`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerComparison {
    /// `|g_pc - g_bp| / |g_bp|` (0 when both are zero, infinite when only `g_bp` is).
    pub relative_error: f64,
    /// The angle between `g_pc` and `g_bp` in degrees; 90 when either is zero (as
    /// PyTorch's `cosine_similarity` gives 0 then).
    pub angle_degrees: f64,
}

/// Compares two parameter-update vectors layer by layer, on each layer's first linear
/// weight. Sums are taken in `f64`.
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_std::{network::Network, train::compare_updates};
/// let net = Network::<f64>::mlp("2-2-1", Activation::Tanh, Loss::Mse, 0)?;
/// let bp = vec![1.0; net.parameters().len()];
/// let half: Vec<f64> = bp.iter().map(|g| 0.5 * g).collect();
/// let layers = compare_updates(&net, &half, &bp);
/// assert_eq!(layers[0].relative_error, 0.5);
/// assert_eq!(layers[0].angle_degrees, 0.0);
/// # Ok::<(), pcnet_std::Error>(())
/// ```
#[must_use]
pub fn compare_updates<T: Scalar>(
    network: &Network<T>,
    pc: &[T],
    bp: &[T],
) -> Vec<LayerComparison> {
    (1..=network.depth())
        .map(|layer| match network.weight_op(layer) {
            Ok(at) => compare_slices(&pc[at.weight_range()], &bp[at.weight_range()]),
            Err(_) => LayerComparison {
                relative_error: f64::NAN,
                angle_degrees: f64::NAN,
            },
        })
        .collect()
}

fn compare_slices<T: Scalar>(pc: &[T], bp: &[T]) -> LayerComparison {
    let (mut diff, mut norm_pc, mut norm_bp, mut dot) = (0.0, 0.0, 0.0, 0.0);
    for (&a, &b) in pc.iter().zip(bp) {
        let (a, b) = (Scalar::to_f64(a), Scalar::to_f64(b));
        diff += (a - b) * (a - b);
        norm_pc += a * a;
        norm_bp += b * b;
        dot += a * b;
    }
    let relative_error = if norm_bp > 0.0 {
        (diff / norm_bp).sqrt()
    } else if diff == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let denominator = norm_pc.sqrt() * norm_bp.sqrt();
    let cosine = if denominator > 0.0 {
        (dot / denominator).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    LayerComparison {
        relative_error,
        angle_degrees: cosine.acos().to_degrees(),
    }
}

/// How to train.
#[derive(Clone, Copy, Debug)]
pub struct TrainConfig<T: 'static> {
    /// The relaxation run for every minibatch (its algorithm, step size, iterations).
    pub settings: Settings<'static, T>,
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per minibatch (the last minibatch of an epoch is dropped when smaller,
    /// as PyTorch's `drop_last`, so every step sees the same batch size).
    pub batch_size: usize,
    /// Seed of the minibatch order (reshuffled every epoch).
    pub seed: u64,
    /// Evaluate loss and accuracy on the whole training and test sets before training
    /// and after every epoch (off for timing runs).
    pub evaluate: bool,
    /// Compare every step's updates with backprop's on the same batch (costs one
    /// backprop pass per step; ignored when the algorithm is Exact).
    pub diagnostics: bool,
    /// Show a progress bar on standard error when it is a terminal (with the `progress`
    /// feature; without it nothing is shown).
    pub progress: bool,
    /// Threads for the relaxations (results are the same for any choice).
    pub par: Par,
}

impl<T: Scalar> TrainConfig<T> {
    /// `epochs` epochs of minibatches of `batch_size`, seed 0, evaluation on, diagnostics
    /// off, progress bar on, every available core.
    pub fn new(settings: Settings<'static, T>, epochs: usize, batch_size: usize) -> Self {
        TrainConfig {
            settings,
            epochs,
            batch_size,
            seed: 0,
            evaluate: true,
            diagnostics: false,
            progress: true,
            par: Par::Rayon(0),
        }
    }

    /// With the minibatch-order seed.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_seed(self, seed: u64) -> Self {
        TrainConfig { seed, ..self }
    }

    /// With or without per-step diagnostics.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_diagnostics(self, diagnostics: bool) -> Self {
        TrainConfig {
            diagnostics,
            ..self
        }
    }

    /// With or without per-epoch evaluation.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_evaluation(self, evaluate: bool) -> Self {
        TrainConfig { evaluate, ..self }
    }

    /// With this much parallelism (results do not depend on it).
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_par(self, par: Par) -> Self {
        TrainConfig { par, ..self }
    }

    /// With or without a progress bar.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn with_progress(self, progress: bool) -> Self {
        TrainConfig { progress, ..self }
    }
}

/// Loss and accuracy after an epoch (epoch 0: before training).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epochs completed.
    pub epoch: usize,
    /// Mean of the minibatch losses of the epoch, each before its update (`None` for
    /// epoch 0).
    pub mean_batch_loss: Option<f64>,
    /// Loss on the whole training set after the epoch (when evaluating).
    pub train_loss: Option<f64>,
    /// Accuracy on the whole training set after the epoch (when evaluating).
    pub train_accuracy: Option<f64>,
    /// Loss on the test set after the epoch (when evaluating with a test set).
    pub test_loss: Option<f64>,
    /// Accuracy on the test set after the epoch (when evaluating with a test set).
    pub test_accuracy: Option<f64>,
}

/// One training step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// 1-based step number over the whole run.
    pub step: usize,
    /// 1-based epoch.
    pub epoch: usize,
    /// The minibatch loss before the update.
    pub batch_loss: f64,
    /// Per layer, PC's update against backprop's gradient (empty without diagnostics).
    pub layers: Vec<LayerComparison>,
}

/// What a training run recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One record before training and one after every completed epoch.
    pub epochs: Vec<EpochRecord>,
    /// One record per completed step.
    pub steps: Vec<StepRecord>,
}

/// Training stopped early: the error, where it happened, and what was recorded until
/// then. The network keeps the parameters of the last completed step.
#[derive(Debug)]
pub struct Stopped {
    /// 1-based epoch of the failed step.
    pub epoch: usize,
    /// 1-based step number of the failed step.
    pub step: usize,
    /// What went wrong.
    pub error: Error,
    /// Everything recorded before the failure.
    pub history: History,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "training stopped at epoch {}, step {}: {}; the network keeps the parameters after step {}",
            self.epoch,
            self.step,
            self.error,
            self.step.saturating_sub(1)
        )
    }
}

/// `source()` is `None`: the message already includes the error's text (the convention
/// of [`Error`]); the error itself is the field `error`.
impl std::error::Error for Stopped {}

/// How a network does on a data set: what [`evaluate`] returns.
///
/// ```
/// use pcnet_core::{Activation, Loss};
/// use pcnet_std::{data::Dataset, network::Network, train::evaluate};
///
/// let net = Network::<f64>::mlp("2-4-2", Activation::Tanh, Loss::CrossEntropy, 1)?;
/// let data = Dataset::new(vec![0.5, -0.5, 1.0, 0.0, -1.0, 0.25], vec![0, 1, 1], 2, 2)?;
/// let evaluation = evaluate(&net, &data)?;
/// assert!(evaluation.loss.is_finite() && evaluation.loss >= 0.0);
/// assert!((0.0..=1.0).contains(&evaluation.accuracy));
/// // The accuracy is the share of rows whose predicted class is the label.
/// let right = net
///     .predict_classes(data.inputs())?
///     .iter()
///     .zip(data.labels())
///     .filter(|(predicted, label)| predicted == label)
///     .count();
/// assert_eq!(evaluation.accuracy, right as f64 / 3.0);
/// # Ok::<(), pcnet_std::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The network's loss, the mean over all rows (as its [`pcnet_core::Loss`] reduces).
    pub loss: f64,
    /// The share of rows, in `[0, 1]`, whose largest output is at the label (ties go to
    /// the first maximum).
    pub accuracy: f64,
}

/// Loss (mean over all rows) and accuracy of `network` on a whole data set.
///
/// # Errors
/// [`Error::Format`] when the data do not fit the network; the engine's errors.
pub fn evaluate<T: Scalar>(network: &Network<T>, data: &Dataset<T>) -> Result<Evaluation, Error>
where
    Fast: crate::batch::RunnerBackend<T>,
{
    evaluate_with(&mut Relaxer::new(Par::Rayon(0)), network, data)
}

/// As [`evaluate`], reusing a [`Relaxer`]'s buffers.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with<T: Scalar>(
    relaxer: &mut Relaxer<T>,
    network: &Network<T>,
    data: &Dataset<T>,
) -> Result<Evaluation, Error>
where
    Fast: crate::batch::RunnerBackend<T>,
{
    if data.features() != network.input_len() || data.is_empty() {
        return Err(Error::format(
            "evaluation data",
            format!(
                "{} samples of {} features for a network of {} inputs",
                data.len(),
                data.features(),
                network.input_len()
            ),
        ));
    }
    let spec = network.spec();
    let targets = network.targets(data.labels())?;
    let outcome = relaxer.run(
        &spec,
        network.parameters(),
        Batch::new(data.inputs(), targets.as_targets()),
        &Settings::exact(),
    )?;
    let correct = count_correct(outcome.outputs(), network.output_len(), data.labels());
    Ok(Evaluation {
        loss: Scalar::to_f64(outcome.loss()),
        accuracy: correct as f64 / data.len() as f64,
    })
}

/// Number of rows whose largest output is at the label (ties go to the first maximum).
fn count_correct<T: Scalar>(output: &[T], outputs: usize, labels: &[usize]) -> usize {
    output
        .chunks_exact(outputs)
        .zip(labels)
        .filter(|(row, &label)| argmax(row) == label)
        .count()
}

/// Index of the largest value of `row` (ties go to the first maximum; 0 for an empty row).
pub(crate) fn argmax<T: Scalar>(row: &[T]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, T::neg_infinity()), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

#[cfg(feature = "progress")]
use indicatif::ProgressBar;

/// Without the `progress` feature: a bar that shows nothing.
#[cfg(not(feature = "progress"))]
struct ProgressBar;

#[cfg(not(feature = "progress"))]
impl ProgressBar {
    fn inc(&self, _steps: u64) {}
    fn set_message(&self, _message: String) {}
    fn finish_and_clear(&self) {}
}

#[cfg(not(feature = "progress"))]
fn progress_bar(_total: u64, _enabled: bool, _algorithm: Algorithm) -> ProgressBar {
    ProgressBar
}

#[cfg(feature = "progress")]
fn progress_bar(total: u64, enabled: bool, algorithm: Algorithm) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {pos}/{len} steps, {elapsed} ({eta} left) {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(algorithm.name());
    bar
}

/// Trains `network` with `optimizer` on `train_set`, evaluating on `test_set` when given.
///
/// Every epoch the training set is shuffled with a generator seeded from `config.seed`
/// and cut into minibatches of `config.batch_size` (a final partial batch is dropped).
/// Each step relaxes the minibatch with `config.settings`, then the optimizer applies the
/// updates. With `config.diagnostics`, each step also computes backprop's gradient on the
/// same batch at the same parameters and records [`compare_updates`].
///
/// # Errors
/// [`Stopped`] when a step fails (a diverged relaxation, a non-finite update or
/// parameter, data that do not fit the network): the network keeps the parameters of the
/// last completed step, and `Stopped::history` holds what was recorded.
pub fn train<T: Scalar, O: Optimizer<T>>(
    network: &mut Network<T>,
    mut optimizer: O,
    train_set: &Dataset<T>,
    test_set: Option<&Dataset<T>>,
    config: &TrainConfig<T>,
) -> Result<History, Stopped>
where
    Fast: crate::batch::RunnerBackend<T>,
{
    let mut history = History::default();
    let stop = |epoch, step, error: Error, history: &mut History| Stopped {
        epoch,
        step,
        error,
        history: std::mem::take(history),
    };
    if config.batch_size == 0 || train_set.len() < config.batch_size {
        let error = Error::format(
            "training data",
            format!(
                "{} samples cannot make a minibatch of {}",
                train_set.len(),
                config.batch_size
            ),
        );
        return Err(stop(1, 1, error, &mut history));
    }
    if let Err(error) = optimizer.validate() {
        return Err(stop(1, 1, error.into(), &mut history));
    }
    let parameter_len = network.parameters().len();
    let mut state = vec![T::zero(); O::state_len(parameter_len)];
    let mut relaxer = Relaxer::new(config.par);
    let mut evaluator = Relaxer::new(config.par);
    let mut updates = vec![T::zero(); parameter_len];
    let mut gradient = vec![T::zero(); parameter_len];
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let mut rng = SplitMix64::new(config.seed);
    let steps_per_epoch = train_set.len() / config.batch_size;
    let compare = config.diagnostics && config.settings.algorithm != Algorithm::Exact;
    let bar = progress_bar(
        (steps_per_epoch * config.epochs) as u64,
        config.progress,
        config.settings.algorithm,
    );

    let mut record_epoch = |network: &Network<T>,
                            epoch: usize,
                            mean_batch_loss: Option<f64>|
     -> Result<EpochRecord, Error> {
        let mut record = EpochRecord {
            epoch,
            mean_batch_loss,
            train_loss: None,
            train_accuracy: None,
            test_loss: None,
            test_accuracy: None,
        };
        if config.evaluate {
            let train = evaluate_with(&mut evaluator, network, train_set)?;
            record.train_loss = Some(train.loss);
            record.train_accuracy = Some(train.accuracy);
            if let Some(test) = test_set {
                let test = evaluate_with(&mut evaluator, network, test)?;
                record.test_loss = Some(test.loss);
                record.test_accuracy = Some(test.accuracy);
            }
        }
        Ok(record)
    };
    match record_epoch(network, 0, None) {
        Ok(record) => history.epochs.push(record),
        Err(error) => return Err(stop(1, 1, error, &mut history)),
    }

    let mut step = 0;
    for epoch in 1..=config.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        for chunk in order.chunks_exact(config.batch_size) {
            step += 1;
            train_set.gather_into(chunk, &mut inputs, &mut labels);
            let targets = match network.targets(&labels) {
                Ok(targets) => targets,
                Err(error) => return Err(stop(epoch, step, error.into(), &mut history)),
            };
            let batch = Batch::new(inputs.as_slice(), targets.as_targets());
            let spec = network.spec();
            let loss = match relaxer.run(&spec, network.parameters(), batch, &config.settings) {
                Ok(outcome) => {
                    updates.copy_from_slice(outcome.updates());
                    Scalar::to_f64(outcome.loss())
                }
                Err(error) => return Err(stop(epoch, step, error.into(), &mut history)),
            };
            let mut layers = Vec::new();
            if compare {
                match relaxer.run(&spec, network.parameters(), batch, &Settings::exact()) {
                    Ok(outcome) => gradient.copy_from_slice(outcome.updates()),
                    Err(error) => return Err(stop(epoch, step, error.into(), &mut history)),
                }
                layers = compare_updates(network, &updates, &gradient);
            }
            // All-or-nothing: a non-finite new value leaves parameters and state untouched.
            if let Err(error) = optimizer.step(network.parameters_mut(), &updates, &mut state) {
                return Err(stop(epoch, step, error.into(), &mut history));
            }
            loss_sum += loss;
            history.steps.push(StepRecord {
                step,
                epoch,
                batch_loss: loss,
                layers,
            });
            bar.inc(1);
        }
        match record_epoch(network, epoch, Some(loss_sum / steps_per_epoch as f64)) {
            Ok(record) => {
                if let Some(accuracy) = record.test_accuracy {
                    bar.set_message(format!("test accuracy {accuracy:.3}"));
                }
                history.epochs.push(record);
            }
            Err(error) => return Err(stop(epoch, step, error, &mut history)),
        }
    }
    bar.finish_and_clear();
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcnet_core::{Activation, Adam, Loss, Sgd};

    fn tiny_data() -> Dataset<f64> {
        // Two well separated classes in 2-D.
        let mut inputs = Vec::new();
        let mut labels = Vec::new();
        let mut rng = SplitMix64::new(4);
        for i in 0..64 {
            let class = i % 2;
            let centre = if class == 0 { -1.0 } else { 1.0 };
            inputs.push(centre + rng.uniform(-0.3, 0.3));
            inputs.push(-centre + rng.uniform(-0.3, 0.3));
            labels.push(class);
        }
        Dataset::new(inputs, labels, 2, 2).unwrap()
    }

    #[test]
    fn every_algorithm_learns_a_separable_problem() {
        let data = tiny_data();
        for settings in [
            Settings::exact(),
            Settings::fixed_pred(0.5, 10),
            Settings::strict(0.1, 20),
        ] {
            let mut net =
                Network::<f64>::mlp("2-8-8-2", Activation::Tanh, Loss::CrossEntropy, 1).unwrap();
            let config = TrainConfig::new(settings, 20, 16)
                .with_progress(false)
                .with_diagnostics(true);
            let history = train(&mut net, Adam::new(0.02), &data, Some(&data), &config).unwrap();
            assert_eq!(history.steps.len(), 20 * 4);
            let last = history.epochs.last().unwrap();
            assert_eq!(last.test_accuracy, Some(1.0), "{:?}", settings.algorithm);
            assert!(last.train_loss.unwrap() < history.epochs[0].train_loss.unwrap());
        }
    }

    #[test]
    fn same_seed_same_history_and_parameters() {
        let data = tiny_data();
        let run = |seed| {
            let mut net = Network::<f64>::mlp("2-4-2", Activation::Tanh, Loss::Mse, 3).unwrap();
            let config = TrainConfig::new(Settings::strict(0.1, 5), 3, 8)
                .with_seed(seed)
                .with_progress(false);
            let history = train(&mut net, Sgd::new(0.1), &data, None, &config).unwrap();
            (history, net)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1).1, run(2).1);
    }

    #[test]
    fn fixed_pred_relative_errors_are_the_binomial_constants() {
        // With eta = 0.1, n = 20, L = 3: rel error of layer l = P[Bin(19, 0.1) < L - l].
        let data = tiny_data();
        let mut net =
            Network::<f64>::mlp("2-6-6-2", Activation::Tanh, Loss::CrossEntropy, 2).unwrap();
        let config = TrainConfig::new(Settings::fixed_pred(0.1, 20), 1, 16)
            .with_progress(false)
            .with_diagnostics(true);
        let history = train(&mut net, Adam::new(0.01), &data, None, &config).unwrap();
        let below = |d: u32| -> f64 {
            (0..d)
                .map(|j| binomial(19, j) * 0.1f64.powi(j as i32) * 0.9f64.powi(19 - j as i32))
                .sum()
        };
        for step in &history.steps {
            for (l, layer) in step.layers.iter().enumerate() {
                let expected = below(3 - (l as u32 + 1));
                assert!(
                    (layer.relative_error - expected).abs() < 1e-10,
                    "{} vs {expected}",
                    layer.relative_error
                );
                assert!(layer.angle_degrees < 1e-4);
            }
        }
    }

    fn binomial(n: u32, k: u32) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
    }

    #[test]
    fn a_failing_step_stops_training_and_keeps_the_last_good_parameters() {
        let data = tiny_data();
        let mut net = Network::<f64>::mlp("2-4-2", Activation::Identity, Loss::Mse, 3).unwrap();
        // Steps of 1e300 times the gradient: the parameters, then the output, overflow
        // within a few steps.
        let config = TrainConfig::new(Settings::exact(), 5, 8).with_progress(false);
        let stopped = train(&mut net, Sgd::new(1e300), &data, None, &config).unwrap_err();
        assert_eq!(stopped.history.steps.len(), stopped.step - 1);
        assert!(stopped.to_string().contains("non-finite"), "{stopped}");
        assert!(net.parameters().iter().all(|p| p.is_finite()));
        // The kept parameters are those after the last completed step: replaying that
        // many steps of the same run gives them exactly.
        let mut replay = Network::<f64>::mlp("2-4-2", Activation::Identity, Loss::Mse, 3).unwrap();
        let mut sgd = Sgd::new(1e300);
        let mut state =
            vec![0.0; <Sgd<f64> as Optimizer<f64>>::state_len(replay.parameters().len())];
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = SplitMix64::new(0);
        let mut done = 0;
        'outer: for _ in 0..5 {
            rng.shuffle(&mut order);
            for chunk in order.chunks_exact(8) {
                if done == stopped.step - 1 {
                    break 'outer;
                }
                let batch = data.subset(chunk);
                let targets = replay.targets(batch.labels()).unwrap();
                let g = replay
                    .updates(batch.inputs(), targets.as_targets(), &Settings::exact())
                    .unwrap();
                sgd.step(replay.parameters_mut(), &g.updates, &mut state)
                    .unwrap();
                done += 1;
            }
        }
        assert_eq!(replay, net);
    }

    #[test]
    fn comparisons_follow_the_definitions() {
        let c = compare_slices(&[1.0_f64, 0.0], &[0.0, 1.0]);
        assert!((c.relative_error - 2f64.sqrt()).abs() < 1e-15);
        assert!((c.angle_degrees - 90.0).abs() < 1e-12);
        let zero = compare_slices(&[0.0_f64, 0.0], &[0.0, 2.0]);
        assert_eq!((zero.relative_error, zero.angle_degrees), (1.0, 90.0));
        let opposite = compare_slices(&[-1.0_f64], &[1.0]);
        assert_eq!(
            (opposite.relative_error, opposite.angle_degrees),
            (2.0, 180.0)
        );
    }
}
