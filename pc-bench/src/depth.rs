//! `pc-bench depth`: how Strict's relaxation scales with depth L.
//!
//! For every depth it measures, side by side in one run:
//!
//! * the condition number `kappa = lambda_max / lambda_min` of the activity Hessian
//!   (`pcnet_core::analysis::hessian_spectrum`, Lanczos) of a width- and depth-stable
//!   linear residual network (THEORY.md, fact 14: input layer `N(0, 1/N)`, residual
//!   blocks `v + W v / sqrt(L)` with `W ~ N(0, 1/N)`, readout `N(0, 1/N^2)`, 10 outputs,
//!   summed MSE);
//! * the relaxation steps plain Strict (gradient steps of the safe step
//!   `0.9 * 2 / lambda_max`) and the heavy ball (`StrictSchedule::HeavyBall`) need to reach
//!   the same relative tolerance `|grad F|^2 <= 2 tau lambda_min F_0` (both given the same
//!   spectrum; the heavy ball's Lanczos products are listed separately), and how far
//!   each final energy is from the closed-form minimum `F*` (`linear_equilibrium`),
//!   relative to `F_0`;
//! * seconds per training step (Strict with `T = 2L` plain iterations, step 0.1, then
//!   SGD) of a residual tanh network of the same width (a tanh input layer, `L - 2`
//!   blocks `v + tanh(W v + b) / sqrt(L)`, a linear readout to 10 outputs, MSE), batch 64,
//!   in f32 and f64, on pcnet-std's fast kernels with the weights packed once per step,
//!   one thread.
//!
//! It writes `depth.csv` and `depth.svg`/`depth.png` into the output directory.

use crate::reproduce::plot::{write_figure, Figure, Panel, Series};
use pcnet_core::analysis::{
    equilibrium_workspace_len, hessian_spectrum_with, linear_equilibrium, Lanczos,
};
use pcnet_core::{
    infer_with, Activation, Batch, Conditioning, Layer, Loss, NetworkSpec, Op, Optimizer, Scalar,
    Settings, Sgd, StrictSchedule, Targets,
};
use pcnet_std::fast::{Fast, PackedWeights};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The JAX CPU figures quoted in issue 15 (seconds per training step with `T = 2L`,
/// width 32, batch 64), by depth.
pub const JAX_SECONDS: [(usize, f64); 4] = [(32, 0.0055), (64, 0.0355), (128, 0.145), (256, 0.652)];

/// What `pc-bench depth` measures.
#[derive(Clone, Debug)]
pub struct Options {
    /// Output directory.
    pub out: PathBuf,
    /// Depths `L`.
    pub depths: Vec<usize>,
    /// Hidden width.
    pub width: usize,
    /// Batch of the timed training steps.
    pub batch: usize,
    /// Batch of the step counts (the count is set by the worst sample; a small batch
    /// keeps plain Strict's long runs short).
    pub steps_batch: usize,
    /// Relative tolerance `tau` of the step counts.
    pub tolerance: f64,
    /// Most plain Strict steps per depth (a count that reaches it is reported as `>cap`).
    pub plain_cap: usize,
    /// Training steps timed per depth and precision (the fastest is reported).
    pub repeats: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            out: PathBuf::from("target/pc-depth"),
            depths: vec![4, 8, 16, 32, 64, 128],
            width: 32,
            batch: 64,
            steps_batch: 1,
            tolerance: 1e-6,
            plain_cap: 100_000,
            repeats: 5,
        }
    }
}

/// One depth's measurements.
#[derive(Clone, Debug)]
pub struct Row {
    /// Depth `L`.
    pub depth: usize,
    /// Smallest eigenvalue of the activity Hessian (Lanczos).
    pub lambda_min: f64,
    /// Largest eigenvalue (Lanczos).
    pub lambda_max: f64,
    /// Hessian-vector products of the Lanczos estimate.
    pub lanczos_products: usize,
    /// Plain Strict's steps to the tolerance (`None`: not reached within the cap).
    pub plain_steps: Option<usize>,
    /// The heavy ball's steps to the tolerance.
    pub heavy_ball_steps: usize,
    /// `(F - F*) / F_0` at the end of each run.
    pub plain_energy_gap: f64,
    /// The same for the heavy ball.
    pub heavy_ball_energy_gap: f64,
    /// Seconds per training step in f32.
    pub seconds_f32: f64,
    /// Seconds per training step in f64.
    pub seconds_f64: f64,
}

