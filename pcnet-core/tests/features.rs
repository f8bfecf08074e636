//! Tests that hold in every combination of pcnet-core's cargo features: an op, algorithm or
//! rule the build has works, one it lacks is a typed [`PcError`] before any output is
//! written, never a panic. `cargo test -p pcnet-core --no-default-features` runs them with
//! everything off, the default test run with everything on.

use pcnet_core::model_bytes::{self, crc32, HEADER_LEN, MAGIC, VERSION};
use pcnet_core::{
    infer, Activation, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, PcError, Settings,
    Targets,
};

/// 2 -> 3 (tanh) -> 1: small enough to check by hand, deep enough that every algorithm
/// relaxes a hidden layer.
const LAYERS: [Layer; 2] = [
    Layer::dense(2, 3, Activation::Tanh),
    Layer::dense(3, 1, Activation::Identity),
];
const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);

/// Runs one inference with `settings`; `updates` start as NaN so a write is visible.
fn run(settings: &Settings<'_, f64>) -> (Result<f64, PcError>, [f64; SPEC.parameter_len()]) {
    let params: [f64; SPEC.parameter_len()] =
        core::array::from_fn(|i| ((i * 5) % 7) as f64 / 7.0 - 0.4);
    let mut workspace = [0.0; SPEC.workspace_len(1)];
    let mut updates = [f64::NAN; SPEC.parameter_len()];
    let batch = Batch::new(&[0.5, -1.0], Targets::Values(&[0.25]));
    let result = infer(
        &SPEC,
        &params,
        batch,
        settings,
        &mut workspace,
        &mut updates,
    )
    .map(|inference| inference.loss());
    (result, updates)
}

/// Asserts that `settings` run when `built` and are rejected up front otherwise.
fn check_algorithm(settings: Settings<'_, f64>, built: bool, feature: &str) {
    let (result, updates) = run(&settings);
    if built {
        let loss = result.unwrap();
        assert!(loss.is_finite() && loss > 0.0);
        assert!(updates.iter().all(|u| u.is_finite()));
    } else {
        match result {
            Err(PcError::InvalidSettings { reason }) => assert!(reason.contains(feature)),
            other => panic!("{feature}: expected InvalidSettings, got {other:?}"),
        }
        // Rejected before the relaxation: no update was written.
        assert!(updates.iter().all(|u| u.is_nan()));
    }
}

#[test]
fn each_algorithm_runs_exactly_when_its_feature_is_on() {
    check_algorithm(Settings::exact(), cfg!(feature = "exact"), "`exact`");
    check_algorithm(
        Settings::fixed_pred(0.5, 4),
        cfg!(feature = "fixed-pred"),
        "`fixed-pred`",
    );
    check_algorithm(
        Settings::strict(0.2, 10),
        cfg!(feature = "strict"),
        "`strict`",
    );
}

#[test]
fn the_safe_step_size_runs_exactly_when_its_feature_is_on() {
    let settings = Settings::strict(0.2, 10).with_safe_step_size();
    // Without `strict` the algorithm's own feature is reported first.
    let feature = if cfg!(feature = "strict") {
        "`safe-step`"
    } else {
        "`strict`"
    };
    check_algorithm(settings, cfg!(feature = "safe-step"), feature);
}

/// One image layer: a 1x1 convolution of a 1 x 2 x 2 image to 1 channel, then flatten.
const CONV: Conv2d = Conv2d::new(ImageShape::new(1, 2, 2), 1, [1, 1]);

#[test]
fn image_ops_validate_exactly_when_conv_is_on() {
    let layers = [Layer::from_ops(&[Op::Conv2d(CONV), Op::Flatten]).unwrap()];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let result = spec.validate();
    if cfg!(feature = "conv") {
        result.unwrap();
    } else {
        match result {
            Err(PcError::InvalidOp {
                layer: 1,
                op: 0,
                reason,
            }) => assert!(reason.contains("`conv`")),
            other => panic!("expected InvalidOp, got {other:?}"),
        }
    }
}

