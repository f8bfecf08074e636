//! The paper's convolutional networks as named models (`pc-bench speed --model NAME`,
//! and `reproduce --model paper-mnist-cnn` on the bundled digits), and the useful-FLOP
//! count of one call on any network.
//!
//! * `paper-mnist-cnn` (Rosenbaum 2022, MNIST): `[conv(1->10, 3x3), relu, max-pool 2]
//!   [conv(10->5, 3x3), relu, flatten] [linear 605->50, relu] [linear 50->30, relu]
//!   [linear 30->10]` on `1 x 28 x 28` inputs.
//! * `paper-cifar-cnn` (CIFAR-10): `[conv(3->64, 3x3, pad 1), relu] [conv(64->128, 3x3,
//!   pad 1), relu, max-pool 2] [conv(128->256, 3x3, pad 1), relu, max-pool 2, flatten]
//!   [linear 16384->256, relu] [linear 256->256, relu] [linear 256->10]` on `3 x 32 x 32`.
//!
//! Both use cross-entropy. [`named_model`] returns the layers and the input width;
//! `pcnet_std::network::Network::initialised` draws their parameters as PyTorch does.
//!
//! ```
//! let model = pcnet_bench::models::named_model("paper-mnist-cnn").unwrap();
//! let spec = model.spec();
//! assert_eq!(spec.input_len(), 784);
//! assert_eq!(spec.width(2), 605);
//! assert_eq!(spec.output_len(), 10);
//! spec.validate().unwrap();
//! ```

use pcnet_core::{Activation, Algorithm, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d};

/// The names [`named_model`] knows.
pub const MODEL_NAMES: [&str; 2] = ["paper-mnist-cnn", "paper-cifar-cnn"];

/// A named network: its layers, input width and loss.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedModel {
    /// The name.
    pub name: &'static str,
    /// The layers.
    pub layers: Vec<Layer>,
    /// Features per input sample (`C * H * W`).
    pub input_len: usize,
    /// The loss.
    pub loss: Loss,
}

impl NamedModel {
    /// The network description.
    pub fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss).with_input_len(self.input_len)
    }
}

fn layer(ops: &[Op]) -> Layer {
    // The chains below have at most 4 ops, within MAX_OPS_PER_LAYER.
    Layer::from_ops(ops).unwrap_or_else(|_| unreachable!("op chains here are short"))
}

const RELU: Op = Op::Activation(Activation::Relu);

/// The layers of the paper's MNIST CNN (L = 5) on `side x side` one-channel images:
/// conv(1->10, 3x3) + ReLU + max-pool 2, conv(10->5, 3x3) + ReLU + flatten, then
/// 50-30-10 (ReLU, ReLU, linear). Both convolutions pad by `padding` (0 on MNIST's 28x28;
/// 1 on the 8x8 digits, so the shapes fit: 8 -> 8 -> 4 -> 4, 80 features).
///
/// ```
/// let layers = pcnet_bench::models::paper_mnist_cnn_layers(8, 1);
/// let spec = pcnet_core::NetworkSpec::new(&layers, pcnet_core::Loss::Mse).with_input_len(64);
/// assert_eq!(spec.width(2), 80);
/// ```
pub fn paper_mnist_cnn_layers(side: usize, padding: usize) -> Vec<Layer> {
    let conv1 =
        Conv2d::new(ImageShape::new(1, side, side), 10, [3, 3]).with_padding([padding, padding]);
    let pool = Pool2d::new(conv1.output_shape(), [2, 2]);
    let conv2 = Conv2d::new(pool.output_shape(), 5, [3, 3]).with_padding([padding, padding]);
    let flat = conv2.output_shape().len();
    vec![
        layer(&[Op::Conv2d(conv1), RELU, Op::MaxPool2d(pool)]),
        layer(&[Op::Conv2d(conv2), RELU, Op::Flatten]),
        Layer::dense(flat, 50, Activation::Relu),
        Layer::dense(50, 30, Activation::Relu),
        Layer::dense(30, 10, Activation::Identity),
    ]
}

/// `paper-mnist-cnn`.
pub fn paper_mnist_cnn() -> NamedModel {
    NamedModel {
        name: "paper-mnist-cnn",
        layers: paper_mnist_cnn_layers(28, 0),
        input_len: 28 * 28,
        loss: Loss::CrossEntropy,
    }
}

