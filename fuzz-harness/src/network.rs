//! Fuzz target `network`: a network description, hyperparameters and data decoded from
//! arbitrary bytes, run through every algorithm ([`pcnet_core::infer`]), the safe step size,
//! and a [`Learner`] step with every optimizer.
//!
//! The decoder builds each case itself and so knows, independently of pcnet-core's checks,
//! which defects it put in (a zero-width layer, a NaN step size, a buffer one element
//! short, ...). The invariants:
//!
//! 1. nothing panics or hangs (iteration counts above 32 that pcnet-core accepts are never
//!    generated; counts above [`MAX_ITERATIONS`] are, and must be refused);
//! 2. a case with a defect fails, and when it has exactly one defect the [`PcError`] is
//!    the variant (and field name) that defect calls for;
//! 3. a case without defects fails only for a reason bad numbers can cause (a non-finite
//!    loss or update, a diverged relaxation), and a case with tame numbers (parameters,
//!    data and beliefs in `[-2, 2)`, step size in `(0, 2)`, at most 32 iterations) succeeds
//!    with Exact and FixedPred, and with Strict succeeds or reports `Diverged`;
//! 4. a success returns a finite loss and finite updates; with tame numbers every belief
//!    and error is finite and every view has the width the decoder computed;
//! 5. results do not depend on what the workspace and update buffers held before the
//!    call (two runs, different garbage, same bits), and nothing past the workspace length
//!    the network needs is written;
//! 6. a failed learning step leaves parameters, optimizer state and step count exactly as
//!    they were; a successful one leaves them finite and equals `infer` followed by
//!    [`Optimizer::step`].
//!
//! Why one file of ~1200 lines: the decoder and the expected-error table describe the
//! same defects, one list each; they are read side by side, so they stay together.

use super::input::Input;
use pcnet_core::{
    infer, safe_step_size, Activation, Adam, AdamW, Algorithm, Batch, Conv2d, ImageShape, Layer,
    Learner, Loss, NetworkSpec, Op, Optimizer, PcError, Pool2d, SafeStep, Scalar, Settings, Sgd,
    Targets, MAX_ITERATIONS, MAX_OPS_PER_LAYER,
};

/// A defect the decoder put into a case on purpose, and the error it calls for.
#[derive(Clone, Copy)]
pub(crate) struct Defect {
    what: &'static str,
    expected: fn(&PcError) -> bool,
}

impl core::fmt::Debug for Defect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.what)
    }
}

macro_rules! defect {
    ($what:expr, $pattern:pat) => {
        Defect {
            what: $what,
            expected: |error| matches!(error, $pattern),
        }
    };
}

/// The network part of a case.
pub(crate) struct Net {
    pub(crate) layers: Vec<Layer>,
    pub(crate) input_len: usize,
    /// Widths of `v_0..=v_L` as the decoder computes them (meaningful when valid).
    pub(crate) widths: Vec<usize>,
    pub(crate) parameter_len: usize,
    pub(crate) loss: Loss,
    pub(crate) defects: Vec<Defect>,
    /// Whether a leaky ReLU slope lies outside `[-2, 2]` (huge slopes overflow honestly).
    pub(crate) wild_slope: bool,
}

fn activation(input: &mut Input<'_>) -> (Activation, bool) {
    match input.below(6) {
        0 => (Activation::Identity, true),
        1 => (Activation::Relu, true),
        2 => {
            let slope = if input.one_in(4) {
                input.special()
            } else {
                input.tame()
            };
            (Activation::LeakyRelu { slope }, slope.is_finite())
        }
        3 => (Activation::Tanh, true),
        4 => (Activation::Sigmoid, true),
        _ => (Activation::Softplus, true),
    }
}

fn op(input: &mut Input<'_>, width: usize) -> Op {
    match input.below(7) {
        0 | 1 => Op::Linear {
            inputs: if input.one_in(12) {
                input.below(7)
            } else {
                width
            },
            outputs: input.below(7),
        },
        2 => Op::Activation(activation(input).0),
        3 => Op::Flatten,
        4 => Op::Conv2d(
            Conv2d::new(image(input, width), input.below(4), pair(input, 4))
                .with_stride(pair(input, 3))
                .with_padding([input.below(3), input.below(3)]),
        ),
        kind => {
            let pool = Pool2d::new(image(input, width), pair(input, 4)).with_stride(pair(input, 3));
            if kind == 5 {
                Op::MaxPool2d(pool)
            } else {
                Op::AvgPool2d(pool)
            }
        }
    }
}

/// Two values in `0..n` (mostly above 0).
fn pair(input: &mut Input<'_>, n: usize) -> [usize; 2] {
    let mut one = || {
        if input.one_in(16) {
            0
        } else {
            1 + input.below(n - 1)
        }
    };
    [one(), one()]
}

