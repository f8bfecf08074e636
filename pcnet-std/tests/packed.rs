//! The packed-weights backend ([`PackedFast`]) against plain [`Fast`]: bit for bit.
//!
//! Packing the weights once per call instead of once per product changes where the
//! kernels read the panels from, not what they hold or the order of any sum, so every
//! result (updates, beliefs, errors, loss, report) must have exactly the bits of `Fast`.
//! Exact comparison, no tolerance.

use pcnet_core::{
    infer_with, Activation, Backend, Batch, Layer, Loss, NetworkSpec, Op, Scalar, Settings, Targets,
};
use pcnet_std::fast::{Fast, PackedWeights};

/// Everything one call computes, as bits.
#[derive(Debug, PartialEq)]
struct Bits {
    updates: Vec<u64>,
    beliefs: Vec<u64>,
    errors: Vec<u64>,
    loss: u64,
    iterations: usize,
    residual: u64,
}

fn bits<T: Scalar>(values: &[T]) -> Vec<u64> {
    values
        .iter()
        .map(|&v| Scalar::to_f64(v).to_bits())
        .collect()
}

fn run<T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'_>,
    params: &[T],
    batch: Batch<'_, T>,
    settings: &Settings<'_, T>,
    rows: usize,
) -> Bits {
    let mut workspace = vec![T::nan(); spec.workspace_len(rows)];
    let mut updates = vec![T::nan(); spec.parameter_len()];
    let inference = infer_with(
        backend,
        spec,
        params,
        batch,
        settings,
        &mut workspace,
        &mut updates,
    )
    .expect("a valid call");
    let (mut beliefs, mut errors) = (Vec::new(), Vec::new());
    for layer in 0..=spec.depth() {
        beliefs.extend(bits(inference.beliefs(layer)));
        errors.extend(bits(inference.errors(layer)));
    }
    let report = inference.report();
    Bits {
        updates: bits(&updates),
        beliefs,
        errors,
        loss: Scalar::to_f64(inference.loss()).to_bits(),
        iterations: report.iterations,
        residual: Scalar::to_f64(report.residual).to_bits(),
    }
}

fn values<T: Scalar>(len: usize, seed: usize) -> Vec<T> {
    (0..len)
        .map(|i| T::from_f64((((i * 37 + seed * 11) % 29) as f64 - 14.0) / 40.0))
        .collect()
}

