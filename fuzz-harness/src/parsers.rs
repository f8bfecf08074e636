//! Fuzz targets of the parsers: `reference_json` (Torch2PC reference cases,
//! [`pcnet_reference::parse_case`]), `idx` ([`pcnet_std::data::read_idx`], plain and
//! gzip) and `csv` ([`pcnet_std::data::read_csv`]).
//!
//! Invariants: no panic, no hang and no unbounded allocation on any input; a refusal is a
//! typed error that names the input; what a parser accepts is consistent (an IDX array
//! holds exactly the values its shape announces; a CSV data set has whole rows, finite
//! values and labels below its class count; a reference case has the lengths its network
//! and batch call for, and running a small one returns an outcome rather than panicking).

use super::input::Input;
use pcnet_core::{NetworkSpec, Scalar};
use pcnet_reference::{parse_case, CaseKind, Outcome};
use pcnet_std::data::{read_csv, read_idx, LabelColumn};
use pcnet_std::Error;
use std::io::Write;
use std::path::Path;

/// Runs the `reference_json` target on arbitrary bytes; panics when an invariant fails.
pub fn reference_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("fuzz-case.json");
    let case = match parse_case(file, &text) {
        Err(error) => {
            assert_eq!(error.file, file, "a case error names its file");
            assert!(!error.message.is_empty(), "a case error says what is wrong");
            return;
        }
        Ok(case) => case,
    };
    let dense = match &case.kind {
        CaseKind::Unsupported(reason) => {
            assert!(!reason.is_empty());
            return;
        }
        CaseKind::Dense(dense) | CaseKind::OpChain(dense) => dense,
    };
    let spec = NetworkSpec::new(&dense.layers, dense.loss).with_input_len(dense.input_len);
    let valid = spec.validate().is_ok();
    if valid {
        assert_eq!(
            dense.params.len(),
            spec.parameter_len(),
            "parameters for the network"
        );
        assert_eq!(
            dense.x.len(),
            dense.rows * dense.input_len,
            "inputs for the rows"
        );
        for range in &dense.update_ranges {
            assert!(
                range.end <= spec.parameter_len(),
                "an update range past the parameters"
            );
        }
    }
    // Run it when it is small (the parser bounds neither iterations nor, for op chains
    // with null expectations, the sizes of the intermediate images).
    let small = dense.n <= 64
        && dense.rows <= 64
        && (!valid || spec.workspace_len(dense.rows) <= 1 << 16)
        && spec.parameter_len() <= 1 << 16;
    if small {
        match case.run() {
            Outcome::Error { message } => assert!(!message.is_empty()),
            Outcome::Fail { field, .. } => assert!(!field.is_empty()),
            Outcome::Pass { worst } => assert!(worst <= pcnet_reference::RELATIVE_TOLERANCE),
            Outcome::Skip { reason } => assert!(!reason.is_empty()),
        }
    }
}

/// Runs the `idx` target on arbitrary bytes; panics when an invariant fails. The first
/// byte chooses whether the rest is read as it is or gzip-compressed first (so the
/// decompressing path parses meaningful content too).
pub fn idx(data: &[u8]) {
    let mut input = Input::new(data);
    let gzip = input.one_in(2);
    let body = input.rest();
    let bytes = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    } else {
        body.to_vec()
    };
    match read_idx(&bytes[..], "fuzz.idx") {
        Ok(array) => {
            let count = array
                .shape
                .iter()
                .try_fold(1usize, |count, &size| count.checked_mul(size))
                .expect("an accepted shape does not overflow");
            assert_eq!(array.values.len(), count, "values for the shape");
            assert!(!array.shape.is_empty());
            // The plain bytes are the header and the values.
            let plain = if gzip { body } else { &bytes[..] };
            assert_eq!(plain.len(), 4 + 4 * array.shape.len() + count);
            assert_eq!(&plain[4 + 4 * array.shape.len()..], &array.values[..]);
        }
        Err(error) => check_format_error(&error, "fuzz.idx"),
    }
}

/// Runs the `csv` target on arbitrary bytes; panics when an invariant fails. The first
/// bytes choose the label column, the scale and the scalar type.
pub fn csv(data: &[u8]) {
    let mut input = Input::new(data);
    let label = if input.one_in(2) {
        LabelColumn::First
    } else {
        LabelColumn::Last
    };
    let scale = if input.one_in(4) {
        input.special()
    } else {
        1.0 / 255.0
    };
    let single = input.one_in(2);
    let text = input.rest();
    if single {
        csv_as::<f32>(text, label, scale);
    } else {
        csv_as::<f64>(text, label, scale);
    }
}

fn csv_as<T: Scalar>(text: &[u8], label: LabelColumn, scale: f64) {
    match read_csv::<T>(text, "fuzz.csv", label, scale) {
        Ok(data) => {
            assert!(
                data.features() > 0 && !data.is_empty(),
                "an accepted data set has data"
            );
            assert_eq!(data.inputs().len(), data.len() * data.features());
            assert!(
                data.inputs().iter().all(|v| v.is_finite()),
                "non-finite feature accepted"
            );
            assert!(
                data.labels().iter().all(|&l| l < data.classes()),
                "label out of range"
            );
            assert_eq!(
                data.classes(),
                data.labels().iter().max().map_or(0, |m| m + 1)
            );
        }
        Err(error) => check_format_error(&error, "fuzz.csv"),
    }
}

fn check_format_error(error: &Error, name: &str) {
    match error {
        Error::Format { input, message } => {
            assert!(!message.is_empty(), "an error says what is wrong");
            // Errors of the parser name the input; the data set's own checks say "data set".
            assert!(
                input == name || input == "data set",
                "an error names `{input}`"
            );
        }
        other => panic!("{name}: unexpected error kind {other:?}"),
    }
}