/// An image shape with `width` values (`channels x height x width` a factorisation of it),
/// or now and then any small shape.
fn image(input: &mut Input<'_>, width: usize) -> ImageShape {
    if input.one_in(12) || width == 0 {
        return ImageShape::new(input.below(4), input.below(4), input.below(4));
    }
    let divisors = |n: usize| {
        (1..=n)
            .filter(move |d| n.is_multiple_of(*d))
            .collect::<Vec<_>>()
    };
    let channels = divisors(width);
    let c = channels[input.below(channels.len())];
    let heights = divisors(width / c);
    let h = heights[input.below(heights.len())];
    ImageShape::new(c, h, width / c / h)
}

/// Output positions along one axis: `(size + 2 pad - kernel) / stride + 1` when the
/// window fits, else 0 (PyTorch's `floor` rounding).
fn windows(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    if size + 2 * pad < kernel || stride == 0 {
        0
    } else {
        (size + 2 * pad - kernel) / stride + 1
    }
}

pub(crate) fn decode_network(input: &mut Input<'_>) -> Net {
    let depth = input.below(5);
    let input_len = input.below(7);
    let mut defects = Vec::new();
    if depth == 0 {
        defects.push(defect!(
            "no layers",
            PcError::InvalidNetwork { layer: 0, .. }
        ));
    }
    if input_len == 0 {
        defects.push(defect!(
            "zero input width",
            PcError::InvalidNetwork { layer: 0, .. }
        ));
    }
    let mut layers = Vec::new();
    let mut widths = vec![input_len];
    let mut width = input_len;
    let mut parameter_len = 0usize;
    let mut wild_slope = false;
    for _ in 1..=depth {
        let layer = match input.below(10) {
            0..=6 => {
                let inputs = if input.one_in(16) {
                    input.below(7)
                } else {
                    width
                };
                Layer::dense(inputs, input.below(7), activation(input).0)
            }
            7 => Layer::from_ops(&[Op::Linear {
                inputs: width,
                outputs: input.below(7),
            }])
            .expect("one op is a valid chain"),
            _ => {
                let count = input.below(MAX_OPS_PER_LAYER + 2);
                let mut ops = Vec::new();
                let mut chain_width = width;
                for _ in 0..count {
                    let next = op(input, chain_width);
                    chain_width = next.output_len(chain_width);
                    ops.push(next);
                }
                match Layer::from_ops(&ops) {
                    Ok(layer) => {
                        assert!(
                            (1..=MAX_OPS_PER_LAYER).contains(&count),
                            "from_ops accepted {count} ops"
                        );
                        layer
                    }
                    Err(error) => {
                        assert!(
                            count == 0 || count > MAX_OPS_PER_LAYER,
                            "from_ops refused a chain of {count} ops: {error}"
                        );
                        assert!(matches!(error, PcError::InvalidNetwork { .. }), "{error:?}");
                        Layer::dense(width, 1 + input.below(6), Activation::Tanh)
                    }
                }
            }
        };
        for op in layer.ops() {
            let required = match *op {
                Op::Linear { inputs, .. } => Some(inputs),
                Op::Conv2d(conv) => {
                    Some(conv.input.channels * conv.input.height * conv.input.width)
                }
                Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => {
                    Some(pool.input.channels * pool.input.height * pool.input.width)
                }
                _ => None,
            };
            if required.is_some_and(|required| required != width) {
                defects.push(defect!(
                    "an op's input width differs from the width before it",
                    PcError::ShapeMismatch { .. }
                ));
            }
            match *op {
                Op::Linear { inputs, outputs } => {
                    parameter_len += inputs * outputs + outputs;
                    width = outputs;
                }
                Op::Activation(Activation::LeakyRelu { slope }) if !slope.is_finite() => {
                    defects.push(defect!(
                        "a non-finite leaky ReLU slope",
                        PcError::InvalidHyperparameter {
                            name: "leaky relu slope",
                            ..
                        }
                    ));
                }
                Op::Activation(Activation::LeakyRelu { slope }) if slope.abs() > 2.0 => {
                    wild_slope = true;
                }
                Op::Conv2d(conv) => {
                    let ImageShape {
                        channels,
                        height,
                        width: columns,
                    } = conv.input;
                    let [kh, kw] = conv.kernel;
                    let (oh, ow) = (
                        windows(height, kh, conv.stride[0], conv.padding[0]),
                        windows(columns, kw, conv.stride[1], conv.padding[1]),
                    );
                    if channels * height * columns == 0
                        || conv.out_channels == 0
                        || kh * kw == 0
                        || conv.stride[0] * conv.stride[1] == 0
                        || oh * ow == 0
                    {
                        defects.push(defect!(
                            "an unusable convolution",
                            PcError::InvalidOp { .. }
                        ));
                    }
                    parameter_len += conv.out_channels * channels * kh * kw + conv.out_channels;
                    width = conv.out_channels * oh * ow;
                }
                Op::MaxPool2d(pool) | Op::AvgPool2d(pool) => {
                    let ImageShape {
                        channels,
                        height,
                        width: columns,
                    } = pool.input;
                    let (oh, ow) = (
                        windows(height, pool.kernel[0], pool.stride[0], 0),
                        windows(columns, pool.kernel[1], pool.stride[1], 0),
                    );
                    if channels * height * columns == 0
                        || pool.kernel[0] * pool.kernel[1] == 0
                        || pool.stride[0] * pool.stride[1] == 0
                        || oh * ow == 0
                    {
                        defects.push(defect!(
                            "an unusable pooling window",
                            PcError::InvalidOp { .. }
                        ));
                    }
                    width = channels * oh * ow;
                }
                _ => {}
            }
            if width == 0 {
                defects.push(defect!(
                    "a zero-width layer",
                    PcError::InvalidNetwork { layer: 1.., .. } | PcError::InvalidOp { .. }
                ));
            }
        }
        widths.push(width);
        layers.push(layer);
    }
    let loss = match input.below(3) {
        0 => Loss::Mse,
        1 => Loss::MseSum,
        _ => Loss::CrossEntropy,
    };
    Net {
        layers,
        input_len,
        widths,
        parameter_len,
        loss,
        defects,
        wild_slope,
    }
}

