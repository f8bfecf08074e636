//! Unit tests of the layer evaluation on residual layers `v + alpha g(v)` against an independent naive evaluation:
//! the forward pass, Exact against central differences, FixedPred with step 1 against
//! Exact, the JVP against the VJP, and the typed errors of bad descriptions.

use crate::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Op, PcError, Settings, Targets};
use std::{vec, vec::Vec};

/// A deterministic sequence in [-1, 1) (a 64-bit LCG: only reproducibility matters).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| self.next() * scale).collect()
    }
}

/// Independent evaluation of one op on one sample (linear, tanh, identity only).
fn naive_op(op: &Op, params: &[f64], x: &[f64]) -> Vec<f64> {
    match *op {
        Op::Linear { inputs, outputs } => (0..outputs)
            .map(|o| {
                let row = &params[o * inputs..(o + 1) * inputs];
                row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + params[inputs * outputs + o]
            })
            .collect(),
        Op::Activation(Activation::Tanh) => x.iter().map(|v| v.tanh()).collect(),
        Op::Activation(Activation::Identity) => x.to_vec(),
        _ => panic!("the naive reference evaluates linear, tanh and identity ops only"),
    }
}

/// Independent evaluation of one layer on one sample: its chain, plus the skip.
fn naive_layer(layer: &Layer, params: &[f64], x: &[f64]) -> Vec<f64> {
    let mut value = x.to_vec();
    let mut offset = 0;
    for op in layer.ops() {
        value = naive_op(op, &params[offset..offset + op.parameter_len()], &value);
        offset += op.parameter_len();
    }
    match layer.residual_scale() {
        Some(alpha) => x.iter().zip(&value).map(|(v, g)| v + alpha * g).collect(),
        None => value,
    }
}

/// Every `vhat_l` of one sample, `l = 0..=L`.
fn naive_forward(spec: &NetworkSpec<'_>, params: &[f64], x: &[f64]) -> Vec<Vec<f64>> {
    let mut values = vec![x.to_vec()];
    for (l, layer) in spec.layers().iter().enumerate() {
        let offset = spec.parameter_offset(l + 1);
        let next = naive_layer(layer, &params[offset..], values.last().unwrap());
        values.push(next);
    }
    values
}

/// pcnet-core's MSE (the mean of the squared differences over rows and outputs) of the
/// network on `inputs`; `replace = (l, element, shift)` adds `shift` to element `element`
/// (row-major over the rows) of `vhat_l` before layer `l + 1` reads it.
fn naive_loss(
    spec: &NetworkSpec<'_>,
    params: &[f64],
    inputs: &[f64],
    targets: &[f64],
    replace: Option<(usize, usize, f64)>,
) -> f64 {
    let rows = inputs.len() / spec.input_len();
    let out = spec.output_len();
    let mut total = 0.0;
    for r in 0..rows {
        let mut value = inputs[r * spec.input_len()..(r + 1) * spec.input_len()].to_vec();
        for (l, layer) in spec.layers().iter().enumerate() {
            if let Some((at, element, shift)) = replace {
                let width = value.len();
                if at == l && element / width == r {
                    value[element % width] += shift;
                }
            }
            value = naive_layer(layer, &params[spec.parameter_offset(l + 1)..], &value);
        }
        let target = &targets[r * out..(r + 1) * out];
        total += value
            .iter()
            .zip(target)
            .map(|(y, t)| (y - t) * (y - t))
            .sum::<f64>();
    }
    total / (rows * out) as f64
}

/// input 3 -> dense 4 tanh -> residual MLP (4 -> 6 tanh -> 4, alpha 0.7) -> residual
/// linear 4 (alpha 0.5) -> dense 2 identity; MSE.
fn layers() -> [Layer; 4] {
    [
        Layer::dense(3, 4, Activation::Tanh),
        Layer::residual_mlp(4, 6, Activation::Tanh, 0.7).unwrap(),
        Layer::residual(
            &[Op::Linear {
                inputs: 4,
                outputs: 4,
            }],
            0.5,
        )
        .unwrap(),
        Layer::dense(4, 2, Activation::Identity),
    ]
}

