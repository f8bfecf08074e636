//! Tests of the bad-input contract that need pcnet-core's internals or its own test build:
//! divergence at the iteration a closed form predicts, and edge cases the fuzz targets
//! found (their inputs are replayed by the workspace test `tests/fuzz_corpus.rs`).

use crate::{
    infer, Activation, Batch, Layer, Learner, Loss, NetworkSpec, PcError, Settings, Sgd, Targets,
};
use std::vec;
use std::vec::Vec;

/// `x -> v_1 = x -> y = w v_1`, identity activations, MSE against `y = 0`, one sample
/// `x = 1`: the Strict energy in the one hidden belief is the quadratic
/// `F(v) = (1 - v)^2 / 2 + (w v)^2` with curvature `H = 1 + 2 w^2`, minimiser
/// `v* = 1 / H` and minimum `F* = F(v*)`. Gradient descent from `v = vhat = 1` gives
/// `F_k = F* + (H / 2) (1 - v*)^2 (1 - eta H)^(2 (k - 1))` at iteration `k` (the energy is
/// computed before the k-th move). Strict reports divergence at the first `k` with
/// `F_k > ratio * F_1`.
fn predicted_divergence(w: f64, eta: f64, ratio: f64) -> Option<usize> {
    let h = 1.0 + 2.0 * w * w;
    let v_star = 1.0 / h;
    let f_star = (1.0 - v_star).powi(2) / 2.0 + (w * v_star).powi(2);
    let excess = h / 2.0 * (1.0 - v_star).powi(2);
    let f1 = f_star + excess;
    let growth = (1.0 - eta * h).powi(2);
    (1..=10_000).find(|&k| {
        let fk = f_star + excess * growth.powi(k as i32 - 1);
        // Skip cases within 1e-9 of the threshold: rounding could go either way there.
        let threshold = ratio * f1;
        assert!(
            ((fk - threshold) / threshold).abs() > 1e-9,
            "borderline case w={w}, eta={eta}"
        );
        fk > threshold
    })
}

const WIDTHS: [Layer; 2] = [
    Layer::dense(1, 1, Activation::Identity),
    Layer::dense(1, 1, Activation::Identity),
];

