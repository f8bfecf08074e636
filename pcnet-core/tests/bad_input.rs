//! Bad input: settings, batches and names that are out of range are typed errors that
//! name the field, before anything is written.

use pcnet_core::{Loss, Settings};
// Every test but the names' runs Exact.
#[cfg(feature = "exact")]
use pcnet_core::{infer, Activation, Batch, Layer, NetworkSpec, PcError, Targets};

#[cfg(all(feature = "exact", feature = "fixed-pred", feature = "strict"))]
const WIDTHS: [Layer; 2] = [
    Layer::dense(1, 1, Activation::Identity),
    Layer::dense(1, 1, Activation::Identity),
];

/// Names round-trip, and unknown names are refused.
#[test]
fn algorithm_and_loss_names_round_trip() {
    use pcnet_core::Algorithm;
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

#[cfg(all(feature = "exact", feature = "fixed-pred", feature = "strict"))]
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

#[cfg(feature = "exact")]
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
