//! Unit tests of the relaxation schedule against independent derivations.

use super::*;
use crate::{Activation, Layer, Loss, Targets};
use std::{vec, vec::Vec};

/// A deterministic pseudo-random sequence in [-1, 1) (a 64-bit LCG; quality is irrelevant,
/// only reproducibility).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| self.next() * scale).collect()
    }
}

struct Fixture {
    layers: Vec<Layer>,
    loss: Loss,
    params: Vec<f64>,
    inputs: Vec<f64>,
    values: Vec<f64>,
    classes: Vec<usize>,
}

impl Fixture {
    fn new(
        widths: &[usize],
        activations: &[Activation],
        loss: Loss,
        rows: usize,
        seed: u64,
    ) -> Fixture {
        let layers: Vec<Layer> = widths
            .windows(2)
            .zip(activations)
            .map(|(w, &a)| Layer::dense(w[0], w[1], a))
            .collect();
        let mut seq = Sequence(seed);
        let spec = NetworkSpec::new(&layers, loss);
        let params = seq.vec(spec.parameter_len(), 0.8);
        let inputs = seq.vec(rows * widths[0], 1.0);
        let out = *widths.last().unwrap();
        let values = seq.vec(rows * out, 1.0);
        let classes = (0..rows).map(|r| (r * 7 + seed as usize) % out).collect();
        Fixture {
            layers,
            loss,
            params,
            inputs,
            values,
            classes,
        }
    }

    fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss)
    }

    fn rows(&self) -> usize {
        self.inputs.len() / self.spec().input_len()
    }

    fn targets(&self) -> Targets<'_, f64> {
        match self.loss {
            Loss::CrossEntropy => Targets::Classes(&self.classes),
            _ => Targets::Values(&self.values),
        }
    }

    /// Runs `settings`; returns updates and a copy of every layer's (vhat, beliefs, errors).
    fn run(&self, settings: &Settings<'_, f64>) -> Result<Run, PcError> {
        self.run_with(&self.params, &self.inputs, settings)
    }

    fn run_with(
        &self,
        params: &[f64],
        inputs: &[f64],
        settings: &Settings<'_, f64>,
    ) -> Result<Run, PcError> {
        self.run_over(params, inputs, settings, 0.0)
    }

    /// As `run_with`, on a workspace and updates buffer that hold `stale` beforehand.
    fn run_over(
        &self,
        params: &[f64],
        inputs: &[f64],
        settings: &Settings<'_, f64>,
        stale: f64,
    ) -> Result<Run, PcError> {
        let spec = self.spec();
        let rows = inputs.len() / spec.input_len();
        let mut workspace = vec![stale; spec.workspace_len(rows)];
        let mut updates = vec![stale; spec.parameter_len()];
        let targets = self.targets();
        let result = infer(
            &spec,
            params,
            Batch::new(inputs, targets),
            settings,
            &mut workspace,
            &mut updates,
        )?;
        Ok(Run {
            loss: result.loss(),
            report: result.report(),
            vhat: (0..=spec.depth())
                .map(|l| result.feedforward(l).to_vec())
                .collect(),
            beliefs: (0..=spec.depth())
                .map(|l| result.beliefs(l).to_vec())
                .collect(),
            errors: (0..=spec.depth())
                .map(|l| result.errors(l).to_vec())
                .collect(),
            updates,
        })
    }

    fn loss_at(&self, params: &[f64], inputs: &[f64]) -> f64 {
        self.run_with(params, inputs, &Settings::exact())
            .unwrap()
            .loss
    }
}

struct Run {
    loss: f64,
    report: Report<f64>,
    vhat: Vec<Vec<f64>>,
    beliefs: Vec<Vec<f64>>,
    errors: Vec<Vec<f64>>,
    updates: Vec<f64>,
}

fn max_relative(actual: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(1e-300);
    actual
        .iter()
        .zip(expected)
        .fold(0.0, |m, (a, e)| m.max((a - e).abs() / scale))
}

const SMOOTH: [Activation; 4] = [
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
    Activation::Identity,
];