#[test]
fn strict_divergence_names_the_iteration_the_closed_form_predicts() {
    let spec = NetworkSpec::new(&WIDTHS, Loss::Mse);
    let mut workspace = vec![0.0; spec.workspace_len(1)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let batch = Batch::new(&[1.0], Targets::Values(&[0.0]));
    let mut checked = 0;
    for (w, eta, ratio) in [
        (1.0, 1.9, 1e6),
        (1.0, 1.5, 1e6),
        (0.75, 1.99, 1e3),
        (2.0, 0.5, 1e6),
        (2.0, 1.0, 10.0),
        (1.0, 0.6, 1e6), // |1 - eta H| < 1: converges, never diverges
    ] {
        // Parameters: layer 1 weight 1, bias 0; layer 2 weight w, bias 0.
        let params = [1.0, 0.0, w, 0.0];
        let mut settings = Settings::strict(eta, 300);
        settings.divergence_ratio = ratio;
        let result = infer(
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut updates,
        );
        match (
            predicted_divergence(w, eta, ratio).filter(|&k| k <= 300),
            result,
        ) {
            (Some(k), Err(PcError::Diverged { iteration })) => {
                assert_eq!(iteration, k, "w={w}, eta={eta}, ratio={ratio}");
                checked += 1;
            }
            (None, Ok(inference)) => assert_eq!(inference.report().iterations, 300),
            (predicted, other) => panic!(
                "w={w}, eta={eta}: predicted {predicted:?}, got {:?}",
                other.map(|i| i.report())
            ),
        }
    }
    assert_eq!(checked, 5);
}

/// A learning step whose relaxation diverges writes nothing, and training resumes from
/// the untouched model exactly as a fresh learner on a copy of it does.
#[test]
fn diverged_learning_step_leaves_sgd_with_momentum_untouched() {
    let spec = NetworkSpec::new(&WIDTHS, Loss::Mse);
    let mut params: Vec<f64> = vec![1.0, 0.0, 1.0, 0.0];
    let mut state = vec![0.0; 4];
    let mut workspace = vec![0.0; spec.workspace_len(1)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let batch = Batch::new(&[1.0], Targets::Values(&[0.0]));
    let sgd = Sgd::new(0.1).with_momentum(0.9);
    let mut learner = Learner::new(spec, &mut params, sgd, &mut state).unwrap();
    let calm = Settings::strict(0.1, 10);
    learner
        .step(batch, &calm, &mut workspace, &mut updates)
        .unwrap();
    let (saved_params, saved_state) = (
        learner.parameters().to_vec(),
        learner.optimizer_state().to_vec(),
    );
    let result = learner.step(
        batch,
        &Settings::strict(1.9, 50),
        &mut workspace,
        &mut updates,
    );
    assert!(
        matches!(result, Err(PcError::Diverged { .. })),
        "{:?}",
        result.map(|_| ())
    );
    assert_eq!(learner.parameters(), &saved_params[..]);
    assert_eq!(learner.optimizer_state(), &saved_state[..]);
    assert_eq!(learner.optimizer().steps, 1);
    learner
        .step(batch, &calm, &mut workspace, &mut updates)
        .unwrap();
    let resumed = learner.parameters().to_vec();

    let (mut fresh_params, mut fresh_state) = (saved_params, saved_state);
    let mut fresh_sgd = sgd;
    fresh_sgd.steps = 1;
    let mut fresh = Learner::new(spec, &mut fresh_params, fresh_sgd, &mut fresh_state).unwrap();
    fresh
        .step(batch, &calm, &mut workspace, &mut updates)
        .unwrap();
    assert_eq!(fresh.parameters(), &resumed[..]);
}

/// `portable::linear_forward` with zero outputs writes nothing and does not panic (it
/// called `chunks_exact_mut(0)`; found by the `fast_kernels` fuzz target).
#[test]
fn portable_forward_with_zero_outputs_is_a_no_op() {
    let dims = crate::LinearDims {
        rows: 2,
        inputs: 3,
        outputs: 0,
    };
    let mut output: [f64; 0] = [];
    crate::kernels::portable::linear_forward(dims, &[1.0; 6], &[], &[], &mut output);
}

/// A margin that is positive in f64 but underflows in f32 (and a network with no hidden
/// layer, so the step is the margin's alone) still gives a step size in `(0, 2)`; it was
/// 0 (found by the `network` fuzz target).
#[test]
fn safe_step_size_stays_positive_when_the_margin_underflows() {
    let layers = [Layer::dense(2, 1, Activation::Tanh)];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let params = [0.5_f32, -0.25, 0.125];
    let batch = Batch::new(&[1.0_f32, 2.0], Targets::Values(&[0.5]));
    let mut workspace = vec![0.0_f32; spec.workspace_len(1)];
    let rule = crate::SafeStep {
        margin: 1e-300,
        ..crate::SafeStep::default()
    };
    let curvature = crate::safe_step_size(&spec, &params, batch, &rule, &mut workspace).unwrap();
    assert!(
        curvature.step_size > 0.0 && curvature.step_size < 2.0,
        "{curvature:?}"
    );
}

/// The loss of `spec` at `params` on one batch, by `infer` (the feedforward loss).
fn loss_at(spec: &NetworkSpec<'_>, params: &[f64], batch: Batch<'_, f64>, rows: usize) -> f64 {
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    infer(
        spec,
        params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap()
    .loss()
}

/// A small CNN (conv with padding and stride, ReLU, max-pool, average-pool, flatten,
/// linear) runs through the layer interface: Exact's parameter updates equal central
/// differences of the loss (h = 1e-6: truncation O(h^2) and rounding O(u / h) are far
/// below the 1e-6 relative tolerance for O(1) values; the max-pool winners are distinct,
/// so the loss is smooth at the point).
#[test]
fn exact_updates_of_a_cnn_match_finite_differences() {
    use crate::{Conv2d, ImageShape, Op, Pool2d};
    let conv = Conv2d::new(ImageShape::new(2, 5, 5), 3, [3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    let max_pool = Pool2d::new(ImageShape::new(3, 5, 5), [2, 2]).with_stride([1, 1]);
    let avg_pool = Pool2d::new(ImageShape::new(3, 4, 4), [2, 2]);
    let first = Layer::from_ops(&[
        Op::Conv2d(conv),
        Op::Activation(Activation::Tanh),
        Op::MaxPool2d(max_pool),
        Op::AvgPool2d(avg_pool),
        Op::Flatten,
    ])
    .unwrap();
    let layers = [first, Layer::dense(12, 3, Activation::Identity)];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy).with_input_len(50);
    spec.validate().unwrap();
    let rows = 2;
    let params: Vec<f64> = (0..spec.parameter_len())
        .map(|i| (((i * 37 + 11) % 29) as f64 - 14.0) / 20.0)
        .collect();
    let inputs: Vec<f64> = (0..rows * 50)
        .map(|i| (((i * 53 + 7) % 41) as f64 - 20.0) / 10.0)
        .collect();
    let classes = [2, 0];
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    infer(
        &spec,
        &params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    let h = 1e-6;
    for (i, &update) in updates.iter().enumerate() {
        let (mut plus, mut minus) = (params.clone(), params.clone());
        plus[i] += h;
        minus[i] -= h;
        let numeric =
            (loss_at(&spec, &plus, batch, rows) - loss_at(&spec, &minus, batch, rows)) / (2.0 * h);
        assert!(
            (update - numeric).abs() <= 1e-6 * numeric.abs().max(1e-3),
            "parameter {i}: {update} vs {numeric}"
        );
    }
    // Strict with the safe step size relaxes the same network without diverging.
    let settings = Settings::strict(1.0, 10).with_safe_step_size();
    let strict = infer(
        &spec,
        &params,
        batch,
        &settings,
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    assert!(strict.step_size() > 0.0 && strict.step_size() < 2.0);
}

/// For `x -> v -> y = W v + b` (one hidden belief, identity layers) the Strict energy's
/// Hessian in `v` is `1 + W^T C W` with `C` the loss curvature in the output: `2 / n`
/// times the identity for MSE over n outputs and one row, `diag(s) - s s^T` for
/// cross-entropy with softmax `s`. With one hidden unit it is a number, so the power
/// iteration must find it exactly (to rounding) and the step is `0.9 * 2 / lambda`.
#[test]
fn safe_step_size_finds_the_curvature_of_one_hidden_unit() {
    let layers = [
        Layer::dense(1, 1, Activation::Identity),
        Layer::dense(1, 3, Activation::Identity),
    ];
    let w = [0.5, -1.5, 2.0];
    let params = [1.0, 0.0, w[0], w[1], w[2], 0.25, -0.5, 0.0];
    let rule = crate::SafeStep::default();
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        let spec = NetworkSpec::new(&layers, loss);
        let values = [0.0, 1.0, -1.0];
        let classes = [1];
        let targets = match loss {
            Loss::CrossEntropy => Targets::Classes(&classes),
            _ => Targets::Values(&values),
        };
        let batch = Batch::new(&[0.75], targets);
        let lambda = match loss {
            Loss::CrossEntropy => {
                // Logits at v = 0.75.
                let z: Vec<f64> = (0..3).map(|o| w[o] * 0.75 + params[5 + o]).collect();
                let total: f64 = z.iter().map(|z| z.exp()).sum();
                let s: Vec<f64> = z.iter().map(|z| z.exp() / total).collect();
                let ws: f64 = (0..3).map(|o| w[o] * s[o]).sum();
                1.0 + (0..3).map(|o| w[o] * w[o] * s[o]).sum::<f64>() - ws * ws
            }
            _ => 1.0 + 2.0 / 3.0 * w.iter().map(|x| x * x).sum::<f64>(),
        };
        let mut workspace = vec![0.0; spec.workspace_len(1)];
        let curvature =
            crate::safe_step_size(&spec, &params, batch, &rule, &mut workspace).unwrap();
        assert!(
            (curvature.lambda_max - lambda).abs() <= 1e-12 * lambda,
            "{loss:?}: {} vs {lambda}",
            curvature.lambda_max
        );
        assert!((curvature.step_size - 1.8 / lambda).abs() <= 1e-12);
        // One direction: the second estimate repeats the first, and the iteration stops.
        assert!(curvature.iterations <= 3, "{curvature:?}");
        // Strict with the safe step size uses it.
        let mut updates = vec![0.0; spec.parameter_len()];
        let settings = Settings::strict(1.99, 5).with_safe_step_size();
        let run = infer(
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut updates,
        )
        .unwrap();
        assert_eq!(run.step_size(), curvature.step_size);
    }
}

/// Every error prints the data a caller acts on.
#[test]
fn every_error_prints_its_data() {
    use std::string::ToString;
    let cases: [(PcError, &[&str]); 12] = [
        (
            PcError::LengthMismatch {
                what: "inputs",
                expected: 6,
                given: 5,
            },
            &["inputs", "6", "5"],
        ),
        (
            PcError::BufferTooSmall {
                what: "workspace",
                needed: 90,
                given: 80,
            },
            &["workspace", "90", "80"],
        ),
        (
            PcError::ShapeMismatch {
                layer: 2,
                op: 1,
                expected: 7,
                given: 3,
            },
            &["layer 2", "op 1", "7", "3"],
        ),
        (
            PcError::InvalidNetwork {
                layer: 0,
                reason: "no layers",
            },
            &["no layers"],
        ),
        (
            PcError::InvalidNetwork {
                layer: 3,
                reason: "zero width",
            },
            &["layer 3", "zero width"],
        ),
        (
            PcError::InvalidOp {
                layer: 1,
                op: 0,
                reason: "zero stride",
            },
            &["layer 1", "op 0", "zero stride"],
        ),
        (PcError::EmptyBatch, &["no rows"]),
        (
            PcError::ClassOutOfRange {
                row: 4,
                class: 9,
                classes: 3,
            },
            &["row 4", "9", "3 classes"],
        ),
        (
            PcError::NonFinite {
                what: "targets",
                index: 12,
            },
            &["targets", "12"],
        ),
        (
            PcError::InvalidHyperparameter {
                name: "step size",
                value: 2.5,
                min: core::ops::Bound::Excluded(0.0),
                max: core::ops::Bound::Excluded(2.0),
            },
            &["step size", "2.5", "(0, 2)"],
        ),
        (PcError::Diverged { iteration: 17 }, &["iteration 17"]),
        (
            PcError::CorruptModel {
                reason: "CRC mismatch",
            },
            &["CRC mismatch"],
        ),
    ];
    for (error, needles) in cases {
        let text = error.to_string();
        for needle in needles {
            assert!(text.contains(needle), "`{text}` lacks `{needle}`");
        }
    }
    let settings = PcError::InvalidSettings {
        reason: "initial beliefs are used by Strict only",
    };
    assert!(settings.to_string().contains("Strict only"));
}

/// Names round-trip, and unknown names are refused.
#[test]
fn algorithm_and_loss_names_round_trip() {
    use crate::Algorithm;
    for algorithm in [Algorithm::Exact, Algorithm::FixedPred, Algorithm::Strict] {
        assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
    }
    assert_eq!(Algorithm::from_name("backprop"), Some(Algorithm::Exact));
    assert_eq!(
        Algorithm::from_name("fixed-pred"),
        Some(Algorithm::FixedPred)
    );
    assert_eq!(Algorithm::from_name("annealing"), None);
    for loss in [Loss::Mse, Loss::MseSum, Loss::CrossEntropy] {
        assert_eq!(Loss::from_name(loss.name()), Some(loss));
    }
    assert_eq!(Loss::from_name("ce"), Some(Loss::CrossEntropy));
    assert_eq!(Loss::from_name("hinge"), None);
    let defaults = Settings::<f64>::torch2pc_default(Algorithm::Strict);
    assert_eq!((defaults.step_size, defaults.iterations), (0.1, 20));
}

/// Settings checks that need a valid network to be reached: a divergence ratio not above
/// 1, a safe step rule for another algorithm, too few loss rows; and an inference reports
/// its rows and depth.
#[test]
fn settings_and_batch_checks_name_the_field() {
    let spec = NetworkSpec::new(&WIDTHS, Loss::Mse);
    let params = [1.0, 0.0, 1.0, 0.0];
    let mut workspace = vec![0.0; spec.workspace_len(2)];
    let mut updates = vec![0.0; 4];
    let batch = Batch::new(&[1.0, 2.0], Targets::Values(&[0.0, 1.0]));
    let mut ratio = Settings::strict(0.1, 5);
    ratio.divergence_ratio = 1.0;
    let run = |settings: &Settings<'_, f64>, batch, workspace: &mut [f64], updates: &mut [f64]| {
        infer(&spec, &params, batch, settings, workspace, updates).map(|i| (i.rows(), i.depth()))
    };
    assert!(matches!(
        run(&ratio, batch, &mut workspace, &mut updates),
        Err(PcError::InvalidHyperparameter {
            name: "divergence ratio",
            ..
        })
    ));
    let safe_fixed = Settings::fixed_pred(0.5, 5).with_safe_step_size();
    assert!(matches!(
        run(&safe_fixed, batch, &mut workspace, &mut updates),
        Err(PcError::InvalidSettings { .. })
    ));
    assert!(matches!(
        run(
            &Settings::exact(),
            batch.block_of(1),
            &mut workspace,
            &mut updates
        ),
        Err(PcError::InvalidHyperparameter {
            name: "loss rows",
            ..
        })
    ));
    assert_eq!(
        run(
            &Settings::exact(),
            batch.block_of(4),
            &mut workspace,
            &mut updates
        ),
        Ok((2, 2))
    );
    // A feedforward pass that overflows is refused, and so are updates that do.
    let huge = [1e200, 0.0, 1e200, 0.0];
    assert!(matches!(
        infer(
            &spec,
            &huge,
            batch,
            &Settings::exact(),
            &mut workspace,
            &mut updates
        ),
        Err(PcError::NonFinite {
            what: "feedforward loss",
            ..
        })
    ));
    // v_1 = 1e300 and y = 1: the loss (1e150 - 1)^2 is finite, dLoss/dW_2 = -1e150 * 1e300 is not.
    let large = [1e300, 0.0, 1e-300, 0.0];
    let small_batch = Batch::new(&[1.0, 1.0], Targets::Values(&[1e150, 1e150]));
    let result = infer(
        &spec,
        &large,
        small_batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    );
    assert!(
        matches!(
            result,
            Err(PcError::NonFinite {
                what: "parameter updates",
                ..
            })
        ),
        "{:?}",
        result.map(|i| i.loss())
    );
}

/// Inputs that are not a whole number of rows name the next whole length as expected.
#[test]
fn inputs_of_no_whole_row_name_the_next_whole_length() {
    let layers = [Layer::dense(3, 1, Activation::Identity)];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let params = [0.0; 4];
    let mut workspace = vec![0.0; spec.workspace_len(3)];
    let mut updates = vec![0.0; 4];
    let batch = Batch::new(&[1.0; 7], Targets::Values(&[0.0; 2]));
    let result = infer(
        &spec,
        &params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    );
    assert_eq!(
        result.map(|_| ()),
        Err(PcError::LengthMismatch {
            what: "inputs",
            expected: 9,
            given: 7
        })
    );
}

/// Adam's decay rates must lie in `[0, 1)`: 1 itself (no forgetting, a bias correction
/// dividing by zero) is refused, for each of the two.
#[test]
fn adam_refuses_decay_rates_of_one() {
    use crate::{Adam, AdamW, Optimizer};
    for (beta1, beta2) in [(1.0, 0.999), (0.9, 1.0), (2.0, 0.999), (0.9, -0.5)] {
        assert!(
            Adam::new(0.1_f64)
                .with_betas(beta1, beta2)
                .validate()
                .is_err(),
            "{beta1} {beta2}"
        );
        assert!(
            AdamW::new(0.1_f64)
                .with_betas(beta1, beta2)
                .validate()
                .is_err(),
            "{beta1} {beta2}"
        );
    }
    assert!(Adam::new(0.1_f64).with_betas(0.0, 0.0).validate().is_ok());
}

/// f32 Adam: the first two steps of one parameter with gradients 3 then 1 equal the
/// textbook formulas evaluated in f64 (bias corrections `1 - beta^t` included), to f32
/// rounding (a few ulps of the O(1) results).
#[test]
fn adam_in_f32_matches_the_textbook_steps() {
    use crate::{Adam, Optimizer};
    let (lr, b1, b2, eps) = (0.1_f64, 0.9_f64, 0.999_f64, 1e-8_f64);
    let mut adam = Adam::new(lr as f32);
    let mut params = [1.0_f32];
    let mut state = [0.0_f32; 2];
    let (mut p, mut m, mut v) = (1.0_f64, 0.0_f64, 0.0_f64);
    for (t, g) in [(1, 3.0_f64), (2, 1.0)] {
        adam.step(&mut params, &[g as f32], &mut state).unwrap();
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let m_hat = m / (1.0 - b1.powi(t));
        let v_hat = v / (1.0 - b2.powi(t));
        p -= lr * m_hat / (v_hat.sqrt() + eps);
        assert!(
            (f64::from(params[0]) - p).abs() <= 1e-6,
            "step {t}: {} vs {p}",
            params[0]
        );
    }
}

/// The portable kernels accept every zero dimension (rows, inputs or outputs): outputs of
/// length zero stay as they are, the others are exact sums (bias, or zero gradients).
#[test]
fn portable_kernels_accept_zero_dimensions() {
    use crate::kernels::portable;
    use crate::LinearDims;
    for (rows, inputs, outputs) in [(0, 2, 3), (2, 0, 3), (2, 3, 0), (0, 0, 0), (1, 0, 0)] {
        let dims = LinearDims {
            rows,
            inputs,
            outputs,
        };
        let x = vec![1.5; rows * inputs];
        let weight = vec![0.5; outputs * inputs];
        let bias: Vec<f64> = (0..outputs).map(|o| o as f64 - 1.0).collect();
        let mut out = vec![f64::NAN; rows * outputs];
        portable::linear_forward(dims, &x, &weight, &bias, &mut out);
        for (i, &value) in out.iter().enumerate() {
            assert_eq!(value, bias[i % outputs] + inputs as f64 * 0.75, "{dims:?}");
        }
        let grad_output = vec![2.0; rows * outputs];
        let mut grad_input = vec![f64::NAN; rows * inputs];
        portable::linear_backward_input(dims, &grad_output, &weight, &mut grad_input);
        assert!(grad_input.iter().all(|&g| g == outputs as f64), "{dims:?}");
        let mut grad_weight = vec![f64::NAN; outputs * inputs];
        let mut grad_bias = vec![f64::NAN; outputs];
        portable::linear_backward_parameters(
            dims,
            &grad_output,
            &x,
            &mut grad_weight,
            &mut grad_bias,
        );
        assert!(
            grad_weight.iter().all(|&g| g == 3.0 * rows as f64),
            "{dims:?}"
        );
        assert!(
            grad_bias.iter().all(|&g| g == 2.0 * rows as f64),
            "{dims:?}"
        );
    }
}

/// Strict on `x -> v -> y` (identity layers, MSE, one sample), iterated by hand: each
/// iteration takes `e_2 = 2 (w_2 v + b_2 - y)`, `e_1 = (w_1 x + b_1) - v`, then moves
/// `v += eta (e_1 - w_2 e_2)`; the updates are the last errors times the layer inputs at
/// the final beliefs: `(e_1 x, e_1, e_2 v, e_2)`. Every layer's update is checked, so
/// skipping a reached layer's update (or computing an unreached one) is caught.
#[test]
fn strict_updates_match_a_hand_iteration() {
    let spec = NetworkSpec::new(&WIDTHS, Loss::Mse);
    let (w1, b1, w2, b2, x, y): (f64, f64, f64, f64, f64, f64) = (0.8, 0.1, -1.3, 0.2, 0.7, 0.4);
    let params = [w1, b1, w2, b2];
    let (inputs, targets) = ([x], [y]);
    let batch = Batch::new(&inputs, Targets::Values(&targets));
    let mut workspace = vec![0.0; spec.workspace_len(1)];
    let mut updates = vec![0.0; 4];
    for (eta, n) in [(0.1, 1), (0.1, 2), (0.3, 7), (0.2, 20)] {
        let (mut v, mut e1, mut e2) = (w1 * x + b1, 0.0, 0.0);
        for _ in 0..n {
            e2 = 2.0 * (w2 * v + b2 - y);
            e1 = (w1 * x + b1) - v;
            v += eta * (e1 - w2 * e2);
        }
        let expected = [e1 * x, e1, e2 * v, e2];
        infer(
            &spec,
            &params,
            batch,
            &Settings::strict(eta, n),
            &mut workspace,
            &mut updates,
        )
        .unwrap();
        for (got, want) in updates.iter().zip(expected) {
            assert!(
                (got - want).abs() <= 1e-14,
                "eta {eta}, n {n}: {updates:?} vs {expected:?}"
            );
        }
    }
}

/// A NaN or infinite parameter is named at its index whether the schedule proves the
/// parameters finite from the forward pass (few rows: `rows * (activations - inputs) <
/// parameters`) or scans them (many rows). The network is built to defeat a careless
/// proof: a convolution whose corner taps meet only zero padding (no output sees those
/// weights), ReLU layers that map NaN and `-inf` pre-activations to outputs of their own,
/// and inputs and activations that are exactly zero (`inf * 0` is NaN, not zero).
#[test]
fn non_finite_parameters_are_named_whether_proven_or_scanned() {
    use crate::{Conv2d, ImageShape, Op};
    // A 1 x 1 image, 3 x 3 kernel, padding 1: one output position, which sees only the
    // centre tap; the eight others multiply padding.
    let conv = Conv2d::new(ImageShape::new(1, 1, 1), 2, [3, 3]).with_padding([1, 1]);
    let first = Layer::from_ops(&[
        Op::Conv2d(conv),
        Op::Activation(Activation::Relu),
        Op::Flatten,
    ])
    .unwrap();
    let layers = [
        first,
        Layer::dense(2, 4, Activation::Relu),
        Layer::dense(4, 2, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::Mse).with_input_len(1);
    spec.validate().unwrap();
    let parameter_len = spec.parameter_len();
    assert_eq!(parameter_len, 20 + 12 + 10);
    // Negative weights into the ReLUs keep some activations at exactly zero.
    let params: Vec<f64> = (0..parameter_len)
        .map(|i| (((i * 7 + 3) % 11) as f64 - 5.0) / 4.0)
        .collect();
    let settings = [
        Settings::exact(),
        Settings::fixed_pred(0.5, 3),
        Settings::strict(0.1, 3),
    ];
    // rows 1 and 5: proven (1 x 8 and 5 x 8 values past the input < 42 parameters);
    // rows 6: scanned (48).
    for rows in [1, 5, 6] {
        let inputs: Vec<f64> = (0..rows).map(|r| r as f64 * 0.5).collect();
        let values: Vec<f64> = (0..rows * 2).map(|i| i as f64 / 3.0 - 1.0).collect();
        let batch = Batch::new(&inputs, Targets::Values(&values));
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let mut updates = vec![0.0; parameter_len];
        for settings in &settings {
            infer(
                &spec,
                &params,
                batch,
                settings,
                &mut workspace,
                &mut updates,
            )
            .unwrap();
            for index in 0..parameter_len {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut broken = params.clone();
                    broken[index] = bad;
                    // A second bad value later on: the first is the one named.
                    if index + 5 < parameter_len {
                        broken[index + 5] = f64::NAN;
                    }
                    // A sentinel: the updates are not written before the parameters pass.
                    updates.fill(-7.0);
                    let result = infer(
                        &spec,
                        &broken,
                        batch,
                        settings,
                        &mut workspace,
                        &mut updates,
                    )
                    .map(|_| ());
                    assert_eq!(
                        result,
                        Err(PcError::NonFinite {
                            what: "parameters",
                            index
                        }),
                        "rows {rows}, {:?}, {bad} at {index}",
                        settings.algorithm
                    );
                    assert!(updates.iter().all(|&u| u == -7.0), "updates written");
                }
            }
        }
    }
}

/// A NaN or infinite input is named at its index when the schedule proves the inputs
/// finite from layer 1's first (linear, narrower) op instead of scanning them: every
/// input index x {NaN, +inf, -inf}, with zero inputs, zero weights (`inf * 0` is NaN) and
/// a ReLU after the op, one and three rows; a second bad input later on (the first is
/// named); a bad parameter as well (its error comes first, as in the scan order); and a
/// network whose first op is wider than its input, which scans. The updates are never
/// written before the error.
#[test]
fn non_finite_inputs_are_named_when_proven_from_the_first_op() {
    let narrow = [
        Layer::dense(6, 2, Activation::Relu),
        Layer::dense(2, 2, Activation::Identity),
    ];
    let wide = [
        Layer::dense(6, 7, Activation::Relu),
        Layer::dense(7, 2, Activation::Identity),
    ];
    for layers in [&narrow[..], &wide[..]] {
        let spec = NetworkSpec::new(layers, Loss::Mse);
        // Zero weights on half the inputs: their products are `inf * 0`.
        let params: Vec<f64> = (0..spec.parameter_len())
            .map(|i| {
                if i % 2 == 0 {
                    0.0
                } else {
                    ((i % 5) as f64 - 2.0) / 3.0
                }
            })
            .collect();
        for rows in [1, 3] {
            let clean: Vec<f64> = (0..rows * 6)
                .map(|i| {
                    if i % 3 == 0 {
                        0.0
                    } else {
                        i as f64 / 7.0 - 0.5
                    }
                })
                .collect();
            let targets: Vec<f64> = (0..rows * 2).map(|i| i as f64 / 4.0).collect();
            let mut workspace = vec![0.0; spec.workspace_len(rows)];
            let mut updates = vec![0.0; spec.parameter_len()];
            for settings in [
                Settings::exact(),
                Settings::fixed_pred(0.5, 3),
                Settings::strict(0.1, 3),
            ] {
                let mut call = |params: &[f64], inputs: &[f64], updates: &mut [f64]| {
                    let batch = Batch::new(inputs, Targets::Values(&targets));
                    infer(&spec, params, batch, &settings, &mut workspace, updates).map(|_| ())
                };
                call(&params, &clean, &mut updates).unwrap();
                let mut broken = params.clone();
                broken[3] = f64::NAN;
                for index in 0..rows * 6 {
                    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                        let mut inputs = clean.clone();
                        inputs[index] = bad;
                        if index + 2 < inputs.len() {
                            inputs[index + 2] = f64::NAN;
                        }
                        updates.fill(-7.0);
                        assert_eq!(
                            call(&params, &inputs, &mut updates),
                            Err(PcError::NonFinite {
                                what: "inputs",
                                index
                            }),
                            "layer 1 width {}, rows {rows}, {bad} at {index}",
                            spec.width(1)
                        );
                        assert!(updates.iter().all(|&u| u == -7.0), "updates written");
                        // With a bad parameter too, the parameter is named.
                        assert_eq!(
                            call(&broken, &inputs, &mut updates),
                            Err(PcError::NonFinite {
                                what: "parameters",
                                index: 3
                            })
                        );
                        assert!(updates.iter().all(|&u| u == -7.0), "updates written");
                    }
                }
            }
        }
    }
}

/// Parameter updates that overflow are refused also where the schedule first tries to
/// prove them finite (one row, 8 x 8 layers: the proof reads 16 values per layer, the
/// updates hold 72). `x = 1` (8 inputs), `v_1 = 1e299` in every unit, `y = 0.8` in every
/// output against targets `1e150`: every error is finite, but `dLoss/dW_2 = e_2 v_1^T ~
/// 1e449` is not, so the proof fails and the scan names the first overflowing update,
/// `W_2[0][0]`.
#[test]
fn overflowing_updates_are_refused_where_a_proof_is_tried() {
    let layers = [
        Layer::dense(8, 8, Activation::Identity),
        Layer::dense(8, 8, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let mut params = vec![0.0; spec.parameter_len()];
    for unit in 0..8 {
        params[unit * 8] = 1e299;
    }
    let second = spec.parameter_offset(2);
    for weight in &mut params[second..second + 64] {
        *weight = 1e-300;
    }
    let inputs = [1.0; 8];
    let targets = [1e150; 8];
    let batch = Batch::new(&inputs, Targets::Values(&targets));
    let mut workspace = vec![0.0; spec.workspace_len(1)];
    let mut updates = vec![0.0; spec.parameter_len()];
    for settings in [Settings::exact(), Settings::fixed_pred(1.0, 2)] {
        let result = infer(
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut updates,
        )
        .map(|inference| inference.loss());
        assert_eq!(
            result,
            Err(PcError::NonFinite {
                what: "parameter updates",
                index: second
            }),
            "{:?}",
            settings.algorithm
        );
    }
}
