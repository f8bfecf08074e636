//! Divergence: Strict reports it at the iteration a closed form predicts, and a learning
//! step that diverges leaves the parameters and the optimizer untouched.

#![cfg(feature = "strict")]

use pcnet_core::{
    infer, Activation, Batch, Layer, Learner, Loss, NetworkSpec, PcError, Settings, Sgd, Targets,
};

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