/// `len + delta`, at least 0.
fn adjust(len: usize, delta: isize) -> usize {
    len.saturating_add_signed(delta)
}

fn values<T: Scalar>(input: &mut Input<'_>, len: usize, wild: bool) -> Vec<T> {
    (0..len)
        .map(|_| {
            T::from_f64(if wild && input.one_in(2) {
                input.special()
            } else {
                input.tame()
            })
        })
        .collect()
}

fn first_non_finite<T: Scalar>(values: &[T]) -> Option<usize> {
    values.iter().position(|v| !v.is_finite())
}

fn bits<T: Scalar>(values: &[T]) -> Vec<u64> {
    values
        .iter()
        .map(|v| Scalar::to_f64(*v).to_bits())
        .collect()
}

fn iterations(input: &mut Input<'_>) -> usize {
    match input.below(16) {
        0 => 0,
        1 => 1,
        2 => 2,
        3..=12 => input.below(33),
        13 => MAX_ITERATIONS + 1,
        14 => usize::MAX,
        _ => 32,
    }
}

/// Everything an optimizer case needs: its hyperparameters as decoded, and whether they
/// are valid by the documented ranges.
enum AnyOptimizer<T> {
    Sgd(Sgd<T>),
    Adam(Adam<T>),
    AdamW(AdamW<T>),
}

fn in_range<T: Scalar>(value: T, min: f64, max: f64) -> bool {
    let v = Scalar::to_f64(value);
    v.is_finite() && v >= min && v <= max
}

fn hyper<T: Scalar>(input: &mut Input<'_>, wild: bool, default: f64) -> T {
    T::from_f64(if wild && input.one_in(3) {
        input.special()
    } else {
        default
    })
}

fn decode_optimizer<T: Scalar>(input: &mut Input<'_>) -> (AnyOptimizer<T>, bool, bool) {
    let wild = input.one_in(3);
    let learning_rate: T = if wild {
        T::from_f64(input.special())
    } else {
        T::from_f64(f64::from(input.byte()) / 512.0)
    };
    let lr_ok = in_range(learning_rate, 0.0, f64::MAX);
    match input.below(3) {
        0 => {
            let mut sgd = Sgd::new(learning_rate);
            let momentum = if input.one_in(2) { 0.9 } else { 0.0 };
            sgd.momentum = hyper(input, wild, momentum);
            sgd.dampening = hyper(input, wild, 0.0);
            sgd.weight_decay = hyper(input, wild, 0.0);
            sgd.nesterov = input.one_in(4);
            let valid = lr_ok
                && in_range(sgd.momentum, 0.0, f64::MAX)
                && in_range(sgd.dampening, f64::MIN, f64::MAX)
                && in_range(sgd.weight_decay, 0.0, f64::MAX)
                && !(sgd.nesterov
                    && (Scalar::to_f64(sgd.momentum) <= 0.0
                        || Scalar::to_f64(sgd.dampening) != 0.0));
            (AnyOptimizer::Sgd(sgd), valid, !wild)
        }
        kind => {
            let beta1: T = hyper(input, wild, 0.9);
            let beta2: T = hyper(input, wild, 0.999);
            let epsilon: T = hyper(input, wild, 1e-8);
            let weight_decay: T = hyper(input, wild, if kind == 1 { 0.0 } else { 0.01 });
            let valid = lr_ok
                && in_range(beta1, 0.0, 1.0 - f64::EPSILON)
                && in_range(beta2, 0.0, 1.0 - f64::EPSILON)
                && in_range(epsilon, 0.0, f64::MAX)
                && in_range(weight_decay, 0.0, f64::MAX);
            let optimizer = if kind == 1 {
                AnyOptimizer::Adam(
                    Adam::new(learning_rate)
                        .with_betas(beta1, beta2)
                        .with_epsilon(epsilon)
                        .with_weight_decay(weight_decay),
                )
            } else {
                AnyOptimizer::AdamW(
                    AdamW::new(learning_rate)
                        .with_betas(beta1, beta2)
                        .with_epsilon(epsilon)
                        .with_weight_decay(weight_decay),
                )
            };
            (optimizer, valid, !wild)
        }
    }
}

