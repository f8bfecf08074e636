//! Every bundled Torch2PC reference case (tests/data/torch2pc, format in FORMAT.md there)
//! passes: each expected array matches pcnet-core's f64 result to a relative tolerance of
//! 1e-9 (absolute 1e-12 near zero), the tolerance FORMAT.md states.

use pcnet_reference::{find_cases, load_case, Outcome, RELATIVE_TOLERANCE};
use std::path::Path;

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/torch2pc")
}

#[test]
fn every_dense_reference_case_passes() {
    let files = find_cases(&data_dir()).expect("the bundled cases are readable");
    let mut dense = 0;
    for file in &files {
        let case = load_case(file).unwrap_or_else(|e| panic!("{e}"));
        match case.run() {
            Outcome::Pass { worst } => {
                assert!(worst <= RELATIVE_TOLERANCE);
                // The conv/ cases are counted by torch2pc_conv.rs.
                if !file.components().any(|c| c.as_os_str() == "conv") {
                    dense += 1;
                }
            }
            // A skip (a case the parser cannot run) fails as well.
            other => panic!("{}: {other:?}", case.name),
        }
    }
    assert_eq!(dense, 12, "all 12 dense cases ran and passed");
}

#[test]
fn a_perturbed_case_fails_and_names_the_field() {
    // The comparison can fail: nudge one expected gradient entry by 1e-6 relative.
    let file = data_dir().join("v05_strict_mse_far_eta0.1_n20.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &mut json["expected"]["grad_weight"][1][0][0];
    let value = entry.as_f64().unwrap();
    *entry = serde_json::json!(value * (1.0 + 1e-6));
    let case = pcnet_reference::parse_case(&file, &json.to_string()).unwrap();
    match case.run() {
        Outcome::Fail { field, index, .. } => {
            assert_eq!(field, "expected.grad_weight[1]");
            assert_eq!(index, 0);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn malformed_cases_name_file_and_field() {
    let file = data_dir().join("v12_exact_mse_depth1_sigmoid.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["layers"][0]["weight"][0] = serde_json::json!([1.0]);
    let error = pcnet_reference::parse_case(&file, &json.to_string()).unwrap_err();
    assert!(error.field.starts_with("layers[0].weight"), "{error}");
    assert!(error
        .to_string()
        .contains("v12_exact_mse_depth1_sigmoid.json"));
    let error = pcnet_reference::parse_case(&file, "{not json").unwrap_err();
    assert!(error.message.contains("invalid JSON"));
    json["activation_typo"] = serde_json::json!(1);
    json["layers"][0]["activation"] = serde_json::json!("swish");
    let error = pcnet_reference::parse_case(&file, &json.to_string()).unwrap_err();
    assert_eq!(error.field, "layers[0].activation");
}
