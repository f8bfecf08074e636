//! The learning task of the pc firmware, shared by the firmware images and the host.
//!
//! A 16-32-32-4 tanh network learns a fixed nonlinear teacher (`y_k = (x_{4k} - x_{4k+1}) / 2 +
//! x_{4k+2} x_{4k+3}`) from 64 samples, in 4 batches of 16 per epoch, with SGD and
//! either FixedPred or Strict relaxation. Everything lives in one [`Buffers`] value whose
//! arrays are sized by pcnet-core's `const fn`s; nothing allocates. The firmware runs
//! [`train`] on the device, the host runs the very same function, and the two loss curves
//! are compared.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use pcnet_core;

use pcnet_core::model_bytes::{self, OptimizerKind};
use pcnet_core::{
    Activation, Algorithm, Batch, Layer, Learner, Loss, NetworkSpec, PcError, Settings, Sgd,
    Targets,
};

/// Input features per sample.
pub const INPUTS: usize = 16;
/// Outputs per sample.
pub const OUTPUTS: usize = 4;
/// The network: 16-32-32-4, tanh hidden layers, identity output.
pub const LAYERS: [Layer; 3] = [
    Layer::dense(INPUTS, 32, Activation::Tanh),
    Layer::dense(32, 32, Activation::Tanh),
    Layer::dense(32, OUTPUTS, Activation::Identity),
];
/// The network with its loss (mean squared error).
pub const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
/// Samples in the training set.
pub const SAMPLES: usize = 64;
/// Samples per learning step.
pub const ROWS: usize = 16;
/// Learning steps per epoch.
pub const BATCHES: usize = SAMPLES / ROWS;
/// Epochs of training.
pub const EPOCHS: usize = 30;
/// Number of parameters.
pub const PARAMETERS: usize = SPEC.parameter_len();
/// Workspace length for one batch.
pub const WORKSPACE: usize = SPEC.workspace_len(ROWS);
/// Bytes of the saved model (network, parameters, SGD with its state).
pub const MODEL_BYTES: usize = model_bytes::model_len::<f32>(&SPEC, OptimizerKind::Sgd);
/// SGD learning rate.
pub const LEARNING_RATE: f32 = 0.1;
/// SGD momentum.
pub const MOMENTUM: f32 = 0.9;
/// The final loss must be below this fraction of the first epoch's loss.
pub const LEARNED_RATIO: f32 = 0.2;
/// Relative tolerance between the device's and the host's loss per epoch. Both run the
/// same IEEE-754 binary32 operations in the same order (Rust never contracts `a * b + c`,
/// and `vmla.f32` rounds its product like a separate multiply), so the curves are expected
/// to agree bitwise; the tolerance only allows for a libm routine that differs by target.
pub const LOSS_TOLERANCE: f32 = 1e-4;

/// All memory the task uses: parameters, optimizer state, workspace, updates, the data set
/// and a "flash" region for the saved model.
pub struct Buffers {
    /// Network parameters.
    pub parameters: [f32; PARAMETERS],
    /// SGD momentum buffers.
    pub optimizer_state: [f32; PARAMETERS],
    /// Workspace of one learning step.
    pub workspace: [f32; WORKSPACE],
    /// Parameter updates of one learning step.
    pub updates: [f32; PARAMETERS],
    /// Training inputs, samples x [`INPUTS`].
    pub inputs: [f32; SAMPLES * INPUTS],
    /// Training targets, samples x [`OUTPUTS`].
    pub targets: [f32; SAMPLES * OUTPUTS],
    /// The saved model.
    pub flash: [u8; MODEL_BYTES],
    /// Parameters reloaded from `flash`.
    pub reloaded: [f32; PARAMETERS],
    /// SGD state reloaded from `flash`.
    pub reloaded_state: [f32; PARAMETERS],
}