fn fixtures() -> Vec<Fixture> {
    vec![
        Fixture::new(
            &[3, 5, 4, 2],
            &SMOOTH[..3]
                .to_vec()
                .into_iter()
                .chain([Activation::Identity])
                .collect::<Vec<_>>(),
            Loss::Mse,
            3,
            1,
        ),
        Fixture::new(
            &[4, 6, 6, 5, 3],
            &[
                Activation::Tanh,
                Activation::Softplus,
                Activation::Sigmoid,
                Activation::Identity,
            ],
            Loss::CrossEntropy,
            4,
            2,
        ),
        Fixture::new(
            &[2, 3, 1],
            &[Activation::Sigmoid, Activation::Tanh],
            Loss::MseSum,
            2,
            3,
        ),
        Fixture::new(&[5, 4], &[Activation::Softplus], Loss::CrossEntropy, 2, 4),
    ]
}

/// Exact's parameter updates equal central differences of the loss (h = 1e-6: truncation
/// O(h^2) ~ 1e-12, rounding O(u |L| / h) ~ 1e-10; 1e-7 relative to the largest entry).
#[test]
fn exact_updates_match_finite_differences() {
    for fixture in fixtures() {
        let run = fixture.run(&Settings::exact()).unwrap();
        let h = 1e-6;
        let numeric: Vec<f64> = (0..fixture.params.len())
            .map(|i| {
                let mut plus = fixture.params.clone();
                let mut minus = fixture.params.clone();
                plus[i] += h;
                minus[i] -= h;
                (fixture.loss_at(&plus, &fixture.inputs) - fixture.loss_at(&minus, &fixture.inputs))
                    / (2.0 * h)
            })
            .collect();
        assert!(
            max_relative(&run.updates, &numeric) < 1e-7,
            "{:?}",
            fixture.loss
        );
    }
}

/// Exact's errors are dLoss/dvhat_l: checked by central differences of the loss of the
/// sub-network of layers l+1..L applied to a perturbed vhat_l; with a free input, epsilon_0
/// is dLoss/dx. Same tolerance as above.
#[test]
fn exact_errors_match_finite_differences() {
    for fixture in fixtures() {
        let run = fixture.run(&Settings::exact().with_free_input()).unwrap();
        let spec = fixture.spec();
        for l in 0..spec.depth() {
            let sub = Fixture {
                layers: fixture.layers[l..].to_vec(),
                loss: fixture.loss,
                params: fixture.params[spec.parameter_offset(l + 1)..].to_vec(),
                inputs: run.vhat[l].clone(),
                values: fixture.values.clone(),
                classes: fixture.classes.clone(),
            };
            let h = 1e-6;
            let numeric: Vec<f64> = (0..sub.inputs.len())
                .map(|i| {
                    let mut plus = sub.inputs.clone();
                    let mut minus = sub.inputs.clone();
                    plus[i] += h;
                    minus[i] -= h;
                    (sub.loss_at(&sub.params, &plus) - sub.loss_at(&sub.params, &minus)) / (2.0 * h)
                })
                .collect();
            assert!(max_relative(&run.errors[l], &numeric) < 1e-7, "layer {l}");
            let expected_beliefs: Vec<f64> = run.vhat[l]
                .iter()
                .zip(&run.errors[l])
                .map(|(v, e)| v - e)
                .collect();
            assert_eq!(run.beliefs[l], expected_beliefs);
        }
    }
}

/// FixedPred with step size 1 and n = L gives the backprop errors and gradients to 1e-12
/// relative (the recursion is exact; only summation order differs).
#[test]
fn fixed_pred_step_one_and_n_equal_depth_is_backprop() {
    for fixture in fixtures() {
        let depth = fixture.layers.len();
        let exact = fixture.run(&Settings::exact()).unwrap();
        let fixed = fixture.run(&Settings::fixed_pred(1.0, depth)).unwrap();
        assert!(max_relative(&fixed.updates, &exact.updates) <= 1e-12);
        for l in 1..=depth {
            assert!(
                max_relative(&fixed.errors[l], &exact.errors[l]) <= 1e-12,
                "layer {l}"
            );
        }
        for l in 1..depth {
            assert!(
                max_relative(&fixed.beliefs[l], &exact.beliefs[l]) <= 1e-12,
                "layer {l}"
            );
        }
        assert_eq!(
            fixed.report.residual, 0.0,
            "the nilpotent iteration stops moving exactly"
        );
        assert!(fixed.report.converged);
    }
}

