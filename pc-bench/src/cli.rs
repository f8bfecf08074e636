//! The command line of `pc-bench`, declared with clap.
//!
//! The only parser of the program's arguments: each subcommand's flags are read and
//! type-checked here (a bad number or name is reported by clap, naming the flag and the
//! value), then handed to the library as typed options: `reproduce` as
//! [`pcnet_bench::reproduce::Options`], `speed` as [`pcnet_bench::speed::SpeedConfig`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use pcnet_bench::speed::{SpeedConfig, SpeedModel};
use pcnet_core::{Activation, Algorithm, Loss};
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
    /// Strict's relaxation against depth: condition number, plain and heavy-ball steps to
    /// a relative tolerance, seconds per training step; writes depth.csv and a figure.
    #[command(args_override_self = true)]
    Depth(DepthArgs),
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
    /// paper-mnist-cnn, paper-cifar-cnn
    #[arg(long, value_name = "MODEL", value_parser = parse_model, default_value = "784-256-256-10")]
    pub model: SpeedModel,
    /// Hidden-layer activation: relu, tanh, sigmoid, leaky_relu, softplus, identity (the
    /// output layer is the identity; dense models only) [default: relu]
    #[arg(long, value_name = "ACTIVATION", value_parser = parse_hidden)]
    pub hidden: Option<Activation>,
    /// Loss: cross-entropy, mse (dense models only) [default: cross-entropy]
    #[arg(long, value_name = "LOSS", value_parser = parse_loss)]
    pub loss: Option<Loss>,
    /// Algorithm: exact, fixed-pred, strict
    #[arg(long, value_name = "ALGORITHM", value_parser = parse_algorithm, default_value = "fixed-pred")]
    pub algorithm: Algorithm,
    /// Step size
    #[arg(
        long,
        value_name = "ETA",
        allow_negative_numbers = true,
        default_value_t = 0.1
    )]
    pub eta: f64,
    /// Iterations; `L` is the network's depth [default: 20, or L for a named model]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_iterations)]
    pub n: Option<Iterations>,
    /// Rows per call, at least 1
    #[arg(long, value_name = "B", allow_negative_numbers = true, value_parser = parse_positive, default_value = "64")]
    pub batch: usize,
    /// Threads (1 = on the calling thread)
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = parse_whole, default_value = "1")]
    pub threads: usize,
    /// Timed calls, at least 30
    #[arg(long, value_name = "CALLS", allow_negative_numbers = true, value_parser = parse_whole, default_value = "30")]
    pub calls: usize,
    /// Scalar type: f32, f64
    #[arg(
        long,
        value_name = "DTYPE",
        value_enum,
        hide_possible_values = true,
        default_value = "f32"
    )]
    pub dtype: Dtype,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The value of `speed --n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iterations {
    /// This many iterations.
    Count(usize),
    /// As many as the network has layers.
    Depth,
}

/// The scalar type of `speed --dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

impl SpeedArgs {
    /// The library's configuration for these flags.
    ///
    /// # Errors
    /// A message when `--hidden` or `--loss` is given with a named model (it has its own).
    pub fn config(&self) -> Result<SpeedConfig, String> {
        if let SpeedModel::Named(model) = &self.model {
            for (flag, given) in [
                ("--hidden", self.hidden.is_some()),
                ("--loss", self.loss.is_some()),
            ] {
                if given {
                    return Err(format!(
                        "{flag} does not apply to the named model `{}`",
                        model.name
                    ));
                }
            }
        }
        let defaults = SpeedConfig::default();
        let n = match (self.n, &self.model) {
            (Some(Iterations::Count(n)), _) => Some(n),
            (Some(Iterations::Depth), _) | (None, SpeedModel::Named(_)) => None,
            (None, SpeedModel::Dense(_)) => Some(20),
        };
        Ok(SpeedConfig {
            model: self.model.clone(),
            hidden: self.hidden.unwrap_or(defaults.hidden),
            loss: self.loss.unwrap_or(defaults.loss),
            algorithm: self.algorithm,
            eta: self.eta,
            n,
            batch: self.batch,
            threads: self.threads,
            f64: self.dtype == Dtype::F64,
            calls: self.calls,
            json: self.json,
        })
    }
}

fn parse_model(text: &str) -> Result<SpeedModel, String> {
    if let Some(model) = pcnet_bench::models::named_model(text) {
        return Ok(SpeedModel::Named(model));
    }
    let widths: Result<Vec<usize>, _> = text.split(['-', 'x', ',']).map(str::parse).collect();
    match widths {
        Ok(widths) if widths.len() >= 2 && !widths.contains(&0) => Ok(SpeedModel::Dense(widths)),
        _ => Err(format!(
            "expected at least two nonzero widths such as 784-256-10, or a named model: {}",
            pcnet_bench::models::MODEL_NAMES.join(", ")
        )),
    }
}

fn parse_hidden(text: &str) -> Result<Activation, String> {
    Activation::from_name(text).ok_or_else(|| {
        "unknown activation (relu, tanh, sigmoid, leaky_relu, softplus, identity)".to_string()
    })
}

fn parse_loss(text: &str) -> Result<Loss, String> {
    match text {
        "cross-entropy" | "cross_entropy" | "ce" => Ok(Loss::CrossEntropy),
        "mse" => Ok(Loss::Mse),
        _ => Err("unknown loss (cross-entropy, mse)".to_string()),
    }
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(text)
        .ok_or_else(|| "unknown algorithm (exact, fixed-pred, strict)".to_string())
}

fn parse_iterations(text: &str) -> Result<Iterations, String> {
    if text == "L" {
        return Ok(Iterations::Depth);
    }
    text.parse()
        .map(Iterations::Count)
        .map_err(|_| "expected a non-negative integer or L (the depth of the network)".to_string())
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

/// Flags of `pc-bench depth` (defaults: [`pcnet_bench::depth::Options::default`]).
#[derive(Debug, Args)]
pub struct DepthArgs {
    /// Output directory for depth.csv and depth.svg/png.
    #[arg(long, default_value = "target/pc-depth")]
    pub out: PathBuf,
    /// Depths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64,128")]
    pub depths: Vec<usize>,
    /// Relative tolerance of the step counts.
    #[arg(long, default_value_t = 1e-6)]
    pub tolerance: f64,
    /// Most plain Strict steps per depth.
    #[arg(long, default_value_t = 100_000)]
    pub plain_cap: usize,
}

impl DepthArgs {
    /// The library's options.
    pub fn options(&self) -> pcnet_bench::depth::Options {
        pcnet_bench::depth::Options {
            out: self.out.clone(),
            depths: self.depths.clone(),
            tolerance: self.tolerance,
            plain_cap: self.plain_cap,
            ..pcnet_bench::depth::Options::default()
        }
    }
}
