//! The paper's convolutional networks as named models, and `pc-bench speed` for them.
//!
//! * `paper-mnist-cnn` (Rosenbaum 2022, MNIST): `[conv(1->10, 3x3), relu, max-pool 2]
//!   [conv(10->5, 3x3), relu, flatten] [linear 605->50, relu] [linear 50->30, relu]
//!   [linear 30->10]` on `1 x 28 x 28` inputs.
//! * `paper-cifar-cnn` (CIFAR-10): `[conv(3->64, 3x3, pad 1), relu] [conv(64->128, 3x3,
//!   pad 1), relu, max-pool 2] [conv(128->256, 3x3, pad 1), relu, max-pool 2, flatten]
//!   [linear 16384->256, relu] [linear 256->256, relu] [linear 256->10]` on `3 x 32 x 32`.
//!
//! Both use cross-entropy. [`named_model`] returns the layers and the input width;
//! [`torch_init`] draws parameters with PyTorch's default initialisation scale.
//!
//! ```
//! let model = pcnet_bench::models::named_model("paper-mnist-cnn").unwrap();
//! let spec = model.spec();
//! assert_eq!(spec.input_len(), 784);
//! assert_eq!(spec.width(2), 605);
//! assert_eq!(spec.output_len(), 10);
//! spec.validate().unwrap();
//! ```

use pcnet_core::{
    Activation, Algorithm, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, PcError,
    Pool2d, Scalar, Settings, Targets,
};
use pcnet_std::{
    batch::{BatchRunner, Par},
    fast::Fast,
};
use std::time::{Duration, Instant};

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