/// Runs the `network` target on arbitrary bytes; panics when an invariant fails.
pub fn network(data: &[u8]) {
    let mut input = Input::new(data);
    if input.one_in(2) {
        network_as::<f32>(&mut input);
    } else {
        network_as::<f64>(&mut input);
    }
}

/// The case with scalar type `T`.
fn network_as<T: Scalar>(input: &mut Input<'_>) {
    let net = decode_network(input);
    let spec = NetworkSpec::new(&net.layers, net.loss).with_input_len(net.input_len);
    let network_ok = net.defects.is_empty();
    let wild = input.one_in(4);
    let mut defects = net.defects.clone();

    // Parameters.
    let parameters: Vec<T> = {
        let len = adjust(net.parameter_len, input.delta());
        values(input, len, wild)
    };
    if parameters.len() != net.parameter_len {
        defects.push(defect!(
            "parameters of the wrong length",
            PcError::LengthMismatch {
                what: "parameters",
                ..
            }
        ));
    }
    if first_non_finite(&parameters).is_some() {
        defects.push(defect!(
            "a non-finite parameter",
            PcError::NonFinite {
                what: "parameters",
                ..
            }
        ));
    }

    // The batch.
    let intended_rows = input.below(5);
    let inputs: Vec<T> = {
        let len = adjust(intended_rows * net.input_len, input.delta());
        values(input, len, wild)
    };
    let rows = inputs.len().checked_div(net.input_len).unwrap_or(0);
    if network_ok {
        if inputs.is_empty() {
            defects.push(defect!("no rows", PcError::EmptyBatch));
        } else if !inputs.len().is_multiple_of(net.input_len) {
            defects.push(defect!(
                "inputs of no whole number of rows",
                PcError::LengthMismatch { what: "inputs", .. }
            ));
        }
    }
    if first_non_finite(&inputs).is_some() {
        defects.push(defect!(
            "a non-finite input",
            PcError::NonFinite { what: "inputs", .. }
        ));
    }
    let outputs = *net.widths.last().unwrap_or(&0);
    let wrong_kind = input.one_in(16);
    let classes_wanted = (net.loss == Loss::CrossEntropy) != wrong_kind;
    if wrong_kind {
        defects.push(defect!(
            "targets of the wrong kind for the loss",
            PcError::InvalidNetwork { layer: 0, .. }
        ));
    }
    let value_targets: Vec<T>;
    let class_targets: Vec<usize>;
    let targets = if classes_wanted {
        class_targets = (0..adjust(rows, input.delta()))
            .map(|_| {
                if input.one_in(32) {
                    usize::MAX
                } else if input.one_in(16) {
                    outputs + input.below(2)
                } else {
                    input.below(outputs.max(1))
                }
            })
            .collect();
        if class_targets.len() != rows {
            defects.push(defect!(
                "class targets of the wrong length",
                PcError::LengthMismatch {
                    what: "targets",
                    ..
                }
            ));
        } else if let Some(row) = class_targets.iter().position(|&c| c >= outputs) {
            let _ = row;
            defects.push(defect!(
                "a class index out of range",
                PcError::ClassOutOfRange { .. }
            ));
        }
        Targets::Classes(&class_targets)
    } else {
        value_targets = {
            let len = adjust(rows * outputs, input.delta());
            values(input, len, wild)
        };
        if value_targets.len() != rows * outputs {
            defects.push(defect!(
                "value targets of the wrong length",
                PcError::LengthMismatch {
                    what: "targets",
                    ..
                }
            ));
        }
        if first_non_finite(&value_targets).is_some() {
            defects.push(defect!(
                "a non-finite target",
                PcError::NonFinite {
                    what: "targets",
                    ..
                }
            ));
        }
        Targets::Values(&value_targets)
    };
    let mut batch = Batch::new(&inputs, targets);
    if input.one_in(8) {
        let loss_rows = adjust(rows, input.delta());
        batch = batch.block_of(loss_rows);
        if loss_rows < rows {
            defects.push(defect!(
                "loss rows fewer than the rows",
                PcError::InvalidHyperparameter {
                    name: "loss rows",
                    ..
                }
            ));
        }
    }

    // Buffers.
    let needed = spec.workspace_len(rows);
    let workspace_len = adjust(needed, input.delta());
    if workspace_len < needed {
        defects.push(defect!(
            "a workspace too short",
            PcError::BufferTooSmall {
                what: "workspace",
                ..
            }
        ));
    }
    let updates_len = adjust(net.parameter_len, input.delta());
    if updates_len != net.parameter_len {
        defects.push(defect!(
            "updates of the wrong length",
            PcError::LengthMismatch {
                what: "updates",
                ..
            }
        ));
    }

    // Settings shared by the algorithms; defects that depend on the algorithm come later.
    let step_size = T::from_f64(input.step_size());
    let iteration_count = iterations(input);
    let tolerance = if input.one_in(3) {
        Some(T::from_f64(if input.one_in(2) {
            input.special()
        } else {
            input.tame().abs() / 1000.0
        }))
    } else {
        None
    };
    let divergence_ratio = if input.one_in(6) {
        Some(T::from_f64(input.special()))
    } else {
        None
    };
    let free_input = input.one_in(4);
    let hidden: usize = net
        .widths
        .get(1..net.widths.len().saturating_sub(1))
        .unwrap_or(&[])
        .iter()
        .sum();
    let initial_beliefs: Option<Vec<T>> = if input.one_in(4) {
        Some({
            let len = adjust(rows * hidden, input.delta());
            values(input, len, wild)
        })
    } else {
        None
    };
    let safe_step = if input.one_in(5) {
        let rule = SafeStep {
            margin: if input.one_in(3) {
                input.special()
            } else {
                0.9
            },
            iterations: [0, 1, 5, 20, MAX_ITERATIONS + 1][input.below(5)],
            tolerance: if input.one_in(3) {
                input.special()
            } else {
                1e-6
            },
            loss_curvature: input.one_in(2),
        };
        Some(rule)
    } else {
        None
    };
    let rule_ok = match safe_step {
        None => true,
        Some(rule) => {
            rule.margin > 0.0
                && rule.margin < 1.0
                && (1..=MAX_ITERATIONS).contains(&rule.iterations)
                && rule.tolerance >= 0.0
                && rule.tolerance.is_finite()
        }
    };
    let learner_algorithm =
        [Algorithm::Exact, Algorithm::FixedPred, Algorithm::Strict][input.below(3)];
    let optimizer = decode_optimizer::<T>(input);
    let state_delta = input.delta();
    let update_garbage = T::from_f64(input.special());

    let case = Case {
        spec,
        net: &net,
        parameters: &parameters,
        batch,
        rows,
        workspace_len,
        updates_len,
        tame: !wild && !net.wild_slope,
    };
    for algorithm in [Algorithm::Exact, Algorithm::FixedPred, Algorithm::Strict] {
        let mut settings = Settings::exact();
        settings.algorithm = algorithm;
        settings.step_size = step_size;
        settings.iterations = iteration_count;
        settings.tolerance = tolerance;
        if let Some(ratio) = divergence_ratio {
            settings.divergence_ratio = ratio;
        }
        if free_input {
            settings = settings.with_free_input();
        }
        if let Some(beliefs) = &initial_beliefs {
            settings = settings.with_initial_beliefs(beliefs);
        }
        if let Some(rule) = safe_step {
            settings = settings.with_safe_step(rule);
        }
        let mut all = defects.clone();
        all.extend(settings_defects(&settings, rows * hidden, rule_ok));
        case.check_infer(&settings, &all, update_garbage);
        if algorithm == Algorithm::Strict {
            if let Some(rule) = &safe_step {
                case.check_safe_step(rule, &defects, rule_ok);
            }
        }
        if algorithm == learner_algorithm {
            case.check_learner(&settings, &all, &optimizer, state_delta);
        }
    }
}