/// FixedPred's layer-l errors equal c * delta_l with c = P[Binomial(n-1, eta) >= L - l]
/// (independently evaluated here from the binomial sum), to 1e-12 relative.
#[test]
fn fixed_pred_errors_follow_the_binomial_law() {
    fn binomial_tail(trials: usize, eta: f64, at_least: usize) -> f64 {
        let mut total = 0.0;
        let mut choose = 1.0_f64;
        for j in 0..=trials {
            if j > 0 {
                choose = choose * (trials + 1 - j) as f64 / j as f64;
            }
            if j >= at_least {
                total += choose * eta.powi(j as i32) * (1.0 - eta).powi((trials - j) as i32);
            }
        }
        total
    }
    let fixture = &fixtures()[1];
    let depth = fixture.layers.len();
    let exact = fixture.run(&Settings::exact()).unwrap();
    for &(eta, n) in &[(0.1, 20), (0.5, 3), (1.5, 7), (0.3, 1)] {
        let run = fixture.run(&Settings::fixed_pred(eta, n)).unwrap();
        for l in 1..=depth {
            let c = if l == depth {
                1.0
            } else {
                binomial_tail(n - 1, eta, depth - l)
            };
            let expected: Vec<f64> = exact.errors[l].iter().map(|d| c * d).collect();
            if c == 0.0 {
                assert!(run.errors[l].iter().all(|&e| e == 0.0));
            } else {
                assert!(
                    max_relative(&run.errors[l], &expected) <= 1e-12,
                    "eta {eta}, n {n}, layer {l}"
                );
            }
        }
    }
}

/// From the feedforward start, layer l's errors and updates are exactly zero while
/// n < L - l + 1, for FixedPred and Strict alike.
#[test]
fn signal_front_is_exactly_zero() {
    let fixture = &fixtures()[1];
    let spec = fixture.spec();
    let depth = spec.depth();
    for n in 0..depth {
        for settings in [Settings::fixed_pred(0.7, n), Settings::strict(0.2, n)] {
            let run = fixture.run(&settings).unwrap();
            for l in 1..depth {
                let range = spec.parameter_offset(l)..spec.parameter_offset(l + 1);
                let reached = n > depth - l;
                let zero = run.errors[l].iter().all(|&e| e.to_bits() == 0)
                    && run.updates[range].iter().all(|&u| u.to_bits() == 0);
                assert_eq!(zero, !reached, "{:?}, n {n}, layer {l}", settings.algorithm);
            }
        }
    }
}