/// `paper-mnist-cnn`.
pub fn paper_mnist_cnn() -> NamedModel {
    let conv1 = Conv2d::new(ImageShape::new(1, 28, 28), 10, [3, 3]);
    let pool = Pool2d::new(conv1.output_shape(), [2, 2]);
    let conv2 = Conv2d::new(pool.output_shape(), 5, [3, 3]);
    let flat = conv2.output_shape().len();
    NamedModel {
        name: "paper-mnist-cnn",
        layers: vec![
            layer(&[Op::Conv2d(conv1), RELU, Op::MaxPool2d(pool)]),
            layer(&[Op::Conv2d(conv2), RELU, Op::Flatten]),
            Layer::dense(flat, 50, Activation::Relu),
            Layer::dense(50, 30, Activation::Relu),
            layer(&[Op::Linear {
                inputs: 30,
                outputs: 10,
            }]),
        ],
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

/// SplitMix64 numbers uniform in `[-1, 1)`.
fn uniform(seed: u64, len: usize) -> impl Iterator<Item = f64> {
    let mut state = seed;
    (0..len).map(move |_| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    })
}

/// Parameters with PyTorch's default scale (`nn.Linear`/`nn.Conv2d`: weights and biases
/// uniform in `+-1/sqrt(fan_in)`), reproducible from `seed`.
pub fn torch_init<T: Scalar>(layers: &[Layer], seed: u64) -> Vec<T> {
    let mut params = Vec::new();
    for (l, layer) in layers.iter().enumerate() {
        for (k, op) in layer.ops().iter().enumerate() {
            let (fan_in, count) = match *op {
                Op::Linear { inputs, .. } => (inputs, op.parameter_len()),
                Op::Conv2d(conv) => (conv.filter_len(), conv.parameter_len()),
                _ => continue,
            };
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let stream = seed.wrapping_mul(1000).wrapping_add((l * 10 + k) as u64);
            params.extend(uniform(stream, count).map(|u| T::from_f64(u * bound)));
        }
    }
    params
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

/// Median and minimum seconds of at least `calls` timed calls after a warm-up.
fn time_calls(
    calls: usize,
    mut call: impl FnMut() -> Result<(), PcError>,
) -> Result<(f64, f64, usize), PcError> {
    let start = Instant::now();
    let mut warm = 0;
    while warm < 3 || (start.elapsed() < Duration::from_millis(200) && warm < 1000) {
        call()?;
        warm += 1;
    }
    let mut seconds = Vec::with_capacity(calls);
    let start = Instant::now();
    while seconds.len() < calls
        || (start.elapsed() < Duration::from_millis(500) && seconds.len() < 10_000)
    {
        let begin = Instant::now();
        call()?;
        seconds.push(begin.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median = if seconds.len() % 2 == 1 {
        seconds[middle]
    } else {
        0.5 * (seconds[middle - 1] + seconds[middle])
    };
    Ok((median, seconds[0], seconds.len()))
}

/// The flags `speed` takes for a named model.
#[derive(Clone, Debug, PartialEq)]
struct NamedSpeed {
    model: NamedModel,
    algorithm: Algorithm,
    eta: f64,
    n: Option<usize>,
    batch: usize,
    threads: usize,
    f64: bool,
    calls: usize,
    json: bool,
}

fn parse(args: &[String], model: NamedModel) -> Result<NamedSpeed, String> {
    let mut config = NamedSpeed {
        model,
        algorithm: Algorithm::FixedPred,
        eta: 0.1,
        n: None,
        batch: 64,
        threads: 1,
        f64: false,
        calls: 30,
        json: false,
    };
    let mut index = 0;
    let value = |index: &mut usize, flag: &str| -> Result<String, String> {
        *index += 1;
        args.get(*index)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    fn number<N: std::str::FromStr>(text: &str, flag: &str) -> Result<N, String> {
        text.parse()
            .map_err(|_| format!("{flag}: cannot read `{text}`"))
    }
    while index < args.len() {
        let flag = args[index].as_str();
        match flag {
            "--model" => {
                value(&mut index, flag)?;
            }
            "--algorithm" => {
                let name = value(&mut index, flag)?;
                config.algorithm = Algorithm::from_name(&name)
                    .ok_or_else(|| format!("--algorithm: unknown algorithm `{name}`"))?;
            }
            "--eta" => config.eta = number(&value(&mut index, flag)?, flag)?,
            "--n" => {
                let text = value(&mut index, flag)?;
                config.n = if text == "L" {
                    None
                } else {
                    Some(number(&text, flag)?)
                };
            }
            "--batch" => config.batch = number(&value(&mut index, flag)?, flag)?,
            "--threads" => config.threads = number(&value(&mut index, flag)?, flag)?,
            "--calls" => config.calls = number(&value(&mut index, flag)?, flag)?,
            "--dtype" => {
                config.f64 = match value(&mut index, flag)?.as_str() {
                    "f32" => false,
                    "f64" => true,
                    other => return Err(format!("--dtype: `{other}` is not f32 or f64")),
                }
            }
            "--json" => config.json = true,
            "--hidden" | "--loss" => {
                return Err(format!(
                    "{flag} does not apply to the named model `{}`",
                    config.model.name
                ))
            }
            _ => return Err(format!("speed: unknown flag `{flag}`")),
        }
        index += 1;
    }
    if config.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    config.calls = config.calls.max(30);
    Ok(config)
}

fn run<T: Scalar>(config: &NamedSpeed) -> Result<(f64, f64, usize), PcError>
where
    Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let spec = config.model.spec();
    spec.validate()?;
    let params: Vec<T> = torch_init(&config.model.layers, 1);
    let outputs = spec.output_len();
    let inputs: Vec<T> = uniform(100, config.batch * spec.input_len())
        .map(|u| T::from_f64(0.5 * (u + 1.0)))
        .collect();
    let classes: Vec<usize> = (0..config.batch).map(|r| (r * 7) % outputs).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let eta = T::from_f64(config.eta);
    let n = config.n.unwrap_or(spec.depth());
    let settings = Settings::new(config.algorithm, eta, n);
    let par = if config.threads <= 1 {
        Par::Seq
    } else {
        Par::Rayon(config.threads)
    };
    let mut runner = BatchRunner::<T>::new();
    time_calls(config.calls, || {
        runner
            .run(par, &spec, &params, batch, &settings)
            .map(|outcome| {
                std::hint::black_box(outcome.loss());
            })
    })
}

/// `pc-bench speed --model NAME ...` for a named model: `Some(result)` when `args` name
/// one of [`MODEL_NAMES`], `None` otherwise (a dense `--model` list, left to `speed`).
/// Flags: `--algorithm`, `--eta`, `--n` (a count, or `L` for the depth; default `L`),
/// `--batch`, `--threads`, `--dtype`, `--calls`, `--json`.
pub fn speed_named(args: &[String]) -> Option<Result<(), String>> {
    let position = args.iter().position(|a| a == "--model")?;
    let model = named_model(args.get(position + 1)?)?;
    Some(speed_model(args, model))
}

fn speed_model(args: &[String], model: NamedModel) -> Result<(), String> {
    let config = parse(args, model)?;
    let (median, min, calls) = if config.f64 {
        run::<f64>(&config)
    } else {
        run::<f32>(&config)
    }
    .map_err(|error| format!("speed: {error}"))?;
    let spec = config.model.spec();
    let n = config.n.unwrap_or(spec.depth());
    let n = if config.algorithm == Algorithm::Exact {
        0
    } else {
        n
    };
    let flops = useful_flops(&spec, config.batch, config.algorithm, n);
    let samples_per_s = config.batch as f64 / median;
    let gflops = flops / median / 1e9;
    let dtype = if config.f64 { "f64" } else { "f32" };
    if config.json {
        let object = serde_json::json!({
            "implementation": "pc",
            "model": config.model.name,
            "loss": config.model.loss.name(),
            "algorithm": config.algorithm.name(),
            "eta": config.eta,
            "n": n,
            "batch": config.batch,
            "threads": config.threads,
            "dtype": dtype,
            "calls": calls,
            "median_s": median,
            "min_s": min,
            "samples_per_s": samples_per_s,
            "gflops": gflops,
        });
        println!("{object}");
    } else {
        println!(
            "pc speed: {} {} eta {} n {} batch {} threads {} {dtype}",
            config.model.name,
            config.algorithm.name(),
            config.eta,
            n,
            config.batch,
            config.threads,
        );
        println!(
            "  median {median:.3e} s  min {min:.3e} s  ({calls} calls)  {samples_per_s:.0} samples/s  {gflops:.1} useful GFLOP/s"
        );
    }
    Ok(())
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
        assert_eq!(
            torch_init::<f32>(&cifar.layers, 1).len(),
            spec.parameter_len()
        );
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
