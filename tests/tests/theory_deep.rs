//! Deep predictive coding: the closed-form equilibrium of linear networks, the
//! width >> depth limit in which PC's energy is the backprop loss, and the depth scaling
//! of the relaxation (THEORY.md, facts 13 to 15).
//!
//! The networks are linear, so every quantity has a closed form
//! (`pcnet_core::analysis`); the random draws come from a fixed seed (proptest's, see
//! `common::cases`, or the constants below), so a commit that passes passes again.

use pcnet_core::analysis::{
    equilibrium_workspace_len, hessian_spectrum, linear_equilibrium, spectrum_workspace_len,
    Lanczos, Spectrum,
};
use pcnet_core::{
    infer, Activation, Batch, Conditioning, Layer, Loss, NetworkSpec, Op, Report, Settings,
    StrictSchedule, Targets,
};
use proptest::prelude::*;

mod common;
use common::cases;

// ---------------------------------------------------------------------------------------
// Linear networks from a seed
// ---------------------------------------------------------------------------------------

/// SplitMix64 with Box-Muller normals: the tests' own generator, so a seed is a network.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (a, b) = (self.uniform(), self.uniform());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
}

/// A linear network: dense layers with the identity activation, its parameters, a batch.
struct LinearNet {
    layers: Vec<Layer>,
    loss: Loss,
    params: Vec<f64>,
    inputs: Vec<f64>,
    targets: Vec<f64>,
    rows: usize,
}

impl LinearNet {
    fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss)
    }

    fn batch(&self) -> Batch<'_, f64> {
        Batch::new(&self.inputs, Targets::Values(&self.targets))
    }

    fn hidden_len(&self) -> usize {
        let spec = self.spec();
        self.rows * (spec.activation_len() - spec.input_len() - spec.output_len())
    }

    /// Widths `n_0..n_L`, every weight `N(0, scale^2 / fan_in)`, biases `N(0, 0.1^2)`.
    fn random(seed: u64, widths: &[usize], scale: f64, loss: Loss, rows: usize) -> LinearNet {
        let mut draw = Draw(seed);
        let layers: Vec<Layer> = widths
            .windows(2)
            .map(|w| Layer::dense(w[0], w[1], Activation::Identity))
            .collect();
        let mut params = Vec::new();
        for w in widths.windows(2) {
            let std = scale / (w[0] as f64).sqrt();
            params.extend((0..w[0] * w[1]).map(|_| std * draw.normal()));
            params.extend((0..w[1]).map(|_| 0.1 * draw.normal()));
        }
        let inputs = (0..rows * widths[0]).map(|_| draw.normal()).collect();
        let targets = (0..rows * widths[widths.len() - 1])
            .map(|_| draw.normal())
            .collect();
        LinearNet {
            layers,
            loss,
            params,
            inputs,
            targets,
            rows,
        }
    }

    /// The width- and depth-stable linear residual network of fact 14: input layer
    /// `N(0, 1/d)`, `L - 2` residual blocks `v + W_l v / sqrt(L)` with `W_l ~ N(0, 1/N)`
    /// (`Layer::residual` with a linear branch), and a readout of variance `1/N^2`
    /// (muP's output scaling); no biases; summed MSE. With `dense_blocks` each block is
    /// written instead as the dense layer with weight `I + alpha W` (the same affine map),
    /// from the same draws.
    fn stable_residual(
        seed: u64,
        width: usize,
        depth: usize,
        outputs: usize,
        rows: usize,
        dense_blocks: bool,
    ) -> LinearNet {
        let mut draw = Draw(seed);
        let input = width;
        let alpha = 1.0 / (depth as f64).sqrt();
        let mut layers = vec![Layer::dense(input, width, Activation::Identity)];
        let block = if dense_blocks {
            Layer::dense(width, width, Activation::Identity)
        } else {
            Layer::residual(
                &[Op::Linear {
                    inputs: width,
                    outputs: width,
                }],
                alpha,
            )
            .expect("a linear branch of matching width")
        };
        layers.extend(std::iter::repeat_n(block, depth - 2));
        layers.push(Layer::dense(width, outputs, Activation::Identity));
        let mut params = Vec::new();
        for l in 0..depth {
            let (fan_in, fan_out) = (
                if l == 0 { input } else { width },
                if l == depth - 1 { outputs } else { width },
            );
            for o in 0..fan_out {
                for i in 0..fan_in {
                    let z = draw.normal();
                    params.push(if l == 0 {
                        z / (fan_in as f64).sqrt()
                    } else if l == depth - 1 {
                        z / fan_in as f64
                    } else if dense_blocks {
                        f64::from(u8::from(o == i)) + alpha * z / (fan_in as f64).sqrt()
                    } else {
                        z / (fan_in as f64).sqrt()
                    });
                }
            }
            params.extend(std::iter::repeat_n(0.0, fan_out));
        }
        let inputs = (0..rows * input).map(|_| draw.normal()).collect();
        let targets = (0..rows * outputs).map(|_| draw.normal()).collect();
        LinearNet {
            layers,
            loss: Loss::MseSum,
            params,
            inputs,
            targets,
            rows,
        }
    }
}

