//! One function per figure of the report. Each takes the run's [`Context`] (data,
//! networks, the backprop runs several figures share) and returns a [`Section`]: its CSV,
//! its figure, its prose (a filled template) and its row of the summary table. They do
//! not write files; [`super::run`] does.

use super::experiments::{
    binomial_relative_error, errors_against_iterations, runtime_study, strict_safe_step,
    Comparison, Curve, Timing, DIVERGENCE_THRESHOLD,
};
use super::plot::{self, Figure, Panel, Series};
use super::table::Table;
use super::template::{self, fill};
use super::Context;
use crate::Error;
use pcnet_core::{Algorithm, Loss, Settings};
use pcnet_std::train::History;
use std::fmt::Write as _;

/// What one figure contributes to the report.
pub struct Section {
    /// The CSV file's name and content.
    pub csv: (&'static str, Table),
    /// The figure's file stem (`.svg` and `.png` are written) and content.
    pub figure: (&'static str, Figure),
    /// The report's section, in markdown.
    pub prose: String,
    /// The section's row of the summary table (markdown, no newline).
    pub summary: String,
}

/// The step sizes of the error-against-iterations figures.
const STEP_SIZES: [f64; 4] = [0.1, 0.2, 0.5, 1.0];

/// An experiment: its progress label and its function.
pub type Experiment = (&'static str, fn(&mut Context) -> Result<Section, Error>);

/// The report's figures, in order.
pub const EXPERIMENTS: [Experiment; 6] = [
    ("Fig 1: Strict (0.1, 20) vs backprop", fig1),
    ("Fig 2: Strict error against n", fig2),
    ("Fig 3: FixedPred (0.1, 20) vs backprop", fig3),
    ("Fig 4: FixedPred error against n, f64 and f32", fig4),
    ("Fig 6: FixedPred (1, L) vs backprop", fig6),
    ("runtime study", runtime),
];

/// Fig 1: Strict (0.1, 20) against backprop, MSE on one-hot targets.
fn fig1(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let comparison = cx.compare(Loss::Mse, Settings::strict(0.1, 20))?;
    let mut csv = Table::long();
    csv.history("strict", &comparison.pc);
    csv.history("backprop", &comparison.bp);
    let figure = training_figure(
        "Fig 1: Strict PC (eta 0.1, n 20) vs backprop, MSE",
        "strict",
        "MSE",
        &comparison,
        depth,
    );
    let (errors, angles) = mean_layers(&comparison.pc, depth);
    let prose = fill(
        template::FIG1,
        &[
            ("accuracy_pc", acc(&comparison.pc)),
            ("accuracy_bp", acc(&comparison.bp)),
            ("depth", depth.to_string()),
            ("errors", list(&errors, 3)),
            ("angles", list(&angles, 1)),
        ],
    )?;
    let summary = format!(
        "| Fig 1 Strict (0.1, 20) vs BP | test acc {} vs {}; rel. error layers 1..{depth}: {} | acc 0.95-0.97; rel. error ~0.97 ... 0 |",
        acc(&comparison.pc),
        acc(&comparison.bp),
        list(&errors, 2)
    );
    Ok(Section {
        csv: ("fig1_strict.csv", csv),
        figure: ("fig1_strict", figure),
        prose,
        summary,
    })
}

/// Fig 2: Strict's error against n, on one batch, on the backprop-trained MSE network.
fn fig2(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let rows = cx.plan.training.batch_size.min(cx.train_set.len());
    let indices: Vec<usize> = (0..rows).collect();
    let batch = cx.train_set.subset(&indices);
    let trained = cx.backprop(Loss::Mse)?.1.clone();
    let curves = errors_against_iterations(
        &trained,
        batch.inputs(),
        batch.labels(),
        Algorithm::Strict,
        &STEP_SIZES,
        &cx.plan.strict_grid,
    )
    .map_err(Error::pc("fig2"))?;
    let (lambda_max, safe_step) = strict_safe_step(&trained, batch.inputs(), batch.labels())
        .map_err(Error::pc("fig2 safe step"))?;
    let mut csv = Table::long();
    curves_csv(&mut csv, "strict_", &curves);
    csv.row("safe_step", "lambda_max", 0, None, lambda_max);
    csv.row("safe_step", "step_size", 0, None, safe_step);
    let mut panels = curve_panels("Strict", &curves, depth, &[], false);
    panels.extend(curve_panels("Strict", &curves, depth, &[], true));
    let figure = Figure {
        title: format!(
            "Fig 2: Strict PC error against n on a backprop-trained network (safe step size {safe_step:.3})"
        ),
        panels,
        columns: 4,
    };
    let mut text = String::new();
    for curve in &curves {
        let _ = write!(text, "eta {}: ", curve.step_size);
        match (curve.diverged_at, curve.points.last()) {
            (Some(n), _) => {
                let _ = write!(
                    text,
                    "diverges (relative error above {DIVERGENCE_THRESHOLD} from n = {n}"
                );
                if let Some((m, it)) = curve.stopped_at {
                    let _ = write!(
                        text,
                        "; pcnet-core stops it as diverged at n = {m}, iteration {it}"
                    );
                }
                text.push(')');
            }
            (None, Some((n, c))) => {
                let e: Vec<f64> = c.iter().map(|c| c.relative_error).collect();
                let _ = write!(text, "at n = {n} relative errors {}", list(&e, 3));
            }
            (None, None) => {}
        }
        text.push_str("; ");
    }
    let prose = fill(
        template::FIG2,
        &[
            ("rows", rows.to_string()),
            ("curves", text),
            ("lambda_max", format!("{lambda_max:.3}")),
            ("bound", format!("{:.3}", 2.0 / lambda_max)),
            ("safe_step", format!("{safe_step:.3}")),
            (
                "above_bound",
                names(STEP_SIZES.iter().filter(|&&eta| eta > 2.0 / lambda_max)),
            ),
            (
                "diverged",
                names(
                    curves
                        .iter()
                        .filter(|c| c.diverged_at.is_some())
                        .map(|c| &c.step_size),
                ),
            ),
        ],
    )?;
    let diverged: Vec<String> = curves
        .iter()
        .filter_map(|c| {
            c.diverged_at
                .map(|n| format!("{} (from n = {n})", c.step_size))
        })
        .collect();
    let summary = format!(
        "| Fig 2 Strict error vs n | diverges for eta {}; safe step {safe_step:.3} | eta 0.5, 1 diverge |",
        if diverged.is_empty() {
            "none".into()
        } else {
            diverged.join(", ")
        },
    );
    Ok(Section {
        csv: ("fig2_strict_vs_n.csv", csv),
        figure: ("fig2_strict_vs_n", figure),
        prose,
        summary,
    })
}

/// Fig 3: FixedPred (0.1, 20) against backprop, cross-entropy.
fn fig3(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let comparison = cx.compare(Loss::CrossEntropy, Settings::fixed_pred(0.1, 20))?;
    let mut csv = Table::long();
    csv.history("fixed_pred", &comparison.pc);
    csv.history("backprop", &comparison.bp);
    let figure = training_figure(
        "Fig 3: FixedPred (eta 0.1, n 20) vs backprop, cross-entropy",
        "fixed_pred",
        "cross-entropy",
        &comparison,
        depth,
    );
    let (errors, _) = mean_layers(&comparison.pc, depth);
    let binomial: Vec<f64> = (1..=depth)
        .map(|l| binomial_relative_error(20, 0.1, depth, l))
        .collect();
    let steps = &comparison.pc.steps;
    let worst = steps
        .iter()
        .flat_map(|s| {
            s.layers
                .iter()
                .enumerate()
                .map(|(l, c)| (c.relative_error - binomial[l]).abs())
        })
        .fold(0.0_f64, f64::max);
    let max_angle = steps
        .iter()
        .flat_map(|s| s.layers.iter().map(|c| c.angle_degrees))
        .fold(0.0_f64, f64::max);
    let binomial_ok = list(&errors, 3) == list(&binomial, 3);
    let prose = fill(
        template::FIG3,
        &[
            ("accuracy_pc", acc(&comparison.pc)),
            ("accuracy_bp", acc(&comparison.bp)),
            ("errors", list(&errors, 3)),
            ("binomial", list(&binomial, 3)),
            (
                "agreement",
                if binomial_ok {
                    "equal to 3 decimals"
                } else {
                    "NOT equal to 3 decimals"
                }
                .into(),
            ),
            ("worst", format!("{worst:.1e}")),
            ("max_angle", format!("{:.2e}", max_angle.max(0.0))),
        ],
    )?;
    let summary = format!(
        "| Fig 3 FixedPred (0.1, 20) vs BP | rel. error {} ({}) | 0.885, 0.705, 0.420, 0.135, 0 |",
        list(&errors, 3),
        if binomial_ok {
            "= binomial to 3 decimals"
        } else {
            "differs from binomial"
        }
    );
    Ok(Section {
        csv: ("fig3_fixed_pred.csv", csv),
        figure: ("fig3_fixed_pred", figure),
        prose,
        summary,
    })
}

/// Fig 4: FixedPred's error against n in f64 and f32, on the backprop-trained
/// cross-entropy network, beside the closed form.
fn fig4(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let rows = cx.plan.training.batch_size.min(cx.train_set.len());
    let indices: Vec<usize> = (0..rows).collect();
    let batch = cx.train_set.subset(&indices);
    let grid = cx.plan.fixed_grid.clone();
    let trained = cx.backprop(Loss::CrossEntropy)?.1.clone();
    let curves64 = errors_against_iterations(
        &trained,
        batch.inputs(),
        batch.labels(),
        Algorithm::FixedPred,
        &STEP_SIZES,
        &grid,
    )
    .map_err(Error::pc("fig4"))?;
    let batch32 = batch.cast::<f32>();
    let curves32 = errors_against_iterations(
        &trained.cast::<f32>(),
        batch32.inputs(),
        batch32.labels(),
        Algorithm::FixedPred,
        &STEP_SIZES,
        &grid,
    )
    .map_err(Error::pc("fig4 f32"))?;
    let mut csv = Table::long();
    curves_csv(&mut csv, "f64_", &curves64);
    curves_csv(&mut csv, "f32_", &curves32);
    for &eta in &STEP_SIZES {
        for &n in &grid {
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
    let title = "FixedPred f64 (solid) / f32 (dashed)";
    let mut panels = curve_panels(title, &curves64, depth, &[("f32", &curves32)], false);
    panels.extend(curve_panels(
        title,
        &curves64,
        depth,
        &[("f32", &curves32)],
        true,
    ));
    let figure = Figure {
        title: "Fig 4: FixedPred error against n on a backprop-trained network, f64 and f32".into(),
        panels,
        columns: 4,
    };
    let mut text = String::new();
    let mut summary_parts = Vec::new();
    let mut worst: f64 = 0.0;
    for (c64, c32) in curves64.iter().zip(&curves32) {
        for (n, layers) in &c64.points {
            for (l, c) in layers.iter().enumerate() {
                let closed = binomial_relative_error(*n, c64.step_size, depth, l + 1);
                worst = worst.max((c.relative_error - closed).abs());
            }
        }
        if let (Some((n, a)), Some((_, b))) = (c64.points.last(), c32.points.last()) {
            let _ = write!(
                text,
                "eta {}: layer-1 relative error at n = {n} is {:.2e} in f64 and {:.2e} in f32 (angle {:.2e} / {:.2e} degrees); ",
                c64.step_size, a[0].relative_error, b[0].relative_error, a[0].angle_degrees, b[0].angle_degrees
            );
            summary_parts.push(format!(
                "eta {}: {:.1e} / {:.1e}",
                c64.step_size, a[0].relative_error, b[0].relative_error
            ));
        }
    }
    let prose = fill(
        template::FIG4,
        &[("curves", text), ("worst", format!("{worst:.1e}"))],
    )?;
    let summary = format!(
        "| Fig 4 FixedPred error vs n, layer 1 at n = {} (f64 / f32) | {} | f32 plateaus 0.23, 0.16, 0.07 (eta < 1) |",
        grid.last().copied().unwrap_or(0),
        summary_parts.join("; ")
    );
    Ok(Section {
        csv: ("fig4_fixed_pred_vs_n.csv", csv),
        figure: ("fig4_fixed_pred_vs_n", figure),
        prose,
        summary,
    })
}

/// Fig 6: FixedPred (1, L) against backprop, cross-entropy: the same curves.
fn fig6(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let comparison = cx.compare(Loss::CrossEntropy, Settings::fixed_pred(1.0, depth))?;
    let mut csv = Table::long();
    csv.history("fixed_pred_eta1_nL", &comparison.pc);
    csv.history("backprop", &comparison.bp);
    let figure = training_figure(
        &format!("Fig 6: FixedPred (eta 1, n = L = {depth}) vs backprop, cross-entropy"),
        "fixed_pred (1, L)",
        "cross-entropy",
        &comparison,
        depth,
    );
    let (curves_equal, max_diff) = compare_curves(&comparison.pc, &comparison.bp);
    let max_error = comparison
        .pc
        .steps
        .iter()
        .flat_map(|s| s.layers.iter().map(|c| c.relative_error))
        .fold(0.0_f64, f64::max);
    let prose = fill(
        template::FIG6,
        &[
            (
                "identical",
                if curves_equal {
                    "identical"
                } else {
                    "NOT identical"
                }
                .into(),
            ),
            ("max_diff", format!("{max_diff:.1e}")),
            ("max_error", format!("{max_error:.1e}")),
        ],
    )?;
    let summary = format!(
        "| Fig 6 FixedPred (1, L) vs BP | curves {} to 6 digits (max rel. diff {max_diff:.0e}); max layer rel. error {max_error:.0e} | rel. error 0-0.013, angle <= 0.7 deg |",
        if curves_equal { "identical" } else { "differ" }
    );
    Ok(Section {
        csv: ("fig6_fixed_pred_exact.csv", csv),
        figure: ("fig6_fixed_pred_exact", figure),
        prose,
        summary,
    })
}

/// The runtime study: MSE, no metrics, as the paper's dedicated notebook.
fn runtime(cx: &mut Context) -> Result<Section, Error> {
    let depth = cx.depth;
    let plan = super::experiments::TrainingPlan {
        epochs: cx.plan.runtime_epochs,
        ..cx.plan.training
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
        &cx.network(Loss::Mse),
        &runs,
        &plan,
        &cx.train_set,
        cx.plan.runtime_repeats,
    )?;
    let bp_seconds = timings.last().map_or(f64::NAN, |t| t.seconds);
    let mut csv = Table::new(&[
        "algorithm",
        "step_size",
        "iterations",
        "steps",
        "repeats",
        "median_seconds",
        "min_seconds",
        "ms_per_step",
        "ratio_to_backprop",
        "final_mean_batch_loss",
    ]);
    for t in &timings {
        csv.record(vec![
            t.label.clone(),
            t.step_size.to_string(),
            t.iterations.to_string(),
            t.steps.to_string(),
            t.repeats.to_string(),
            format!("{:.4}", t.seconds),
            format!("{:.4}", t.min_seconds),
            format!("{:.4}", 1e3 * t.seconds / t.steps.max(1) as f64),
            format!("{:.4}", t.seconds / bp_seconds),
            t.final_loss.to_string(),
        ]);
    }
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
    let prose = fill(
        template::RUNTIME,
        &[
            ("epochs", plan.epochs.to_string()),
            ("repeats", cx.plan.runtime_repeats.to_string()),
            ("block_rows", pcnet_std::batch::BLOCK_ROWS.to_string()),
            ("table", table),
        ],
    )?;
    let ratios: Vec<String> = timings
        .iter()
        .map(|t| format!("{:.2}", t.seconds / bp_seconds))
        .collect();
    let summary = format!(
        "| Runtime, x backprop (Strict, FP 0.1/20, FP 1/L, BP) | {} | 4.09, 3.63, 1.72, 1.00 |",
        ratios.join(", ")
    );
    Ok(Section {
        csv: ("runtime.csv", csv),
        figure: ("runtime", runtime_figure(&timings)),
        prose,
        summary,
    })
}

/// Writes the curves of an error-against-iterations experiment in long form.
fn curves_csv(csv: &mut Table, series_prefix: &str, curves: &[Curve]) {
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

/// Layer `layer`'s (0-based) relative error or angle against `n` along a curve.
fn curve_points(curve: &Curve, layer: usize, angle: bool) -> Vec<(f64, f64)> {
    curve
        .points
        .iter()
        .map(|(n, c)| {
            let value = if angle {
                c[layer].angle_degrees
            } else {
                c[layer].relative_error
            };
            (*n as f64, value)
        })
        .collect()
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
                let points = curve_points(curve, l, angle);
                panel = panel.with(Series::line(format!("layer {}", l + 1), l, points));
            }
            for (name, others) in extra {
                if let Some(other) = others.get(i) {
                    for l in 0..depth {
                        panel = panel.with(Series::dashed(
                            format!("layer {} {name}", l + 1),
                            l,
                            curve_points(other, l, angle),
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

/// The final test accuracy to 3 decimals, or `-`.
fn acc(history: &History) -> String {
    history
        .epochs
        .last()
        .and_then(|e| e.test_accuracy)
        .map_or("-".into(), |a| format!("{a:.3}"))
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
