//! `pc-bench reproduce`: Rosenbaum (2022)'s experiments on data that ships with pc (or on
//! MNIST), written as CSV files, SVG and PNG figures and a `report.md`.
//!
//! The paper's Figs 1-4 and 6 and its runtime table use a small CNN on MNIST. The default
//! here is a multilayer perceptron of the same depth, `64-128-64-50-30-10` (ReLU, L = 5;
//! its last three layers are the paper's CNN's), trained on the bundled 8x8 handwritten
//! digits with the paper's optimizer (Adam, learning rate 0.002); `--model paper-mnist-cnn`
//! runs the paper's CNN itself. Depth 5 makes the per-layer curves comparable with the
//! paper's: FixedPred's relative errors then sit on the same binomial constants (0.885,
//! 0.705, 0.420, 0.135, 0).
//!
//! The run is a list of experiments (`figures.rs`), one function per figure, each returning
//! its CSV (`table.rs`, written with the `csv` crate), its figure (`plot.rs`), its prose (a
//! template of `templates/*.md`, filled by `template.rs`) and its row of the summary table;
//! the training and relaxation runs behind them are in `experiments.rs`. [`run`] writes
//! every file and `report.md`.
//!
//! Every CSV except `runtime.csv` is a function of the seed alone (same seed, same bytes);
//! `runtime.csv` holds wall-clock times.

mod experiments;
mod figures;
pub(crate) mod plot;
mod table;
mod template;

use crate::Error;
use experiments::{train_one, Comparison, TrainingPlan};
use pcnet_core::{Activation, Loss, Settings};
use pcnet_std::data::{self, Dataset};
use pcnet_std::network::Network;
use pcnet_std::train::History;
use std::path::PathBuf;
use std::time::Instant;

/// Which network the experiments use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The multilayer perceptron described in the module docs.
    Mlp,
    /// The paper's MNIST CNN (L = 5, [`crate::models::paper_mnist_cnn_layers`]): on the
    /// 8x8 digits both convolutions pad by 1 so the shapes fit.
    PaperCnn,
}

/// Options of `pc-bench reproduce`.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Output directory.
    pub out: PathBuf,
    /// Directory with MNIST's IDX files, instead of the bundled digits.
    pub mnist: Option<PathBuf>,
    /// A smoke run: two epochs, short iteration grids.
    pub quick: bool,
    /// Seed of the initial network and of the minibatch order.
    pub seed: u64,
    /// The network.
    pub model: Model,
}

/// Everything a run sets, derived from the options.
struct Plan {
    data_name: String,
    description: String,
    training: TrainingPlan,
    strict_grid: Vec<usize>,
    fixed_grid: Vec<usize>,
    runtime_epochs: usize,
    runtime_repeats: usize,
}

const HIDDEN: Activation = Activation::Relu;

fn grid(max: usize, quick: bool) -> Vec<usize> {
    let full = [
        1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200, 250,
        320, 400,
    ];
    let quick_grid = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50];
    let source: &[usize] = if quick { &quick_grid } else { &full };
    source.iter().copied().filter(|&n| n <= max).collect()
}

fn plan(options: &Options) -> Plan {
    let mnist = options.mnist.is_some();
    let (description, epochs, batch_size) = match (options.model, mnist) {
        (Model::Mlp, true) => ("MLP 784-128-64-50-30-10".to_string(), 2, 300),
        (Model::Mlp, false) => ("MLP 64-128-64-50-30-10".to_string(), 20, 100),
        (Model::PaperCnn, true) => (
            "paper CNN: conv(1->10, 3x3)+ReLU+maxpool 2 | conv(10->5, 3x3)+ReLU+flatten (605) | 50 | 30 | 10".to_string(),
            2,
            300,
        ),
        (Model::PaperCnn, false) => (
            "paper CNN, padded for 8x8: conv(1->10, 3x3, pad 1)+ReLU+maxpool 2 | conv(10->5, 3x3, pad 1)+ReLU+flatten (80) | 50 | 30 | 10".to_string(),
            20,
            100,
        ),
    };
    let epochs = if options.quick { 2 } else { epochs };
    Plan {
        data_name: if mnist {
            "MNIST".into()
        } else {
            "bundled 8x8 digits (1,500 train / 297 test)".into()
        },
        description,
        training: TrainingPlan {
            epochs,
            batch_size,
            learning_rate: 0.002,
            seed: options.seed,
        },
        strict_grid: grid(400, options.quick),
        fixed_grid: grid(200, options.quick),
        runtime_epochs: if options.quick { 1 } else { epochs },
        runtime_repeats: if options.quick { 1 } else { 3 },
    }
}

