//! `pc-bench speed`: the wall-clock time of one of pc's fast paths.
//!
//! `speed` times one PCInfer-equivalent call (forward pass, relaxation, parameter updates;
//! no optimizer step) through [`pcnet_std::batch::BatchRunner`] on the fast kernels, for a
//! configuration given by flags (a [`SpeedConfig`], which the command line fills), and
//! reports the median and minimum over at least 30 timed calls after warm-up
//! ([`crate::timing::time_calls`]). The network is either dense widths or one of the
//! [named models](crate::models), initialised as PyTorch initialises it (seed 1).
//!
//! **Useful GFLOP/s** counts `2 * batch * in * out` for every matrix product the
//! algorithm *as specified* needs, with the input clamped (so layer 1's input
//! vector-Jacobian product and, for Strict, layer 1's prediction are never needed), and
//! without crediting the signal-front shortcut (work the specification does and pc skips
//! because it would produce exact zeros is still counted). With `P_l = 2 B in_l out_l`
//! and `S = sum_l P_l`:
//!
//! * exact (backprop): forward `S`, input VJPs of layers 2..L, parameter VJPs `S`:
//!   `3 S - P_1`;
//! * fixed-pred, `n` iterations: `S + n (S - P_1) + S`;
//! * strict, `n` iterations: `S + n (2 (S - P_1)) + S` (each iteration the input VJPs of
//!   layers 2..L and the predictions of layers 2..L at the moved beliefs).
//!
//! A named model counts the same way, a conv op costing `2 B out in kh kw` per output
//! position ([`crate::models::useful_flops`]).
//!
//! `speed` runs the process's kernel family ([`pcnet_std::fast::Isa`]: `PC_ISA`, else the
//! best detected) and names it (`"isa"` in `--json`).

use crate::models::NamedModel;
use crate::timing::{time_calls, Timing};
use crate::Error;
use pcnet_core::{Activation, Algorithm, Batch, Layer, Loss, PcError, Scalar, Settings, Targets};
use pcnet_std::{
    batch::{BatchRunner, Par},
    fast::Fast,
    network::Network,
    rng::SplitMix64,
};

/// The network `speed` times.
#[derive(Clone, Debug, PartialEq)]
pub enum SpeedModel {
    /// Dense layer widths, input first; hidden layers take [`SpeedConfig::hidden`], the
    /// output layer is the identity, the loss is [`SpeedConfig::loss`].
    Dense(Vec<usize>),
    /// A named model with its own layers and loss.
    Named(NamedModel),
}

/// A `speed` configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeedConfig {
    /// The network.
    pub model: SpeedModel,
    /// Hidden-layer activation of a dense model (the output layer is the identity).
    pub hidden: Activation,
    /// The loss of a dense model.
    pub loss: Loss,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Step size.
    pub eta: f64,
    /// Iterations; `None` is the network's depth `L`.
    pub n: Option<usize>,
    /// Rows per call.
    pub batch: usize,
    /// Threads (1 = on the calling thread).
    pub threads: usize,
    /// `true` for f64.
    pub f64: bool,
    /// Timed calls (at least 30).
    pub calls: usize,
    /// Print JSON.
    pub json: bool,
}

impl Default for SpeedConfig {
    fn default() -> Self {
        SpeedConfig {
            model: SpeedModel::Dense(vec![784, 256, 256, 10]),
            hidden: Activation::Relu,
            loss: Loss::CrossEntropy,
            algorithm: Algorithm::FixedPred,
            eta: 0.1,
            n: Some(20),
            batch: 64,
            threads: 1,
            f64: false,
            calls: 30,
            json: false,
        }
    }
}

impl SpeedConfig {
    /// The layers, the loss and the input width of the network.
    pub fn network_layers(&self) -> (Vec<Layer>, Loss, usize) {
        match &self.model {
            SpeedModel::Dense(widths) => {
                let depth = widths.len() - 1;
                let layers = widths
                    .windows(2)
                    .enumerate()
                    .map(|(l, w)| {
                        let activation = if l + 1 == depth {
                            Activation::Identity
                        } else {
                            self.hidden
                        };
                        Layer::dense(w[0], w[1], activation)
                    })
                    .collect();
                (layers, self.loss, widths[0])
            }
            SpeedModel::Named(model) => (model.layers.clone(), model.loss, model.input_len),
        }
    }

    /// The model as printed: the widths joined by `-`, or the name.
    pub fn model_name(&self) -> String {
        match &self.model {
            SpeedModel::Dense(widths) => widths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            SpeedModel::Named(model) => model.name.to_string(),
        }
    }

    /// The iterations actually run: `n`, the depth where `n` is `None`, 0 for exact.
    pub fn iterations(&self) -> usize {
        if self.algorithm == Algorithm::Exact {
            return 0;
        }
        self.n.unwrap_or_else(|| self.network_layers().0.len())
    }
}

/// Useful floating-point operations of one call (see the module documentation).
pub fn useful_flops(config: &SpeedConfig) -> f64 {
    let (layers, loss, input_len) = config.network_layers();
    let spec = pcnet_core::NetworkSpec::new(&layers, loss).with_input_len(input_len);
    crate::models::useful_flops(&spec, config.batch, config.algorithm, config.iterations())
}

