//! `pc-bench reproduce`: Rosenbaum (2022)'s experiments on data that ships with pc (or on
//! MNIST), written as CSV files, SVG and PNG figures and a `report.md`.
//!
//! The paper's Figs 1-4 and 6 and its runtime table use a small CNN on MNIST. Without
//! convolution layers the default here is a multilayer perceptron of the same depth,
//! `64-128-64-50-30-10` (ReLU, L = 5; its last three layers are the paper's CNN's),
//! trained on the bundled 8x8 handwritten digits with the paper's optimizer (Adam, learning
//! rate 0.002). Depth 5 makes the per-layer curves comparable with the paper's: FixedPred's
//! relative errors then sit on the same binomial constants (0.885, 0.705, 0.420, 0.135, 0).
//!
//! Every CSV except `runtime.csv` is a function of the seed alone (same seed, same bytes);
//! `runtime.csv` holds wall-clock times.

mod experiments;
pub(crate) mod plot;

use experiments::{
    binomial_relative_error, compare_training, errors_against_iterations, runtime_study,
    strict_safe_step, train_one, Comparison, Curve, Timing, TrainingPlan, DIVERGENCE_THRESHOLD,
};
use pcnet_std::core::{
    Activation, Algorithm, Conv2d, ImageShape, Layer, Loss, Op, Pool2d, Settings,
};
use pcnet_std::data::{self, Dataset};
use pcnet_std::network::Network;
use pcnet_std::train::History;
use plot::{write_figure, Figure, Panel, Series};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Command-line help of the subcommand.
pub const USAGE: &str = "reproduce [--out DIR] [--mnist DIR] [--quick] [--seed N]
          [--model mlp|paper-mnist-cnn]
                  runs the paper's experiments (Figs 1-4, 6 and the runtime table) and
                  writes CSVs, SVG/PNG figures and report.md to DIR (default
                  target/pc-report); --mnist DIR uses MNIST's IDX files from DIR instead
                  of the bundled digits; --quick is a smoke run of a few seconds";

/// Which network the experiments use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// The multilayer perceptron described in the module docs.
    Mlp,
    /// The paper's MNIST CNN (L = 5): conv(1->10, 3x3) + ReLU + max-pool 2, conv(10->5,
    /// 3x3) + ReLU + flatten, then 50-30-10. On the 8x8 digits both convolutions pad by 1
    /// so the shapes fit (8 -> 8 -> 4 -> 4, 80 features into the dense layers).
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

impl Options {
    /// Parses the arguments after `reproduce`.
    ///
    /// # Errors
    /// A message for an unknown flag, a missing or malformed value.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            out: PathBuf::from("target/pc-report"),
            mnist: None,
            quick: false,
            seed: 0,
            model: Model::Mlp,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--out" => options.out = PathBuf::from(value()?),
                "--mnist" => options.mnist = Some(PathBuf::from(value()?)),
                "--quick" => options.quick = true,
                "--seed" => {
                    let text = value()?;
                    options.seed = text
                        .parse()
                        .map_err(|_| format!("--seed: `{text}` is not a non-negative integer"))?;
                }
                "--model" => match value()?.as_str() {
                    "mlp" => options.model = Model::Mlp,
                    "paper-cnn" | "paper-mnist-cnn" => options.model = Model::PaperCnn,
                    other => {
                        return Err(format!(
                            "--model: unknown model `{other}` (known: mlp, paper-cnn = paper-mnist-cnn)"
                        ))
                    }
                },
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(options)
    }
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

const STEP_SIZES: [f64; 4] = [0.1, 0.2, 0.5, 1.0];
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