fn check<T: pcnet_std::fast::GemmScalar>()
where
    Fast: Backend<T>,
    for<'a> pcnet_std::fast::PackedFast<'a, T>: Backend<T>,
{
    // Widths past a panel (16 f32 / 8 f64 columns) with ragged ends, a `k` past one depth
    // block (256), and a layer of two linear ops (its second op's VJP is packed too).
    let two_linear = Layer::from_ops(&[
        Op::Linear {
            inputs: 300,
            outputs: 37,
        },
        Op::Activation(Activation::Tanh),
        Op::Linear {
            inputs: 37,
            outputs: 270,
        },
        Op::Activation(Activation::Relu),
    ])
    .expect("a valid layer");
    let layers = [
        Layer::dense(19, 300, Activation::Relu),
        two_linear,
        Layer::dense(270, 5, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    let params = values::<T>(spec.parameter_len(), 1);
    let other_params = values::<T>(spec.parameter_len(), 2);
    let mut packed = PackedWeights::<T>::new();
    for rows in [1, 23, 24, 25, 64, 130] {
        let inputs = values::<T>(rows * spec.input_len(), 3);
        let classes: Vec<usize> = (0..rows).map(|r| r * 3 % 5).collect();
        let batch = Batch::new(&inputs, Targets::Classes(&classes));
        for base in [
            Settings::exact(),
            Settings::fixed_pred(T::from_f64(0.1), 7),
            Settings::fixed_pred(T::one(), 4),
            Settings::strict(T::from_f64(0.1), 7),
        ] {
            for settings in [base, base.with_free_input()] {
                let expected = run(&Fast::default(), &spec, &params, batch, &settings, rows);
                let backend = packed.pack(&spec, &params, &settings).expect("packs");
                let got = run(&backend, &spec, &params, batch, &settings, rows);
                assert_eq!(got, expected, "rows {rows}, {settings:?}");
                // Other parameters (another address) go through `Fast` unchanged.
                let expected_other = run(
                    &Fast::default(),
                    &spec,
                    &other_params,
                    batch,
                    &settings,
                    rows,
                );
                let got_other = run(&backend, &spec, &other_params, batch, &settings, rows);
                assert_eq!(got_other, expected_other, "other parameters, rows {rows}");
                assert_ne!(
                    got_other.updates, got.updates,
                    "the two parameter sets differ"
                );
            }
        }
    }
}

#[test]
fn packed_weights_give_the_bits_of_fast_f32() {
    check::<f32>();
}

#[test]
fn packed_weights_give_the_bits_of_fast_f64() {
    check::<f64>();
}

#[test]
fn packing_rejects_bad_networks_and_parameters_of_the_wrong_length() {
    let layers = [Layer::dense(3, 4, Activation::Relu)];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let params = vec![0.5_f32; spec.parameter_len() - 1];
    let mut packed = PackedWeights::new();
    assert!(matches!(
        packed.pack(&spec, &params, &Settings::exact()),
        Err(pcnet_core::PcError::LengthMismatch {
            what: "parameters",
            ..
        })
    ));
    // Layers that do not chain, and no layers at all: the network's own errors.
    let unchained = [
        Layer::dense(3, 4, Activation::Relu),
        Layer::dense(5, 2, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&unchained, Loss::Mse);
    let params = vec![0.5_f32; spec.parameter_len()];
    assert!(matches!(
        packed.pack(&spec, &params, &Settings::exact()),
        Err(pcnet_core::PcError::ShapeMismatch { .. })
    ));
    let spec = NetworkSpec::new(&[], Loss::Mse);
    assert!(matches!(
        packed.pack(&spec, &[0.5_f32; 0], &Settings::exact()),
        Err(pcnet_core::PcError::InvalidNetwork { .. })
    ));
}

/// Packed panels are found by the op's key and used only with that op's own weight slice:
/// the key of another op of the same shape, or no key, computes with the weights given
/// (the bits of plain `Fast` on them), never with the other op's panels.
#[test]
fn packed_panels_are_found_by_key_and_only_for_their_own_weights() {
    use pcnet_core::{LinearDims, OpKey};
    let layers = [
        Layer::dense(40, 40, Activation::Tanh),
        Layer::dense(40, 40, Activation::Tanh),
        Layer::dense(40, 3, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let params: Vec<f64> = values(spec.parameter_len(), 3);
    let settings = Settings::strict(0.1, 5);
    let mut packed = PackedWeights::new();
    let fast = Fast::default();
    let backend = packed.pack_for(fast, &spec, &params, &settings).unwrap();
    let rows = 30; // from 24 rows on, the forward product reads packed panels
    let dims = LinearDims {
        rows,
        inputs: 40,
        outputs: 40,
    };
    let input: Vec<f64> = values(rows * 40, 5);
    let weight_of = |layer: usize| {
        let start = spec.parameter_offset(layer);
        (
            &params[start..start + 1600],
            &params[start + 1600..start + 1640],
        )
    };
    for (key, layer) in [
        (OpKey::new(1, 0), 1),
        (OpKey::new(2, 0), 2),
        (OpKey::new(2, 0), 1),
        (OpKey::new(1, 0), 2),
        (OpKey::NONE, 1),
        (OpKey::new(7, 0), 2),
    ] {
        let (weight, bias) = weight_of(layer);
        let (mut got, mut expected) = (vec![f64::NAN; rows * 40], vec![f64::NAN; rows * 40]);
        backend.linear_forward(key, dims, &input, weight, bias, &mut got);
        fast.linear_forward(OpKey::NONE, dims, &input, weight, bias, &mut expected);
        assert_eq!(
            bits(&got),
            bits(&expected),
            "{key:?} with layer {layer}'s weights"
        );
    }
}
