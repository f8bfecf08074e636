//! Fuzz target `model_bytes`: the model-bytes reader ([`pcnet_core::model_bytes`]) on
//! arbitrary bytes, on arbitrary bytes with a correct CRC (so the checks behind the CRC
//! are reached), and on valid models written from decoded networks and then damaged.
//!
//! Invariants:
//!
//! 1. no reader panics, whatever the bytes and buffer sizes;
//! 2. a reader that fails has written nothing into the caller's layer, parameter or
//!    state slices (they are filled with canaries and compared bit for bit);
//! 3. what a reader accepts is a usable model: its network validates, its parameters and
//!    optimizer state are finite, [`read_model`] and [`read_sgd`] agree with
//!    [`read_info`], and writing it again gives back exactly the bytes read (the encoding
//!    is canonical, so nothing is silently reinterpreted);
//! 4. a model written by [`write_model`] reads back equal, and flipping any one bit of it
//!    makes every reader fail;
//! 5. [`write_model`] refuses what it cannot store (a non-finite parameter, an op without
//!    an encoding, a buffer too short) and then writes nothing.

use super::input::Input;
use super::network::decode_network;
use pcnet_core::model_bytes::{
    crc32, model_len, read_info, read_model, read_sgd, write_model, ModelInfo, OptimizerKind,
    ScalarKind, CRC_LEN, HEADER_LEN,
};
use pcnet_core::{Activation, Layer, NetworkSpec, Optimizer, PcError, Scalar, Sgd};

/// A layer no reader produces by accident, as a canary.
const CANARY_LAYER: Layer = Layer::dense(977, 13, Activation::Softplus);
/// A parameter canary.
const CANARY: f64 = -8765.4321;

fn bits<T: Scalar>(values: &[T]) -> Vec<u64> {
    values
        .iter()
        .map(|&v| Scalar::to_f64(v).to_bits())
        .collect()
}

/// Runs the `model_bytes` target on arbitrary bytes; panics when an invariant fails.
pub fn model_bytes(data: &[u8]) {
    let mut input = Input::new(data);
    match input.below(4) {
        0 => read_everything(input.rest(), &mut input.clone()),
        1 => {
            let mut bytes = input.rest().to_vec();
            fix_crc(&mut bytes);
            read_everything(&bytes, &mut input)
        }
        2 => round_trip::<f32>(&mut input),
        _ => round_trip::<f64>(&mut input),
    }
}

/// Writes the CRC the header's total length calls for (when the bytes are long enough),
/// so that a mutated model gets past the CRC check to the checks behind it.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return;
    }
    let total = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let total = if (HEADER_LEN + CRC_LEN..=bytes.len()).contains(&total) {
        total
    } else {
        let total = bytes.len();
        bytes[8..12].copy_from_slice(&(total as u32).to_le_bytes());
        total
    };
    let crc = crc32(&bytes[..total - CRC_LEN]);
    bytes[total - CRC_LEN..total].copy_from_slice(&crc.to_le_bytes());
}

/// Every reader, with buffers of sizes from `sizes`, on `bytes`.
fn read_everything(bytes: &[u8], sizes: &mut Input<'_>) {
    let info = read_info(bytes);
    if let Err(error) = &info {
        assert!(
            matches!(error, PcError::CorruptModel { .. }),
            "read_info: {error:?}"
        );
    }
    read_as::<f32>(bytes, &info, sizes);
    read_as::<f64>(bytes, &info, sizes);
}