/// Strict's first iteration moves the hidden beliefs by -eta * dF/dv (F by central
/// differences, h = 1e-6, 1e-7 relative) and F never rises for a small step.
#[test]
fn strict_is_gradient_descent_on_its_energy() {
    for fixture in fixtures().iter().filter(|f| f.layers.len() > 1) {
        let spec = fixture.spec();
        let depth = spec.depth();
        let rows = fixture.rows();
        let mut seq = Sequence(99);
        let hidden_len = rows * (spec.activation_len() - spec.input_len() - spec.output_len());
        let start = fixture.run(&Settings::exact()).unwrap();
        let mut initial: Vec<f64> = (1..depth).flat_map(|l| start.vhat[l].clone()).collect();
        for v in initial.iter_mut() {
            *v += 0.3 * seq.next();
        }
        assert_eq!(initial.len(), hidden_len);
        let energy = |beliefs: &[f64]| -> f64 {
            let run = fixture
                .run(&Settings::strict(0.1, 0).with_initial_beliefs(beliefs))
                .unwrap();
            run.report.energy.unwrap()
        };
        let eta = 0.05;
        let run = fixture
            .run(&Settings::strict(eta, 1).with_initial_beliefs(&initial))
            .unwrap();
        let moved: Vec<f64> = (1..depth).flat_map(|l| run.beliefs[l].clone()).collect();
        let h = 1e-6;
        let expected: Vec<f64> = (0..initial.len())
            .map(|i| {
                let mut plus = initial.clone();
                let mut minus = initial.clone();
                plus[i] += h;
                minus[i] -= h;
                initial[i] - eta * (energy(&plus) - energy(&minus)) / (2.0 * h)
            })
            .collect();
        let step: Vec<f64> = moved.iter().zip(&initial).map(|(m, i)| m - i).collect();
        let expected_step: Vec<f64> = expected.iter().zip(&initial).map(|(m, i)| m - i).collect();
        assert!(max_relative(&step, &expected_step) < 1e-7);
        let mut previous = f64::INFINITY;
        for n in 0..30 {
            let e = fixture
                .run(&Settings::strict(eta, n).with_initial_beliefs(&initial))
                .unwrap()
                .report
                .energy
                .unwrap();
            assert!(e <= previous + 1e-14, "energy rose at n = {n}");
            previous = e;
        }
    }
}

/// Initial beliefs are honoured (Torch2PC ignores its `vinit`): starting Strict from
/// other beliefs changes the result, and zero iterations return exactly those beliefs.
#[test]
fn strict_honours_initial_beliefs() {
    let fixture = &fixtures()[0];
    let spec = fixture.spec();
    let rows = fixture.rows();
    let hidden: usize = (1..spec.depth()).map(|l| spec.width(l)).sum();
    let initial: Vec<f64> = (0..rows * hidden)
        .map(|i| (i as f64 * 0.37).sin())
        .collect();
    let run = fixture
        .run(&Settings::strict(0.1, 0).with_initial_beliefs(&initial))
        .unwrap();
    let returned: Vec<f64> = (1..spec.depth())
        .flat_map(|l| run.beliefs[l].clone())
        .collect();
    assert_eq!(returned, initial);
    let warm = fixture
        .run(&Settings::strict(0.1, 5).with_initial_beliefs(&initial))
        .unwrap();
    let cold = fixture.run(&Settings::strict(0.1, 5)).unwrap();
    assert_ne!(warm.updates, cold.updates);
}

/// A tolerance stops the relaxation early with the residual at or below it, and the
/// result equals a fixed-count run of that many iterations (bitwise).
#[test]
fn tolerance_stops_early_and_matches_fixed_count() {
    let fixture = &fixtures()[1];
    for algorithm in [Algorithm::FixedPred, Algorithm::Strict] {
        let base = Settings {
            algorithm,
            ..Settings::fixed_pred(0.3, 5000)
        };
        let run = fixture.run(&base.with_tolerance(1e-10)).unwrap();
        assert!(run.report.converged && run.report.residual <= 1e-10);
        assert!(run.report.iterations < 5000);
        let fixed = fixture
            .run(&Settings {
                iterations: run.report.iterations,
                ..base
            })
            .unwrap();
        assert_eq!(fixed.updates, run.updates);
        let capped = fixture
            .run(
                &Settings {
                    iterations: 3,
                    ..base
                }
                .with_tolerance(1e-10),
            )
            .unwrap();
        assert_eq!(capped.report.iterations, 3);
        assert!(!capped.report.converged);
    }
}

/// With the input free, FixedPred (eta = 1) reaches epsilon_0 = dLoss/dx after L + 1
/// iterations and v_0 = x - dLoss/dx after L (PAPER.md P18), to 1e-12 relative.
#[test]
fn free_input_gives_the_input_gradient() {
    let fixture = &fixtures()[1];
    let depth = fixture.layers.len();
    let exact = fixture.run(&Settings::exact().with_free_input()).unwrap();
    let run = fixture
        .run(&Settings::fixed_pred(1.0, depth + 1).with_free_input())
        .unwrap();
    assert!(max_relative(&run.errors[0], &exact.errors[0]) <= 1e-12);
    let run = fixture
        .run(&Settings::fixed_pred(1.0, depth).with_free_input())
        .unwrap();
    assert!(max_relative(&run.beliefs[0], &exact.beliefs[0]) <= 1e-12);
    let clamped = fixture.run(&Settings::fixed_pred(1.0, depth)).unwrap();
    assert_eq!(clamped.beliefs[0], fixture.inputs);
    assert!(clamped.errors[0].iter().all(|&e| e == 0.0));
}

