//! `evaluate` returns an `Evaluation` whose fields are what they name: `loss` the mean
//! cross-entropy of the network's outputs (computed here from `predict` by the formula)
//! and `accuracy` the share of rows `predict_classes` gets right.

use pcnet_core::{Activation, Loss};
use pcnet_std::{data::Dataset, network::Network, train::evaluate};

#[test]
fn evaluation_fields_are_the_mean_cross_entropy_and_the_share_right() {
    let net = Network::<f64>::mlp("4-8-3", Activation::Tanh, Loss::CrossEntropy, 12).unwrap();
    let rows = 30;
    let inputs: Vec<f64> = (0..rows * 4)
        .map(|i| ((i * 29 + 5) % 19) as f64 / 9.5 - 1.0)
        .collect();
    let labels: Vec<usize> = (0..rows).map(|r| (r * 7) % 3).collect();
    let data = Dataset::new(inputs.clone(), labels.clone(), 4, 3).unwrap();
    let evaluation = evaluate(&net, &data).unwrap();

    // Cross-entropy per row: log(sum_j exp(y_j)) - y_label, as PyTorch's CrossEntropyLoss.
    let outputs = net.predict(&inputs).unwrap();
    let mean_cross_entropy = outputs
        .chunks_exact(3)
        .zip(&labels)
        .map(|(row, &label)| {
            let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            top + row.iter().map(|v| (v - top).exp()).sum::<f64>().ln() - row[label]
        })
        .sum::<f64>()
        / rows as f64;
    // Sums of 30 terms of order 1 in f64, in possibly different orders: 1e-12 relative.
    assert!(
        (evaluation.loss - mean_cross_entropy).abs() <= 1e-12 * mean_cross_entropy.abs(),
        "{} vs {mean_cross_entropy}",
        evaluation.loss
    );

    let right = net
        .predict_classes(&inputs)
        .unwrap()
        .iter()
        .zip(&labels)
        .filter(|(predicted, label)| predicted == label)
        .count();
    assert_eq!(evaluation.accuracy, right as f64 / rows as f64);
}