fn read_as<T: Scalar>(bytes: &[u8], info: &Result<ModelInfo, PcError>, sizes: &mut Input<'_>) {
    // Buffers: the right size most of the time, else a little off.
    let (want_layers, want_parameters) = match info {
        Ok(info) => (info.layers, info.parameter_len),
        Err(_) => (sizes.below(5), sizes.below(40)),
    };
    let mut layers = vec![CANARY_LAYER; want_layers.saturating_add_signed(sizes.delta()).min(64)];
    let mut parameters = vec![
        T::from_f64(CANARY);
        want_parameters
            .saturating_add_signed(sizes.delta())
            .min(1 << 16)
    ];
    let same_kind = matches!(info, Ok(info) if info.scalar == ScalarKind::of::<T>());
    let result = read_model(bytes, &mut layers, &mut parameters);
    match result {
        Err(error) => {
            if let Ok(info) = info {
                // A valid model fails only for the reader's own reasons.
                assert!(
                    !same_kind
                        || layers.len() < info.layers
                        || parameters.len() != info.parameter_len,
                    "read_model refused a model read_info accepts: {error:?}"
                );
            }
            assert!(
                layers.iter().all(|l| *l == CANARY_LAYER),
                "a failed read_model wrote layers"
            );
            assert!(
                parameters.iter().all(|p| Scalar::to_f64(*p).to_bits()
                    == Scalar::to_f64(T::from_f64(CANARY)).to_bits()),
                "a failed read_model wrote parameters"
            );
        }
        Ok(spec) => {
            let info = info
                .as_ref()
                .expect("read_model accepted a model read_info refuses");
            assert!(
                same_kind,
                "read_model accepted a model of the other scalar type"
            );
            assert_eq!(spec.depth(), info.layers);
            assert_eq!(spec.input_len(), info.input_len);
            assert_eq!(spec.loss(), info.loss);
            assert_eq!(spec.parameter_len(), info.parameter_len);
            spec.check_parameters(&parameters)
                .expect("an accepted model has a valid network and finite parameters");
            let spec_layers = spec.layers().to_vec();
            let spec = NetworkSpec::new(&spec_layers, info.loss).with_input_len(info.input_len);
            check_state_and_rewrite(bytes, info, &spec, &parameters, sizes);
        }
    }
}

/// For an accepted model: the optimizer reads back and the model re-encodes to the same bytes.
fn check_state_and_rewrite<T: Scalar>(
    bytes: &[u8],
    info: &ModelInfo,
    spec: &NetworkSpec<'_>,
    parameters: &[T],
    sizes: &mut Input<'_>,
) {
    let state_len = <Sgd<T> as Optimizer<T>>::state_len(info.parameter_len);
    let mut state = vec![T::from_f64(CANARY); state_len.saturating_add_signed(sizes.delta())];
    let sgd = read_sgd(bytes, &mut state);
    let original = &bytes[..info.total_len];
    let mut rewritten = vec![0u8; info.total_len];
    match (info.optimizer, sgd) {
        (OptimizerKind::Sgd, Ok(sgd)) => {
            sgd.validate().expect("an accepted optimizer is valid");
            assert!(
                state.iter().all(|s| s.is_finite()),
                "non-finite optimizer state accepted"
            );
            let written = write_model(spec, parameters, Some((&sgd, &state)), &mut rewritten)
                .expect("an accepted model can be written again");
            assert_eq!(written, info.total_len);
            assert_same_encoding(original, &rewritten);
        }
        (kind, Err(error)) => {
            assert!(
                kind == OptimizerKind::None || state.len() != state_len,
                "read_sgd refused an accepted SGD model: {error:?}"
            );
            assert!(
                state.iter().all(|s| Scalar::to_f64(*s).to_bits()
                    == Scalar::to_f64(T::from_f64(CANARY)).to_bits()),
                "a failed read_sgd wrote state"
            );
            if kind == OptimizerKind::None {
                let written = write_model(spec, parameters, None, &mut rewritten)
                    .expect("an accepted model can be written again");
                assert_eq!(written, info.total_len);
                assert_same_encoding(original, &rewritten);
            }
        }
        (OptimizerKind::None, Ok(_)) => panic!("read_sgd found SGD in a model without one"),
    }
}

/// Panics, naming the first byte that differs, unless `rewritten` is `original`.
fn assert_same_encoding(original: &[u8], rewritten: &[u8]) {
    if let Some(at) = original.iter().zip(rewritten).position(|(a, b)| a != b) {
        let end = (at + 8).min(original.len());
        panic!(
            "the model does not re-encode to the bytes read: byte {at} of {} differs \
             (read {:02x?}, written {:02x?})",
            original.len(),
            &original[at..end],
            &rewritten[at..end]
        );
    }
}