/// f32 FixedPred keeps errors, not beliefs: with tiny output errors (|delta| ~ 1e-7 against
/// activations ~ 0.5, from a mean-reduced loss), its layer-1 errors stay within 1e-3 relative of the f64 result,
/// while the same relaxation done Torch2PC's way in f32 (beliefs v, epsilon = vhat - v)
/// is off by more than 10%.
#[test]
fn f32_error_space_beats_belief_space() {
    let widths = [6usize, 8, 8, 4];
    let acts = [Activation::Tanh, Activation::Tanh, Activation::Identity];
    let layers: Vec<Layer> = widths
        .windows(2)
        .zip(acts)
        .map(|(w, a)| Layer::dense(w[0], w[1], a))
        .collect();
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let rows = 3;
    let mut seq = Sequence(7);
    let params64: Vec<f64> = seq
        .vec(spec.parameter_len(), 0.6)
        .iter()
        .map(|&p| p as f32 as f64)
        .collect();
    let inputs64: Vec<f64> = seq
        .vec(rows * 6, 1.0)
        .iter()
        .map(|&p| p as f32 as f64)
        .collect();
    let targets64: Vec<f64> = seq
        .vec(rows * 4, 0.3)
        .iter()
        .map(|&p| p as f32 as f64)
        .collect();
    // The loss is a mean over a nominal million rows (as one block of a huge batch), so
    // delta = 2 (y - t) / (1e6 * 4) ~ 1e-7 while y - t itself is O(0.3) and exact in f32.
    let total_rows = 1_000_000;
    let mut work = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let (eta, n) = (0.1, 60);
    let batch64 = Batch::new(&inputs64[..], Targets::Values(&targets64[..])).block_of(total_rows);
    let reference = infer(
        &spec,
        &params64,
        batch64,
        &Settings::fixed_pred(eta, n),
        &mut work,
        &mut updates,
    )
    .unwrap()
    .errors(1)
    .to_vec();

    let params32: Vec<f32> = params64.iter().map(|&p| p as f32).collect();
    let inputs32: Vec<f32> = inputs64.iter().map(|&p| p as f32).collect();
    let targets32: Vec<f32> = targets64.iter().map(|&p| p as f32).collect();
    let mut work32 = vec![0.0_f32; spec.workspace_len(rows)];
    let mut updates32 = vec![0.0_f32; spec.parameter_len()];
    let batch32 = Batch::new(&inputs32[..], Targets::Values(&targets32[..])).block_of(total_rows);
    let ours = infer(
        &spec,
        &params32,
        batch32,
        &Settings::fixed_pred(eta as f32, n),
        &mut work32,
        &mut updates32,
    )
    .unwrap();
    let ours: Vec<f64> = ours.errors(1).iter().map(|&e| e as f64).collect();

    // Belief-space f32 FixedPred, Torch2PC's loop, written out for this dense network.
    let exact32 = infer(
        &spec,
        &params32,
        batch32,
        &Settings::exact(),
        &mut work32,
        &mut updates32,
    )
    .unwrap();
    let vhat: Vec<Vec<f32>> = (0..=3).map(|l| exact32.feedforward(l).to_vec()).collect();
    let dldy = exact32.output_gradient().to_vec();
    let mut beliefs = vhat.clone();
    let mut errors: Vec<Vec<f32>> = vhat.iter().map(|v| vec![0.0; v.len()]).collect();
    errors[3] = dldy;
    let eta32 = eta as f32;
    for _ in 0..n {
        for l in (1..3).rev() {
            for i in 0..errors[l].len() {
                errors[l][i] = vhat[l][i] - beliefs[l][i];
            }
            // J_{l+1}(vhat_l)^T epsilon_{l+1} for layer l+1 = act(v W^T + b).
            let (inw, outw) = (widths[l], widths[l + 1]);
            let offset = spec.parameter_offset(l + 1);
            let weight = &params32[offset..offset + inw * outw];
            for r in 0..rows {
                for i in 0..inw {
                    let mut pulled = 0.0_f32;
                    for o in 0..outw {
                        let a = vhat[l + 1][r * outw + o];
                        let derivative = if l + 1 == 3 { 1.0 } else { 1.0 - a * a };
                        pulled += errors[l + 1][r * outw + o] * derivative * weight[o * inw + i];
                    }
                    let k = r * inw + i;
                    beliefs[l][k] += eta32 * (errors[l][k] - pulled);
                }
            }
        }
    }
    let torch_style: Vec<f64> = errors[1].iter().map(|&e| e as f64).collect();
    let ours_error = max_relative(&ours, &reference);
    let torch_error = max_relative(&torch_style, &reference);
    std::eprintln!("layer-1 relative error vs f64: error-space f32 {ours_error:.2e}, belief-space f32 {torch_error:.2e}");
    assert!(ours_error < 1e-3, "error-space f32: {ours_error}");
    assert!(torch_error > 0.1, "belief-space f32: {torch_error}");
}