fn plan(options: &Options, train_set: &Dataset<f64>) -> Plan {
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
    let _ = train_set;
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
fn build_network(options: &Options, train_set: &Dataset<f64>) -> Result<Network<f64>, String> {
    let features = train_set.features();
    match options.model {
        Model::Mlp => {
            let widths = if features == 784 {
                "784-128-64-50-30-10"
            } else {
                "64-128-64-50-30-10"
            };
            Network::<f64>::mlp(widths, HIDDEN, Loss::Mse, options.seed).map_err(|e| e.to_string())
        }
        Model::PaperCnn => {
            let side = (features as f64).sqrt() as usize;
            if side * side != features {
                return Err(format!(
                    "paper-cnn needs square one-channel images, not {features} features"
                ));
            }
            let pad = if side < 16 { 1 } else { 0 };
            let conv1 =
                Conv2d::new(ImageShape::new(1, side, side), 10, [3, 3]).with_padding([pad, pad]);
            let pool = Pool2d::new(conv1.output_shape(), [2, 2]);
            let conv2 = Conv2d::new(pool.output_shape(), 5, [3, 3]).with_padding([pad, pad]);
            let flat = conv2.output_shape().len();
            let first = Layer::from_ops(&[
                Op::Conv2d(conv1),
                Op::Activation(HIDDEN),
                Op::MaxPool2d(pool),
            ])
            .map_err(|e| e.to_string())?;
            let second = Layer::from_ops(&[Op::Conv2d(conv2), Op::Activation(HIDDEN), Op::Flatten])
                .map_err(|e| e.to_string())?;
            let layers = vec![
                first,
                second,
                Layer::dense(flat, 50, HIDDEN),
                Layer::dense(50, 30, HIDDEN),
                Layer::dense(30, 10, Activation::Identity),
            ];
            Network::<f64>::initialised(layers, Loss::Mse, features, options.seed)
                .map_err(|e| e.to_string())
        }
    }
}

/// A CSV in long form: `series,metric,x,layer,value`, one value per line, values printed
/// with Rust's shortest round-trip formatting (so equal bits give equal bytes).
#[derive(Default)]
struct Csv {
    text: String,
}

impl Csv {
    fn new() -> Self {
        Csv {
            text: "series,metric,x,layer,value\n".into(),
        }
    }

    fn row(
        &mut self,
        series: &str,
        metric: &str,
        x: impl std::fmt::Display,
        layer: Option<usize>,
        value: f64,
    ) {
        let layer = layer.map(|l| l.to_string()).unwrap_or_default();
        let _ = writeln!(self.text, "{series},{metric},{x},{layer},{value}");
    }

    fn history(&mut self, series: &str, history: &History) {
        for e in &history.epochs {
            let values = [
                ("mean_batch_loss", e.mean_batch_loss),
                ("train_loss", e.train_loss),
                ("train_accuracy", e.train_accuracy),
                ("test_loss", e.test_loss),
                ("test_accuracy", e.test_accuracy),
            ];
            for (metric, value) in values {
                if let Some(value) = value {
                    self.row(series, metric, e.epoch, None, value);
                }
            }
        }
        for s in &history.steps {
            self.row(series, "batch_loss", s.step, None, s.batch_loss);
            for (l, c) in s.layers.iter().enumerate() {
                self.row(
                    series,
                    "relative_error",
                    s.step,
                    Some(l + 1),
                    c.relative_error,
                );
                self.row(
                    series,
                    "angle_degrees",
                    s.step,
                    Some(l + 1),
                    c.angle_degrees,
                );
            }
        }
    }

    fn write(&self, dir: &Path, name: &str) -> Result<(), String> {
        let path = dir.join(name);
        std::fs::write(&path, &self.text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Per-epoch series `(epoch, value)` of one metric.
fn epoch_series(
    history: &History,
    metric: fn(&pcnet_std::train::EpochRecord) -> Option<f64>,
) -> Vec<(f64, f64)> {
    history
        .epochs
        .iter()
        .filter_map(|e| metric(e).map(|v| (e.epoch as f64, v)))
        .collect()
}

/// Per-step series of one layer's comparison.
fn layer_series(history: &History, layer: usize, angle: bool) -> Vec<(f64, f64)> {
    history
        .steps
        .iter()
        .filter_map(|s| {
            s.layers.get(layer).map(|c| {
                (
                    s.step as f64,
                    if angle {
                        c.angle_degrees
                    } else {
                        c.relative_error
                    },
                )
            })
        })
        .collect()
}

/// Mean over all steps of each layer's relative error and angle.
fn mean_layers(history: &History, depth: usize) -> (Vec<f64>, Vec<f64>) {
    let mut errors = vec![0.0; depth];
    let mut angles = vec![0.0; depth];
    let count = history.steps.len().max(1) as f64;
    for s in &history.steps {
        for (l, c) in s.layers.iter().enumerate().take(depth) {
            errors[l] += c.relative_error / count;
            angles[l] += c.angle_degrees / count;
        }
    }
    (errors, angles)
}

fn training_figure(
    title: &str,
    pc_name: &str,
    loss_name: &str,
    comparison: &Comparison,
    depth: usize,
) -> Figure {
    let mut loss = Panel::new(format!("A. test loss ({loss_name})"), "epoch", "loss");
    let mut accuracy = Panel::new("B. test accuracy", "epoch", "accuracy").legend_below();
    for (history, name, color, dashed) in [
        (&comparison.bp, "backprop", 7, false),
        (&comparison.pc, pc_name, 0, true),
    ] {
        let test_loss = epoch_series(history, |e| e.test_loss);
        let test_accuracy = epoch_series(history, |e| e.test_accuracy);
        if dashed {
            loss = loss.with(Series::dashed(name, color, test_loss));
            accuracy = accuracy.with(Series::dashed(name, color, test_accuracy));
        } else {
            loss = loss.with(Series::line(name, color, test_loss));
            accuracy = accuracy.with(Series::line(name, color, test_accuracy));
        }
    }
    let mut errors = Panel::new(
        "C. relative error of the update, per layer",
        "step",
        "|g_pc - g_bp| / |g_bp|",
    );
    let mut angles = Panel::new("D. angle to the gradient, per layer", "step", "degrees");
    for l in 0..depth {
        errors = errors.with(Series::line(
            format!("layer {}", l + 1),
            l,
            layer_series(&comparison.pc, l, false),
        ));
        angles = angles.with(Series::line(
            format!("layer {}", l + 1),
            l,
            layer_series(&comparison.pc, l, true),
        ));
    }
    Figure {
        title: title.into(),
        panels: vec![loss, accuracy, errors, angles],
        columns: 2,
    }
}

fn curves_csv(csv: &mut Csv, series_prefix: &str, curves: &[Curve]) {
    for curve in curves {
        let series = format!("{series_prefix}eta_{}", curve.step_size);
        for (n, layers) in &curve.points {
            for (l, c) in layers.iter().enumerate() {
                csv.row(&series, "relative_error", n, Some(l + 1), c.relative_error);
                csv.row(&series, "angle_degrees", n, Some(l + 1), c.angle_degrees);
            }
        }
        if let Some(n) = curve.diverged_at {
            csv.row(&series, "diverged_at_n", n, None, n as f64);
        }
        if let Some((n, iteration)) = curve.stopped_at {
            csv.row(&series, "stopped_at_iteration", n, None, iteration as f64);
        }
    }
}

fn curve_panels(
    title: &str,
    curves: &[Curve],
    depth: usize,
    extra: &[(&str, &[Curve])],
    angle: bool,
) -> Vec<Panel> {
    curves
        .iter()
        .enumerate()
        .map(|(i, curve)| {
            let metric = if angle {
                "angle (degrees)"
            } else {
                "relative error"
            };
            let mut panel = Panel::new(
                format!("{title}, eta = {}", curve.step_size),
                "iterations n",
                metric,
            )
            .log_x();
            if !angle {
                panel = panel.log_y();
                panel.y_label = format!("relative error (0 drawn at {:.0e})", plot::LOG_ZERO);
            }
            for l in 0..depth {
                let points: Vec<(f64, f64)> = curve
                    .points
                    .iter()
                    .map(|(n, c)| {
                        (
                            *n as f64,
                            if angle {
                                c[l].angle_degrees
                            } else {
                                c[l].relative_error
                            },
                        )
                    })
                    .collect();
                panel = panel.with(Series::line(format!("layer {}", l + 1), l, points));
            }
            for (name, others) in extra {
                if let Some(other) = others.get(i) {
                    for l in 0..depth {
                        let points: Vec<(f64, f64)> = other
                            .points
                            .iter()
                            .map(|(n, c)| {
                                (
                                    *n as f64,
                                    if angle {
                                        c[l].angle_degrees
                                    } else {
                                        c[l].relative_error
                                    },
                                )
                            })
                            .collect();
                        panel = panel.with(Series::dashed(
                            format!("layer {} {name}", l + 1),
                            l,
                            points,
                        ));
                    }
                }
            }
            if let Some(n) = curve.diverged_at {
                // Mark divergence on layer 1's curve at that n (or at the last point).
                let y = curve
                    .points
                    .iter()
                    .find(|(m, _)| *m == n)
                    .or(curve.points.last())
                    .map(|(_, c)| {
                        if angle {
                            c[0].angle_degrees
                        } else {
                            c[0].relative_error.max(1e-300)
                        }
                    })
                    .unwrap_or(1.0);
                panel = panel.with(Series::marks(
                    format!("diverged at n = {n}"),
                    plot::BLACK_INDEX,
                    vec![(n as f64, y)],
                ));
            }
            panel
        })
        .collect()
}

/// Step sizes as a list, or "none".
fn names<'a>(values: impl Iterator<Item = &'a f64>) -> String {
    let list: Vec<String> = values.map(|v| v.to_string()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// A formatted list of per-layer values.
fn list(values: &[f64], digits: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn last<T: Copy>(
    history: &History,
    f: fn(&pcnet_std::train::EpochRecord) -> Option<T>,
) -> Option<T> {
    history.epochs.last().and_then(f)
}

fn acc(history: &History) -> String {
    last(history, |e| e.test_accuracy).map_or("-".into(), |a| format!("{a:.3}"))
}

/// Runs everything, writes the files, and returns the summary table (markdown).
///
/// # Errors
/// A message naming what failed (data, a training run, a file).
pub fn run(options: &Options) -> Result<String, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.out).map_err(|e| format!("{}: {e}", options.out.display()))?;
    let (train_set, test_set) = match &options.mnist {
        Some(dir) => data::mnist::<f64>(dir).map_err(|e| e.to_string())?,
        None => data::digits_split::<f64>().map_err(|e| e.to_string())?,
    };
    let plan = plan(options, &train_set);
    let out = &options.out;
    let mse_net = build_network(options, &train_set)?;
    let ce_net = mse_net.clone().with_loss(Loss::CrossEntropy);
    let depth = mse_net.depth();
    let mut report = String::new();
    let mut summary = String::new();
    let _ = writeln!(
        report,
        "# pc-bench reproduce\n\nRosenbaum (2022), *On the relationship between predictive coding and backpropagation*, \
         re-run with pc. Data: {}. Network: {} (ReLU hidden layers, L = {depth}, {} parameters), initialised as PyTorch's \
         `nn.Linear`/`nn.Conv2d` from seed {}. Training: Adam (learning rate {}), minibatches of {}, {} epochs, f64. \
         Every CSV is long-form (`series,metric,x,layer,value`) and, except `runtime.csv`, identical for the \
         same seed. Paper values are from its MNIST CNN (L = 5) and are quoted for shape, not as targets.\n",
        plan.data_name, plan.description, mse_net.parameters().len(), options.seed, plan.training.learning_rate, plan.training.batch_size, plan.training.epochs
    );
    let _ = writeln!(
        summary,
        "| experiment | pc (this run) | paper |\n|---|---|---|"
    );
    let progress = |what: &str| eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());

    // Fig 1: Strict (0.1, 20) vs backprop, MSE on one-hot targets.
    progress("Fig 1: Strict (0.1, 20) vs backprop");
    let fig1 = compare_training(
        &mse_net,
        Settings::strict(0.1, 20),
        &plan.training,
        &train_set,
        &test_set,
    )?;
    let mut csv = Csv::new();
    csv.history("strict", &fig1.pc);
    csv.history("backprop", &fig1.bp);
    csv.write(out, "fig1_strict.csv")?;
    write_figure(
        &training_figure(
            "Fig 1: Strict PC (eta 0.1, n 20) vs backprop, MSE",
            "strict",
            "MSE",
            &fig1,
            depth,
        ),
        out,
        "fig1_strict",
    )
    .map_err(|e| format!("fig1: {e}"))?;
    let (errors1, angles1) = mean_layers(&fig1.pc, depth);
    let _ = writeln!(
        report,
        "## Fig 1: Strict PC (eta 0.1, n 20) against backprop\n\n![Fig 1](fig1_strict.png)\n\nData: `fig1_strict.csv`. \
         Final test accuracy: Strict {}, backprop {}. Per-layer relative error of Strict's weight updates, mean over \
         all steps (layers 1..{depth}): {}; angles: {} degrees. The error grows from the output layer (exact) \
         down to layer 1, as in the paper's Fig 1C-D (about 0.97, 0.8-0.9, 0.55-0.7, 0.25-0.3, 0; angles 20-70 \
         degrees at layer 1): with n = 20 and eta = 0.1 the relaxation has not converged, yet both networks \
         learn alike, because Adam rescales each parameter's steps.\n",
        acc(&fig1.pc),
        acc(&fig1.bp),
        list(&errors1, 3),
        list(&angles1, 1)
    );
    let _ = writeln!(
        summary,
        "| Fig 1 Strict (0.1, 20) vs BP | test acc {} vs {}; rel. error layers 1..{depth}: {} | acc 0.95-0.97; rel. error ~0.97 ... 0 |",
        acc(&fig1.pc),
        acc(&fig1.bp),
        list(&errors1, 2)
    );

    // Fig 2: Strict error vs n on the BP-trained network.
    progress("Fig 2: Strict error against n");
    let rows = plan.training.batch_size.min(train_set.len());
    let indices: Vec<usize> = (0..rows).collect();
    let batch = train_set.subset(&indices);
    let trained_mse = &fig1.bp_network;
    let fig2 = errors_against_iterations(
        trained_mse,
        batch.inputs(),
        batch.labels(),
        Algorithm::Strict,
        &STEP_SIZES,
        &plan.strict_grid,
    )
    .map_err(|e| format!("fig2: {e}"))?;
    let safe = strict_safe_step(trained_mse, batch.inputs(), batch.labels())
        .map_err(|e| format!("fig2 safe step: {e}"))?;
    let mut csv = Csv::new();
    curves_csv(&mut csv, "strict_", &fig2);
    csv.row("safe_step", "lambda_max", 0, None, safe.0);
    csv.row("safe_step", "step_size", 0, None, safe.1);
    csv.write(out, "fig2_strict_vs_n.csv")?;
    let mut panels = curve_panels("Strict", &fig2, depth, &[], false);
    panels.extend(curve_panels("Strict", &fig2, depth, &[], true));
    write_figure(
        &Figure {
            title: format!("Fig 2: Strict PC error against n on a backprop-trained network (safe step size {:.3})", safe.1),
            panels,
            columns: 4,
        },
        out,
        "fig2_strict_vs_n",
    )
    .map_err(|e| format!("fig2: {e}"))?;
    let mut fig2_text = String::new();
    for curve in &fig2 {
        let last_point = curve.points.last();
        let _ = write!(fig2_text, "eta {}: ", curve.step_size);
        match (curve.diverged_at, last_point) {
            (Some(n), _) => {
                let _ = write!(
                    fig2_text,
                    "diverges (relative error above {DIVERGENCE_THRESHOLD} from n = {n}"
                );
                if let Some((m, it)) = curve.stopped_at {
                    let _ = write!(
                        fig2_text,
                        "; pcnet-core stops it as diverged at n = {m}, iteration {it}"
                    );
                }
                fig2_text.push(')');
            }
            (None, Some((n, c))) => {
                let e: Vec<f64> = c.iter().map(|c| c.relative_error).collect();
                let _ = write!(fig2_text, "at n = {n} relative errors {}", list(&e, 3));
            }
            (None, None) => {}
        }
        fig2_text.push_str("; ");
    }
    let _ = writeln!(
        report,
        "## Fig 2: Strict PC's error against the number of iterations\n\n![Fig 2](fig2_strict_vs_n.png)\n\n\
         Data: `fig2_strict_vs_n.csv`. One training batch of {rows} on the backprop-trained network. {fig2_text}\
         pcnet-core's `safe_step_size` (power iteration on the energy's Hessian at the feedforward values) gives \
         lambda_max = {:.3}: the linearised relaxation converges for eta < 2 / lambda_max = {:.3}, and the library \
         calls {:.3} (0.9 x 2 / lambda_max) safe. Step sizes above the bound: {}; step sizes that diverged: {}. \
         In the paper eta = 0.5 and 1 diverge, and eta = 0.1 reaches about 0.48 at layer 1 after 400 \
         iterations. For n < L - l + 1 layer l's error is exactly zero (relative error 1, angle 90 degrees).\n",
        safe.0,
        2.0 / safe.0,
        safe.1,
        names(STEP_SIZES.iter().filter(|&&eta| eta > 2.0 / safe.0)),
        names(fig2.iter().filter(|c| c.diverged_at.is_some()).map(|c| &c.step_size)),
    );
    let diverged: Vec<String> = fig2
        .iter()
        .filter_map(|c| {
            c.diverged_at
                .map(|n| format!("{} (from n = {n})", c.step_size))
        })
        .collect();
    let _ =
        writeln!(
        summary,
        "| Fig 2 Strict error vs n | diverges for eta {}; safe step {:.3} | eta 0.5, 1 diverge |",
        if diverged.is_empty() { "none".into() } else { diverged.join(", ") },
        safe.1
    );

    // Fig 3 and Fig 6: FixedPred vs backprop, cross-entropy; one backprop run for both.
    progress("Fig 3: FixedPred (0.1, 20) vs backprop");
    let fig3_pc = train_one(
        &ce_net,
        Settings::fixed_pred(0.1, 20),
        &plan.training,
        &train_set,
        &test_set,
        true,
    )?
    .0;
    let (bp_ce, bp_ce_network) = train_one(
        &ce_net,
        Settings::exact(),
        &plan.training,
        &train_set,
        &test_set,
        false,
    )?;
    let fig3 = Comparison {
        pc: fig3_pc,
        bp: bp_ce.clone(),
        bp_network: bp_ce_network.clone(),
    };
    let mut csv = Csv::new();
    csv.history("fixed_pred", &fig3.pc);
    csv.history("backprop", &fig3.bp);
    csv.write(out, "fig3_fixed_pred.csv")?;
    write_figure(
        &training_figure(
            "Fig 3: FixedPred (eta 0.1, n 20) vs backprop, cross-entropy",
            "fixed_pred",
            "cross-entropy",
            &fig3,
            depth,
        ),
        out,
        "fig3_fixed_pred",
    )
    .map_err(|e| format!("fig3: {e}"))?;
    let (errors3, angles3) = mean_layers(&fig3.pc, depth);
    let binomial: Vec<f64> = (1..=depth)
        .map(|l| binomial_relative_error(20, 0.1, depth, l))
        .collect();
    let worst3 = fig3
        .pc
        .steps
        .iter()
        .flat_map(|s| {
            s.layers
                .iter()
                .enumerate()
                .map(|(l, c)| (c.relative_error - binomial[l]).abs())
        })
        .fold(0.0_f64, f64::max);
    let max_angle3 = fig3
        .pc
        .steps
        .iter()
        .flat_map(|s| s.layers.iter().map(|c| c.angle_degrees))
        .fold(0.0_f64, f64::max);
    let binomial_ok = list(&errors3, 3) == list(&binomial, 3);
    let _ = writeln!(
        report,
        "## Fig 3: FixedPred (eta 0.1, n 20) against backprop\n\n![Fig 3](fig3_fixed_pred.png)\n\nData: `fig3_fixed_pred.csv`. \
         Final test accuracy: FixedPred {}, backprop {}. Per-layer relative errors, mean over all steps: {} \
         (binomial constants P[Bin(19, 0.1) < L - l]: {}; {}; the largest deviation of any step from them is {:.1e}). \
         Angles stay below {:.2e} degrees. The paper's Fig 3C shows the same constants (0.885, 0.705, 0.42, 0.135, 0) \
         but angles up to 20 degrees: Torch2PC keeps beliefs and recovers errors by subtracting nearly equal f32 \
         activations, while pc keeps the errors themselves, so in f64 (and in f32, see Fig 4) the update is the \
         gradient scaled per layer, as the theory says.\n",
        acc(&fig3.pc),
        acc(&fig3.bp),
        list(&errors3, 3),
        list(&binomial, 3),
        if binomial_ok { "equal to 3 decimals" } else { "NOT equal to 3 decimals" },
        worst3,
        max_angle3.max(0.0)
    );
    let _ = angles3;
    let _ =
        writeln!(
        summary,
        "| Fig 3 FixedPred (0.1, 20) vs BP | rel. error {} ({}) | 0.885, 0.705, 0.420, 0.135, 0 |",
        list(&errors3, 3),
        if binomial_ok { "= binomial to 3 decimals" } else { "differs from binomial" }
    );

    // Fig 4: FixedPred error vs n, f64 and f32, on the BP-trained network.
    progress("Fig 4: FixedPred error against n, f64 and f32");
    let fig4_64 = errors_against_iterations(
        &bp_ce_network,
        batch.inputs(),
        batch.labels(),
        Algorithm::FixedPred,
        &STEP_SIZES,
        &plan.fixed_grid,
    )
    .map_err(|e| format!("fig4: {e}"))?;
    let net32 = bp_ce_network.cast::<f32>();
    let batch32 = batch.cast::<f32>();
    let fig4_32 = errors_against_iterations(
        &net32,
        batch32.inputs(),
        batch32.labels(),
        Algorithm::FixedPred,
        &STEP_SIZES,
        &plan.fixed_grid,
    )
    .map_err(|e| format!("fig4 f32: {e}"))?;
    let mut csv = Csv::new();
    curves_csv(&mut csv, "f64_", &fig4_64);
    curves_csv(&mut csv, "f32_", &fig4_32);
    for &eta in &STEP_SIZES {
        for &n in &plan.fixed_grid {
            for l in 1..=depth {
                csv.row(
                    &format!("binomial_eta_{eta}"),
                    "relative_error",
                    n,
                    Some(l),
                    binomial_relative_error(n, eta, depth, l),
                );
            }
        }
    }
    csv.write(out, "fig4_fixed_pred_vs_n.csv")?;
    let mut panels = curve_panels(
        "FixedPred f64 (solid) / f32 (dashed)",
        &fig4_64,
        depth,
        &[("f32", &fig4_32)],
        false,
    );
    panels.extend(curve_panels(
        "FixedPred f64 (solid) / f32 (dashed)",
        &fig4_64,
        depth,
        &[("f32", &fig4_32)],
        true,
    ));
    write_figure(
        &Figure {
            title: "Fig 4: FixedPred error against n on a backprop-trained network, f64 and f32"
                .into(),
            panels,
            columns: 4,
        },
        out,
        "fig4_fixed_pred_vs_n",
    )
    .map_err(|e| format!("fig4: {e}"))?;
    let mut fig4_text = String::new();
    let mut fig4_summary = Vec::new();
    let mut worst_binomial: f64 = 0.0;
    for (c64, c32) in fig4_64.iter().zip(&fig4_32) {
        for (n, layers) in &c64.points {
            for (l, c) in layers.iter().enumerate() {
                worst_binomial = worst_binomial.max(
                    (c.relative_error - binomial_relative_error(*n, c64.step_size, depth, l + 1))
                        .abs(),
                );
            }
        }
        if let (Some((n, a)), Some((_, b))) = (c64.points.last(), c32.points.last()) {
            let _ = write!(
                fig4_text,
                "eta {}: layer-1 relative error at n = {n} is {:.2e} in f64 and {:.2e} in f32 (angle {:.2e} / {:.2e} degrees); ",
                c64.step_size, a[0].relative_error, b[0].relative_error, a[0].angle_degrees, b[0].angle_degrees
            );
            fig4_summary.push(format!(
                "eta {}: {:.1e} / {:.1e}",
                c64.step_size, a[0].relative_error, b[0].relative_error
            ));
        }
    }
    let _ = writeln!(
        report,
        "## Fig 4: FixedPred's error against the number of iterations, f64 and f32\n\n![Fig 4](fig4_fixed_pred_vs_n.png)\n\n\
         Data: `fig4_fixed_pred_vs_n.csv` (also the closed form, series `binomial_eta_*`). {fig4_text}the f64 curves \
         follow the closed form 1 - P[Bin(n-1, eta) >= L - l] to {worst_binomial:.1e}. With eta = 1 layer l is exact \
         from n = L - l + 1. The paper's f32 curves level off (layer 1 at about 0.23, 0.16, 0.07 for eta = 0.1, \
         0.2, 0.5, angles 3-11 degrees) because of the belief-space subtraction; pc's f32 runs keep converging \
         to what f64 reaches, down to f32's rounding.\n"
    );
    let _ = writeln!(
        summary,
        "| Fig 4 FixedPred error vs n, layer 1 at n = {} (f64 / f32) | {} | f32 plateaus 0.23, 0.16, 0.07 (eta < 1) |",
        plan.fixed_grid.last().copied().unwrap_or(0),
        fig4_summary.join("; ")
    );

    // Fig 6: FixedPred (1, L) vs backprop.
    progress("Fig 6: FixedPred (1, L) vs backprop");
    let fig6_pc = train_one(
        &ce_net,
        Settings::fixed_pred(1.0, depth),
        &plan.training,
        &train_set,
        &test_set,
        true,
    )?
    .0;
    let fig6 = Comparison {
        pc: fig6_pc,
        bp: bp_ce,
        bp_network: bp_ce_network,
    };
    let mut csv = Csv::new();
    csv.history("fixed_pred_eta1_nL", &fig6.pc);
    csv.history("backprop", &fig6.bp);
    csv.write(out, "fig6_fixed_pred_exact.csv")?;
    write_figure(
        &training_figure(
            &format!("Fig 6: FixedPred (eta 1, n = L = {depth}) vs backprop, cross-entropy"),
            "fixed_pred (1, L)",
            "cross-entropy",
            &fig6,
            depth,
        ),
        out,
        "fig6_fixed_pred_exact",
    )
    .map_err(|e| format!("fig6: {e}"))?;
    let (curves_equal, max_curve_diff) = compare_curves(&fig6.pc, &fig6.bp);
    let max_error6 = fig6
        .pc
        .steps
        .iter()
        .flat_map(|s| s.layers.iter().map(|c| c.relative_error))
        .fold(0.0_f64, f64::max);
    let _ = writeln!(
        report,
        "## Fig 6: FixedPred (eta 1, n = L) against backprop\n\n![Fig 6](fig6_fixed_pred_exact.png)\n\nData: \
         `fig6_fixed_pred_exact.csv`. Every per-epoch loss and accuracy of the two runs printed to 6 significant \
         digits is {} (largest relative difference of any value: {max_curve_diff:.1e}); the largest per-layer \
         relative error of any step is {max_error6:.1e}. With eta = 1 and n = L, FixedPred *is* backprop (T1); the \
         paper's f32 run shows errors up to 0.013 and angles up to 0.7 degrees from belief-space rounding.\n",
        if curves_equal { "identical" } else { "NOT identical" }
    );
    let _ = writeln!(
        summary,
        "| Fig 6 FixedPred (1, L) vs BP | curves {} to 6 digits (max rel. diff {max_curve_diff:.0e}); max layer rel. error {max_error6:.0e} | rel. error 0-0.013, angle <= 0.7 deg |",
        if curves_equal { "identical" } else { "differ" }
    );

    // Runtime study: MSE, no metrics, as the paper's dedicated notebook.
    progress("runtime study");
    let runtime_plan = TrainingPlan {
        epochs: plan.runtime_epochs,
        ..plan.training
    };
    let runs = vec![
        ("strict (0.1, 20)".to_string(), Settings::strict(0.1, 20)),
        (
            "fixed_pred (0.1, 20)".to_string(),
            Settings::fixed_pred(0.1, 20),
        ),
        (
            format!("fixed_pred (1, {depth})"),
            Settings::fixed_pred(1.0, depth),
        ),
        ("backprop".to_string(), Settings::exact()),
    ];
    let timings = runtime_study(
        &mse_net,
        &runs,
        &runtime_plan,
        &train_set,
        plan.runtime_repeats,
    )?;
    write_runtime(out, &timings)?;
    write_figure(&runtime_figure(&timings), out, "runtime").map_err(|e| format!("runtime: {e}"))?;
    let bp_seconds = timings.last().map_or(f64::NAN, |t| t.seconds);
    let paper = ["4.09", "3.63", "1.72", "1.00"];
    let mut table = String::from("| algorithm | steps | total time (s, median) | fastest (s) | per step (ms) | x backprop | paper x backprop | final mean batch loss |\n|---|---|---|---|---|---|---|---|\n");
    for (t, p) in timings.iter().zip(paper) {
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {p} | {:.6} |",
            t.label,
            t.steps,
            t.seconds,
            t.min_seconds,
            1e3 * t.seconds / t.steps.max(1) as f64,
            t.seconds / bp_seconds,
            t.final_loss
        );
    }
    let _ = writeln!(
        report,
        "## Runtime study\n\n![runtime](runtime.png)\n\nData: `runtime.csv` (wall-clock times: the one file that \
         differs between runs). Training without metrics, MSE, {} epochs, median of {} interleaved repeats, on this machine's CPU with pcnet-std's \
         `Fast` kernels through pcnet-std's `BatchRunner` (rows in blocks of {}, every core); wall-clock times \
         depend on the machine and on its load, the ratios less so:\n\n{table}\nThe paper's ratios (MNIST CNN on a GPU, Torch2PC) are 4.09, 3.63, \
         1.72, 1. On a network this small (a backprop step is a few \
         MFLOP) fixed costs per step (minibatch assembly, the optimizer, thread hand-offs) weigh as much as \
         the relaxation sweeps, which shrinks the ratios; the PC algorithms' extra cost is their n sweeps.\n",
        runtime_plan.epochs,
        plan.runtime_repeats,
        pcnet_std::batch::BLOCK_ROWS
    );
    let ratios: Vec<String> = timings
        .iter()
        .map(|t| format!("{:.2}", t.seconds / bp_seconds))
        .collect();
    let _ = writeln!(
        summary,
        "| Runtime, x backprop (Strict, FP 0.1/20, FP 1/L, BP) | {} | 4.09, 3.63, 1.72, 1.00 |",
        ratios.join(", ")
    );

    let _ = writeln!(
        report,
        "## Summary\n\n{summary}\nTotal run time: {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    let path = out.join("report.md");
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    progress("done");
    Ok(summary)
}

/// Whether every per-epoch value of two runs agrees to 6 significant digits, and the
/// largest relative difference.
fn compare_curves(a: &History, b: &History) -> (bool, f64) {
    let mut equal = a.epochs.len() == b.epochs.len();
    let mut worst: f64 = 0.0;
    for (x, y) in a.epochs.iter().zip(&b.epochs) {
        let pairs = [
            (x.mean_batch_loss, y.mean_batch_loss),
            (x.train_loss, y.train_loss),
            (x.train_accuracy, y.train_accuracy),
            (x.test_loss, y.test_loss),
            (x.test_accuracy, y.test_accuracy),
        ];
        for (p, q) in pairs {
            match (p, q) {
                (Some(p), Some(q)) => {
                    equal &= format!("{p:.5e}") == format!("{q:.5e}");
                    if p != q {
                        worst = worst.max((p - q).abs() / p.abs().max(q.abs()));
                    }
                }
                (None, None) => {}
                _ => equal = false,
            }
        }
    }
    (equal, worst)
}

fn write_runtime(out: &Path, timings: &[Timing]) -> Result<(), String> {
    let bp = timings.last().map_or(f64::NAN, |t| t.seconds);
    let mut text = String::from("algorithm,step_size,iterations,steps,repeats,median_seconds,min_seconds,ms_per_step,ratio_to_backprop,final_mean_batch_loss\n");
    for t in timings {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{}",
            t.label,
            t.step_size,
            t.iterations,
            t.steps,
            t.repeats,
            t.seconds,
            t.min_seconds,
            1e3 * t.seconds / t.steps.max(1) as f64,
            t.seconds / bp,
            t.final_loss
        );
    }
    let path = out.join("runtime.csv");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn runtime_figure(timings: &[Timing]) -> Figure {
    let bp = timings.last().map_or(f64::NAN, |t| t.seconds);
    let mut panel = Panel::new(
        "training time relative to backprop (one point per algorithm)",
        "algorithm index",
        "x backprop",
    );
    for (i, t) in timings.iter().enumerate() {
        panel = panel.with(Series::marks(
            format!("{}: {:.2}x ({:.2} s)", t.label, t.seconds / bp, t.seconds),
            i,
            vec![(i as f64 + 1.0, t.seconds / bp)],
        ));
    }
    Figure {
        title: "Runtime study".into(),
        panels: vec![panel],
        columns: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_reject() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let o = Options::parse(&args("--quick --seed 7 --out x")).unwrap();
        assert!(o.quick);
        assert_eq!((o.seed, o.out), (7, PathBuf::from("x")));
        assert!(Options::parse(&args("--seed -1")).is_err());
        assert!(Options::parse(&args("--out")).is_err());
        assert_eq!(
            Options::parse(&args("--model paper-cnn")).unwrap().model,
            Model::PaperCnn
        );
        assert_eq!(
            Options::parse(&args("--model paper-mnist-cnn"))
                .unwrap()
                .model,
            Model::PaperCnn
        );
        assert!(Options::parse(&args("--model vgg")).is_err());
        assert!(Options::parse(&args("--bogus")).is_err());
    }
}
