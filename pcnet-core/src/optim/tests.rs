//! Optimizer updates against closed forms written independently of the implementation
//! (PyTorch's documented algorithms evaluated by hand or in their textbook form).

use super::*;
use std::vec::Vec;

fn run<O: Optimizer<f64>>(mut optimizer: O, start: f64, gradients: &[f64]) -> (f64, O) {
    let mut params = [start];
    let mut state = std::vec![0.0; O::state_len(1)];
    for &g in gradients {
        optimizer.step(&mut params, &[g], &mut state).unwrap();
    }
    (params[0], optimizer)
}

/// Momentum 0.9, gradient 1 three times: buffers 1, 1.9, 2.71, so p = 1 - 0.1 * 5.61.
#[test]
fn sgd_momentum_matches_hand_computation() {
    let (p, sgd) = run(Sgd::new(0.1).with_momentum(0.9), 1.0, &[1.0, 1.0, 1.0]);
    assert!((p - (1.0 - 0.1 * 5.61)).abs() < 1e-15);
    assert_eq!(sgd.steps, 3);
}

/// Nesterov uses g + mu * b: 1.9, 2.71, 3.439 for buffers 1, 1.9, 2.71.
#[test]
fn sgd_nesterov_matches_hand_computation() {
    let (p, _) = run(Sgd::new(0.1).with_nesterov(0.9), 1.0, &[1.0, 1.0, 1.0]);
    assert!((p - (1.0 - 0.1 * (1.9 + 2.71 + 3.439))).abs() < 1e-15);
}

/// Weight decay adds wd * p to the gradient; dampening scales later gradients by (1 - d).
#[test]
fn sgd_weight_decay_and_dampening() {
    let (p, _) = run(Sgd::new(0.5).with_weight_decay(0.1), 2.0, &[0.0]);
    assert_eq!(p, 2.0 - 0.5 * 0.2);
    // Buffers: 1, then 0.9 * 1 + 0.5 * 1 = 1.4.
    let (p, _) = run(
        Sgd::new(0.1).with_momentum(0.9).with_dampening(0.5),
        0.0,
        &[1.0, 1.0],
    );
    assert!((p + 0.1 * 2.4).abs() < 1e-15);
}

/// Adam in its textbook form: m_t, v_t as exponential averages, bias-corrected, then
/// p -= lr * mhat / (sqrt(vhat) + eps). The implementation uses PyTorch's algebraically
/// equal arrangement; they agree to a few ulps (1e-14 relative).
#[test]
fn adam_matches_textbook_form() {
    let gradients = [0.3, -1.2, 0.05, 2.0, -0.7];
    let (lr, b1, b2, eps, wd) = (0.01, 0.8, 0.99, 1e-6, 0.1);
    let (p, _) = run(
        Adam::new(lr)
            .with_betas(b1, b2)
            .with_epsilon(eps)
            .with_weight_decay(wd),
        0.5,
        &gradients,
    );
    let (mut expected, mut m, mut v) = (0.5_f64, 0.0, 0.0);
    for (t, &g) in gradients.iter().enumerate() {
        let g = g + wd * expected;
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let mhat = m / (1.0 - b1.powi(t as i32 + 1));
        let vhat = v / (1.0 - b2.powi(t as i32 + 1));
        expected -= lr * mhat / (vhat.sqrt() + eps);
    }
    assert!((p - expected).abs() <= 1e-14 * expected.abs());
}

/// AdamW decays the parameter by (1 - lr wd) before the Adam step, without touching the
/// gradient; PyTorch's defaults are lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 1e-2.
#[test]
fn adamw_matches_textbook_form_with_defaults() {
    let gradients = [1.0, -0.5, 0.25];
    let (p, _) = run(AdamW::new(1e-3), 3.0, &gradients);
    let (lr, b1, b2, eps, wd) = (1e-3, 0.9, 0.999, 1e-8, 1e-2);
    let (mut expected, mut m, mut v) = (3.0_f64, 0.0, 0.0);
    for (t, &g) in gradients.iter().enumerate() {
        expected *= 1.0 - lr * wd;
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let mhat = m / (1.0 - b1.powi(t as i32 + 1));
        let vhat = v / (1.0 - b2.powi(t as i32 + 1));
        expected -= lr * mhat / (vhat.sqrt() + eps);
    }
    assert!((p - expected).abs() <= 1e-14 * expected.abs());
}

/// A step that would produce a non-finite parameter writes nothing: parameters, state and
/// step count are as before.
#[test]
fn overflowing_step_writes_nothing() {
    let mut sgd = Sgd::new(1e308).with_momentum(0.5);
    let mut params = [1.0, 2.0];
    let mut state = [0.25, 0.5];
    sgd.steps = 4;
    let before = (params, state);
    let error = sgd.step(&mut params, &[0.1, 10.0], &mut state).unwrap_err();
    assert_eq!(
        error,
        PcError::NonFinite {
            what: "new parameters",
            index: 1
        }
    );
    assert_eq!((params, state), before);
    assert_eq!(sgd.steps, 4);
    assert_eq!(
        sgd.step(&mut params, &[f64::NAN, 0.0], &mut state),
        Err(PcError::NonFinite {
            what: "gradients",
            index: 0
        })
    );
    assert_eq!((params, state), before);
}

/// Bad hyperparameters and state lengths are errors, not panics.
#[test]
fn bad_hyperparameters_are_errors() {
    let mut params = [1.0_f64];
    let cases: Vec<Result<(), PcError>> = std::vec![
        Sgd::new(-1.0).step(&mut params, &[1.0], &mut [0.0]),
        Sgd::new(f64::NAN).step(&mut params, &[1.0], &mut [0.0]),
        Sgd::new(0.1)
            .with_nesterov(0.0)
            .step(&mut params, &[1.0], &mut [0.0]),
        Adam::new(0.1)
            .with_betas(1.0, 0.9)
            .step(&mut params, &[1.0], &mut [0.0, 0.0]),
        Adam::new(0.1).step(&mut params, &[1.0], &mut [0.0]),
        AdamW::new(0.1)
            .with_weight_decay(-1.0)
            .step(&mut params, &[1.0], &mut [0.0, 0.0]),
    ];
    for case in cases {
        assert!(case.is_err());
    }
    assert_eq!(params, [1.0]);
}
