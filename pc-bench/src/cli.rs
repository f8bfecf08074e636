//! The command line of `pc-bench`, declared with clap.
//!
//! Each subcommand's flags are read and type-checked here (a bad number or name is
//! reported by clap, naming the flag), then handed to the library in the form it
//! already takes: `reproduce` as [`pcnet_bench::reproduce::Options`], `speed` and `peak` as
//! the argument list that [`pcnet_bench::speed::speed`] and [`pcnet_bench::speed::peak`] read.

use clap::{Args, Parser, Subcommand, ValueEnum};
use pcnet_core::{Activation, Algorithm};
use std::path::PathBuf;

/// pc's command-line program: Torch2PC reference checks, the paper's experiments, timings.
#[derive(Debug, Parser)]
#[command(
    name = "pc-bench",
    version,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every Torch2PC reference case (*.json) under DIR, recursively, in f64; prints
    /// PASS/FAIL/SKIP per case and `N passed, M failed`.
    #[command(args_override_self = true)]
    Reference {
        /// Directory holding the reference cases (e.g. tests/data/torch2pc).
        dir: PathBuf,
    },
    /// Run the paper's experiments (Figs 1-4, 6 and the runtime table) and write CSVs,
    /// SVG/PNG figures and report.md.
    #[command(args_override_self = true)]
    Reproduce(ReproduceArgs),
    /// Time one PCInfer-equivalent call (forward, relaxation, parameter updates).
    #[command(args_override_self = true)]
    Speed(SpeedArgs),
    /// f32 GFLOP/s of pc's own matrix product on 1024 x 1024 x 1024, on one thread and on
    /// all threads, naming the kernel family.
    #[command(args_override_self = true)]
    Peak(PeakArgs),
}

/// Flags of `peak`.
#[derive(Debug, Args)]
pub struct PeakArgs {
    /// The kernel family: portable, avx2, avx512, or all (one line per family this
    /// processor runs); default PC_ISA, else the best detected.
    #[arg(long, value_name = "FAMILY")]
    pub isa: Option<String>,
    /// Print one JSON object (per family).
    #[arg(long)]
    pub json: bool,
}

impl PeakArgs {
    /// The flags as the argument list [`pcnet_bench::speed::peak`] reads.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(isa) = &self.isa {
            args.extend(["--isa".to_string(), isa.clone()]);
        }
        if self.json {
            args.push("--json".to_string());
        }
        args
    }
}

/// The network `reproduce` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReproduceModel {
    /// The multilayer perceptron.
    Mlp,
    /// The paper's MNIST CNN (also accepted as `paper-cnn`).
    #[value(alias = "paper-cnn")]
    PaperMnistCnn,
}

/// Flags of `reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "target/pc-report")]
    pub out: PathBuf,
    /// Use MNIST's IDX files from DIR instead of the bundled digits.
    #[arg(long, value_name = "DIR")]
    pub mnist: Option<PathBuf>,
    /// A smoke run of a few seconds (two epochs, short iteration grids).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the initial network and of the minibatch order.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub seed: u64,
    /// The network.
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ReproduceModel,
}

impl ReproduceArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> pcnet_bench::reproduce::Options {
        pcnet_bench::reproduce::Options {
            out: self.out.clone(),
            mnist: self.mnist.clone(),
            quick: self.quick,
            seed: self.seed,
            model: match self.model {
                ReproduceModel::Mlp => pcnet_bench::reproduce::Model::Mlp,
                ReproduceModel::PaperMnistCnn => pcnet_bench::reproduce::Model::PaperCnn,
            },
        }
    }
}

