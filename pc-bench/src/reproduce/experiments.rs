//! The runs behind each figure: training comparisons, error against iteration count, and
//! the runtime study. Everything here is deterministic given the seed, except the timings.

use crate::Error;
use pcnet_core::{safe_step_size, Adam, Algorithm, Batch, PcError, SafeStep, Scalar, Settings};
use pcnet_std::batch::Par;
use pcnet_std::data::Dataset;
use pcnet_std::fast::Fast;
use pcnet_std::network::Network;
use pcnet_std::train::{compare_updates, train, History, LayerComparison, Relaxer, TrainConfig};
use std::time::Instant;

/// A PC training run next to backprop from the same initial network and minibatches.
pub struct Comparison {
    /// The PC run, with per-step diagnostics.
    pub pc: History,
    /// The backprop run.
    pub bp: History,
}

/// How the training experiments run.
#[derive(Clone, Copy, Debug)]
pub struct TrainingPlan {
    /// Passes over the training set.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam's learning rate (the paper's 0.002).
    pub learning_rate: f64,
    /// Seed of the minibatch order.
    pub seed: u64,
}

/// One training run from a copy of `initial`.
pub fn train_one(
    initial: &Network<f64>,
    settings: Settings<'static, f64>,
    plan: &TrainingPlan,
    train_set: &Dataset<f64>,
    test_set: &Dataset<f64>,
    diagnostics: bool,
) -> Result<(History, Network<f64>), Error> {
    let mut network = initial.clone();
    let config = TrainConfig::new(settings, plan.epochs, plan.batch_size)
        .with_seed(plan.seed)
        .with_diagnostics(diagnostics);
    let history = train(
        &mut network,
        Adam::new(plan.learning_rate),
        train_set,
        Some(test_set),
        &config,
    )
    .map_err(|stopped| Error::Training {
        context: format!("{} training", settings.algorithm.name()),
        error: Box::new(stopped),
    })?;
    Ok((history, network))
}

/// A relaxation counts as diverged once some layer's update is this many times further
/// from the gradient than the gradient's own norm (the paper's Fig 2 shows errors past 100).
pub const DIVERGENCE_THRESHOLD: f64 = 10.0;

/// One step-size curve of the error-against-iterations experiments.
pub struct Curve {
    /// Step size.
    pub step_size: f64,
    /// Per iteration count `n`, the per-layer comparison with backprop.
    pub points: Vec<(usize, Vec<LayerComparison>)>,
    /// The first `n` whose relative error exceeds [`DIVERGENCE_THRESHOLD`] in some layer,
    /// or at which pcnet-core reported divergence.
    pub diverged_at: Option<usize>,
    /// The first `n` at which pcnet-core stopped the relaxation as diverged (its energy
    /// non-finite or past `divergence_ratio` times its start), and the iteration it named;
    /// the curve ends there.
    pub stopped_at: Option<(usize, usize)>,
}

/// The curvature pcnet-core measures for Strict on a batch: `(lambda_max, safe step size)`.
pub fn strict_safe_step<T: Scalar>(
    network: &Network<T>,
    inputs: &[T],
    labels: &[usize],
) -> Result<(f64, f64), PcError> {
    let spec = network.spec();
    let targets = network.targets(labels)?;
    let rows = labels.len();
    let mut workspace = vec![T::zero(); pcnet_core::stability::workspace_len(&spec, rows)];
    let curvature = safe_step_size(
        &spec,
        network.parameters(),
        Batch::new(inputs, targets.as_targets()),
        &SafeStep::default(),
        &mut workspace,
    )?;
    Ok((curvature.lambda_max.to_f64(), curvature.step_size.to_f64()))
}