/// `paper-cifar-cnn`.
pub fn paper_cifar_cnn() -> NamedModel {
    let conv1 = Conv2d::new(ImageShape::new(3, 32, 32), 64, [3, 3]).with_padding([1, 1]);
    let conv2 = Conv2d::new(conv1.output_shape(), 128, [3, 3]).with_padding([1, 1]);
    let pool2 = Pool2d::new(conv2.output_shape(), [2, 2]);
    let conv3 = Conv2d::new(pool2.output_shape(), 256, [3, 3]).with_padding([1, 1]);
    let pool3 = Pool2d::new(conv3.output_shape(), [2, 2]);
    let flat = pool3.output_shape().len();
    NamedModel {
        name: "paper-cifar-cnn",
        layers: vec![
            layer(&[Op::Conv2d(conv1), RELU]),
            layer(&[Op::Conv2d(conv2), RELU, Op::MaxPool2d(pool2)]),
            layer(&[Op::Conv2d(conv3), RELU, Op::MaxPool2d(pool3), Op::Flatten]),
            Layer::dense(flat, 256, Activation::Relu),
            Layer::dense(256, 256, Activation::Relu),
            layer(&[Op::Linear {
                inputs: 256,
                outputs: 10,
            }]),
        ],
        input_len: 3 * 32 * 32,
        loss: Loss::CrossEntropy,
    }
}

/// Looks a model up by name (see [`MODEL_NAMES`]).
pub fn named_model(name: &str) -> Option<NamedModel> {
    match name {
        "paper-mnist-cnn" => Some(paper_mnist_cnn()),
        "paper-cifar-cnn" => Some(paper_cifar_cnn()),
        _ => None,
    }
}

/// `2 * batch * (multiply-adds)` of every parametrised op of each layer's forward pass
/// (a conv op: `out * in * kh * kw` per output position; a linear op: `in * out`).
pub fn layer_products(spec: &NetworkSpec<'_>, batch: usize) -> Vec<f64> {
    spec.layers()
        .iter()
        .map(|layer| {
            layer
                .ops()
                .iter()
                .map(|op| match *op {
                    Op::Linear { inputs, outputs } => (inputs * outputs) as f64,
                    Op::Conv2d(conv) => (conv.weight_len() * conv.output_shape().plane()) as f64,
                    _ => 0.0,
                })
                .sum::<f64>()
                * 2.0
                * batch as f64
        })
        .collect()
}

/// Useful floating-point operations of one call, counted as `pc-bench speed` counts them
/// for dense models (`P_l` the forward products of layer `l`, `S` their sum; the input
/// VJP and the parameter VJP of a layer cost what its forward pass costs): exact
/// `3 S - P_1`, fixed-pred `2 S + n (S - P_1)`, strict `2 S + 2 n (S - P_1)`.
pub fn useful_flops(spec: &NetworkSpec<'_>, batch: usize, algorithm: Algorithm, n: usize) -> f64 {
    let products = layer_products(spec, batch);
    let all: f64 = products.iter().sum();
    let above_first = all - products.first().copied().unwrap_or(0.0);
    let n = n as f64;
    match algorithm {
        Algorithm::Exact => 3.0 * all - (all - above_first),
        Algorithm::FixedPred => 2.0 * all + n * above_first,
        Algorithm::Strict => 2.0 * all + 2.0 * n * above_first,
        // An algorithm this FLOP model does not know.
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_models_have_the_stated_shapes() {
        let mnist = paper_mnist_cnn();
        let spec = mnist.spec();
        spec.validate().unwrap();
        let widths: Vec<usize> = (0..=spec.depth()).map(|l| spec.width(l)).collect();
        assert_eq!(widths, [784, 10 * 13 * 13, 605, 50, 30, 10]);
        assert_eq!(
            spec.parameter_len(),
            (10 * 9 + 10) + (5 * 10 * 9 + 5) + (605 * 50 + 50) + (50 * 30 + 30) + (30 * 10 + 10)
        );
        let cifar = paper_cifar_cnn();
        let spec = cifar.spec();
        spec.validate().unwrap();
        let widths: Vec<usize> = (0..=spec.depth()).map(|l| spec.width(l)).collect();
        assert_eq!(widths, [3072, 64 * 1024, 128 * 256, 16384, 256, 256, 10]);
        let network = pcnet_std::network::Network::<f32>::initialised(
            cifar.layers.clone(),
            cifar.loss,
            cifar.input_len,
            1,
        )
        .unwrap();
        assert_eq!(network.parameters().len(), spec.parameter_len());
        assert!(named_model("paper-mnist-cnn").is_some());
        assert!(named_model("784-256-10").is_none());
    }

    #[test]
    fn flops_of_a_dense_model_match_the_dense_count() {
        // 4-3-2 dense, batch 5: P = [2*5*12, 2*5*6] = [120, 60], S = 180.
        let layers = [
            Layer::dense(4, 3, Activation::Relu),
            Layer::dense(3, 2, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        assert_eq!(
            useful_flops(&spec, 5, Algorithm::Exact, 0),
            3.0 * 180.0 - 120.0
        );
        assert_eq!(
            useful_flops(&spec, 5, Algorithm::FixedPred, 4),
            360.0 + 4.0 * 60.0
        );
        assert_eq!(
            useful_flops(&spec, 5, Algorithm::Strict, 4),
            360.0 + 8.0 * 60.0
        );
    }
}