/// Each error variant comes back for the input that should cause it, and nothing panics.
#[test]
fn every_bad_input_gets_its_error() {
    let fixture = &fixtures()[0];
    let spec = fixture.spec();
    let rows = fixture.rows();
    let mut work = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let batch = Batch::new(&fixture.inputs[..], fixture.targets());
    let good = Settings::strict(0.1, 3);
    let call = |params: &[f64],
                batch: Batch<'_, f64>,
                settings: &Settings<'_, f64>,
                work: &mut [f64],
                updates: &mut [f64]| {
        infer(&spec, params, batch, settings, work, updates).map(|_| ())
    };
    assert_eq!(
        call(&fixture.params, batch, &good, &mut work, &mut updates),
        Ok(())
    );
    assert_eq!(
        call(&fixture.params[1..], batch, &good, &mut work, &mut updates),
        Err(PcError::LengthMismatch {
            what: "parameters",
            expected: fixture.params.len(),
            given: fixture.params.len() - 1
        })
    );
    let mut nan_params = fixture.params.clone();
    nan_params[4] = f64::NAN;
    assert_eq!(
        call(&nan_params, batch, &good, &mut work, &mut updates),
        Err(PcError::NonFinite {
            what: "parameters",
            index: 4
        })
    );
    let short = spec.workspace_len(rows) - 1;
    assert_eq!(
        call(
            &fixture.params,
            batch,
            &good,
            &mut work[..short],
            &mut updates
        ),
        Err(PcError::BufferTooSmall {
            what: "workspace",
            needed: short + 1,
            given: short
        })
    );
    assert!(matches!(
        call(&fixture.params, batch, &good, &mut work, &mut updates[1..]),
        Err(PcError::LengthMismatch {
            what: "updates",
            ..
        })
    ));
    let empty = Batch::new(&[][..], Targets::Values(&[][..]));
    assert_eq!(
        call(&fixture.params, empty, &good, &mut work, &mut updates),
        Err(PcError::EmptyBatch)
    );
    let ragged = Batch::new(&fixture.inputs[1..], fixture.targets());
    assert!(matches!(
        call(&fixture.params, ragged, &good, &mut work, &mut updates),
        Err(PcError::LengthMismatch { what: "inputs", .. })
    ));
    let mut inf_inputs = fixture.inputs.clone();
    inf_inputs[2] = f64::INFINITY;
    let bad = Batch::new(&inf_inputs[..], fixture.targets());
    assert_eq!(
        call(&fixture.params, bad, &good, &mut work, &mut updates),
        Err(PcError::NonFinite {
            what: "inputs",
            index: 2
        })
    );
    for eta in [0.0, -0.1, 2.0, 2.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            call(
                &fixture.params,
                batch,
                &Settings::strict(eta, 3),
                &mut work,
                &mut updates
            ),
            Err(PcError::InvalidHyperparameter {
                name: "step size",
                ..
            })
        ));
    }
    assert!(matches!(
        call(
            &fixture.params,
            batch,
            &Settings::fixed_pred(0.5, MAX_ITERATIONS + 1),
            &mut work,
            &mut updates
        ),
        Err(PcError::InvalidHyperparameter {
            name: "iterations",
            ..
        })
    ));
    assert!(matches!(
        call(
            &fixture.params,
            batch,
            &good.with_tolerance(f64::NAN),
            &mut work,
            &mut updates
        ),
        Err(PcError::InvalidHyperparameter {
            name: "tolerance",
            ..
        })
    ));
    let beliefs = vec![0.0; 3];
    assert!(matches!(
        call(
            &fixture.params,
            batch,
            &Settings::fixed_pred(0.5, 3).with_initial_beliefs(&beliefs),
            &mut work,
            &mut updates
        ),
        Err(PcError::InvalidSettings { .. })
    ));
    assert!(matches!(
        call(
            &fixture.params,
            batch,
            &good.with_initial_beliefs(&beliefs),
            &mut work,
            &mut updates
        ),
        Err(PcError::LengthMismatch {
            what: "initial beliefs",
            ..
        })
    ));

    // Cross-entropy targets out of range, and the wrong kind of targets.
    let ce = &fixtures()[3];
    let ce_spec = ce.spec();
    let classes = vec![0, 9];
    let ce_batch = Batch::new(&ce.inputs[..], Targets::Classes(&classes));
    let mut ce_work = vec![0.0; ce_spec.workspace_len(2)];
    let mut ce_updates = vec![0.0; ce_spec.parameter_len()];
    assert_eq!(
        infer(
            &ce_spec,
            &ce.params,
            ce_batch,
            &Settings::exact(),
            &mut ce_work,
            &mut ce_updates
        )
        .map(|_| ()),
        Err(PcError::ClassOutOfRange {
            row: 1,
            class: 9,
            classes: 4
        })
    );
    let wrong_kind = Batch::new(&ce.inputs[..], Targets::Values(&ce.values[..]));
    assert!(infer(
        &ce_spec,
        &ce.params,
        wrong_kind,
        &Settings::exact(),
        &mut ce_work,
        &mut ce_updates
    )
    .is_err());

    // A malformed network.
    let broken = [
        Layer::dense(3, 4, Activation::Tanh),
        Layer::dense(5, 2, Activation::Identity),
    ];
    let broken_spec = NetworkSpec::new(&broken, Loss::Mse);
    assert_eq!(
        infer(
            &broken_spec,
            &fixture.params,
            batch,
            &good,
            &mut work,
            &mut updates
        )
        .map(|_| ()),
        Err(PcError::ShapeMismatch {
            layer: 2,
            op: 0,
            expected: 5,
            given: 4
        })
    );
}