/// The defects of `settings` for its algorithm, by the documented ranges.
fn settings_defects<T: Scalar>(
    settings: &Settings<'_, T>,
    hidden: usize,
    rule_ok: bool,
) -> Vec<Defect> {
    let mut defects = Vec::new();
    let two = T::one() + T::one();
    if settings.algorithm != Algorithm::Exact {
        if !(settings.step_size > T::zero() && settings.step_size < two) {
            defects.push(defect!(
                "a step size outside (0, 2)",
                PcError::InvalidHyperparameter {
                    name: "step size",
                    ..
                }
            ));
        }
        if settings.iterations > MAX_ITERATIONS {
            defects.push(defect!(
                "too many iterations",
                PcError::InvalidHyperparameter {
                    name: "iterations",
                    ..
                }
            ));
        }
    }
    if let Some(tolerance) = settings.tolerance {
        if !(tolerance >= T::zero() && tolerance.is_finite()) {
            defects.push(defect!(
                "a negative or non-finite tolerance",
                PcError::InvalidHyperparameter {
                    name: "tolerance",
                    ..
                }
            ));
        }
    }
    if !(settings.divergence_ratio > T::one() && settings.divergence_ratio.is_finite()) {
        defects.push(defect!(
            "a divergence ratio not above 1",
            PcError::InvalidHyperparameter {
                name: "divergence ratio",
                ..
            }
        ));
    }
    if let Some(beliefs) = settings.initial_beliefs {
        if settings.algorithm != Algorithm::Strict {
            defects.push(defect!(
                "initial beliefs for an algorithm other than Strict",
                PcError::InvalidSettings { .. }
            ));
        } else {
            if beliefs.len() != hidden {
                defects.push(defect!(
                    "initial beliefs of the wrong length",
                    PcError::LengthMismatch {
                        what: "initial beliefs",
                        ..
                    }
                ));
            }
            if first_non_finite(beliefs).is_some() {
                defects.push(defect!(
                    "a non-finite initial belief",
                    PcError::NonFinite {
                        what: "initial beliefs",
                        ..
                    }
                ));
            }
        }
    }
    if settings.safe_step.is_some() {
        if settings.algorithm != Algorithm::Strict {
            defects.push(defect!(
                "a safe step rule for an algorithm other than Strict",
                PcError::InvalidSettings { .. }
            ));
        } else if !rule_ok {
            defects.push(defect!(
                "a safe step rule out of range",
                PcError::InvalidHyperparameter { .. }
            ));
        }
    }
    defects
}

