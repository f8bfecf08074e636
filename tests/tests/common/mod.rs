//! What the property-test files share (each includes it with `mod common;`).

use proptest::test_runner::Config as ProptestConfig;

/// Proptest settings: `default_cases` scaled by `PROPTEST_CASES / 256` (proptest's own
/// default is 256), no regression files (the failing network is printed instead).
pub fn cases(default_cases: u32) -> ProptestConfig {
    let scale = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(1.0, |cases| cases / 256.0);
    ProptestConfig {
        cases: ((default_cases as f64 * scale).round() as u32).max(1),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}