fn run_speed<T: Scalar>(fast: Fast, config: &SpeedConfig) -> Result<Timing, PcError> {
    let (layers, loss, input_len) = config.network_layers();
    // PyTorch's nn.Linear / nn.Conv2d initialisation scale, from seed 1.
    let network = Network::<T>::initialised(layers, loss, input_len, 1)?;
    let spec = network.spec();
    let params = network.parameters();
    let output_width = spec.output_len();
    let mut rng = SplitMix64::new(100);
    let inputs: Vec<T> = (0..config.batch * input_len)
        .map(|_| T::from_f64(rng.next_f64()))
        .collect();
    let classes: Vec<usize> = (0..config.batch).map(|r| (r * 7) % output_width).collect();
    let values: Vec<T> = (0..config.batch * output_width)
        .map(|_| T::from_f64(rng.uniform(-1.0, 1.0)))
        .collect();
    let targets = match loss {
        Loss::CrossEntropy => Targets::Classes(&classes),
        _ => Targets::Values(&values),
    };
    let batch = Batch::new(&inputs, targets);
    let settings = Settings::for_algorithm(
        config.algorithm,
        T::from_f64(config.eta),
        config.iterations(),
    );
    let par = if config.threads <= 1 {
        Par::Seq
    } else {
        Par::Rayon(config.threads)
    };
    let mut runner = BatchRunner::<T>::with_backend(fast);
    time_calls(config.calls.max(30), || {
        runner
            .run(par, &spec, params, batch, &settings)
            .map(|outcome| {
                std::hint::black_box(outcome.loss());
            })
    })
}

/// Runs `pc-bench speed` for `config`; prints the result.
///
/// # Errors
/// [`Error::Pc`] when the network does not build or a relaxation fails.
pub fn speed(config: &SpeedConfig) -> Result<(), Error> {
    // The process's kernel family: PC_ISA, else the best this processor runs.
    let fast = Fast::new().map_err(Error::std("speed"))?;
    let timing = if config.f64 {
        run_speed::<f64>(fast, config)
    } else {
        run_speed::<f32>(fast, config)
    }
    .map_err(Error::pc("speed"))?;
    let flops = useful_flops(config);
    let samples_per_s = config.batch as f64 / timing.median_s;
    let gflops = flops / timing.median_s / 1e9;
    let model = config.model_name();
    let n = config.iterations();
    let dtype = if config.f64 { "f64" } else { "f32" };
    let dense = matches!(config.model, SpeedModel::Dense(_));
    let (_, loss, _) = config.network_layers();
    if config.json {
        let mut object = serde_json::json!({
            "implementation": "pc",
            "model": model,
            "loss": loss.name(),
            "algorithm": config.algorithm.name(),
            "eta": config.eta,
            "n": n,
            "batch": config.batch,
            "threads": config.threads,
            "dtype": dtype,
            "calls": timing.calls,
            "median_s": timing.median_s,
            "min_s": timing.min_s,
            "samples_per_s": samples_per_s,
            "gflops": gflops,
            "cpu_mean_s": timing.cpu_mean_s,
            "isa": fast.isa().name(),
        });
        if dense {
            object["hidden"] = config.hidden.name().into();
        }
        println!("{object}");
    } else {
        let activation = if dense {
            format!(" {} {}", config.hidden.name(), loss.name())
        } else {
            String::new()
        };
        println!(
            "pc speed: {model}{activation} {} eta {} n {n} batch {} threads {} {dtype} ({} kernels)",
            config.algorithm.name(),
            config.eta,
            config.batch,
            config.threads,
            fast.isa(),
        );
        println!(
            "  median {:.3e} s  min {:.3e} s  ({} calls)  {:.0} samples/s  {:.1} useful GFLOP/s",
            timing.median_s, timing.min_s, timing.calls, samples_per_s, gflops
        );
        if let Some(cpu) = timing.cpu_mean_s {
            println!(
                "  processor time per call {cpu:.3e} s ({:.1} useful GFLOP/s per processor second)",
                flops / cpu / 1e9
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flop counts follow from the product list in the module documentation,
    /// written out by hand for a 4-3-2 network at batch 5.
    #[test]
    fn useful_flops_count_the_specified_products() {
        let mut config = SpeedConfig {
            model: SpeedModel::Dense(vec![4, 3, 2]),
            batch: 5,
            n: Some(7),
            ..SpeedConfig::default()
        };
        let (p1, p2) = (2.0 * 5.0 * 12.0, 2.0 * 5.0 * 6.0);
        config.algorithm = Algorithm::Exact;
        assert_eq!(useful_flops(&config), (p1 + p2) + p2 + (p1 + p2));
        config.algorithm = Algorithm::FixedPred;
        assert_eq!(useful_flops(&config), (p1 + p2) + 7.0 * p2 + (p1 + p2));
        config.algorithm = Algorithm::Strict;
        assert_eq!(
            useful_flops(&config),
            (p1 + p2) + 7.0 * 2.0 * p2 + (p1 + p2)
        );
    }

    #[test]
    fn a_named_model_runs_depth_iterations_unless_told() {
        let mut config = SpeedConfig {
            model: SpeedModel::Named(crate::models::paper_mnist_cnn()),
            n: None,
            ..SpeedConfig::default()
        };
        assert_eq!(config.iterations(), 5);
        config.n = Some(3);
        assert_eq!(config.iterations(), 3);
        config.algorithm = Algorithm::Exact;
        assert_eq!(config.iterations(), 0);
        assert_eq!(config.model_name(), "paper-mnist-cnn");
    }
}
