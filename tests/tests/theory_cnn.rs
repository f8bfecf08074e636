//! The theory suite's statements on random small convolutional networks: op-chain layers
//! of conv2d, activations, max/avg pooling and flatten, then dense layers, as Torch2PC
//! users build them (THEORY.md / DESIGN.md §3 state each fact; the dense versions are in
//! theory.rs).
//!
//! Networks come from [`build`]: each case draws a seed, and the seed fixes every shape
//! choice (channels 1-3, images 4x4 to 8x8, kernels 1-3, strides 1-2, padding 0-1, an
//! optional max or average pool, one or two conv layers, one or two dense layers, every
//! activation, MSE or cross-entropy, 1-3 rows) and every number. A failing case prints its
//! seed; `build(seed, smooth)` rebuilds the network. The seeds of a run are fixed (the
//! suite is deterministic); `PROPTEST_CASES=N` scales every test's case count by
//! `N / 256`, as in theory.rs, and `CNN_SEED=S` shifts the seeds for a fresh sample.
//!
//! Conventions: `rel(a, b) = |a - b| / |b|` in the Euclidean norm.

use pc_core::stability::{safe_step_size, SafeStep};
use pc_core::{
    infer, Activation, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d, Settings,
    Targets,
};

/// The seeds of a test: `default_cases` of them, scaled by `PROPTEST_CASES / 256`, from
/// a per-test base shifted by `CNN_SEED`.
fn seeds(test: u64, default_cases: u32) -> impl Iterator<Item = u64> {
    let scale = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(1.0, |cases| cases / 256.0);
    let shift: u64 = std::env::var("CNN_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let cases = ((default_cases as f64 * scale).round() as u64).max(1);
    let mut stream = Stream(test.wrapping_mul(0x5851_F42D_4C95_7F2D) ^ shift);
    (0..cases).map(move |_| stream.next())
}

/// splitmix64: a seed to a stream of uniform numbers.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `low..=high`.
    fn pick(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }
    /// Uniform in `[-1, 1]`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A random CNN with its parameters and one batch.
#[derive(Clone, Debug)]
struct Cnn {
    seed: u64,
    layers: Vec<Layer>,
    input_len: usize,
    loss: Loss,
    params: Vec<f64>,
    rows: usize,
    inputs: Vec<f64>,
    values: Vec<f64>,
    classes: Vec<usize>,
}

impl Cnn {
    fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss).with_input_len(self.input_len)
    }
    fn batch(&self) -> Batch<'_, f64> {
        let targets = match self.loss {
            Loss::CrossEntropy => Targets::Classes(&self.classes),
            _ => Targets::Values(&self.values),
        };
        Batch::new(&self.inputs, targets)
    }
    fn depth(&self) -> usize {
        self.layers.len()
    }
    /// The parameters of layer `l` (1-based) within a flat slice.
    fn layer_params<'a>(&self, l: usize, all: &'a [f64]) -> &'a [f64] {
        let offset = self.spec().parameter_offset(l);
        &all[offset..offset + self.layers[l - 1].parameter_len()]
    }
}

/// A conv op (and the image it makes) that fits `image`, drawn from `stream`.
fn draw_conv(stream: &mut Stream, image: ImageShape) -> Conv2d {
    loop {
        let kernel = [stream.pick(1, 3), stream.pick(1, 3)];
        let conv = Conv2d::new(image, stream.pick(1, 3), kernel)
            .with_stride([stream.pick(1, 2), stream.pick(1, 2)])
            .with_padding([stream.pick(0, 1), stream.pick(0, 1)]);
        if !conv.output_shape().is_empty() {
            return conv;
        }
    }
}