/// For every step size and every `n` of `grid`, relaxes one batch with `algorithm` and
/// compares its updates with backprop's gradient on the same batch, layer by layer.
/// A relaxation that diverges ends its curve (recorded in `diverged_at`).
pub fn errors_against_iterations<T: Scalar>(
    network: &Network<T>,
    inputs: &[T],
    labels: &[usize],
    algorithm: Algorithm,
    step_sizes: &[f64],
    grid: &[usize],
) -> Result<Vec<Curve>, PcError>
where
    Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let mut relaxer = Relaxer::new(Par::Rayon(0));
    let targets = network.targets(labels)?;
    let gradient = network
        .updates_with(
            &mut relaxer,
            inputs,
            targets.as_targets(),
            &Settings::exact(),
        )?
        .updates;
    let mut curves = Vec::new();
    for &eta in step_sizes {
        let mut curve = Curve {
            step_size: eta,
            points: Vec::new(),
            diverged_at: None,
            stopped_at: None,
        };
        for &n in grid {
            let settings = Settings::for_algorithm(algorithm, T::from_f64(eta), n);
            match network.updates_with(&mut relaxer, inputs, targets.as_targets(), &settings) {
                Ok(result) => {
                    let layers = compare_updates(network, &result.updates, &gradient);
                    if curve.diverged_at.is_none()
                        && layers.iter().any(|c| {
                            c.relative_error.is_nan() || c.relative_error > DIVERGENCE_THRESHOLD
                        })
                    {
                        curve.diverged_at = Some(n);
                    }
                    curve.points.push((n, layers));
                }
                Err(PcError::Diverged { iteration }) if algorithm == Algorithm::Strict => {
                    curve.diverged_at = curve.diverged_at.or(Some(n));
                    curve.stopped_at = Some((n, iteration));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        curves.push(curve);
    }
    Ok(curves)
}

/// `P[Binomial(n - 1, eta) < depth - layer]`: FixedPred's exact relative error for layer
/// `layer` (Rosenbaum 2022, T2), summed term by term in f64.
pub fn binomial_relative_error(n: usize, eta: f64, depth: usize, layer: usize) -> f64 {
    let d = depth - layer;
    let trials = n.saturating_sub(1);
    let mut total = 0.0;
    let mut choose = 1.0; // C(trials, j)
    for j in 0..d.min(trials + 1) {
        if j > 0 {
            choose *= (trials - j + 1) as f64 / j as f64;
        }
        total += choose * eta.powi(j as i32) * (1.0 - eta).powi((trials - j) as i32);
    }
    if d > trials {
        1.0
    } else {
        total
    }
}

/// One row of the runtime study.
pub struct Timing {
    /// Algorithm name.
    pub label: String,
    /// Step size (NaN for backprop).
    pub step_size: f64,
    /// Iterations (0 for backprop).
    pub iterations: usize,
    /// Training steps taken.
    pub steps: usize,
    /// Wall time of the whole training loop, seconds (median over the repeats).
    pub seconds: f64,
    /// The fastest repeat, seconds.
    pub min_seconds: f64,
    /// Number of timed repeats.
    pub repeats: usize,
    /// Mean minibatch loss of the last epoch.
    pub final_loss: f64,
}

/// Trains a copy of `initial` with each setting, without evaluation or diagnostics, and
/// times the whole loop (minibatch assembly included, as the paper's timer did). Each
/// setting is timed `repeats` times, the settings interleaved (round after round), and the
/// median is reported, so a burst of load on the machine hits every algorithm alike.
pub fn runtime_study(
    initial: &Network<f64>,
    runs: &[(String, Settings<'static, f64>)],
    plan: &TrainingPlan,
    train_set: &Dataset<f64>,
    repeats: usize,
) -> Result<Vec<Timing>, Error> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    let mut results: Vec<(usize, f64)> = vec![(0, f64::NAN); runs.len()];
    for _ in 0..repeats.max(1) {
        for (index, (label, settings)) in runs.iter().enumerate() {
            let mut network = initial.clone();
            let config = TrainConfig::new(*settings, plan.epochs, plan.batch_size)
                .with_seed(plan.seed)
                .with_evaluation(false);
            let start = Instant::now();
            let history = train(
                &mut network,
                Adam::new(plan.learning_rate),
                train_set,
                None,
                &config,
            )
            .map_err(|stopped| Error::Training {
                context: format!("{label} timing run"),
                error: Box::new(stopped),
            })?;
            samples[index].push(start.elapsed().as_secs_f64());
            results[index] = (
                history.steps.len(),
                history
                    .epochs
                    .last()
                    .and_then(|e| e.mean_batch_loss)
                    .unwrap_or(f64::NAN),
            );
        }
    }
    Ok(runs
        .iter()
        .zip(samples)
        .zip(results)
        .map(|(((label, settings), mut seconds), (steps, final_loss))| {
            seconds.sort_by(f64::total_cmp);
            let exact = settings.algorithm == Algorithm::Exact;
            Timing {
                label: label.clone(),
                step_size: if exact { f64::NAN } else { settings.step_size },
                iterations: if exact { 0 } else { settings.iterations },
                steps,
                seconds: seconds[seconds.len() / 2],
                min_seconds: seconds[0],
                repeats: seconds.len(),
                final_loss,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_constants_match_the_paper() {
        // Rosenbaum 2022, Fig 3C: L = 5, eta = 0.1, n = 20 gives 0.885, 0.705, 0.420, 0.135, 0.
        let expected = [0.885, 0.705, 0.420, 0.135, 0.0];
        for (layer, e) in (1..=5).zip(expected) {
            assert!((binomial_relative_error(20, 0.1, 5, layer) - e).abs() < 5e-4);
        }
        // eta = 1: exact once n >= L - l + 1, else every error is still zero.
        assert_eq!(binomial_relative_error(4, 1.0, 5, 1), 1.0);
        assert_eq!(binomial_relative_error(5, 1.0, 5, 1), 0.0);
    }
}