struct Problem {
    params: Vec<f64>,
    inputs: Vec<f64>,
    targets: Vec<f64>,
}

fn problem(spec: &NetworkSpec<'_>, rows: usize, seed: u64) -> Problem {
    let mut sequence = Sequence(seed);
    Problem {
        params: sequence.vec(spec.parameter_len(), 0.8),
        inputs: sequence.vec(rows * spec.input_len(), 1.0),
        targets: sequence.vec(rows * spec.output_len(), 1.0),
    }
}

#[test]
fn residual_layers_output_their_input_plus_the_scaled_branch() {
    let layers = layers();
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let rows = 3;
    let p = problem(&spec, rows, 11);
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let batch = Batch::new(&p.inputs, Targets::Values(&p.targets));
    let inference = infer(
        &spec,
        &p.params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    for r in 0..rows {
        let x = &p.inputs[r * 3..(r + 1) * 3];
        let naive = naive_forward(&spec, &p.params, x);
        for (l, expected) in naive.iter().enumerate() {
            let width = expected.len();
            let got = &inference.feedforward(l)[r * width..(r + 1) * width];
            for (g, e) in got.iter().zip(expected) {
                // Same operations in possibly another summation order: a few ulps.
                assert!(
                    (g - e).abs() <= 1e-14 * (1.0 + e.abs()),
                    "layer {l}: {g} vs {e}"
                );
            }
        }
    }
}

/// Exact's updates are `dLoss/dtheta` and its errors `dLoss/dvhat_l`, by central
/// differences of the naive loss: `|fd - g| <= 1e-7 (|g| + max|g|) + 1e-10` (the stencil
/// `h = 1e-5` errs by `h^2 |f'''| / 6 ~ 1e-11` and `u |Loss| / h ~ 1e-11`).
#[test]
fn exact_on_residual_networks_matches_finite_differences() {
    let layers = layers();
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let rows = 2;
    let p = problem(&spec, rows, 5);
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let batch = Batch::new(&p.inputs, Targets::Values(&p.targets));
    let inference = infer(
        &spec,
        &p.params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    let h = 1e-5;
    let largest = updates.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    for (i, &gradient) in updates.iter().enumerate() {
        let mut plus = p.params.clone();
        plus[i] += h;
        let mut minus = p.params.clone();
        minus[i] -= h;
        let fd = (naive_loss(&spec, &plus, &p.inputs, &p.targets, None)
            - naive_loss(&spec, &minus, &p.inputs, &p.targets, None))
            / (2.0 * h);
        assert!(
            (fd - gradient).abs() <= 1e-7 * (gradient.abs() + largest) + 1e-10,
            "parameter {i}: finite difference {fd}, Exact {gradient}"
        );
    }
    // Errors: `delta_l = dLoss/dvhat_l` for the hidden layers; the loss is averaged over
    // the rows, so the derivative with respect to one row's value is the row's delta.
    for l in 1..spec.depth() {
        let delta = inference.errors(l);
        let largest = delta.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for (element, &d) in delta.iter().enumerate() {
            let plus = naive_loss(
                &spec,
                &p.params,
                &p.inputs,
                &p.targets,
                Some((l, element, h)),
            );
            let minus = naive_loss(
                &spec,
                &p.params,
                &p.inputs,
                &p.targets,
                Some((l, element, -h)),
            );
            let fd = (plus - minus) / (2.0 * h);
            assert!(
                (fd - d).abs() <= 1e-7 * (d.abs() + largest) + 1e-10,
                "layer {l} element {element}: finite difference {fd}, Exact {d}"
            );
        }
    }
}

/// FixedPred with step 1 and `n >= L` iterations is backprop on residual networks too:
/// with `eta = 1` an iteration is the shift `e_l <- J_{l+1}^T e_{l+1}`, the same products
/// as Exact's sweep, so 1e-12 relative per layer.
#[test]
fn fixed_pred_with_step_one_is_exact_on_residual_networks() {
    let layers = layers();
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let rows = 3;
    let p = problem(&spec, rows, 23);
    let batch = Batch::new(&p.inputs, Targets::Values(&p.targets));
    let mut exact_workspace = vec![0.0; spec.workspace_len(rows)];
    let mut gradient = vec![0.0; spec.parameter_len()];
    let exact = infer(
        &spec,
        &p.params,
        batch,
        &Settings::exact(),
        &mut exact_workspace,
        &mut gradient,
    )
    .unwrap();
    for n in spec.depth()..spec.depth() + 3 {
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let fixed = infer(
            &spec,
            &p.params,
            batch,
            &Settings::fixed_pred(1.0, n),
            &mut workspace,
            &mut updates,
        )
        .unwrap();
        let close = |a: &[f64], b: &[f64]| {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * scale)
        };
        assert!(close(&updates, &gradient), "updates, n = {n}");
        for l in 1..=spec.depth() {
            assert!(
                close(fixed.errors(l), exact.errors(l)),
                "errors {l}, n = {n}"
            );
        }
    }
}

/// Strict's velocity is `-dF/dv`: one iteration with step `eta` from the feedforward
/// start moves `v_{L-1}` by `eta (J_L^T dLoss/dy)` (the hidden errors are 0 there), and
/// `J_L` of the last layer is residual here, so the belief moves by `eta delta_{L-1}`
/// exactly as Exact's `delta_{L-1}`.
#[cfg(feature = "strict")]
#[test]
fn strict_moves_the_top_belief_by_the_residual_jacobian() {
    let layers = [
        Layer::dense(3, 4, Activation::Tanh),
        Layer::residual_mlp(4, 5, Activation::Tanh, 0.3).unwrap(),
    ];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let rows = 2;
    let p = problem(&spec, rows, 3);
    let batch = Batch::new(&p.inputs, Targets::Values(&p.targets));
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut gradient = vec![0.0; spec.parameter_len()];
    let exact = infer(
        &spec,
        &p.params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut gradient,
    )
    .unwrap();
    let delta: Vec<f64> = exact.errors(1).to_vec();
    let vhat: Vec<f64> = exact.feedforward(1).to_vec();
    let eta = 0.1;
    let mut strict_workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let strict = infer(
        &spec,
        &p.params,
        batch,
        &Settings::strict(eta, 1),
        &mut strict_workspace,
        &mut updates,
    )
    .unwrap();
    for ((v, h), d) in strict.beliefs(1).iter().zip(&vhat).zip(&delta) {
        // v = vhat - eta * delta, up to the rounding of one subtraction.
        assert!((v - (h - eta * d)).abs() <= 1e-15 * (1.0 + h.abs()));
    }
}

/// The JVP and the VJP of a residual layer are adjoint: `<u, J t> = <J^T u, t>` with
/// `J = I + alpha J_g`, to 1e-13 relative.
#[cfg(feature = "safe-step")]
#[test]
fn residual_jvp_is_the_adjoint_of_the_vjp() {
    use crate::layer::{LayerView, Values};
    use crate::Portable;
    let layer = Layer::residual_mlp(4, 6, Activation::Tanh, 0.6).unwrap();
    let rows = 2;
    let mut sequence = Sequence(9);
    let params = sequence.vec(layer.parameter_len(), 0.9);
    let view = LayerView {
        layer: &layer,
        index: 1,
        rows,
        input_width: 4,
        params: &params,
    };
    let input = sequence.vec(rows * 4, 1.0);
    let mut trace = vec![0.0; rows * layer.trace_len(4)];
    let mut output = vec![0.0; rows * 4];
    view.forward(&Portable, &input, &mut trace, &mut output);
    let values = Values {
        input: &input,
        trace: &trace,
        output: &output,
    };
    let tangent = sequence.vec(rows * 4, 1.0);
    let cotangent = sequence.vec(rows * 4, 1.0);
    let mut scratch = vec![0.0; 2 * rows * layer.max_width(4)];
    let mut pushed = vec![0.0; rows * 4];
    view.jvp(&values, &tangent, &mut scratch, &mut pushed);
    let mut pulled = vec![0.0; rows * 4];
    view.backward(
        &Portable,
        &values,
        &cotangent,
        &mut scratch,
        Some(&mut pulled),
        None,
    );
    let left: f64 = cotangent.iter().zip(&pushed).map(|(u, v)| u * v).sum();
    let right: f64 = pulled.iter().zip(&tangent).map(|(u, v)| u * v).sum();
    assert!((left - right).abs() <= 1e-13 * left.abs().max(right.abs()));
    // And the skip is there: with alpha = 0 the layer is the identity map.
    let identity = Layer::residual_mlp(4, 6, Activation::Tanh, 0.0).unwrap();
    let view = LayerView {
        layer: &identity,
        ..view
    };
    view.forward(&Portable, &input, &mut trace, &mut output);
    assert_eq!(output, input);
}

#[test]
fn bad_residual_layers_are_typed_errors() {
    let narrowing = [Layer::residual(
        &[Op::Linear {
            inputs: 4,
            outputs: 3,
        }],
        1.0,
    )
    .unwrap()];
    assert_eq!(
        NetworkSpec::new(&narrowing, Loss::Mse).validate(),
        Err(PcError::ShapeMismatch {
            layer: 1,
            op: 1,
            expected: 4,
            given: 3
        })
    );
    // A branch that widens then narrows to a different width, in layer 2.
    let layers = [
        Layer::dense(2, 4, Activation::Tanh),
        Layer::residual(
            &[
                Op::Linear {
                    inputs: 4,
                    outputs: 8,
                },
                Op::Activation(Activation::Tanh),
                Op::Linear {
                    inputs: 8,
                    outputs: 5,
                },
            ],
            0.5,
        )
        .unwrap(),
    ];
    assert_eq!(
        NetworkSpec::new(&layers, Loss::Mse).validate(),
        Err(PcError::ShapeMismatch {
            layer: 2,
            op: 3,
            expected: 4,
            given: 5
        })
    );
    for scale in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let layers = [Layer::residual_mlp(3, 3, Activation::Tanh, scale).unwrap()];
        match NetworkSpec::new(&layers, Loss::Mse).validate() {
            Err(PcError::InvalidHyperparameter { name, .. }) => assert_eq!(name, "residual scale"),
            other => panic!("scale {scale}: {other:?}"),
        }
    }
    assert!(Layer::residual(&[], 1.0).is_err());
    let too_many = [Op::Activation(Activation::Tanh); crate::MAX_OPS_PER_LAYER + 1];
    assert!(Layer::residual(&too_many, 1.0).is_err());
    // An activation-only branch keeps the width: `v + alpha tanh(v)` is valid.
    let layers = [
        Layer::residual(&[Op::Activation(Activation::Tanh)], -0.5).unwrap(),
        Layer::dense(3, 1, Activation::Identity),
    ];
    assert!(NetworkSpec::new(&layers, Loss::Mse)
        .with_input_len(3)
        .validate()
        .is_ok());
}