/// The model bytes of `CONV` with weight 1.5 and bias -0.5 (f32, MSE, no optimizer),
/// assembled from the format table in the `model_bytes` docs, not by the writer.
fn conv_model() -> std::vec::Vec<u8> {
    let mut bytes = std::vec::Vec::new();
    let u32le = |bytes: &mut std::vec::Vec<u8>, v: u32| bytes.extend_from_slice(&v.to_le_bytes());
    let ops_len = 1 + 1 + 10 * 4; // op count, tag, ten counts
    let total = HEADER_LEN + ops_len + 2 * 4 + 4;
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.push(4); // f32
    bytes.push(0); // Mse
    u32le(&mut bytes, total as u32);
    u32le(&mut bytes, 4); // input features
    u32le(&mut bytes, 1); // layers
    u32le(&mut bytes, 2); // parameters
    bytes.extend_from_slice(&[0, 0, 0, 0]); // no optimizer, reserved
    assert_eq!(bytes.len(), HEADER_LEN);
    bytes.push(1); // one op
    bytes.push(3); // Conv2d
    for count in [1, 2, 2, 1, 1, 1, 1, 1, 0, 0] {
        u32le(&mut bytes, count);
    }
    bytes.extend_from_slice(&1.5f32.to_le_bytes());
    bytes.extend_from_slice(&(-0.5f32).to_le_bytes());
    let crc = crc32(&bytes);
    u32le(&mut bytes, crc);
    assert_eq!(bytes.len(), total);
    bytes
}

#[test]
fn reading_an_image_model_needs_conv() {
    let bytes = conv_model();
    let mut layers = [Layer::dense(1, 1, Activation::Identity); 1];
    let mut params = [f32::NAN; 2];
    let result = model_bytes::read_model(&bytes, &mut layers, &mut params);
    if cfg!(feature = "conv") {
        let spec = result.unwrap();
        assert_eq!(spec.layers()[0].ops(), &[Op::Conv2d(CONV)]);
        assert_eq!(params, [1.5, -0.5]);
    } else {
        match result {
            Err(PcError::InvalidOp {
                layer: 1,
                op: 0,
                reason,
            }) => assert!(reason.contains("`conv`")),
            other => panic!("expected InvalidOp, got {other:?}"),
        }
        // Nothing was written into the caller's slices.
        assert!(params.iter().all(|p| p.is_nan()));
    }
}

#[test]
fn optional_activations_validate_exactly_when_their_feature_is_on() {
    for (activation, built, feature) in [
        (
            Activation::LEAKY_RELU,
            cfg!(feature = "leaky-relu"),
            "`leaky-relu`",
        ),
        (Activation::Sigmoid, cfg!(feature = "sigmoid"), "`sigmoid`"),
        (
            Activation::Softplus,
            cfg!(feature = "softplus"),
            "`softplus`",
        ),
        // Always built.
        (Activation::Tanh, true, ""),
        (Activation::Relu, true, ""),
    ] {
        let layers = [
            Layer::dense(2, 3, Activation::Tanh),
            Layer::dense(3, 1, activation),
        ];
        let result = NetworkSpec::new(&layers, Loss::Mse).validate();
        if built {
            result.unwrap();
        } else {
            match result {
                Err(PcError::InvalidOp {
                    layer: 2,
                    op: 1,
                    reason,
                }) => assert!(reason.contains(feature)),
                other => panic!("{feature}: expected InvalidOp, got {other:?}"),
            }
        }
    }
}

