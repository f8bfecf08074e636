//! `pcnet_std::nalgebra` is the nalgebra the network API speaks: matrices built through the
//! re-export go into `Network::set_weight` and come back from `Network::weight`, and the
//! network's output equals the same layers computed with nalgebra directly.
// The nalgebra API: only with the `nalgebra` feature (a default).
#![cfg(feature = "nalgebra")]

use pcnet_core::{Activation, Loss, Settings};
use pcnet_std::nalgebra::{DMatrix, DVector};
use pcnet_std::network::Network;

#[test]
fn set_weight_then_weight_round_trips_a_reexported_dmatrix() {
    let mut net = Network::<f64>::mlp("3-4-2", Activation::Tanh, Loss::Mse, 5).unwrap();
    let weight = DMatrix::from_fn(4, 3, |row, col| 0.1 * row as f64 - 0.2 * col as f64);
    net.set_weight(1, &weight).unwrap();
    assert_eq!(net.weight(1).unwrap(), weight);
}

#[test]
fn set_weight_rejects_a_transposed_matrix_and_keeps_the_parameters() {
    let mut net = Network::<f64>::mlp("3-4-2", Activation::Tanh, Loss::Mse, 5).unwrap();
    let before = net.parameters().to_vec();
    let transposed = DMatrix::<f64>::zeros(3, 4);
    assert!(net.set_weight(1, &transposed).is_err());
    assert_eq!(net.parameters(), &before[..]);
}

#[test]
fn network_output_matches_the_layers_computed_with_nalgebra() {
    let mut net = Network::<f64>::mlp("3-4-2", Activation::Tanh, Loss::Mse, 5).unwrap();
    let w1 = DMatrix::from_fn(4, 3, |r, c| 0.3 * (r as f64 + 1.0) - 0.25 * c as f64);
    let w2 = DMatrix::from_fn(2, 4, |r, c| 0.2 * c as f64 - 0.4 * r as f64 + 0.1);
    net.set_weight(1, &w1).unwrap();
    net.set_weight(2, &w2).unwrap();
    let (b1, b2) = (net.bias(1).unwrap(), net.bias(2).unwrap());

    let x = [0.5, -1.0, 0.25];
    let expected = &w2 * (&w1 * DVector::from_column_slice(&x) + b1).map(f64::tanh) + b2;
    let targets = [0.0, 0.0];
    let out = net
        .updates(
            &x,
            pcnet_core::Targets::Values(&targets),
            &Settings::exact(),
        )
        .unwrap()
        .output;
    for (got, want) in out.iter().zip(expected.iter()) {
        // Two small products in f64: agreement to a few ulps of values of order 1.
        assert!((got - want).abs() <= 1e-12, "{got} vs {want}");
    }
}
