//! The safe step size: the curvature of a one-unit energy in closed form, and a step that
//! stays positive when the margin underflows.

#![cfg(feature = "safe-step")]

#[cfg(feature = "cross-entropy")]
use pcnet_core::{infer, Settings};
use pcnet_core::{Activation, Batch, Layer, Loss, NetworkSpec, Targets};

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
    let rule = pcnet_core::SafeStep {
        margin: 1e-300,
        ..pcnet_core::SafeStep::default()
    };
    let curvature =
        pcnet_core::safe_step_size(&spec, &params, batch, &rule, &mut workspace).unwrap();
    assert!(
        curvature.step_size > 0.0 && curvature.step_size < 2.0,
        "{curvature:?}"
    );
}

#[cfg(feature = "cross-entropy")]
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
    let rule = pcnet_core::SafeStep::default();
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
            pcnet_core::safe_step_size(&spec, &params, batch, &rule, &mut workspace).unwrap();
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
