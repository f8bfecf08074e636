//! Unit tests of the model bytes: round trips, every corruption named, no partial write.

use super::*;
#[cfg(feature = "conv")]
use crate::{Conv2d, ImageShape, Pool2d};
use crate::{Layer, PcError, Sgd};
use std::vec;
use std::vec::Vec;

const LAYERS: [Layer; 3] = [
    Layer::dense(3, 4, Activation::LeakyRelu { slope: 0.125 }),
    Layer::dense(4, 2, Activation::Tanh),
    Layer::dense(2, 2, Activation::Identity),
];
const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);

fn params<T: Scalar>() -> Vec<T> {
    (0..SPEC.parameter_len())
        .map(|i| T::from_f64((i as f64 - 11.0) / 7.0))
        .collect()
}

fn saved_with_sgd<T: Scalar>() -> (Vec<u8>, Sgd<T>, Vec<T>) {
    let mut sgd = Sgd::new(T::from_f64(0.05))
        .with_momentum(T::from_f64(0.9))
        .with_weight_decay(T::from_f64(1e-4));
    sgd.steps = 12345;
    let state: Vec<T> = (0..SPEC.parameter_len())
        .map(|i| T::from_f64(i as f64 / 64.0))
        .collect();
    let mut bytes = vec![0u8; model_len::<T>(&SPEC, OptimizerKind::Sgd)];
    let written = write_model(&SPEC, &params::<T>(), Some((&sgd, &state)), &mut bytes).unwrap();
    assert_eq!(written, bytes.len());
    (bytes, sgd, state)
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn crc32_table_matches_the_bitwise_definition() {
    // Bit-at-a-time CRC, written independently of the table.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 131 % 251) as u8).collect();
    assert_eq!(crc32(&data), bitwise(&data));
}

#[test]
fn round_trip_restores_network_parameters_and_optimizer_bitwise() {
    fn check<T: Scalar>() {
        let (bytes, sgd, state) = saved_with_sgd::<T>();
        let info = read_info(&bytes).unwrap();
        assert_eq!(info.scalar, ScalarKind::of::<T>());
        assert_eq!(info.layers, 3);
        assert_eq!(info.parameter_len, SPEC.parameter_len());
        assert_eq!(info.optimizer, OptimizerKind::Sgd);
        assert_eq!(info.total_len, bytes.len());
        let mut layers = [Layer::dense(1, 1, Activation::Relu); 5];
        let mut restored = vec![T::zero(); SPEC.parameter_len()];
        let spec = read_model(&bytes, &mut layers, &mut restored).unwrap();
        assert_eq!(spec, SPEC);
        assert_eq!(restored, params::<T>());
        let mut restored_state = vec![T::zero(); state.len()];
        assert_eq!(read_sgd(&bytes, &mut restored_state).unwrap(), sgd);
        assert_eq!(restored_state, state);
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn layout_length_matches_the_documented_format() {
    // Header 28; layers: 3 op counts, 3 linear ops of 9, leaky relu 10, tanh 2,
    // identity 2; parameters (3 + 1) * 4 + (4 + 1) * 2 + (2 + 1) * 2 = 32 f32; CRC 4.
    let expected = 28 + 3 + 3 * 9 + 10 + 2 + 2 + 32 * 4 + 4;
    assert_eq!(SPEC.parameter_len(), 32);
    assert_eq!(model_len::<f32>(&SPEC, OptimizerKind::None), expected);
    // SGD adds 4 hyperparameters, a flag, a step count and one buffer per parameter.
    assert_eq!(
        model_len::<f64>(&SPEC, OptimizerKind::Sgd),
        28 + 3 + 27 + 10 + 4 + (32 + 4 + 32) * 8 + 1 + 8 + 4
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let (bytes, _, state) = saved_with_sgd::<f32>();
    let original = params::<f32>();
    let mut layers = [Layer::dense(1, 1, Activation::Relu); 3];
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(read_info(&flipped), Err(PcError::CorruptModel { .. })),
            "bit {bit} accepted"
        );
        let mut out = original.clone();
        out[0] = 99.0; // a canary: a rejected read must leave the slice untouched
        let before = out.clone();
        assert!(read_model(&flipped, &mut layers, &mut out).is_err());
        assert_eq!(out, before, "bit {bit}: parameters written on error");
        let mut out_state = vec![7.0f32; state.len()];
        assert!(read_sgd(&flipped, &mut out_state).is_err());
        assert!(out_state.iter().all(|&v| v == 7.0));
    }
}

/// Re-seals `bytes` with a correct CRC, so the checks behind the CRC are exercised.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32(&bytes[..n - CRC_LEN]);
    bytes[n - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn malformed_models_with_valid_crc_are_rejected() {
    let (bytes, _, _) = saved_with_sgd::<f32>();
    let reject = |edit: &dyn Fn(&mut Vec<u8>), what: &str| {
        let mut b = bytes.clone();
        edit(&mut b);
        reseal(&mut b);
        assert!(
            matches!(read_info(&b), Err(PcError::CorruptModel { .. })),
            "{what} accepted"
        );
    };
    reject(&|b| b[0] = b'X', "magic");
    // Versions 1 and 2 (residual layers) are read; 3 is not.
    reject(&|b| b[4] = 3, "version");
    // This model has no residual layer, so its one encoding is version 1: the same bytes
    // labelled version 2 would be a second encoding of one model.
    reject(&|b| b[4] = 2, "version 2 without a residual layer");
    reject(&|b| b[6] = 2, "scalar size");
    reject(&|b| b[7] = 9, "loss");
    reject(&|b| b[8] -= 4, "total length");
    reject(&|b| b[12] = 5, "input width");
    reject(&|b| b[16] = 4, "layer count");
    reject(&|b| b[16] = 0, "zero layers");
    reject(&|b| b[20] = 27, "parameter count");
    reject(&|b| b[24] = 7, "optimizer");
    reject(&|b| b[26] = 1, "reserved");
    reject(&|b| b[28] = 0, "empty layer");
    reject(&|b| b[28] = 7, "too many ops");
    reject(&|b| b[29] = 9, "op tag");
    reject(&|b| b[30] = 0, "zero inputs");
    reject(&|b| b[39] = 9, "activation kind");
    // Leaky ReLU slope (8 bytes at 40) set to NaN.
    reject(
        &|b| b[40..48].copy_from_slice(&f64::NAN.to_le_bytes()),
        "NaN slope",
    );
    // Layer 2's linear inputs (after layer 1: 28 + 1 + 9 + 10 = 48, tag at 49).
    reject(&|b| b[50] = 5, "mismatched widths");
    // First parameter (layers end at 28 + 3 + 27 + 14 = 72) set to infinity.
    reject(
        &|b| b[72..76].copy_from_slice(&f32::INFINITY.to_le_bytes()),
        "infinite parameter",
    );
    let sgd_at = 72 + 32 * 4;
    reject(
        &|b| b[sgd_at..sgd_at + 4].copy_from_slice(&(-1.0f32).to_le_bytes()),
        "negative learning rate",
    );
    reject(&|b| b[sgd_at + 16] = 2, "Nesterov flag");
    reject(&|b| b.truncate(b.len() - 5), "truncated body");
    // Arbitrary short or empty inputs.
    for len in 0..bytes.len() {
        assert!(read_info(&bytes[..len]).is_err());
    }
}

#[test]
fn random_corruptions_behind_a_valid_crc_never_panic() {
    // Up to 4 random bytes changed, then re-sealed, so parsing goes past the CRC; a
    // model that still reads must describe a valid network with finite parameters.
    let (bytes, _, _) = saved_with_sgd::<f32>();
    let mut state = 0x2545_F491u32;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize % bound
    };
    let mut layers = [Layer::dense(1, 1, Activation::Relu); 4];
    let mut rejected = 0;
    for _ in 0..5000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next(4) {
            let at = next(b.len() - CRC_LEN);
            b[at] = next(256) as u8;
        }
        reseal(&mut b);
        match read_info(&b) {
            Ok(info) if info.layers <= layers.len() => {
                let mut out = vec![0.0f32; info.parameter_len];
                let spec = read_model(&b, &mut layers, &mut out).unwrap();
                assert!(spec.validate().is_ok());
                assert!(out.iter().all(|v| v.is_finite()));
            }
            Ok(_) => {}
            Err(error) => {
                // Without `conv`, an edit that makes a well-formed image op is the
                // build's limit, not corruption.
                let lacking_conv =
                    cfg!(not(feature = "conv")) && matches!(error, PcError::InvalidOp { .. });
                assert!(matches!(error, PcError::CorruptModel { .. }) || lacking_conv);
                rejected += 1;
            }
        }
    }
    // Most edits land in parameters and stay valid; the structural ones are caught.
    assert!(rejected > 0);
}

#[test]
fn wrong_buffers_are_errors_and_untouched() {
    let (bytes, _, _) = saved_with_sgd::<f32>();
    let mut few_layers = [Layer::dense(1, 1, Activation::Relu); 2];
    let mut out = vec![5.0f32; SPEC.parameter_len()];
    assert!(matches!(
        read_model(&bytes, &mut few_layers, &mut out),
        Err(PcError::BufferTooSmall { .. })
    ));
    assert!(out.iter().all(|&v| v == 5.0));
    let mut layers = [Layer::dense(1, 1, Activation::Relu); 3];
    let mut short = vec![5.0f32; 3];
    assert!(matches!(
        read_model(&bytes, &mut layers, &mut short),
        Err(PcError::LengthMismatch { .. })
    ));
    let mut as_f64 = vec![0.0f64; SPEC.parameter_len()];
    assert!(matches!(
        read_model(&bytes, &mut layers, &mut as_f64),
        Err(PcError::CorruptModel { .. })
    ));
    // A model without an optimizer has no SGD to read.
    let mut plain = vec![0u8; model_len::<f32>(&SPEC, OptimizerKind::None)];
    write_model(&SPEC, &params::<f32>(), None, &mut plain).unwrap();
    let mut state = vec![0.0f32; SPEC.parameter_len()];
    assert!(read_sgd(&plain, &mut state).is_err());
    // A longer buffer (a flash page) reads the same.
    let mut page = plain.clone();
    page.extend_from_slice(&[0xFF; 64]);
    assert_eq!(read_info(&page).unwrap().total_len, plain.len());
}

#[cfg(feature = "conv")]
#[test]
fn convolution_and_pooling_round_trip_and_reject_every_bit_flip() {
    let conv = Conv2d::new(ImageShape::new(1, 6, 6), 2, [3, 3]).with_padding([1, 1]);
    let max = Pool2d::new(ImageShape::new(2, 6, 6), [2, 2]);
    let avg = Pool2d::new(ImageShape::new(2, 3, 3), [2, 2]).with_stride([1, 1]);
    let layers = [
        Layer::from_ops(&[
            Op::Conv2d(conv),
            Op::Activation(Activation::Relu),
            Op::MaxPool2d(max),
        ])
        .unwrap(),
        Layer::from_ops(&[
            Op::AvgPool2d(avg),
            Op::Flatten,
            Op::Linear {
                inputs: 8,
                outputs: 3,
            },
        ])
        .unwrap(),
    ];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    spec.validate().unwrap();
    let params: Vec<f64> = (0..spec.parameter_len())
        .map(|i| (i as f64 - 20.0) / 9.0)
        .collect();
    let mut bytes = vec![0u8; model_len::<f64>(&spec, OptimizerKind::None)];
    // Header, 2 op counts, conv 1 + 40, relu 2, pools 2 x 29, flatten 1, linear 9,
    // parameters (2 * 9 + 2 + 3 * 8 + 3) f64, CRC.
    assert_eq!(
        bytes.len(),
        28 + 2 + 41 + 2 + 2 * 29 + 1 + 9 + (20 + 27) * 8 + 4
    );
    write_model(&spec, &params, None, &mut bytes).unwrap();
    let mut restored_layers = [Layer::dense(1, 1, Activation::Relu); 2];
    let mut restored = vec![0.0f64; params.len()];
    let restored_spec = read_model(&bytes, &mut restored_layers, &mut restored).unwrap();
    assert_eq!(restored_spec, spec);
    assert_eq!(restored, params);
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(read_info(&flipped).is_err(), "bit {bit} accepted");
    }
    // A zero stride behind a valid CRC (conv stride h at 28 + 1 + 1 + 6 * 4).
    let mut zero_stride = bytes.clone();
    zero_stride[54..58].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut zero_stride);
    assert!(matches!(
        read_info(&zero_stride),
        Err(PcError::CorruptModel { .. })
    ));
}

#[test]
fn writer_rejects_bad_inputs_without_writing() {
    let mut out = vec![0xAAu8; model_len::<f32>(&SPEC, OptimizerKind::None)];
    let mut bad = params::<f32>();
    bad[3] = f32::NAN;
    assert!(write_model(&SPEC, &bad, None, &mut out).is_err());
    let mut short = vec![0xAAu8; out.len() - 1];
    assert!(matches!(
        write_model(&SPEC, &params::<f32>(), None, &mut short),
        Err(PcError::BufferTooSmall { .. })
    ));
    let sgd = Sgd::new(-1.0f32);
    let state = vec![0.0f32; SPEC.parameter_len()];
    assert!(write_model(&SPEC, &params::<f32>(), Some((&sgd, &state)), &mut out).is_err());
    assert!(out.iter().all(|&b| b == 0xAA));
    assert!(short.iter().all(|&b| b == 0xAA));
}