/// Strict driven far past its stable step size on a network with large weights reports
/// divergence with the iteration, instead of returning NaN results.
#[test]
fn strict_divergence_is_reported_with_its_iteration() {
    let fixture = Fixture::new(
        &[4, 16, 16, 16, 3],
        &[
            Activation::Tanh,
            Activation::Identity,
            Activation::Identity,
            Activation::Identity,
        ],
        Loss::Mse,
        2,
        11,
    );
    let mut params = fixture.params.clone();
    for p in params.iter_mut() {
        *p *= 4.0;
    }
    let result = fixture.run_with(&params, &fixture.inputs, &Settings::strict(1.9, 2000));
    match result {
        Err(PcError::Diverged { iteration }) => assert!(iteration > 1 && iteration < 2000),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("no divergence reported"),
    }
    // The same network relaxes fine with a small step.
    let calm = fixture
        .run_with(&params, &fixture.inputs, &Settings::strict(0.001, 20))
        .unwrap();
    assert!(calm.report.energy.unwrap().is_finite());
}

/// FixedPred with step size 1 moves only the layer at the signal front (the layers behind
/// it have settled): the results, report included, are bit for bit those of moving every
/// layer the signal has reached, for every fixture, clamped and free input, and iteration
/// counts below, at and past the depth, with and without a tolerance. Other step sizes
/// take the general path either way (checked too).
#[test]
#[cfg(feature = "fixed-pred")]
fn fixed_pred_step_one_skips_settled_layers_bit_for_bit() {
    fn relax<const SKIP: bool>(
        fixture: &Fixture,
        settings: &Settings<'_, f64>,
    ) -> (Vec<u64>, Vec<u64>, Report<f64>) {
        let spec = fixture.spec();
        let batch = Batch::new(&fixture.inputs, fixture.targets());
        let rows = fixture.rows();
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let lens = region_lens(&spec, rows);
        let used: usize = lens.iter().sum();
        let problem = Problem {
            backend: &Portable,
            spec,
            params: &fixture.params,
            rows,
            batch,
            settings,
        };
        let mut regions = Regions::split(&mut workspace[..used], lens);
        problem.feedforward(&mut regions);
        let top = activation_range(&spec, rows, spec.depth());
        problem.loss(&regions.vhat[top], regions.dldy);
        let report =
            fixed_pred::run::<SKIP, f64, Portable>(&problem, &mut regions, &mut updates).unwrap();
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let state = [&*regions.beliefs, &*regions.errors].concat();
        (bits(&updates), bits(&state), report)
    }
    for fixture in &fixtures() {
        let depth = fixture.spec().depth();
        for iterations in 1..=depth + 2 {
            for eta in [1.0, 0.5] {
                let base = Settings::fixed_pred(eta, iterations);
                for settings in [
                    base,
                    base.with_free_input(),
                    base.with_tolerance(1e-300),
                    base.with_tolerance(1e300),
                ] {
                    let skipping = relax::<true>(fixture, &settings);
                    let moving_all = relax::<false>(fixture, &settings);
                    assert_eq!(
                        skipping.0, moving_all.0,
                        "updates, n = {iterations}, eta {eta}"
                    );
                    assert_eq!(
                        skipping.1, moving_all.1,
                        "beliefs and errors, n = {iterations}"
                    );
                    assert_eq!(skipping.2, moving_all.2, "report, n = {iterations}");
                }
            }
        }
    }
}

