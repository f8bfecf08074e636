//! The relaxation against hand iterations of its update rule.

#![cfg(feature = "strict")]

use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};

const WIDTHS: [Layer; 2] = [
    Layer::dense(1, 1, Activation::Identity),
    Layer::dense(1, 1, Activation::Identity),
];

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
