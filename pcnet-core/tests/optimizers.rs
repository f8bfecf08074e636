//! The optimizers against their textbook definitions, and their range checks.

/// Adam's decay rates must lie in `[0, 1)`: 1 itself (no forgetting, a bias correction
/// dividing by zero) is refused, for each of the two.
#[test]
fn adam_refuses_decay_rates_of_one() {
    use pcnet_core::{Adam, AdamW, Optimizer};
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
    use pcnet_core::{Adam, Optimizer};
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