impl Buffers {
    /// Zeroed buffers (a `const fn`, so they can be a `static`).
    pub const fn new() -> Buffers {
        Buffers {
            parameters: [0.0; PARAMETERS],
            optimizer_state: [0.0; PARAMETERS],
            workspace: [0.0; WORKSPACE],
            updates: [0.0; PARAMETERS],
            inputs: [0.0; SAMPLES * INPUTS],
            targets: [0.0; SAMPLES * OUTPUTS],
            flash: [0; MODEL_BYTES],
            reloaded: [0.0; PARAMETERS],
            reloaded_state: [0.0; PARAMETERS],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

/// A small linear congruential generator (Numerical Recipes constants): the same numbers
/// on every target.
struct Lcg(u32);

impl Lcg {
    /// Uniform in `[-1, 1)`, with 24 random bits (exact in `f32`).
    fn next_signed(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// Fills the data set and initialises the parameters (uniform in `+-1/sqrt(fan_in)`, as
/// `nn.Linear`; the bound is a power of two here for 16 and 32 inputs) and the optimizer state.
pub fn prepare(buffers: &mut Buffers) {
    let mut rng = Lcg(2022);
    for sample in 0..SAMPLES {
        let x = &mut buffers.inputs[sample * INPUTS..(sample + 1) * INPUTS];
        for value in x.iter_mut() {
            *value = rng.next_signed();
        }
        for k in 0..OUTPUTS {
            buffers.targets[sample * OUTPUTS + k] =
                0.5 * (x[4 * k] - x[4 * k + 1] + x[4 * k + 2] * x[4 * k + 3]);
        }
    }
    let mut offset = 0;
    for layer in &LAYERS {
        let fan_in = layer.ops()[0].required_input_len().unwrap_or(1);
        let bound = if fan_in <= 16 { 0.25 } else { 0.176_776_7 };
        let len = layer.parameter_len();
        for p in &mut buffers.parameters[offset..offset + len] {
            *p = bound * rng.next_signed();
        }
        offset += len;
    }
    buffers.optimizer_state = [0.0; PARAMETERS];
}

/// The relaxation algorithms this build trains with (cargo features `fixed-pred` and
/// `strict`, both by default), in the order the firmware runs them.
pub const ALGORITHMS: &[Algorithm] = &[
    #[cfg(feature = "fixed-pred")]
    Algorithm::FixedPred,
    #[cfg(feature = "strict")]
    Algorithm::Strict,
];

/// The algorithms whose single learning step the firmware measures: Exact (feature
/// `exact`, the reference) and [`ALGORITHMS`].
pub const MEASURED: &[Algorithm] = &[
    #[cfg(feature = "exact")]
    Algorithm::Exact,
    #[cfg(feature = "fixed-pred")]
    Algorithm::FixedPred,
    #[cfg(feature = "strict")]
    Algorithm::Strict,
];

const _: () = assert!(
    !ALGORITHMS.is_empty(),
    "enable the feature `fixed-pred` or `strict` (or both)"
);

/// Settings for the predictions of a trained network (the feedforward values): the first
/// of [`ALGORITHMS`] with no relaxation iterations, so that predicting links no other
/// algorithm's code.
pub fn prediction_settings() -> Settings<'static, f32> {
    Settings {
        iterations: 0,
        ..settings(ALGORITHMS[0])
    }
}

/// The relaxation of each algorithm: FixedPred with `eta = 0.5` and 8 iterations, Strict
/// with `eta = 0.2` and 20 iterations (Exact is backprop, for reference).
pub fn settings(algorithm: Algorithm) -> Settings<'static, f32> {
    match algorithm {
        Algorithm::FixedPred => Settings::fixed_pred(0.5, 8),
        // Strict, and Exact, which ignores the step size and the iterations.
        _ => Settings::for_algorithm(algorithm, 0.2, 20),
    }
}

/// The optimizer.
pub fn optimizer() -> Sgd<f32> {
    Sgd::new(LEARNING_RATE).with_momentum(MOMENTUM)
}

/// The batch of step `index` (0-based, within an epoch).
pub fn batch<'a>(inputs: &'a [f32], targets: &'a [f32], index: usize) -> Batch<'a, f32> {
    let rows = index * ROWS..(index + 1) * ROWS;
    Batch::new(
        &inputs[rows.start * INPUTS..rows.end * INPUTS],
        Targets::Values(&targets[rows.start * OUTPUTS..rows.end * OUTPUTS]),
    )
}

/// One learning step (relaxation, updates, SGD): returns the batch loss before the update.
/// Kept out of line so its code and stack can be measured on the device.
#[inline(never)]
pub fn learning_step(
    learner: &mut Learner<'_, '_, f32, Sgd<f32>>,
    batch: Batch<'_, f32>,
    settings: &Settings<'_, f32>,
    workspace: &mut [f32],
    updates: &mut [f32],
) -> Result<f32, PcError> {
    Ok(learner.step(batch, settings, workspace, updates)?.loss())
}

/// Multiply-adds of one backprop step on a batch of [`ROWS`]: the forward pass and the
/// weight gradients of every linear op, and the input gradients of all layers but the first
/// (the reference count for instructions per multiply-add).
pub const fn exact_step_macs() -> usize {
    let mut total = 0;
    let mut l = 0;
    while l < LAYERS.len() {
        if let pcnet_core::Op::Linear { inputs, outputs } = LAYERS[l].op_at(0) {
            let weights = ROWS * inputs * outputs;
            total += if l == 0 { 2 * weights } else { 3 * weights };
        }
        l += 1;
    }
    total
}

/// What one training run produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Mean batch loss of each epoch (losses before each step's update).
    pub losses: [f32; EPOCHS],
    /// Steps the optimizer took.
    pub steps: u64,
}

impl Outcome {
    /// Whether the network learned: the last epoch's loss is below [`LEARNED_RATIO`]
    /// times the first's.
    pub fn learned(&self) -> bool {
        self.losses[EPOCHS - 1] < LEARNED_RATIO * self.losses[0]
    }
}

/// Trains from [`prepare`]d buffers for [`EPOCHS`] epochs; `on_epoch(epoch, loss)` is
/// called after each epoch (the firmware prints there).
///
/// # Errors
/// Any error of the learning step.
pub fn train(
    buffers: &mut Buffers,
    algorithm: Algorithm,
    mut on_epoch: impl FnMut(usize, f32),
) -> Result<Outcome, PcError> {
    let settings = settings(algorithm);
    let Buffers {
        parameters,
        optimizer_state,
        workspace,
        updates,
        inputs,
        targets,
        ..
    } = buffers;
    let mut learner = Learner::new(SPEC, parameters, optimizer(), optimizer_state)?;
    let mut losses = [0.0; EPOCHS];
    for (epoch, epoch_loss) in losses.iter_mut().enumerate() {
        let mut sum = 0.0;
        for index in 0..BATCHES {
            let batch = batch(inputs, targets, index);
            sum += learning_step(&mut learner, batch, &settings, workspace, updates)?;
        }
        *epoch_loss = sum / BATCHES as f32;
        on_epoch(epoch, *epoch_loss);
    }
    let steps = pcnet_core::Optimizer::steps(learner.optimizer());
    Ok(Outcome { losses, steps })
}

/// Saves the trained model (network, parameters, SGD and its state) into `flash`, reloads
/// it into the `reloaded` buffers, and checks that the reloaded network predicts every
/// training sample bit for bit as the trained one, and that the optimizer came back whole.
/// Returns the number of model bytes.
///
/// # Errors
/// Any error of writing or reading the model; [`PcError::CorruptModel`] when the reloaded
/// model differs.
pub fn save_and_reload(buffers: &mut Buffers, steps: u64) -> Result<usize, PcError> {
    let mut sgd = optimizer();
    sgd.steps = steps;
    let written = model_bytes::write_model(
        &SPEC,
        &buffers.parameters,
        Some((&sgd, &buffers.optimizer_state)),
        &mut buffers.flash,
    )?;
    let mut layers = [Layer::dense(1, 1, Activation::Identity); 3];
    let spec = model_bytes::read_model(&buffers.flash, &mut layers, &mut buffers.reloaded)?;
    let reloaded_sgd = model_bytes::read_sgd(&buffers.flash, &mut buffers.reloaded_state)?;
    if spec != SPEC || reloaded_sgd != sgd || buffers.reloaded_state != buffers.optimizer_state {
        return Err(PcError::CorruptModel {
            reason: "reloaded network or optimizer differs",
        });
    }
    for index in 0..BATCHES {
        let batch = batch(&buffers.inputs, &buffers.targets, index);
        let predict = prediction_settings();
        let mut trained = [0.0f32; ROWS * OUTPUTS];
        let inference = pcnet_core::infer(
            &SPEC,
            &buffers.parameters,
            batch,
            &predict,
            &mut buffers.workspace,
            &mut buffers.updates,
        )?;
        trained.copy_from_slice(inference.feedforward(SPEC.depth()));
        let inference = pcnet_core::infer(
            &spec,
            &buffers.reloaded,
            batch,
            &predict,
            &mut buffers.workspace,
            &mut buffers.updates,
        )?;
        let same = inference
            .feedforward(spec.depth())
            .iter()
            .zip(trained.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(PcError::CorruptModel {
                reason: "reloaded model predicts differently",
            });
        }
    }
    Ok(written)
}

/// Whether two loss values agree within [`LOSS_TOLERANCE`] (relative).
pub fn agrees(device: f32, host: f32) -> bool {
    (device - host).abs() <= LOSS_TOLERANCE * host.abs()
}