/// The networks: `smooth` restricts activations to tanh, sigmoid, softplus and identity
/// and pooling to averages (an energy with a continuous gradient).
fn build(seed: u64, smooth: bool) -> Cnn {
    let mut stream = Stream(seed);
    let activations: &[Activation] = if smooth {
        &[
            Activation::Identity,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softplus,
        ]
    } else {
        &[
            Activation::Identity,
            Activation::Relu,
            Activation::LEAKY_RELU,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Softplus,
        ]
    };
    let activation = |stream: &mut Stream| activations[stream.pick(0, activations.len() - 1)];
    let mut image = ImageShape::new(stream.pick(1, 2), stream.pick(4, 8), stream.pick(4, 8));
    let input_len = image.len();
    let mut layers = Vec::new();
    let conv_layers = stream.pick(1, 2);
    for c in 0..conv_layers {
        let conv = draw_conv(&mut stream, image);
        let mut ops = vec![Op::Conv2d(conv), Op::Activation(activation(&mut stream))];
        image = conv.output_shape();
        // Pool when a 2x2 window fits: none, max or average (average only when smooth).
        let pool_kind = if smooth {
            stream.pick(0, 1) * 2
        } else {
            stream.pick(0, 2)
        };
        if pool_kind > 0 && image.height >= 2 && image.width >= 2 {
            let pool =
                Pool2d::new(image, [2, 2]).with_stride([stream.pick(1, 2), stream.pick(1, 2)]);
            ops.push(if pool_kind == 1 {
                Op::MaxPool2d(pool)
            } else {
                Op::AvgPool2d(pool)
            });
            image = pool.output_shape();
        }
        if c + 1 == conv_layers && stream.pick(0, 1) == 1 {
            ops.push(Op::Flatten);
        }
        layers.push(Layer::from_ops(&ops).unwrap());
    }
    let mut width = image.len();
    let dense_layers = stream.pick(1, 2);
    let loss = if stream.pick(0, 1) == 0 {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    for d in 0..dense_layers {
        let last = d + 1 == dense_layers;
        let outputs = if last {
            stream.pick(2, 5)
        } else {
            stream.pick(2, 8)
        };
        let mut ops = Vec::new();
        if d == 0 {
            ops.push(Op::Flatten);
        }
        ops.push(Op::Linear {
            inputs: width,
            outputs,
        });
        ops.push(Op::Activation(if last {
            Activation::Identity
        } else {
            activation(&mut stream)
        }));
        layers.push(Layer::from_ops(&ops).unwrap());
        width = outputs;
    }
    let rows = stream.pick(1, 3);
    // Parameters: weights uniform with variance 1 / fan_in, biases in [-0.5, 0.5].
    let mut params = Vec::new();
    for layer in &layers {
        for op in layer.ops() {
            let (fan_in, weights, biases) = match *op {
                Op::Conv2d(conv) => (conv.filter_len(), conv.weight_len(), conv.out_channels),
                Op::Linear { inputs, outputs } => (inputs, inputs * outputs, outputs),
                _ => continue,
            };
            let bound = (3.0 / fan_in as f64).sqrt();
            params.extend((0..weights).map(|_| bound * stream.unit()));
            params.extend((0..biases).map(|_| 0.5 * stream.unit()));
        }
    }
    let inputs = (0..rows * input_len).map(|_| stream.unit()).collect();
    let values = (0..rows * width).map(|_| stream.unit()).collect();
    let classes = (0..rows).map(|_| stream.pick(0, width - 1)).collect();
    let net = Cnn {
        seed,
        layers,
        input_len,
        loss,
        params,
        rows,
        inputs,
        values,
        classes,
    };
    net.spec().validate().unwrap();
    assert_eq!(net.spec().parameter_len(), net.params.len());
    net
}

struct Run {
    beliefs: Vec<Vec<f64>>,
    errors: Vec<Vec<f64>>,
    updates: Vec<f64>,
    energy: Option<f64>,
}

fn run(net: &Cnn, settings: &Settings<'_, f64>) -> Run {
    let spec = net.spec();
    let mut workspace = vec![0.0; spec.workspace_len(net.rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let result = infer(
        &spec,
        &net.params,
        net.batch(),
        settings,
        &mut workspace,
        &mut updates,
    )
    .unwrap_or_else(|e| panic!("seed {}: {e}", net.seed));
    let layers = 0..=net.depth();
    Run {
        beliefs: layers.clone().map(|l| result.beliefs(l).to_vec()).collect(),
        errors: layers.map(|l| result.errors(l).to_vec()).collect(),
        energy: result.report().energy,
        updates,
    }
}

fn norm(values: &[f64]) -> f64 {
    values.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// `P[Binomial(k, eta) >= d]` as the polynomial `sum_{j >= d} C(k, j) eta^j (1 - eta)^(k - j)`.
fn binomial_tail(k: usize, eta: f64, d: usize) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for j in 0..=k {
        if j >= d {
            total += choose * eta.powi(j as i32) * (1.0 - eta).powi((k - j) as i32);
        }
        choose = choose * (k - j) as f64 / (j + 1) as f64;
    }
    total
}

/// Statement: FixedPred with `eta = 1` and `n >= L` is backpropagation on CNNs:
/// `epsilon_l = delta_l` for `l = 1..L`, every layer's parameter updates (conv and linear)
/// equal its gradient, and hidden beliefs `v_l = vhat_l - delta_l`.
///
/// Conditions: any CNN from [`build`] (ReLU, max-pool winners included: both algorithms
/// take every Jacobian at the feedforward values), `n` in `L..=L+2`.
///
/// Tolerance: 1e-12 relative per layer, as the dense statement: with `eta = 1` each
/// iteration is the pure shift `e_l <- J^T e_{l+1}` (the `(1 - eta)` term is an exact
/// zero), the same products in the same order as the backprop sweep.
#[test]
fn fixed_pred_step_one_is_backprop_on_cnns() {
    for seed in seeds(1, 64) {
        let net = build(seed, false);
        let extra = (seed >> 60) as usize % 3;
        let depth = net.depth();
        let backprop = run(&net, &Settings::exact());
        let fixed = run(&net, &Settings::fixed_pred(1.0, depth + extra));
        for l in 1..=depth {
            assert!(
                distance(&fixed.errors[l], &backprop.errors[l])
                    <= 1e-12 * norm(&backprop.errors[l]),
                "seed {}: errors of layer {l}",
                net.seed
            );
            let (pc, bp) = (
                net.layer_params(l, &fixed.updates),
                net.layer_params(l, &backprop.updates),
            );
            assert!(
                distance(pc, bp) <= 1e-12 * norm(bp),
                "seed {}: updates of layer {l}",
                net.seed
            );
        }
        for l in 1..depth {
            assert!(
                distance(&fixed.beliefs[l], &backprop.beliefs[l])
                    <= 1e-12 * norm(&backprop.beliefs[l]),
                "seed {}: beliefs of layer {l}",
                net.seed
            );
        }
    }
}

/// Statement: FixedPred's closed form holds on CNNs: with `d = L - l`,
/// `epsilon_l = P[Binomial(n-1, eta) >= d] delta_l`, the parameter updates carry the same
/// factor, and `v_l = vhat_l - P[Binomial(n, eta) >= d] delta_l` (the polynomial for
/// `eta > 1`).
///
/// Conditions: any CNN from [`build`], `eta` in `(0.01, 1.99)`, `n` in `1..=3L`, capped for
/// `eta > 1` where the amplification `A` below exceeds 1e4.
///
/// Tolerance: `|x - c x_backprop| <= 1e-10 A |x_backprop|`, `A = (|eta| + |1 - eta|)^(n-1)`
/// the sum of the absolute values of the polynomial's terms (each term a product of at
/// most `L` Jacobians with relative rounding far below 1e-10), as the dense statement.
#[test]
// `l` is the layer number of the binomial formula, not only an index.
#[allow(clippy::needless_range_loop)]
fn fixed_pred_binomial_law_on_cnns() {
    for seed in seeds(2, 64) {
        let net = build(seed, false);
        let mut stream = Stream(!seed);
        let eta = 0.01 + 1.98 * (stream.unit() + 1.0) / 2.0;
        let iterations = stream.pick(1, 12);
        let depth = net.depth();
        let spread = eta.abs() + (1.0 - eta).abs();
        let n = iterations.min(3 * depth);
        let n = (1..=n)
            .rev()
            .find(|&k| spread.powi(k as i32) <= 1e4)
            .unwrap_or(1);
        let tolerance = 1e-10 * spread.powi(n as i32);
        let backprop = run(&net, &Settings::exact());
        let fixed = run(&net, &Settings::fixed_pred(eta, n));
        let vhat: Vec<Vec<f64>> = (0..=depth)
            .map(|l| {
                backprop.beliefs[l]
                    .iter()
                    .zip(&backprop.errors[l])
                    .map(|(v, e)| v + e)
                    .collect()
            })
            .collect();
        for l in 1..=depth {
            let c = if l == depth {
                1.0
            } else {
                binomial_tail(n - 1, eta, depth - l)
            };
            let expected: Vec<f64> = backprop.errors[l].iter().map(|d| c * d).collect();
            assert!(
                distance(&fixed.errors[l], &expected) <= tolerance * norm(&backprop.errors[l]),
                "seed {}: errors of layer {l}, c = {c}",
                net.seed
            );
            let bp = net.layer_params(l, &backprop.updates);
            let expected: Vec<f64> = bp.iter().map(|g| c * g).collect();
            assert!(
                distance(net.layer_params(l, &fixed.updates), &expected) <= tolerance * norm(bp),
                "seed {}: updates of layer {l}, c = {c}",
                net.seed
            );
            if l < depth {
                let c = binomial_tail(n, eta, depth - l);
                let expected: Vec<f64> = vhat[l]
                    .iter()
                    .zip(&backprop.errors[l])
                    .map(|(v, d)| v - c * d)
                    .collect();
                let offset: Vec<f64> = fixed.beliefs[l]
                    .iter()
                    .zip(&vhat[l])
                    .map(|(v, h)| h - v)
                    .collect();
                let expected_offset: Vec<f64> = backprop.errors[l].iter().map(|d| c * d).collect();
                assert!(
                    distance(&offset, &expected_offset)
                        <= tolerance * norm(&backprop.errors[l]) + 1e-15 * norm(&expected),
                    "seed {}: beliefs of layer {l}, c = {c}",
                    net.seed
                );
            }
        }
    }
}

/// Statement: Strict PC descends its energy on CNNs: with the safe step size
/// (`0.9 * 2 / lambda_max` of the energy's Hessian at the feedforward values, from
/// `pc_core::safe_step_size`), `F` never increases from one iteration to the next over
/// 25 iterations from the feedforward start.
///
/// Conditions: CNNs from [`build`] with `smooth` set (tanh, sigmoid, softplus, identity; average
/// pooling), so that `F` has a continuous gradient (ReLU and max pooling make it only
/// piecewise smooth, where a step across a kink may raise it).
///
/// Tolerance: `F_{k+1} <= F_k + 1e-12 F_0` (the rounding of summing `F`'s terms).
/// `F_k` is the engine's energy report of a run with `k + 1` iterations (the energy at
/// the beliefs the `k`-th move produced); runs are deterministic, so the runs share
/// their trajectory.
#[test]
fn strict_descends_its_energy_on_cnns() {
    for seed in seeds(3, 24) {
        let net = build(seed, true);
        if net.depth() < 2 {
            continue;
        }
        let spec = net.spec();
        let mut workspace = vec![0.0; pc_core::stability::workspace_len(&spec, net.rows)];
        let curvature = safe_step_size(
            &spec,
            &net.params,
            net.batch(),
            &SafeStep::default(),
            &mut workspace,
        )
        .unwrap_or_else(|e| panic!("seed {}: {e}", net.seed));
        let eta = curvature.step_size;
        let energies: Vec<f64> = (1..=26)
            .map(|n| run(&net, &Settings::strict(eta, n)).energy.unwrap())
            .collect();
        let first = energies[0];
        for (k, pair) in energies.windows(2).enumerate() {
            assert!(
                pair[1] <= pair[0] + 1e-12 * first,
                "seed {}: iteration {k}: F rose from {:e} to {:e} (step {eta})",
                net.seed,
                pair[0],
                pair[1]
            );
        }
        assert!(energies[25] < first || first == 0.0 || energies[25] == first);
    }
}
