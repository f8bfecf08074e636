//! One relaxation of a random network, copied out of pcnet-core's workspace, with the
//! vector norms and layer slicing the theory suites compare it by; and the network
//! variants they derive (shrunk output errors, scaled losses).
//!
//! ```
//! use pcnet_core::strategies::{networks, NetworkConfig};
//! use pcnet_tests::relaxation::{close, exact, run};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let net = networks(NetworkConfig::default()).new_tree(&mut runner).unwrap().current();
//! let backprop = exact(&net);
//! let again = run(&net, &pcnet_core::Settings::exact()).unwrap();
//! assert!(close(&again.updates, &backprop.updates, 0.0));
//! ```

use pcnet_core::strategies::{RandomNetwork, RandomTargets};
use pcnet_core::{infer, Activation, Loss, PcError, Report, Scalar, Settings};

/// Everything one relaxation returns, copied out of the workspace.
#[derive(Clone, Debug)]
pub struct Run<T> {
    /// The feedforward values `vhat_0..vhat_L`, one vector per layer.
    pub feedforward: Vec<Vec<T>>,
    /// The beliefs `v_0..v_L` after the relaxation.
    pub beliefs: Vec<Vec<T>>,
    /// The prediction errors `epsilon_0..epsilon_L`.
    pub errors: Vec<Vec<T>>,
    /// The parameter updates, in the layout of the parameters.
    pub updates: Vec<T>,
    /// The relaxation's report (iterations, energy, stop reason).
    pub report: Report<T>,
    /// The step size the relaxation used.
    pub step_size: T,
}

/// Runs `settings` on `net` through [`pcnet_core::infer`] and copies every result out.
///
/// # Errors
/// What `infer` returns.
pub fn run<T: Scalar>(
    net: &RandomNetwork<T>,
    settings: &Settings<'_, T>,
) -> Result<Run<T>, PcError> {
    let spec = net.spec();
    let mut workspace = vec![T::zero(); spec.workspace_len(net.rows)];
    let mut updates = vec![T::zero(); spec.parameter_len()];
    let result = infer(
        &spec,
        &net.params,
        net.batch(),
        settings,
        &mut workspace,
        &mut updates,
    )?;
    let layers = 0..=net.depth();
    Ok(Run {
        feedforward: layers
            .clone()
            .map(|l| result.feedforward(l).to_vec())
            .collect(),
        beliefs: layers.clone().map(|l| result.beliefs(l).to_vec()).collect(),
        errors: layers.map(|l| result.errors(l).to_vec()).collect(),
        report: result.report(),
        step_size: result.step_size(),
        updates,
    })
}

/// Backprop (`Settings::exact()`) on `net`; panics if it fails (it cannot on a valid network).
pub fn exact(net: &RandomNetwork) -> Run<f64> {
    run(net, &Settings::exact()).expect("exact backprop runs on a valid network")
}

/// The Euclidean norm, in f64.
pub fn norm<T: Scalar>(values: &[T]) -> f64 {
    values
        .iter()
        .map(|&v| Scalar::to_f64(v).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The Euclidean distance `|a - b|`, in f64; panics when the lengths differ.
pub fn distance<T: Scalar, U: Scalar>(a: &[T], b: &[U]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (Scalar::to_f64(x) - Scalar::to_f64(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `|a - b| <= tolerance |b|`, and exact equality when `b` is zero.
pub fn close<T: Scalar, U: Scalar>(a: &[T], b: &[U], tolerance: f64) -> bool {
    distance(a, b) <= tolerance * norm(b)
}

/// The parameters of layer `l` (1-based) in the flat slice.
pub fn layer_params<'a, T>(net: &RandomNetwork, l: usize, all: &'a [T]) -> &'a [T] {
    let start = net.spec().parameter_offset(l);
    &all[start..start + net.layers[l - 1].parameter_len()]
}

/// `factor` times every value.
pub fn scaled(values: &[f64], factor: f64) -> Vec<f64> {
    values.iter().map(|v| v * factor).collect()
}

/// The hidden beliefs `v_1..v_{L-1}` of a run, concatenated (the layout of initial beliefs).
pub fn hidden(values: &[Vec<f64>]) -> Vec<f64> {
    values[1..values.len() - 1].concat()
}

/// The targets `y = vhat_L - gamma (vhat_L - t)` for MSE networks: the output error is
/// scaled by `gamma` relative to the drawn targets `t`.
pub fn shrink_output_error(net: &RandomNetwork, gamma: f64) -> RandomNetwork {
    let output = exact(net).feedforward[net.depth()].clone();
    let RandomTargets::Values(targets) = &net.targets else {
        panic!("shrink_output_error needs value targets");
    };
    let shrunk = output
        .iter()
        .zip(targets)
        .map(|(y, t)| y - gamma * (y - t))
        .collect();
    RandomNetwork {
        targets: RandomTargets::Values(shrunk),
        ..net.clone()
    }
}

/// The same network with its loss scaled by `1 / factor`: the mean losses average over
/// `factor` times the rows (`Batch::loss_rows`); summed MSE gets its output error scaled
/// through the targets instead (its curvature stays, which is harmless where only the
/// size of the errors matters).
pub fn small_errors(net: &RandomNetwork, factor: usize) -> RandomNetwork {
    match net.loss {
        Loss::MseSum => shrink_output_error(net, 1.0 / factor as f64),
        _ => RandomNetwork {
            loss_rows: Some(net.rows * factor),
            ..net.clone()
        },
    }
}

/// Every activation whose derivative is nowhere zero.
pub const NO_DEAD_UNITS: [Activation; 6] = [
    Activation::Identity,
    Activation::LEAKY_RELU,
    Activation::LeakyRelu { slope: 0.2 },
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
];

/// The two MSE losses (mean and summed).
pub fn mse_losses() -> [Loss; 2] {
    [Loss::Mse, Loss::MseSum]
}
