//! The text of pcnet-core's errors, one test per message class: each names the argument,
//! the value given and the valid range as a user writes it (open and closed ends, no
//! digits of `f64::MAX` for an unbounded end).

// Without the `exact` and `fixed-pred` features the tests that run an algorithm are compiled
// out, and with them the network they share.
#![cfg_attr(
    not(all(feature = "exact", feature = "fixed-pred")),
    allow(dead_code, unused_imports)
)]

use core::ops::Bound;
use pcnet_core::{
    infer, Activation, Adam, Batch, Layer, Loss, NetworkSpec, Optimizer, PcError, Settings, Targets,
};

const LAYERS: [Layer; 1] = [Layer::dense(2, 1, Activation::Identity)];
const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);

/// The error `infer` returns for `settings` on a valid one-row batch.
fn infer_error(settings: &Settings<'_, f64>) -> PcError {
    let params = [0.1; SPEC.parameter_len()];
    let mut workspace = [0.0; SPEC.workspace_len(1)];
    let mut updates = [0.0; SPEC.parameter_len()];
    let batch = Batch::new(&[1.0, -1.0], Targets::Values(&[0.5]));
    match infer(
        &SPEC,
        &params,
        batch,
        settings,
        &mut workspace,
        &mut updates,
    ) {
        Ok(_) => panic!("settings {settings:?} were accepted"),
        Err(error) => error,
    }
}

#[test]
fn lower_bound_only_reads_at_least() {
    let error = Adam::new(-1.0_f64).validate().unwrap_err();
    assert_eq!(
        error,
        PcError::InvalidHyperparameter {
            name: "learning rate",
            value: -1.0,
            min: Bound::Included(0.0),
            max: Bound::Unbounded,
        }
    );
    assert_eq!(
        error.to_string(),
        "learning rate must be at least 0, given -1"
    );
}

// Runs the algorithm, so it needs the `fixed-pred` feature (scripts/test.d/30-no-std.sh
// also tests pcnet-core without it).
#[cfg(feature = "fixed-pred")]
#[test]
fn open_interval_reads_with_parentheses() {
    let error = infer_error(&Settings::fixed_pred(3.0, 5));
    assert_eq!(error.to_string(), "step size must be in (0, 2), given 3");
}

// Runs the algorithm, so it needs the `fixed-pred` feature (scripts/test.d/30-no-std.sh
// also tests pcnet-core without it).
#[cfg(feature = "fixed-pred")]
#[test]
fn excluded_lower_bound_reads_greater_than() {
    let mut settings = Settings::fixed_pred(0.5, 5);
    settings.divergence_ratio = 0.5;
    let error = infer_error(&settings);
    assert_eq!(
        error.to_string(),
        "divergence ratio must be greater than 1, given 0.5"
    );
}

#[test]
fn closed_interval_reads_with_brackets() {
    let error = Adam::new(0.1_f64)
        .with_betas(1.5, 0.999)
        .validate()
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("beta1 must be in [0, 0.99999") && text.ends_with("], given 1.5"),
        "{text}"
    );
}

#[test]
fn no_bound_at_all_reads_finite() {
    let error = PcError::InvalidHyperparameter {
        name: "dampening",
        value: f64::NAN,
        min: Bound::Unbounded,
        max: Bound::Unbounded,
    };
    assert_eq!(error.to_string(), "dampening must be finite, given NaN");
}

#[test]
fn upper_bounds_only_read_at_most_and_less_than() {
    let at_most = PcError::InvalidHyperparameter {
        name: "x",
        value: 4.0,
        min: Bound::Unbounded,
        max: Bound::Included(3.0),
    };
    assert_eq!(at_most.to_string(), "x must be at most 3, given 4");
    let less_than = PcError::InvalidHyperparameter {
        name: "x",
        value: 3.0,
        min: Bound::Unbounded,
        max: Bound::Excluded(3.0),
    };
    assert_eq!(less_than.to_string(), "x must be less than 3, given 3");
    let half_open = PcError::InvalidHyperparameter {
        name: "x",
        value: 3.0,
        min: Bound::Excluded(0.0),
        max: Bound::Included(2.0),
    };
    assert_eq!(half_open.to_string(), "x must be in (0, 2], given 3");
}

// Runs the algorithm, so it needs the `exact` feature (scripts/test.d/30-no-std.sh
// also tests pcnet-core without it).
#[cfg(feature = "exact")]
#[test]
fn other_classes_name_the_argument_and_the_value() {
    let params = [0.1; SPEC.parameter_len()];
    let mut workspace = [0.0; SPEC.workspace_len(1)];
    let mut updates = [0.0; SPEC.parameter_len()];
    let empty = Batch::new(&[], Targets::Values(&[]));
    let error = infer(
        &SPEC,
        &params,
        empty,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .expect_err("an empty batch is refused");
    assert_eq!(error.to_string(), "the batch has no rows");
    let short = [0.1; 2];
    let error = SPEC.check_parameters(&short).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "parameters: expected length {}, given 2",
            SPEC.parameter_len()
        )
    );
    let nan = [1.0, f64::NAN];
    let batch = Batch::new(&nan, Targets::Values(&[0.5]));
    let error = infer(
        &SPEC,
        &params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .expect_err("a NaN input is refused");
    assert_eq!(error.to_string(), "inputs: non-finite value at index 1");
}

/// Every error prints the data a caller acts on.
#[test]
fn every_error_prints_its_data() {
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