/// What one relaxation returns, copied out.
struct Run {
    hidden: Vec<f64>,
    updates: Vec<f64>,
    report: Report<f64>,
    spectrum: Option<Spectrum<f64>>,
}

fn relax(net: &LinearNet, settings: &Settings<'_, f64>) -> Run {
    let spec = net.spec();
    let mut workspace = vec![0.0; settings.schedule.workspace_len(&spec, net.rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let run = infer(
        &spec,
        &net.params,
        net.batch(),
        settings,
        &mut workspace,
        &mut updates,
    )
    .expect("a linear network relaxes");
    let hidden = (1..spec.depth())
        .flat_map(|l| run.beliefs(l).to_vec())
        .collect();
    Run {
        hidden,
        report: run.report(),
        spectrum: run.spectrum(),
        updates,
    }
}

fn closed_form(net: &LinearNet) -> (f64, f64, Vec<f64>) {
    let spec = net.spec();
    let mut workspace = vec![0.0; equilibrium_workspace_len(&spec, net.rows)];
    let mut beliefs = vec![0.0; net.hidden_len()];
    let equilibrium = linear_equilibrium(
        &spec,
        &net.params,
        net.batch(),
        &mut workspace,
        &mut beliefs,
    )
    .expect("the closed form exists for a linear network");
    (equilibrium.energy, equilibrium.loss, beliefs)
}

fn spectrum(net: &LinearNet) -> Spectrum<f64> {
    let spec = net.spec();
    let rule = Lanczos {
        iterations: 600,
        tolerance: 1e-10,
        ..Lanczos::default()
    };
    let mut workspace = vec![0.0; spectrum_workspace_len(&spec, net.rows, rule.iterations)];
    hessian_spectrum(&spec, &net.params, net.batch(), None, &rule, &mut workspace)
        .expect("a network with hidden layers has a spectrum")
}

fn norm(values: &[f64]) -> f64 {
    values.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The largest relative distance of one layer's updates to another run's,
/// `max_l |a_l - b_l| / |b_l|`.
fn layer_gap(net: &LinearNet, a: &[f64], b: &[f64]) -> f64 {
    let spec = net.spec();
    (1..=spec.depth())
        .map(|l| {
            let range = spec.parameter_offset(l)
                ..spec.parameter_offset(l) + net.layers[l - 1].parameter_len();
            distance(&a[range.clone()], &b[range.clone()]) / norm(&b[range])
        })
        .fold(0.0, f64::max)
}

/// Least-squares slope of `log y` against `log x`.
fn fitted_exponent(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let lx: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

fn heavy_ball(tau: f64) -> StrictSchedule<f64> {
    StrictSchedule::HeavyBall(Conditioning::relative(tau))
}

// ---------------------------------------------------------------------------------------
// 13. Strict on a linear network converges to the closed-form equilibrium
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(48))]

    /// Plain Strict (the safe step, to a residual of 1e-13) and the heavy ball (to a
    /// relative tolerance of 1e-14) both end at the closed form's energy and beliefs.
    #[test]
    fn strict_converges_to_the_closed_form_equilibrium(
        seed in any::<u64>(),
        widths in prop::collection::vec(1usize..7, 3..7),
        scale in 0.3f64..1.2,
        mean in any::<bool>(),
        rows in 1usize..4,
    ) {
        let loss = if mean { Loss::Mse } else { Loss::MseSum };
        let net = LinearNet::random(seed, &widths, scale, loss, rows);
        let (energy, loss_value, beliefs) = closed_form(&net);
        prop_assert!(energy <= loss_value * (1.0 + 1e-14));
        let plain = relax(
            &net,
            &Settings::strict(1.99, 200_000).with_safe_step_size().with_tolerance(1e-13),
        );
        prop_assert!(plain.report.converged, "plain Strict did not converge: {:?}", plain.report);
        let heavy = relax(
            &net,
            &Settings::strict(0.5, 200_000).with_schedule(heavy_ball(1e-14)),
        );
        prop_assert!(heavy.report.converged, "the heavy ball did not converge: {:?}", heavy.report);
        let scale_of_beliefs = norm(&beliefs).max(1e-300);
        for (name, run) in [("plain", &plain), ("heavy ball", &heavy)] {
            let final_energy = run.report.energy.unwrap();
            prop_assert!(
                (final_energy - energy).abs() <= 1e-9 * energy + 1e-14 * loss_value,
                "{name}: F = {final_energy}, closed form {energy}"
            );
            // |v - v*| <= |grad F| / lambda_min, with |grad F| <= sqrt(n) residual or
            // sqrt(2 tau lambda_min F_0): 1e-6 relative covers both at these sizes.
            let gap = distance(&run.hidden, &beliefs);
            prop_assert!(
                gap <= 1e-6 * scale_of_beliefs + 1e-9,
                "{name}: beliefs {gap} from the closed form (|v*| = {scale_of_beliefs})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 14. Width >> depth: the equilibrium energy is the loss, PC's gradients are backprop's
// ---------------------------------------------------------------------------------------

/// At depth 4 and widths 32 to 256 (stable parameterisation, 4 outputs, 8 rows),
/// `|F* - MSE| / MSE` and the largest relative distance of one layer's PC updates
/// (converged) to Exact's both fall like `1/N` (fitted exponent over 64..256 in `[-1.15, -0.85]`, last ratio
/// `gap(128) / gap(256)` in `[1.7, 2.3]`); at `N = L` both are large (at least 0.2).
#[test]
fn width_much_larger_than_depth_gives_backprop() {
    let (depth, outputs, rows) = (4, 4, 8);
    let widths = [32usize, 64, 128, 256];
    let mut energy_gaps = Vec::new();
    let mut gradient_gaps = Vec::new();
    for &width in std::iter::once(&depth).chain(&widths) {
        let (mut energy_gap, mut gradient_gap) = (0.0, 0.0);
        // Averaged over three draws, so one unlucky draw does not set the slope.
        for seed in 0..3u64 {
            let net = LinearNet::stable_residual(
                1000 * width as u64 + seed,
                width,
                depth,
                outputs,
                rows,
                false,
            );
            let (energy, loss, _) = closed_form(&net);
            energy_gap += (loss - energy).abs() / loss / 3.0;
            let pc = relax(
                &net,
                &Settings::strict(0.5, 100_000).with_schedule(heavy_ball(1e-15)),
            );
            assert!(pc.report.converged, "width {width}: {:?}", pc.report);
            let exact = relax(&net, &Settings::exact());
            gradient_gap += layer_gap(&net, &pc.updates, &exact.updates) / 3.0;
        }
        if width == depth {
            assert!(energy_gap >= 0.2, "N = L: energy gap only {energy_gap}");
            assert!(
                gradient_gap >= 0.2,
                "N = L: gradient gap only {gradient_gap}"
            );
        } else {
            energy_gaps.push(energy_gap);
            gradient_gaps.push(gradient_gap);
        }
    }
    // gap(N) = C / N + O(1 / N^2) (THEORY.md, fact 14): the fit over the three widest, and
    // the last ratio gap(N) / gap(2N) near 2.
    let xs: Vec<f64> = widths[1..].iter().map(|&w| w as f64).collect();
    println!("energy gaps {energy_gaps:?}, gradient gaps {gradient_gaps:?} at N = {widths:?}");
    for (name, gaps) in [("energy", &energy_gaps), ("gradient", &gradient_gaps)] {
        let rate = fitted_exponent(&xs, &gaps[1..]);
        assert!(
            (-1.15..=-0.85).contains(&rate),
            "{name} gap {gaps:?} falls with exponent {rate}"
        );
        let ratio = gaps[gaps.len() - 2] / gaps[gaps.len() - 1];
        assert!(
            (1.7..=2.3).contains(&ratio),
            "{name} gap {gaps:?}: last ratio {ratio}"
        );
        assert!(
            gaps.windows(2).all(|w| w[1] < w[0]),
            "{name} gap {gaps:?} does not fall"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 15. Depth scaling: plain Strict needs ~L^2 steps, the heavy ball ~L
// ---------------------------------------------------------------------------------------

/// Stable linear residual networks of width 4, depths 4 to 64, 2 rows: the steps to the
/// relative tolerance 1e-8 grow with fitted exponent at least 1.7 for plain Strict (the
/// safe step `0.9 * 2 / lambda_max`) and at most 1.2 for the heavy ball, and both end
/// within the tolerance of the closed-form energy.
#[test]
fn relaxation_steps_grow_like_depth_squared_plain_and_depth_accelerated() {
    let depths = [4usize, 8, 16, 32, 64];
    let tau = 1e-8;
    let (mut plain_steps, mut heavy_steps, mut chebyshev_steps) =
        (Vec::new(), Vec::new(), Vec::new());
    for &depth in &depths {
        let net = LinearNet::stable_residual(77 + depth as u64, 4, depth, 2, 2, false);
        let (energy, loss, beliefs) = closed_form(&net);
        let estimate = spectrum(&net);
        let conditioning = Conditioning {
            relative_tolerance: Some(tau),
            spectrum: Some(estimate),
            ..Conditioning::default()
        };
        let safe = 0.9 * 2.0 / estimate.lambda_max;
        let plain = relax(
            &net,
            &Settings::strict(safe, 2_000_000)
                .with_schedule(StrictSchedule::Gradient(conditioning)),
        );
        let heavy = relax(
            &net,
            &Settings::strict(safe, 2_000_000)
                .with_schedule(StrictSchedule::HeavyBall(conditioning)),
        );
        let chebyshev = relax(
            &net,
            &Settings::strict(safe, 2_000_000)
                .with_schedule(StrictSchedule::Chebyshev(conditioning)),
        );
        for (name, run) in [
            ("plain", &plain),
            ("heavy ball", &heavy),
            ("Chebyshev", &chebyshev),
        ] {
            assert!(run.report.converged, "L = {depth} {name}: {:?}", run.report);
            let final_energy = run.report.energy.unwrap();
            // F - F* <= tau F_0 (the conditioned stop's guarantee), with rounding room.
            assert!(
                final_energy - energy <= 1.01 * tau * loss && final_energy >= energy - 1e-12 * loss,
                "L = {depth} {name}: F = {final_energy}, F* = {energy}"
            );
            let gap = distance(&run.hidden, &beliefs);
            let bound = (2.0 * tau * loss / estimate.lambda_min).sqrt();
            assert!(
                gap <= 1.01 * bound,
                "L = {depth} {name}: beliefs {gap} > {bound}"
            );
        }
        assert_eq!(
            heavy.spectrum,
            Some(estimate),
            "the given spectrum is the one used"
        );
        println!(
            "L = {depth}: kappa = {:.1}, plain {} steps, heavy ball {}, Chebyshev {}",
            estimate.condition_number(),
            plain.report.iterations,
            heavy.report.iterations,
            chebyshev.report.iterations
        );
        chebyshev_steps.push(chebyshev.report.iterations as f64);
        plain_steps.push(plain.report.iterations as f64);
        heavy_steps.push(heavy.report.iterations as f64);
    }
    let xs: Vec<f64> = depths.iter().map(|&d| d as f64).collect();
    let plain_rate = fitted_exponent(&xs, &plain_steps);
    let heavy_rate = fitted_exponent(&xs, &heavy_steps);
    assert!(
        plain_rate >= 1.7,
        "plain steps {plain_steps:?}: exponent {plain_rate}"
    );
    let chebyshev_rate = fitted_exponent(&xs, &chebyshev_steps);
    println!("exponents: plain {plain_rate}, heavy ball {heavy_rate}, Chebyshev {chebyshev_rate}");
    assert!(
        chebyshev_rate <= 1.2,
        "Chebyshev steps {chebyshev_steps:?}: exponent {chebyshev_rate}"
    );
    assert!(
        heavy_rate <= 1.2,
        "heavy-ball steps {heavy_steps:?}: exponent {heavy_rate}"
    );
}

// ---------------------------------------------------------------------------------------
// The analysis itself
// ---------------------------------------------------------------------------------------

/// The spectrum at the feedforward values of a linear network is the spectrum anywhere
/// (its Hessian is constant), and the Lanczos extremes of the identity chain are the
/// closed form `2 - 2 cos((2k - 1) pi / (2m + 1))` (THEORY.md, fact 10) to 1e-10.
#[test]
fn lanczos_finds_the_identity_chain_extremes_anywhere() {
    for hidden in [3usize, 10, 31] {
        let depth = hidden + 1;
        let layers = vec![Layer::dense(2, 2, Activation::Identity); depth];
        let spec = NetworkSpec::new(&layers, Loss::MseSum);
        let params: Vec<f64> = (0..depth)
            .flat_map(|_| [1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
            .collect();
        let inputs = [0.5, -1.0];
        let targets = [0.25, 2.0];
        let batch = Batch::new(&inputs[..], Targets::Values(&targets));
        let rule = Lanczos {
            iterations: 200,
            tolerance: 1e-13,
            loss_curvature: false,
        };
        let mut workspace = vec![0.0; spectrum_workspace_len(&spec, 1, rule.iterations)];
        let m = hidden as f64;
        let theta = |k: f64| (2.0 * k - 1.0) * std::f64::consts::PI / (2.0 * m + 1.0);
        let (low, high) = (2.0 - 2.0 * theta(1.0).cos(), 2.0 - 2.0 * theta(m).cos());
        let beliefs: Vec<f64> = (0..2 * hidden).map(|i| (i as f64 * 0.37).sin()).collect();
        for at in [None, Some(&beliefs[..])] {
            let s = hessian_spectrum(&spec, &params, batch, at, &rule, &mut workspace).unwrap();
            assert!(
                (s.lambda_min - low).abs() <= 1e-10 * high,
                "m = {hidden}: {s:?} vs {low}"
            );
            assert!(
                (s.lambda_max - high).abs() <= 1e-10 * high,
                "m = {hidden}: {s:?} vs {high}"
            );
            assert!((s.condition_number() - high / low).abs() <= 1e-8 * high / low);
        }
    }
}

/// The gradient schedule without a relative tolerance moves exactly as plain Strict (the
/// same bits: its momentum term is an exact zero), with or without an absolute
/// tolerance, on a tanh network; conditioned schedules refuse other algorithms, the safe
/// step size, bad tolerances and spectra, and a workspace without their extra region.
#[test]
fn the_gradient_schedule_is_plain_strict_and_bad_settings_are_refused() {
    let widths = [3usize, 5, 4, 2];
    let mut net = LinearNet::random(5, &widths, 0.9, Loss::Mse, 3);
    net.layers = widths
        .windows(2)
        .map(|w| Layer::dense(w[0], w[1], Activation::Tanh))
        .collect();
    let gradient = StrictSchedule::Gradient(Conditioning::default());
    for settings in [
        Settings::strict(0.3, 40),
        Settings::strict(0.3, 4000).with_tolerance(1e-9),
    ] {
        let plain = relax(&net, &settings);
        let same = relax(&net, &settings.with_schedule(gradient));
        assert_eq!(plain.hidden, same.hidden);
        assert_eq!(plain.updates, same.updates);
        assert_eq!(plain.report, same.report);
        assert_eq!(
            same.spectrum, None,
            "no spectrum is estimated when none is needed"
        );
    }
    let spec = net.spec();
    let heavy = heavy_ball(1e-8);
    let mut updates = vec![0.0; spec.parameter_len()];
    let mut workspace = vec![0.0; heavy.workspace_len(&spec, net.rows)];
    let refused = |settings: Settings<'_, f64>, workspace: &mut [f64], updates: &mut [f64]| {
        infer(
            &spec,
            &net.params,
            net.batch(),
            &settings,
            workspace,
            updates,
        )
        .err()
    };
    let cases = [
        Settings::fixed_pred(0.5, 10).with_schedule(heavy),
        Settings::strict(0.5, 10)
            .with_schedule(heavy)
            .with_safe_step_size(),
        Settings::strict(0.5, 10).with_schedule(heavy_ball(1.5)),
        Settings::strict(0.5, 10).with_schedule(StrictSchedule::Chebyshev(Conditioning {
            spectrum: Some(Spectrum {
                lambda_min: 0.0,
                lambda_max: 2.0,
                iterations: 0,
            }),
            ..Conditioning::default()
        })),
        Settings::strict(0.5, 10).with_schedule(StrictSchedule::HeavyBall(Conditioning {
            lanczos: Lanczos {
                iterations: 1,
                ..Lanczos::default()
            },
            ..Conditioning::default()
        })),
    ];
    for settings in cases {
        let error = refused(settings, &mut workspace, &mut updates);
        assert!(
            matches!(
                error,
                Some(pcnet_core::PcError::InvalidSettings { .. })
                    | Some(pcnet_core::PcError::InvalidHyperparameter { .. })
            ),
            "{settings:?}: {error:?}"
        );
    }
    let short = spec.workspace_len(net.rows);
    let error = refused(
        Settings::strict(0.5, 10).with_schedule(heavy),
        &mut workspace[..short],
        &mut updates,
    );
    assert!(
        matches!(error, Some(pcnet_core::PcError::BufferTooSmall { .. })),
        "{error:?}"
    );
    assert!(
        updates.iter().all(|&u| u == 0.0),
        "nothing written on a refused call"
    );
}

/// A linear residual layer `v + alpha (W v + b)` is the dense layer `(I + alpha W) v +
/// alpha b`: the same closed form and Strict beliefs (1e-12), and the residual form's
/// updates are `alpha` times the dense form's for the blocks and equal elsewhere
/// (the chain rule through `M = I + alpha W`).
#[test]
fn a_linear_residual_layer_is_the_dense_layer_i_plus_alpha_w() {
    let (width, depth) = (6, 5);
    let alpha = 1.0 / (depth as f64).sqrt();
    let residual = LinearNet::stable_residual(3, width, depth, 3, 2, false);
    let dense = LinearNet::stable_residual(3, width, depth, 3, 2, true);
    let (energy_r, loss_r, beliefs_r) = closed_form(&residual);
    let (energy_d, loss_d, beliefs_d) = closed_form(&dense);
    assert!((energy_r - energy_d).abs() <= 1e-12 * energy_d);
    assert!((loss_r - loss_d).abs() <= 1e-12 * loss_d);
    assert!(distance(&beliefs_r, &beliefs_d) <= 1e-12 * norm(&beliefs_d));
    let settings = Settings::strict(0.3, 400);
    let (run_r, run_d) = (relax(&residual, &settings), relax(&dense, &settings));
    assert!(distance(&run_r.hidden, &run_d.hidden) <= 1e-12 * norm(&run_d.hidden));
    let spec = dense.spec();
    for l in 1..=depth {
        let range = spec.parameter_offset(l)
            ..spec.parameter_offset(l) + dense.layers[l - 1].parameter_len();
        let factor = if l == 1 || l == depth { 1.0 } else { alpha };
        let expected: Vec<f64> = run_d.updates[range.clone()]
            .iter()
            .map(|u| factor * u)
            .collect();
        assert!(
            distance(&run_r.updates[range], &expected) <= 1e-12 * norm(&expected),
            "layer {l}"
        );
    }
}