/// The experiments' network (MSE loss; the cross-entropy experiments swap the loss).
fn build_network(options: &Options, train_set: &Dataset<f64>) -> Result<Network<f64>, Error> {
    let features = train_set.features();
    match options.model {
        Model::Mlp => {
            let widths = if features == 784 {
                "784-128-64-50-30-10"
            } else {
                "64-128-64-50-30-10"
            };
            Network::<f64>::mlp(widths, HIDDEN, Loss::Mse, options.seed).map_err(Error::std("MLP"))
        }
        Model::PaperCnn => {
            let side = (features as f64).sqrt() as usize;
            if side * side != features {
                return Err(Error::Usage(format!(
                    "paper-cnn needs square one-channel images, not {features} features"
                )));
            }
            let padding = if side < 16 { 1 } else { 0 };
            let layers = crate::models::paper_mnist_cnn_layers(side, padding);
            Network::<f64>::initialised(layers, Loss::Mse, features, options.seed)
                .map_err(Error::pc("paper CNN"))
        }
    }
}

/// What the experiments share: the plan, the data, the initial networks and the backprop
/// runs that several figures compare against (each trained once, on first use).
pub(crate) struct Context {
    plan: Plan,
    train_set: Dataset<f64>,
    test_set: Dataset<f64>,
    depth: usize,
    mse: Network<f64>,
    backprop_mse: Option<(History, Network<f64>)>,
    backprop_cross_entropy: Option<(History, Network<f64>)>,
}

impl Context {
    /// The initial network with `loss` (the experiments' network is built with MSE; the
    /// cross-entropy experiments swap the loss).
    fn network(&self, loss: Loss) -> Network<f64> {
        self.mse.clone().with_loss(loss)
    }

    /// Backprop's training run from the initial network with `loss`, and the network it
    /// trained.
    fn backprop(&mut self, loss: Loss) -> Result<&(History, Network<f64>), Error> {
        let cached = if loss == Loss::Mse {
            self.backprop_mse.is_some()
        } else {
            self.backprop_cross_entropy.is_some()
        };
        if !cached {
            let run = train_one(
                &self.network(loss),
                Settings::exact(),
                &self.plan.training,
                &self.train_set,
                &self.test_set,
                false,
            )?;
            if loss == Loss::Mse {
                self.backprop_mse = Some(run);
            } else {
                self.backprop_cross_entropy = Some(run);
            }
        }
        let slot = if loss == Loss::Mse {
            &self.backprop_mse
        } else {
            &self.backprop_cross_entropy
        };
        Ok(slot
            .as_ref()
            .unwrap_or_else(|| unreachable!("filled above")))
    }

    /// `settings` trained (with per-step diagnostics) from the initial network with
    /// `loss`, beside backprop's run from the same network and minibatches.
    fn compare(
        &mut self,
        loss: Loss,
        settings: Settings<'static, f64>,
    ) -> Result<Comparison, Error> {
        let pc = train_one(
            &self.network(loss),
            settings,
            &self.plan.training,
            &self.train_set,
            &self.test_set,
            true,
        )?
        .0;
        let bp = self.backprop(loss)?.0.clone();
        Ok(Comparison { pc, bp })
    }
}

/// Runs every experiment of the report (Figs 1-4, 6, the runtime study), writes its CSV, figure and the
/// report, and returns the summary table (markdown).
///
/// # Errors
/// What failed, named: the data, a training run, a file, a figure.
pub fn run(options: &Options) -> Result<String, Error> {
    let started = Instant::now();
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(Error::io(out))?;
    let (train_set, test_set) = match &options.mnist {
        Some(dir) => data::mnist::<f64>(dir),
        None => data::digits_split::<f64>(),
    }
    .map_err(Error::std("data"))?;
    let plan = plan(options);
    let mse = build_network(options, &train_set)?;
    let depth = mse.depth();
    let mut report = template::fill(
        template::HEADER,
        &[
            ("data", plan.data_name.clone()),
            ("network", plan.description.clone()),
            ("depth", depth.to_string()),
            ("parameters", mse.parameters().len().to_string()),
            ("seed", options.seed.to_string()),
            ("learning_rate", plan.training.learning_rate.to_string()),
            ("batch_size", plan.training.batch_size.to_string()),
            ("epochs", plan.training.epochs.to_string()),
        ],
    )?;
    let mut summary = String::from("| experiment | pc (this run) | paper |\n|---|---|---|\n");
    let mut context = Context {
        plan,
        train_set,
        test_set,
        depth,
        mse,
        backprop_mse: None,
        backprop_cross_entropy: None,
    };
    for (label, experiment) in figures::EXPERIMENTS {
        eprintln!("[{:6.1}s] {label}", started.elapsed().as_secs_f64());
        let section = experiment(&mut context)?;
        let (name, csv) = &section.csv;
        csv.write(out, name)?;
        let (stem, figure) = &section.figure;
        plot::write_figure(figure, out, stem).map_err(|error| Error::Plot {
            stem: stem.to_string(),
            message: error.to_string(),
        })?;
        report.push('\n');
        report.push_str(&section.prose);
        summary.push_str(&section.summary);
        summary.push('\n');
    }
    report.push('\n');
    report.push_str(&template::fill(
        template::SUMMARY,
        &[
            ("summary", summary.clone()),
            ("seconds", format!("{:.1}", started.elapsed().as_secs_f64())),
        ],
    )?);
    let path = out.join("report.md");
    std::fs::write(&path, &report).map_err(Error::io(&path))?;
    eprintln!("[{:6.1}s] done", started.elapsed().as_secs_f64());
    Ok(summary)
}