/// SplitMix64 normals (a fixed seed per depth: the same network on every run).
struct Draw(u64);

impl Draw {
    fn normal(&mut self) -> f64 {
        let mut uniform = || {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 + 0.5 / (1u64 << 53) as f64
        };
        let (a, b) = (uniform(), uniform());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
}

const OUTPUTS: usize = 10;

/// The stable linear residual network: a linear input layer, `L - 2` residual blocks
/// `v + (W v + b) / sqrt(L)` (`Layer::residual` with a linear branch), a linear readout.
fn residual_linear_layers(width: usize, depth: usize) -> Result<Vec<Layer>, String> {
    let block = Layer::residual(
        &[Op::Linear {
            inputs: width,
            outputs: width,
        }],
        1.0 / (depth as f64).sqrt(),
    )
    .map_err(|e| format!("residual block: {e}"))?;
    let mut layers = vec![Layer::dense(width, width, Activation::Identity)];
    layers.extend(std::iter::repeat_n(block, depth - 2));
    layers.push(Layer::dense(width, OUTPUTS, Activation::Identity));
    Ok(layers)
}

/// Its parameters: input layer `N(0, 1/N)`, blocks `W ~ N(0, 1/N)`, readout `N(0, 1/N^2)`,
/// no biases.
fn stable_parameters(draw: &mut Draw, width: usize, depth: usize) -> Vec<f64> {
    let scale = 1.0 / (width as f64).sqrt();
    let mut params = Vec::new();
    for l in 0..depth {
        let outputs = if l == depth - 1 { OUTPUTS } else { width };
        for _ in 0..outputs * width {
            let z = draw.normal();
            params.push(if l == depth - 1 {
                z / width as f64
            } else {
                z * scale
            });
        }
        params.extend(std::iter::repeat_n(0.0, outputs));
    }
    params
}

/// Relaxation steps of `schedule` to the tolerance and the final relative energy gap.
fn steps(
    spec: &NetworkSpec<'_>,
    params: &[f64],
    batch: Batch<'_, f64>,
    settings: &Settings<'_, f64>,
    minimum: f64,
) -> Result<(usize, bool, f64), String> {
    let rows = batch.inputs.len() / spec.input_len();
    let mut workspace = vec![0.0; settings.schedule.workspace_len(spec, rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let run = infer_with(
        &Fast::default(),
        spec,
        params,
        batch,
        settings,
        &mut workspace,
        &mut updates,
    )
    .map_err(|e| format!("relaxation: {e}"))?;
    let report = run.report();
    let energy = report.energy.unwrap_or(f64::NAN);
    Ok((
        report.iterations,
        report.converged,
        (energy - minimum) / run.loss(),
    ))
}

/// Fastest of `repeats` training steps in precision `T`: the weights packed for the fast
/// kernels (`pcnet_std::fast::PackedWeights`, once per step, as the batch runner does),
/// Strict with `T = 2L` plain iterations, then SGD on the updates.
fn seconds_per_step<T: Scalar + pcnet_std::fast::GemmScalar>(
    width: usize,
    depth: usize,
    batch: usize,
    repeats: usize,
) -> Result<f64, String>
where
    Fast: pcnet_core::Backend<T>,
    for<'a> pcnet_std::fast::PackedFast<'a, T>: pcnet_core::Backend<T>,
{
    // Input layer, L - 2 residual blocks v + tanh(W v + b) / sqrt(L), readout.
    let block = Layer::residual(
        &[
            Op::Linear {
                inputs: width,
                outputs: width,
            },
            Op::Activation(Activation::Tanh),
        ],
        1.0 / (depth as f64).sqrt(),
    )
    .map_err(|e| format!("residual block: {e}"))?;
    let mut layers = vec![Layer::dense(width, width, Activation::Tanh)];
    layers.extend(std::iter::repeat_n(block, depth - 2));
    layers.push(Layer::dense(width, OUTPUTS, Activation::Identity));
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let mut draw = Draw(0xD0E5 + depth as u64);
    let scale = 1.0 / (width as f64).sqrt();
    let mut params: Vec<T> = (0..spec.parameter_len())
        .map(|_| T::from_f64(draw.normal() * scale))
        .collect();
    let inputs: Vec<T> = (0..batch * width)
        .map(|_| T::from_f64(draw.normal()))
        .collect();
    let targets: Vec<T> = (0..batch * OUTPUTS)
        .map(|_| T::from_f64(draw.normal()))
        .collect();
    let mut sgd = Sgd::new(T::from_f64(0.01));
    let mut state = vec![T::zero(); <Sgd<T> as Optimizer<T>>::state_len(params.len())];
    let mut workspace = vec![T::zero(); spec.workspace_len(batch)];
    let mut updates = vec![T::zero(); spec.parameter_len()];
    let mut packed = PackedWeights::new();
    let settings = Settings::strict(T::from_f64(0.1), 2 * depth);
    let batch = Batch::new(&inputs, Targets::Values(&targets));
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) + 1 {
        let start = Instant::now();
        {
            let backend = packed
                .pack(&spec, &params, &settings)
                .map_err(|e| format!("packing at L = {depth}: {e}"))?;
            infer_with(
                &backend,
                &spec,
                &params,
                batch,
                &settings,
                &mut workspace,
                &mut updates,
            )
            .map_err(|e| format!("training step at L = {depth}: {e}"))?;
        }
        sgd.step(&mut params, &updates, &mut state)
            .map_err(|e| format!("SGD at L = {depth}: {e}"))?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Measures one depth.
pub fn measure(options: &Options, depth: usize) -> Result<Row, String> {
    if depth < 2 {
        return Err(format!("depth {depth}: at least 2 (a hidden layer)"));
    }
    let width = options.width;
    let layers = residual_linear_layers(width, depth)?;
    let spec = NetworkSpec::new(&layers, Loss::MseSum);
    let mut draw = Draw(0x5EED + depth as u64);
    let params = stable_parameters(&mut draw, width, depth);
    let rows = options.steps_batch;
    let inputs: Vec<f64> = (0..rows * width).map(|_| draw.normal()).collect();
    let targets: Vec<f64> = (0..rows * OUTPUTS).map(|_| draw.normal()).collect();
    let batch = Batch::new(&inputs, Targets::Values(&targets));

    let mut workspace = vec![0.0; equilibrium_workspace_len(&spec, rows)];
    let hidden = rows * (spec.activation_len() - spec.input_len() - spec.output_len());
    let mut beliefs = vec![0.0; hidden];
    let minimum = linear_equilibrium(&spec, &params, batch, &mut workspace, &mut beliefs)
        .map_err(|e| format!("closed form: {e}"))?
        .energy;
    let rule = Lanczos {
        iterations: 8 * depth + 64,
        ..Lanczos::default()
    };
    let mut workspace =
        vec![0.0; pcnet_core::analysis::spectrum_workspace_len(&spec, rows, rule.iterations)];
    let spectrum = hessian_spectrum_with(
        &Fast::default(),
        &spec,
        &params,
        batch,
        None,
        &rule,
        &mut workspace,
    )
    .map_err(|e| format!("spectrum: {e}"))?;
    let conditioning = Conditioning {
        relative_tolerance: Some(options.tolerance),
        spectrum: Some(spectrum),
        ..Conditioning::default()
    };
    let safe = 0.9 * 2.0 / spectrum.lambda_max;
    let plain = Settings::strict(safe, options.plain_cap)
        .with_schedule(StrictSchedule::Gradient(conditioning));
    let (plain_steps, plain_converged, plain_gap) = steps(&spec, &params, batch, &plain, minimum)?;
    let heavy =
        Settings::strict(safe, 1_000_000).with_schedule(StrictSchedule::HeavyBall(conditioning));
    let (heavy_steps, heavy_converged, heavy_gap) = steps(&spec, &params, batch, &heavy, minimum)?;
    if !heavy_converged {
        return Err(format!(
            "L = {depth}: the heavy ball did not converge in {heavy_steps} steps"
        ));
    }
    Ok(Row {
        depth,
        lambda_min: spectrum.lambda_min,
        lambda_max: spectrum.lambda_max,
        lanczos_products: spectrum.iterations,
        plain_steps: plain_converged.then_some(plain_steps),
        heavy_ball_steps: heavy_steps,
        plain_energy_gap: plain_gap,
        heavy_ball_energy_gap: heavy_gap,
        seconds_f32: seconds_per_step::<f32>(width, depth, options.batch, options.repeats)?,
        seconds_f64: seconds_per_step::<f64>(width, depth, options.batch, options.repeats)?,
    })
}

/// The CSV text of `rows`.
pub fn csv(rows: &[Row], options: &Options) -> String {
    let mut text = String::from(
        "depth,lambda_min,lambda_max,kappa,lanczos_products,plain_steps,heavy_ball_steps,\
         step_ratio,plain_energy_gap,heavy_ball_energy_gap,seconds_per_step_f32,\
         seconds_per_step_f64,jax_seconds\n",
    );
    for row in rows {
        let plain = row
            .plain_steps
            .map_or(format!(">{}", options.plain_cap), |s| s.to_string());
        let ratio = row
            .plain_steps
            .map_or(f64::NAN, |s| s as f64 / row.heavy_ball_steps as f64);
        let jax = JAX_SECONDS
            .iter()
            .find(|(d, _)| *d == row.depth)
            .map_or(String::new(), |(_, s)| s.to_string());
        let _ = writeln!(
            text,
            "{},{:.6e},{:.6e},{:.1},{},{},{},{:.1},{:.2e},{:.2e},{:.6e},{:.6e},{}",
            row.depth,
            row.lambda_min,
            row.lambda_max,
            row.lambda_max / row.lambda_min,
            row.lanczos_products,
            plain,
            row.heavy_ball_steps,
            ratio,
            row.plain_energy_gap,
            row.heavy_ball_energy_gap,
            row.seconds_f32,
            row.seconds_f64,
            jax
        );
    }
    text
}

/// Runs every depth, prints the table, writes the CSV and the figure.
pub fn depth(options: &Options) -> Result<Vec<Row>, String> {
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    let start = Instant::now();
    let mut rows = Vec::new();
    for &depth in &options.depths {
        let row = measure(options, depth)?;
        eprintln!(
            "L = {depth}: kappa {:.0}, plain {:?}, heavy ball {} steps; {:.3e} s (f32), {:.3e} s (f64)",
            row.lambda_max / row.lambda_min,
            row.plain_steps,
            row.heavy_ball_steps,
            row.seconds_f32,
            row.seconds_f64
        );
        rows.push(row);
    }
    let text = csv(&rows, options);
    print!("{text}");
    let path = options.out.join("depth.csv");
    std::fs::write(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let points = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| f(r).map(|y| (r.depth as f64, y)))
            .collect()
    };
    let steps = Panel::new(
        format!(
            "steps to |grad F|^2 <= 2 tau lambda_min F_0, tau = {:e}",
            options.tolerance
        ),
        "depth L",
        "relaxation steps",
    )
    .log_x()
    .log_y()
    .with(Series::line(
        "plain Strict (0.9 * 2 / lambda_max)",
        0,
        points(&|r| r.plain_steps.map(|s| s as f64)),
    ))
    .with(Series::line(
        "heavy ball",
        1,
        points(&|r| Some(r.heavy_ball_steps as f64)),
    ))
    .with(Series::dashed(
        "condition number",
        7,
        points(&|r| Some(r.lambda_max / r.lambda_min)),
    ));
    let seconds = Panel::new(
        format!(
            "training step, T = 2L, width {}, batch {}, one thread",
            options.width, options.batch
        ),
        "depth L",
        "seconds",
    )
    .log_x()
    .log_y()
    .with(Series::line("pc f32", 0, points(&|r| Some(r.seconds_f32))))
    .with(Series::line("pc f64", 1, points(&|r| Some(r.seconds_f64))))
    .with(Series::marks(
        "JAX (issue 15)",
        crate::reproduce::plot::BLACK_INDEX,
        JAX_SECONDS.iter().map(|&(d, s)| (d as f64, s)).collect(),
    ));
    let figure = Figure {
        title: "Strict predictive coding with depth".to_string(),
        panels: vec![steps, seconds],
        columns: 2,
    };
    write_figure(&figure, &options.out, "depth").map_err(|e| format!("figure: {e}"))?;
    eprintln!(
        "wrote {} and depth.svg/png in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(rows)
}