/// Checks that `result` is an error, and the expected one when there is a single defect.
fn expect_defect<R>(result: &Result<R, PcError>, defects: &[Defect], context: &str) {
    match result {
        Ok(_) => panic!("{context}: accepted a case with defects {defects:?}"),
        Err(error) => {
            // The error is typed and prints.
            assert!(!error.to_string().is_empty());
            if let [only] = defects {
                assert!(
                    (only.expected)(error),
                    "{context}: defect `{}` gave the wrong error {error:?}",
                    only.what
                );
            }
        }
    }
}

/// Whether `algorithm` may end a case with tame numbers in a numerical failure. Strict
/// may: its relaxation is not stable for every step size in (0, 2), and beliefs can grow
/// below the divergence threshold (or under a ratio too large ever to trip) until the
/// updates, or the optimizer arithmetic on them, overflow, a typed NonFinite rather than
/// Diverged. Found by fuzzing, corpus files `strict-unstable-step-huge-divergence-ratio`
/// (ratio f32::MAX, step 1.9375, 15 iterations) and
/// `strict-adamw-nonfinite-new-parameters` (Strict + AdamW in f32). Exact and FixedPred
/// have no such excuse.
fn may_fail_when_tame(algorithm: Algorithm) -> bool {
    algorithm == Algorithm::Strict
}

/// Errors a valid case may meet because its numbers overflow or its relaxation diverges.
fn numerical_failure(error: &PcError) -> bool {
    matches!(
        error,
        PcError::NonFinite {
            what: "feedforward loss" | "parameter updates" | "new parameters",
            ..
        } | PcError::Diverged { .. }
    )
}

struct Case<'c, T> {
    spec: NetworkSpec<'c>,
    net: &'c Net,
    parameters: &'c [T],
    batch: Batch<'c, T>,
    rows: usize,
    workspace_len: usize,
    updates_len: usize,
    tame: bool,
}

/// A workspace value no computation produces by accident.
const CANARY: f64 = -1234.5678;

