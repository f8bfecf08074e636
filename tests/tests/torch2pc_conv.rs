//! Every bundled convolutional Torch2PC case (tests/data/torch2pc/conv, op-chain layers:
//! conv2d, max/avg pooling, flatten, linear, activations; format in FORMAT.md) passes:
//! each expected array, including every op's parameter gradient, matches pcnet-core's f64
//! result to a relative tolerance of 1e-9 (absolute 1e-12 near zero), FORMAT.md's tolerance.

use pcnet_reference::{find_cases, load_case, parse_case, CaseKind, Outcome, RELATIVE_TOLERANCE};
use std::path::{Path, PathBuf};

fn conv_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/torch2pc/conv")
}

#[test]
fn every_conv_reference_case_passes() {
    let files = find_cases(&conv_dir()).expect("the bundled conv cases are readable");
    let mut passed = 0;
    for file in &files {
        let case = load_case(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(case.kind, CaseKind::OpChain(_)),
            "{}: parsed as op-chain",
            case.name
        );
        match case.run() {
            Outcome::Pass { worst } => {
                assert!(worst <= RELATIVE_TOLERANCE);
                passed += 1;
            }
            other => panic!("{}: {other:?}", case.name),
        }
    }
    assert_eq!(passed, 6, "all 6 conv cases ran and passed");
}

/// The comparison covers the per-op gradients: nudging one conv weight gradient by 1e-6
/// relative fails the case and names the field.
#[test]
fn a_perturbed_conv_gradient_fails_and_is_named() {
    let file = conv_dir().join("v06_strict_ce_pool_then_relu_eta0.5_n3.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &mut json["expected"]["grads"][1][0]["weight"][0][0][0][0];
    let value = entry.as_f64().unwrap();
    assert!(value.abs() > 1e-6, "a gradient entry the signal reached");
    *entry = serde_json::json!(value * (1.0 + 1e-6));
    let case = parse_case(&file, &json.to_string()).unwrap();
    match case.run() {
        Outcome::Fail { field, index, .. } => {
            assert_eq!(field, "expected.grads[1][0].weight");
            assert_eq!(index, 0);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Shapes that do not chain are reported with the file and the op's field.
#[test]
fn malformed_conv_cases_name_the_field() {
    let file = conv_dir().join("v01_exact_mse_mnist_mini.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["layers"][1]["ops"][0]["in_channels"] = serde_json::json!(2);
    let error = parse_case(&file, &json.to_string()).unwrap_err();
    assert_eq!(error.field, "layers[1].ops[0].in_channels", "{error}");
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["layers"][1]["ops"][2] = serde_json::json!({"op": "dropout"});
    let error = parse_case(&file, &json.to_string()).unwrap_err();
    assert_eq!(error.field, "layers[1].ops[2].op", "{error}");
}