/// Flags of `speed`. Every flag left out takes the default shown.
#[derive(Debug, Args)]
pub struct SpeedArgs {
    /// Dense layer widths, input first (784-256-256-10), or a named model:
    /// paper-mnist-cnn, paper-cifar-cnn [default: 784-256-256-10]
    #[arg(long, value_name = "MODEL", value_parser = parse_model)]
    pub model: Option<String>,
    /// Hidden-layer activation: relu, tanh, sigmoid, leaky_relu, softplus, identity (the
    /// output layer is the identity; dense models only) [default: relu]
    #[arg(long, value_name = "ACTIVATION", value_parser = parse_hidden)]
    pub hidden: Option<String>,
    /// Loss: cross-entropy, mse (dense models only) [default: cross-entropy]
    #[arg(long, value_name = "LOSS", value_parser = parse_loss)]
    pub loss: Option<String>,
    /// Algorithm: exact, fixed-pred, strict [default: fixed-pred]
    #[arg(long, value_name = "ALGORITHM", value_parser = parse_algorithm)]
    pub algorithm: Option<String>,
    /// Step size [default: 0.1]
    #[arg(long, value_name = "ETA", allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// Iterations; `L` (named models only) is the network's depth [default: 20, or L for a
    /// named model]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_iterations)]
    pub n: Option<String>,
    /// Rows per call, at least 1 [default: 64]
    #[arg(long, value_name = "B", allow_negative_numbers = true, value_parser = parse_positive)]
    pub batch: Option<usize>,
    /// Threads (1 = on the calling thread) [default: 1]
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = parse_whole)]
    pub threads: Option<usize>,
    /// Timed calls, at least 30 [default: 30]
    #[arg(long, value_name = "CALLS", allow_negative_numbers = true, value_parser = parse_whole)]
    pub calls: Option<usize>,
    /// Scalar type: f32, f64 [default: f32]
    #[arg(long, value_name = "DTYPE", value_parser = ["f32", "f64"])]
    pub dtype: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl SpeedArgs {
    /// The flags as the argument list [`pcnet_bench::speed::speed`] reads.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(flag.to_string());
                args.push(value);
            }
        };
        push("--model", self.model.clone());
        push("--hidden", self.hidden.clone());
        push("--loss", self.loss.clone());
        push("--algorithm", self.algorithm.clone());
        push("--eta", self.eta.map(|eta| eta.to_string()));
        push("--n", self.n.clone());
        push("--batch", self.batch.map(|batch| batch.to_string()));
        push("--threads", self.threads.map(|threads| threads.to_string()));
        push("--calls", self.calls.map(|calls| calls.to_string()));
        push("--dtype", self.dtype.clone());
        if self.json {
            args.push("--json".to_string());
        }
        args
    }
}

fn parse_model(text: &str) -> Result<String, String> {
    if pcnet_bench::models::named_model(text).is_some() {
        return Ok(text.to_string());
    }
    let widths: Result<Vec<usize>, _> = text.split(['-', 'x', ',']).map(str::parse).collect();
    match widths {
        Ok(widths) if widths.len() >= 2 && !widths.contains(&0) => Ok(text.to_string()),
        _ => Err(format!(
            "expected at least two nonzero widths such as 784-256-10, or a named model: {}",
            pcnet_bench::models::MODEL_NAMES.join(", ")
        )),
    }
}

fn parse_hidden(text: &str) -> Result<String, String> {
    Activation::from_name(text)
        .map(|_| text.to_string())
        .ok_or_else(|| {
            "unknown activation (relu, tanh, sigmoid, leaky_relu, softplus, identity)".to_string()
        })
}

fn parse_loss(text: &str) -> Result<String, String> {
    match text {
        "cross-entropy" | "cross_entropy" | "ce" | "mse" => Ok(text.to_string()),
        _ => Err("unknown loss (cross-entropy, mse)".to_string()),
    }
}

fn parse_algorithm(text: &str) -> Result<String, String> {
    Algorithm::from_name(text)
        .map(|_| text.to_string())
        .ok_or_else(|| "unknown algorithm (exact, fixed-pred, strict)".to_string())
}

fn parse_iterations(text: &str) -> Result<String, String> {
    if text == "L" || text.parse::<usize>().is_ok() {
        Ok(text.to_string())
    } else {
        Err("expected a non-negative integer or L (the depth of a named model)".to_string())
    }
}

fn parse_whole(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| "expected a non-negative whole number".to_string())
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(value) if value >= 1 => Ok(value),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}
