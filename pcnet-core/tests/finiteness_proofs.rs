//! The finiteness proofs (feature `finiteness-proofs`): a non-finite parameter, input or
//! parameter update is named at the same index whether the schedule proves the values
//! finite from the forward pass or scans them. Without the feature every value is
//! scanned, and the same errors must come out, so these tests run in both builds.

#![cfg(all(feature = "exact", feature = "fixed-pred", feature = "strict"))]

use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, PcError, Settings, Targets};

#[cfg(feature = "conv")]
/// A NaN or infinite parameter is named at its index whether the schedule proves the
/// parameters finite from the forward pass (few rows: `rows * (activations - inputs) <
/// parameters`) or scans them (many rows). The network is built to defeat a careless
/// proof: a convolution whose corner taps meet only zero padding (no output sees those
/// weights), ReLU layers that map NaN and `-inf` pre-activations to outputs of their own,
/// and inputs and activations that are exactly zero (`inf * 0` is NaN, not zero).
#[test]
fn non_finite_parameters_are_named_whether_proven_or_scanned() {
    use pcnet_core::{Conv2d, ImageShape, Op};
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