/// Every value a call reports is written by the call: the results have the same bits
/// whatever the workspace and the updates buffer held before (zeros, NaN, huge values),
/// for each algorithm with a clamped and a free input. Catches a region the schedule
/// forgets to initialise (a test run on a zeroed workspace would not).
#[test]
fn results_do_not_depend_on_what_the_buffers_held() {
    let bits = |run: &Run| -> Vec<u64> {
        let mut all = vec![run.loss.to_bits(), run.report.residual.to_bits()];
        for values in run.vhat.iter().chain(&run.beliefs).chain(&run.errors) {
            all.extend(values.iter().map(|v| v.to_bits()));
        }
        all.extend(run.updates.iter().map(|v| v.to_bits()));
        all
    };
    for fixture in fixtures() {
        let depth = fixture.layers.len();
        for base in [
            Settings::exact(),
            Settings::fixed_pred(0.5, 4),
            Settings::fixed_pred(1.0, depth + 1),
            Settings::fixed_pred(1.0, 1),
            Settings::strict(0.1, 5),
        ] {
            for settings in [base, base.with_free_input()] {
                let run = |stale| {
                    fixture
                        .run_over(&fixture.params, &fixture.inputs, &settings, stale)
                        .unwrap()
                };
                let clean = run(0.0);
                assert!(bits(&clean).iter().all(|&b| f64::from_bits(b).is_finite()));
                for stale in [f64::NAN, 1e30, -3.0] {
                    assert_eq!(
                        bits(&run(stale)),
                        bits(&clean),
                        "{settings:?}, stale {stale}"
                    );
                }
            }
        }
    }
}