/// A model written from a decoded network, read back, then damaged.
fn round_trip<T: Scalar>(input: &mut Input<'_>) {
    let net = decode_network(input);
    let spec = NetworkSpec::new(&net.layers, net.loss).with_input_len(net.input_len);
    let wild = input.one_in(4);
    let parameters: Vec<T> = (0..net.parameter_len)
        .map(|_| T::from_f64(if wild { input.special() } else { input.tame() }))
        .collect();
    let with_sgd = input.one_in(2);
    let mut sgd = Sgd::new(T::from_f64(f64::from(input.byte()) / 256.0))
        .with_momentum(T::from_f64(if input.one_in(2) { 0.9 } else { 0.0 }));
    sgd.steps = input.u64();
    let state: Vec<T> = (0..net.parameter_len)
        .map(|_| T::from_f64(if wild { input.special() } else { input.tame() }))
        .collect();
    let kind = if with_sgd {
        OptimizerKind::Sgd
    } else {
        OptimizerKind::None
    };
    // Every op kind of pcnet-core has an encoding today; `model_len` says `usize::MAX` for
    // one that has none, and then `write_model` must refuse.
    let len = model_len::<T>(&spec, kind);
    let encodable = len != usize::MAX;
    let buffer_len = if encodable {
        len.saturating_add_signed(input.delta())
    } else {
        64
    };
    let mut buffer = vec![0xA5u8; buffer_len + input.below(3)];
    let optimizer = if with_sgd {
        Some((&sgd, &state[..]))
    } else {
        None
    };
    let should_work = net.defects.is_empty()
        && encodable
        && buffer.len() >= len
        && parameters.iter().all(|p| p.is_finite())
        && (!with_sgd || state.iter().all(|s| s.is_finite()));
    match write_model(&spec, &parameters, optimizer, &mut buffer) {
        Err(error) => {
            assert!(
                !should_work,
                "write_model refused a storable model: {error:?}"
            );
            assert!(
                buffer.iter().all(|&b| b == 0xA5),
                "a failed write_model wrote bytes"
            );
        }
        Ok(written) => {
            assert!(should_work, "write_model stored a model it should refuse");
            assert_eq!(written, len);
            assert!(
                buffer[len..].iter().all(|&b| b == 0xA5),
                "write_model wrote past the model"
            );
            let info = read_info(&buffer).expect("a written model reads");
            assert_eq!(info.total_len, len);
            let mut layers = vec![CANARY_LAYER; net.layers.len()];
            let mut restored = vec![T::zero(); parameters.len()];
            let read =
                read_model(&buffer, &mut layers, &mut restored).expect("a written model reads");
            assert_eq!(read, spec, "the network reads back different");
            assert_eq!(
                bits(&restored),
                bits(&parameters),
                "the parameters read back different"
            );
            if with_sgd {
                let mut restored_state = vec![T::zero(); state.len()];
                let read_sgd =
                    read_sgd(&buffer, &mut restored_state).expect("a written optimizer reads");
                assert_eq!(read_sgd, sgd, "the optimizer reads back different");
                assert_eq!(bits(&restored_state), bits(&state));
            }
            // One flipped bit anywhere in the model: every reader refuses it.
            let bit = (input.u32() as usize) % (8 * len);
            buffer[bit / 8] ^= 1 << (bit % 8);
            assert!(
                read_info(&buffer).is_err(),
                "a model with bit {bit} flipped was accepted"
            );
            let mut layers = vec![CANARY_LAYER; net.layers.len()];
            let mut restored = vec![T::from_f64(CANARY); parameters.len()];
            assert!(read_model(&buffer, &mut layers, &mut restored).is_err());
            assert!(layers.iter().all(|l| *l == CANARY_LAYER));
            // And arbitrary further damage behaves like any other bytes.
            for _ in 0..input.below(4) {
                let at = (input.u32() as usize) % buffer.len();
                buffer[at] = input.byte();
            }
            if input.one_in(2) {
                fix_crc(&mut buffer);
            }
            read_everything(&buffer, input);
        }
    }
}
