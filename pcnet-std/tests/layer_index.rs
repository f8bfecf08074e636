//! Layer indices: numbered 1 to depth everywhere, and an index outside that range (or a
//! layer without a weight) is an error that names the index and the valid range, by text.

use pcnet_core::{Activation, Layer, Loss, Op};
#[cfg(feature = "nalgebra")]
use pcnet_std::nalgebra::{DMatrix, DVector};
use pcnet_std::network::Network;
use pcnet_std::Error;

fn three_layers() -> Network<f64> {
    Network::<f64>::mlp("3-4-5-2", Activation::Tanh, Loss::Mse, 9).expect("a valid network")
}

#[test]
fn layers_are_numbered_from_one_to_depth() {
    let net = three_layers();
    assert_eq!(net.depth(), 3);
    let numbered: Vec<usize> = net.weight_ops().iter().map(|at| at.layer).collect();
    assert_eq!(numbered, [1, 2, 3]);
    for layer in 1..=3 {
        let at = net.weight_op(layer).unwrap();
        assert_eq!(
            at.inputs,
            net.spec().width(layer - 1),
            "layer {layer} reads v_(l-1)"
        );
        assert_eq!(
            at.outputs,
            net.spec().width(layer),
            "layer {layer} writes v_l"
        );
        assert_eq!(
            at.torch_prefix(),
            format!("{}.0", layer - 1),
            "PyTorch counts from 0"
        );
        #[cfg(feature = "nalgebra")]
        assert_eq!(net.weight(layer).unwrap().shape(), (at.outputs, at.inputs));
    }
}

#[cfg(feature = "nalgebra")]
#[test]
fn every_accessor_names_an_index_out_of_range() {
    let mut net = three_layers();
    let before = net.parameters().to_vec();
    for layer in [0, 4, usize::MAX] {
        let expected =
            format!("there is no layer {layer}: this network's layers are numbered 1 to 3");
        let errors = [
            net.weight_op(layer).map(|_| ()).unwrap_err(),
            net.weight(layer).map(|_| ()).unwrap_err(),
            net.bias(layer).map(|_| ()).unwrap_err(),
            net.set_weight(layer, &DMatrix::zeros(4, 3)).unwrap_err(),
            net.set_bias(layer, &DVector::zeros(4)).unwrap_err(),
        ];
        for error in errors {
            assert!(matches!(error, Error::NoSuchLayer { layer: l, depth: 3 } if l == layer));
            assert_eq!(error.to_string(), expected);
        }
    }
    assert_eq!(
        net.parameters(),
        &before[..],
        "no write on a rejected index"
    );
}

#[test]
fn a_one_layer_network_says_so() {
    let net = Network::<f32>::mlp("2-1", Activation::Identity, Loss::Mse, 1).unwrap();
    assert_eq!(
        net.weight_op(2).unwrap_err().to_string(),
        "there is no layer 2: this network's only layer is layer 1"
    );
}

#[test]
fn a_layer_without_a_weight_is_named() {
    let activation_only = Layer::from_ops(&[Op::Activation(Activation::Tanh)]).unwrap();
    let net = Network::<f64>::builder(3)
        .dense(4, Activation::Relu)
        .layer(activation_only)
        .dense(2, Activation::Identity)
        .build()
        .unwrap();
    let error = net.weight_op(2).unwrap_err();
    assert!(matches!(error, Error::NoWeight { layer: 2 }));
    assert_eq!(
        error.to_string(),
        "layer 2 has no linear or convolution op, so no weight or bias"
    );
    assert_eq!(
        (
            net.weight_op(3).unwrap().outputs,
            net.weight_op(3).unwrap().inputs
        ),
        (2, 4)
    );
}

#[cfg(feature = "nalgebra")]
#[test]
fn a_wrong_shape_names_the_layer_it_was_for() {
    let mut net = three_layers();
    let error = net.set_weight(2, &DMatrix::zeros(4, 5)).unwrap_err();
    assert!(matches!(
        error,
        Error::WeightShape {
            layer: 2,
            expected: (5, 4),
            given: (4, 5)
        }
    ));
    assert_eq!(
        error.to_string(),
        "layer 2's weight is 5 x 4 (out x in), given 4 x 5"
    );
}