/// A residual layer's trace keeps every op output, the branch's last included; its other
/// sizes are those of its chain.
#[test]
fn residual_sizes() {
    let block = Layer::residual_mlp(4, 6, Activation::Tanh, 1.0).unwrap();
    let plain = Layer::from_ops(block.ops()).unwrap();
    assert_eq!(block.trace_len(4), 6 + 6 + 4);
    assert_eq!(plain.trace_len(4), 6 + 6);
    assert_eq!(block.parameter_len(), plain.parameter_len());
    assert_eq!(block.max_width(4), 6);
    assert_eq!(block.dense_activation(), None);
    let linear = Layer::residual(
        &[Op::Linear {
            inputs: 4,
            outputs: 4,
        }],
        1.0,
    )
    .unwrap();
    assert_eq!(linear.dense_activation(), None);
}

/// Model bytes carry residual layers (version 2) and plain networks stay version 1; a
/// version-1 model with the residual flag, a non-finite scale and a branch that changes
/// the width are corrupt.
#[test]
fn residual_layers_round_trip_through_model_bytes() {
    use crate::model_bytes::{
        crc32, model_len, read_info, read_model, write_model, OptimizerKind, VERSION,
        VERSION_RESIDUAL,
    };
    let layers = layers();
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let p = problem(&spec, 1, 31);
    let len = model_len::<f64>(&spec, OptimizerKind::None);
    let plain: Vec<Layer> = layers
        .iter()
        .map(|layer| Layer::from_ops(layer.ops()).unwrap())
        .collect();
    // Two residual layers: 8 bytes of scale each over the same ops.
    assert_eq!(
        len,
        model_len::<f64>(&NetworkSpec::new(&plain, Loss::Mse), OptimizerKind::None) + 16
    );
    let mut bytes = vec![0u8; len];
    assert_eq!(write_model(&spec, &p.params, None, &mut bytes), Ok(len));
    assert_eq!(read_info(&bytes).unwrap().version, VERSION_RESIDUAL);
    let mut restored_layers = [Layer::dense(1, 1, Activation::Identity); 4];
    let mut restored = vec![0.0; spec.parameter_len()];
    let restored_spec = read_model(&bytes, &mut restored_layers, &mut restored).unwrap();
    assert_eq!(restored_spec, spec);
    assert_eq!(restored, p.params);
    // A network without residual layers is written as version 1.
    let plain_spec = NetworkSpec::new(&plain, Loss::Mse);
    let mut plain_bytes = vec![0u8; model_len::<f64>(&plain_spec, OptimizerKind::None)];
    write_model(&plain_spec, &p.params, None, &mut plain_bytes).unwrap();
    assert_eq!(read_info(&plain_bytes).unwrap().version, VERSION);
    // Corruptions with a valid CRC.
    let recrc = |bytes: &mut Vec<u8>| {
        let end = bytes.len() - 4;
        let crc = crc32(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
    };
    let corrupt = |bytes: &[u8]| {
        let mut layers = [Layer::dense(1, 1, Activation::Identity); 4];
        let mut params = vec![f64::NAN; spec.parameter_len()];
        let result = read_model(bytes, &mut layers, &mut params);
        assert!(
            params.iter().all(|v| v.is_nan()),
            "written before the error"
        );
        match result {
            Err(PcError::CorruptModel { reason }) => reason,
            other => panic!("expected CorruptModel, got {other:?}"),
        }
    };
    let mut version_one = bytes.clone();
    version_one[4..6].copy_from_slice(&VERSION.to_le_bytes());
    recrc(&mut version_one);
    assert_eq!(corrupt(&version_one), "op count of a layer out of range");
    // Layer 2's scale: after the header, layer 1 (1 + 9 + 2) and layer 2's ops.
    let scale_at = crate::model_bytes::HEADER_LEN + 12 + 1 + 9 + 2 + 9;
    assert_eq!(bytes[scale_at..scale_at + 8], 0.7f64.to_le_bytes());
    let mut nan_scale = bytes.clone();
    nan_scale[scale_at..scale_at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    recrc(&mut nan_scale);
    assert_eq!(corrupt(&nan_scale), "non-finite residual scale");
    let mut narrowing = bytes.clone();
    // Layer 2's second linear op (6 -> 4) says 6 -> 3: the branch no longer maps 4 to 4.
    let outputs_at = scale_at - 4;
    narrowing[outputs_at..outputs_at + 4].copy_from_slice(&3u32.to_le_bytes());
    recrc(&mut narrowing);
    assert_eq!(corrupt(&narrowing), "a residual branch changes the width");
}
