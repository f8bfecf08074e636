//! `Network::predict` is the feedforward pass: its outputs are the `output` of
//! `Network::updates(.., Settings::exact())` (backprop's forward pass), for dense and
//! convolutional networks in both precisions; `predict_classes` is the argmax of each of
//! those rows; bad inputs are errors that leave nothing half done.

use pcnet_core::{
    Activation, Conv2d, ImageShape, Layer, Loss, Op, PcError, Pool2d, Settings, Targets,
};
use pcnet_std::network::Network;
use pcnet_std::Error;

/// Deterministic inputs in [-1, 1).
fn inputs(len: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 37 + 11) % 23) as f64 / 11.5 - 1.0)
        .collect()
}

/// The feedforward output as `updates` reports it, with all-zero MSE-style targets or
/// class 0 for cross-entropy (the targets do not change the forward pass).
fn reference_output<T: pcnet_core::Scalar>(net: &Network<T>, x: &[T]) -> Vec<T>
where
    pcnet_std::fast::Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let rows = x.len() / net.input_len();
    let targets = net.targets(&vec![0; rows]).unwrap();
    net.updates(x, targets.as_targets(), &Settings::exact())
        .unwrap()
        .output
}

/// Largest `|a - b| / max(1, |b|)`.
fn max_relative_difference<T: pcnet_core::Scalar>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&a, &b)| {
            let (a, b) = (a.to_f64(), b.to_f64());
            (a - b).abs() / b.abs().max(1.0)
        })
        .fold(0.0, f64::max)
}

fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

// The two paths run the same products, possibly with different blockings (the batch
// runner may pack weights), so they agree to summation-order rounding: a few ulps times the
// fan-in (<= 64 here), bounded by 1e-12 in f64 and 1e-5 in f32 for values of order 1.

#[test]
fn dense_f64_predict_matches_the_exact_updates_output() {
    let net = Network::<f64>::mlp("6-16-12-4", Activation::Tanh, Loss::CrossEntropy, 9).unwrap();
    let x = inputs(7 * 6);
    let got = net.predict(&x).unwrap();
    let want = reference_output(&net, &x);
    assert!(max_relative_difference(&got, &want) <= 1e-12);
}

#[test]
fn dense_f32_predict_matches_the_exact_updates_output() {
    let net = Network::<f32>::mlp("6-64-3", Activation::Relu, Loss::Mse, 2).unwrap();
    let x: Vec<f32> = inputs(33 * 6).into_iter().map(|v| v as f32).collect();
    let got = net.predict(&x).unwrap();
    let want = reference_output(&net, &x);
    assert!(max_relative_difference(&got, &want) <= 1e-5);
}

#[test]
fn convolutional_predict_matches_the_exact_updates_output() {
    const IMAGE: ImageShape = ImageShape::new(1, 8, 8);
    const CONV1: Conv2d = Conv2d::new(IMAGE, 3, [3, 3]);
    const POOL: Pool2d = Pool2d::new(CONV1.output_shape(), [2, 2]);
    const CONV2: Conv2d = Conv2d::new(POOL.output_shape(), 2, [2, 2]).with_padding([1, 1]);
    let mut net = Network::<f64>::builder(IMAGE.len())
        .layer(
            Layer::from_ops(&[
                Op::Conv2d(CONV1),
                Op::Activation(Activation::Relu),
                Op::MaxPool2d(POOL),
            ])
            .unwrap(),
        )
        .layer(
            Layer::from_ops(&[
                Op::Conv2d(CONV2),
                Op::Activation(Activation::Tanh),
                Op::Flatten,
            ])
            .unwrap(),
        )
        .dense(4, Activation::Identity)
        .loss(Loss::CrossEntropy)
        .seed(4)
        .build()
        .unwrap();
    let params: Vec<f64> = (0..net.parameters().len())
        .map(|i| (((i * 2654435761) % 1000) as f64 / 1000.0 - 0.5) * 0.6)
        .collect();
    net.set_parameters(&params).unwrap();
    let x = inputs(3 * IMAGE.len());
    let got = net.predict(&x).unwrap();
    let want = reference_output(&net, &x);
    assert_eq!(got.len(), 3 * 4);
    assert!(max_relative_difference(&got, &want) <= 1e-12);
}

#[test]
fn predict_classes_is_the_argmax_of_each_reference_row() {
    let net = Network::<f64>::mlp("5-10-6", Activation::Tanh, Loss::CrossEntropy, 1).unwrap();
    let x = inputs(20 * 5);
    let want: Vec<usize> = reference_output(&net, &x)
        .chunks_exact(6)
        .map(argmax)
        .collect();
    assert_eq!(net.predict_classes(&x).unwrap(), want);
}

#[test]
fn predict_needs_no_targets_and_agrees_with_any_targets() {
    // The forward pass does not read targets: two different target sets give one output.
    let net = Network::<f64>::mlp("3-5-2", Activation::Tanh, Loss::Mse, 6).unwrap();
    let x = inputs(2 * 3);
    let a = net
        .updates(&x, Targets::Values(&[0.0; 4]), &Settings::exact())
        .unwrap()
        .output;
    let b = net
        .updates(
            &x,
            Targets::Values(&[5.0, -3.0, 1.0, 2.0]),
            &Settings::exact(),
        )
        .unwrap()
        .output;
    assert_eq!(a, b);
    assert!(max_relative_difference(&net.predict(&x).unwrap(), &a) <= 1e-12);
}

#[test]
fn bad_inputs_are_errors() {
    let mut net = Network::<f64>::mlp("3-5-2", Activation::Tanh, Loss::Mse, 6).unwrap();
    assert!(matches!(
        net.predict(&[]),
        Err(Error::Pc(PcError::EmptyBatch))
    ));
    assert!(matches!(
        net.predict(&[1.0, 2.0, 3.0, 4.0]),
        Err(Error::Pc(PcError::LengthMismatch {
            what: "inputs",
            given: 4,
            ..
        }))
    ));
    assert!(matches!(
        net.predict_classes(&[1.0, f64::NAN, 3.0]),
        Err(Error::Pc(PcError::NonFinite {
            what: "inputs",
            index: 1
        }))
    ));
    assert!(matches!(
        net.predict(&[1.0, 2.0, f64::INFINITY]),
        Err(Error::Pc(PcError::NonFinite {
            what: "inputs",
            index: 2
        }))
    ));
    net.parameters_mut()[4] = f64::NAN;
    assert!(matches!(
        net.predict(&[1.0, 2.0, 3.0]),
        Err(Error::Pc(PcError::NonFinite {
            what: "parameters",
            index: 4
        }))
    ));
}