impl<T: Scalar> Case<'_, T> {
    fn check_infer(&self, settings: &Settings<'_, T>, defects: &[Defect], garbage: T) {
        let algorithm = settings.algorithm;
        let context = format!("infer {algorithm:?}");
        let mut workspace = vec![T::from_f64(CANARY); self.workspace_len];
        let mut updates = vec![T::nan(); self.updates_len];
        let first = infer(
            &self.spec,
            self.parameters,
            self.batch,
            settings,
            &mut workspace,
            &mut updates,
        )
        .map(|inference| {
            let mut views = Vec::new();
            for layer in 0..=self.spec.depth() {
                views.push(bits(inference.feedforward(layer)));
                views.push(bits(inference.beliefs(layer)));
                views.push(bits(inference.errors(layer)));
            }
            let report = inference.report();
            (
                Scalar::to_f64(inference.loss()).to_bits(),
                inference.step_size(),
                report.iterations,
                views,
            )
        });
        if !defects.is_empty() {
            expect_defect(&first, defects, &context);
            return;
        }
        let (loss, step_size, iterations, views) = match &first {
            Err(error) => {
                assert!(
                    numerical_failure(error),
                    "{context}: a valid case failed with {error:?}"
                );
                assert!(
                    !self.tame || may_fail_when_tame(algorithm),
                    "{context}: a tame case failed with {error:?}"
                );
                return;
            }
            Ok(outcome) => outcome,
        };
        assert!(f64::from_bits(*loss).is_finite(), "{context}: loss");
        assert!(
            updates.iter().all(|u| u.is_finite()),
            "{context}: non-finite updates"
        );
        if algorithm == Algorithm::Exact {
            assert_eq!(*iterations, 0, "{context}");
        } else {
            assert!(*iterations <= settings.iterations, "{context}: iterations");
            assert!(
                *step_size > T::zero() && *step_size <= settings.step_size,
                "{context}: step size {step_size} used for {}",
                settings.step_size
            );
        }
        // Every view has the width the decoder computed for its layer.
        for (layer, width) in self.net.widths.iter().enumerate() {
            for view in &views[3 * layer..3 * layer + 3] {
                assert_eq!(view.len(), self.rows * width, "{context}: layer {layer}");
                if self.tame {
                    assert!(
                        view.iter().all(|&b| f64::from_bits(b).is_finite()),
                        "{context}: non-finite value in layer {layer} of a tame case"
                    );
                }
            }
        }
        // Nothing written past what the network needs.
        let needed = self.spec.workspace_len(self.rows);
        assert!(
            workspace[needed..]
                .iter()
                .all(|v| Scalar::to_f64(*v).to_bits()
                    == Scalar::to_f64(T::from_f64(CANARY)).to_bits()),
            "{context}: wrote past the workspace it needs"
        );
        // Same bits from different garbage in the buffers.
        let mut workspace2 = vec![garbage; self.workspace_len];
        let mut updates2 = vec![garbage; self.updates_len];
        let second = infer(
            &self.spec,
            self.parameters,
            self.batch,
            settings,
            &mut workspace2,
            &mut updates2,
        )
        .unwrap_or_else(|e| panic!("{context}: second run failed with {e:?}"));
        assert_eq!(
            Scalar::to_f64(second.loss()).to_bits(),
            *loss,
            "{context}: loss differs"
        );
        assert_eq!(second.report().iterations, *iterations, "{context}");
        for layer in 0..=self.spec.depth() {
            assert_eq!(
                bits(second.beliefs(layer)),
                views[3 * layer + 1],
                "{context}: beliefs of layer {layer} depend on old workspace contents"
            );
            assert_eq!(
                bits(second.errors(layer)),
                views[3 * layer + 2],
                "{context}: errors of layer {layer} depend on old workspace contents"
            );
        }
        assert_eq!(
            bits(&updates2),
            bits(&updates),
            "{context}: updates depend on old buffer contents"
        );
    }

    fn check_safe_step(&self, rule: &SafeStep, defects: &[Defect], rule_ok: bool) {
        let mut defects = defects.to_vec();
        if !rule_ok {
            defects.push(defect!(
                "a safe step rule out of range",
                PcError::InvalidHyperparameter { .. }
            ));
        }
        // The update buffer plays no part here.
        defects.retain(|d| d.what != "updates of the wrong length");
        let mut workspace = vec![T::nan(); self.workspace_len];
        let result = safe_step_size(
            &self.spec,
            self.parameters,
            self.batch,
            rule,
            &mut workspace,
        );
        if !defects.is_empty() {
            expect_defect(&result, &defects, "safe_step_size");
            return;
        }
        match result {
            Ok(curvature) => {
                if curvature.lambda_max.is_finite() {
                    assert!(
                        curvature.lambda_max >= T::zero(),
                        "negative curvature estimate {curvature:?}"
                    );
                    let two = T::one() + T::one();
                    assert!(
                        curvature.step_size > T::zero() && curvature.step_size < two,
                        "safe step size outside (0, 2): {curvature:?}"
                    );
                }
                assert!(curvature.iterations <= rule.iterations);
            }
            Err(error) => panic!("safe_step_size failed on a valid case: {error:?}"),
        }
    }

    fn check_learner(
        &self,
        settings: &Settings<'_, T>,
        defects: &[Defect],
        optimizer: &(AnyOptimizer<T>, bool, bool),
        state_delta: isize,
    ) {
        let (optimizer, valid, tame_optimizer) = optimizer;
        match optimizer {
            AnyOptimizer::Sgd(o) => {
                self.learn(*o, settings, defects, *valid, *tame_optimizer, state_delta)
            }
            AnyOptimizer::Adam(o) => {
                self.learn(*o, settings, defects, *valid, *tame_optimizer, state_delta)
            }
            AnyOptimizer::AdamW(o) => {
                self.learn(*o, settings, defects, *valid, *tame_optimizer, state_delta)
            }
        }
    }

    fn learn<O: Optimizer<T> + Clone + core::fmt::Debug>(
        &self,
        optimizer: O,
        settings: &Settings<'_, T>,
        defects: &[Defect],
        optimizer_ok: bool,
        tame_optimizer: bool,
        state_delta: isize,
    ) {
        let context = format!("learner {:?} {optimizer:?}", settings.algorithm);
        let mut parameters = self.parameters.to_vec();
        let state_len = adjust(O::state_len(self.parameters.len()), state_delta);
        // The state starts as plausible earlier moments (finite, second moments >= 0).
        let mut state: Vec<T> = (0..state_len)
            .map(|i| T::from_f64(((i * 7) % 5) as f64 / 8.0))
            .collect();
        let saved_state = bits(&state);
        // Defects Learner::new must find: the network's, the parameters', the state's, the optimizer's.
        let mut new_defects: Vec<Defect> = self.net.defects.clone();
        new_defects.extend(defects.iter().filter(|d| {
            matches!(
                d.what,
                "parameters of the wrong length" | "a non-finite parameter"
            )
        }));
        if state_len != O::state_len(self.parameters.len()) {
            new_defects.push(defect!(
                "optimizer state of the wrong length",
                PcError::LengthMismatch {
                    what: "optimizer state",
                    ..
                }
            ));
        }
        if !optimizer_ok {
            new_defects.push(defect!(
                "optimizer hyperparameters out of range",
                PcError::InvalidHyperparameter { .. } | PcError::InvalidSettings { .. }
            ));
        }
        let created = Learner::new(self.spec, &mut parameters, optimizer.clone(), &mut state);
        let mut learner = match created {
            Err(error) => {
                expect_defect::<()>(&Err(error), &new_defects, &context);
                assert_eq!(
                    bits(&parameters),
                    bits(self.parameters),
                    "{context}: new changed the parameters"
                );
                assert_eq!(
                    bits(&state),
                    saved_state,
                    "{context}: new changed the state"
                );
                return;
            }
            Ok(learner) => {
                assert!(
                    new_defects.is_empty(),
                    "{context}: Learner::new accepted {new_defects:?}"
                );
                learner
            }
        };
        let mut workspace = vec![T::nan(); self.workspace_len];
        let mut updates = vec![T::nan(); self.updates_len];
        let result = learner
            .step(self.batch, settings, &mut workspace, &mut updates)
            .map(|inference| inference.loss());
        let steps = learner.optimizer().steps();
        let after_parameters = bits(learner.parameters());
        let after_state = bits(learner.optimizer_state());
        drop(learner);
        match result {
            Err(error) => {
                assert_eq!(
                    after_parameters,
                    bits(self.parameters),
                    "{context}: a failed step ({error:?}) changed the parameters"
                );
                assert_eq!(
                    after_state, saved_state,
                    "{context}: a failed step ({error:?}) changed the optimizer state"
                );
                assert_eq!(steps, optimizer.steps(), "{context}: a failed step counted");
                if !defects.is_empty() {
                    expect_defect::<()>(&Err(error), defects, &context);
                } else {
                    assert!(
                        numerical_failure(&error),
                        "{context}: a valid step failed with {error:?}"
                    );
                    assert!(
                        !(self.tame && tame_optimizer) || may_fail_when_tame(settings.algorithm),
                        "{context}: a tame step failed with {error:?}"
                    );
                }
            }
            Ok(_) => {
                assert!(defects.is_empty(), "{context}: step accepted {defects:?}");
                assert_eq!(steps, optimizer.steps() + 1, "{context}");
                assert!(
                    after_parameters
                        .iter()
                        .all(|&b| f64::from_bits(b).is_finite()),
                    "{context}: non-finite parameters"
                );
                assert!(
                    after_state.iter().all(|&b| f64::from_bits(b).is_finite()),
                    "{context}: non-finite state"
                );
                // The same as infer, then the optimizer's step, on copies.
                let mut manual_parameters = self.parameters.to_vec();
                let mut manual_state: Vec<T> = saved_state
                    .iter()
                    .map(|&b| T::from_f64(f64::from_bits(b)))
                    .collect();
                let mut manual_updates = vec![T::zero(); self.updates_len];
                let mut manual_optimizer = optimizer.clone();
                infer(
                    &self.spec,
                    self.parameters,
                    self.batch,
                    settings,
                    &mut workspace,
                    &mut manual_updates,
                )
                .unwrap_or_else(|e| {
                    panic!("{context}: infer failed after the step succeeded: {e:?}")
                });
                manual_optimizer
                    .step(&mut manual_parameters, &manual_updates, &mut manual_state)
                    .unwrap_or_else(|e| {
                        panic!("{context}: optimizer failed after the step succeeded: {e:?}")
                    });
                assert_eq!(
                    bits(&manual_parameters),
                    after_parameters,
                    "{context}: step differs from infer + optimizer"
                );
                assert_eq!(
                    bits(&manual_state),
                    after_state,
                    "{context}: state differs from infer + optimizer"
                );
            }
        }
    }
}