#[test]
fn cross_entropy_trains_exactly_when_its_feature_is_on() {
    let spec = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
    let result = spec.validate();
    if cfg!(feature = "cross-entropy") {
        result.unwrap();
    } else {
        match result {
            Err(PcError::InvalidNetwork { layer: 0, reason }) => {
                assert!(reason.contains("`cross-entropy`"))
            }
            other => panic!("expected InvalidNetwork, got {other:?}"),
        }
    }
    // The loss itself, outside a network, is always available.
    let mut grad = [0.0; 2];
    let loss = Loss::CrossEntropy
        .value_and_gradient(&[0.0, 0.0], 2, Targets::Classes(&[1]), 1, &mut grad)
        .unwrap();
    // Two equal logits: loss ln 2, gradient (1/2, 1/2) - (0, 1).
    assert!((loss - core::f64::consts::LN_2).abs() < 1e-15);
    assert_eq!(grad, [0.5, -0.5]);
}

#[test]
fn residual_layers_exist_exactly_when_their_feature_is_on() {
    let branch = [Op::Linear {
        inputs: 2,
        outputs: 2,
    }];
    let layer = Layer::residual(&branch, 0.5);
    let block = Layer::residual_mlp(2, 3, Activation::Tanh, 0.5);
    if cfg!(feature = "residual") {
        assert_eq!(layer.unwrap().residual_scale(), Some(0.5));
        assert_eq!(block.unwrap().residual_scale(), Some(0.5));
    } else {
        for result in [layer, block] {
            match result {
                Err(PcError::InvalidNetwork { layer: 0, reason }) => {
                    assert!(reason.contains("`residual`"))
                }
                other => panic!("expected InvalidNetwork, got {other:?}"),
            }
        }
    }
    // A plain layer is never residual.
    assert_eq!(Layer::from_ops(&branch).unwrap().residual_scale(), None);
}

/// The model bytes (version 2, f64, MSE) of one residual layer `v + 0.5 (v W^T + b)` of
/// width 1 with `W = 2`, `b = -1`, assembled from the format table, not by the writer.
fn residual_model() -> std::vec::Vec<u8> {
    let mut bytes = std::vec::Vec::new();
    let u32le = |bytes: &mut std::vec::Vec<u8>, v: u32| bytes.extend_from_slice(&v.to_le_bytes());
    let layer_len = 1 + (1 + 2 * 4) + 8; // op count | flag, linear, scale
    let total = HEADER_LEN + layer_len + 2 * 8 + 4;
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&model_bytes::VERSION_RESIDUAL.to_le_bytes());
    bytes.push(8); // f64
    bytes.push(0); // Mse
    u32le(&mut bytes, total as u32);
    u32le(&mut bytes, 1); // input features
    u32le(&mut bytes, 1); // layers
    u32le(&mut bytes, 2); // parameters
    bytes.extend_from_slice(&[0, 0, 0, 0]); // no optimizer, reserved
    bytes.push(0x80 | 1); // residual, one op
    bytes.push(1); // Linear
    u32le(&mut bytes, 1);
    u32le(&mut bytes, 1);
    bytes.extend_from_slice(&0.5f64.to_le_bytes());
    bytes.extend_from_slice(&2.0f64.to_le_bytes());
    bytes.extend_from_slice(&(-1.0f64).to_le_bytes());
    let crc = crc32(&bytes);
    u32le(&mut bytes, crc);
    assert_eq!(bytes.len(), total);
    bytes
}

#[test]
fn reading_a_residual_model_needs_residual() {
    let bytes = residual_model();
    let mut layers = [Layer::dense(1, 1, Activation::Identity); 1];
    let mut params = [f64::NAN; 2];
    let result = model_bytes::read_model(&bytes, &mut layers, &mut params);
    if cfg!(feature = "residual") {
        let spec = result.unwrap();
        assert_eq!(spec.layers()[0].residual_scale(), Some(0.5));
        assert_eq!(params, [2.0, -1.0]);
    } else {
        match result {
            Err(PcError::InvalidNetwork { layer: 1, reason }) => {
                assert!(reason.contains("`residual`"))
            }
            other => panic!("expected InvalidNetwork, got {other:?}"),
        }
        assert!(params.iter().all(|p| p.is_nan()));
    }
}
