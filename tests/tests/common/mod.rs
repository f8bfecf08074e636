//! What the property-test files share (each includes it with `mod common;`).

use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// The seed of every property test unless `PROPTEST_RNG_SEED` says otherwise, so that a
/// commit that passes passes again (CI is a gate, not a lottery).
pub const DEFAULT_SEED: u64 = 20_221_128;

/// Proptest settings: `default_cases` scaled by `PROPTEST_CASES / 256` (proptest's own
/// default is 256), no regression files (the failing network is printed instead), and a
/// fixed seed: [`DEFAULT_SEED`], or `PROPTEST_RNG_SEED` (a number, or `random` for a fresh
/// seed each run, which is how to explore; proptest prints the seed of a failure).
pub fn cases(default_cases: u32) -> ProptestConfig {
    let scale = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(1.0, |cases| cases / 256.0);
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(seed) => RngSeed::Fixed(
            seed.parse()
                .unwrap_or_else(|_| panic!("PROPTEST_RNG_SEED={seed}: a u64 or `random`")),
        ),
        Err(_) => RngSeed::Fixed(DEFAULT_SEED),
    };
    ProptestConfig {
        cases: ((default_cases as f64 * scale).round() as u32).max(1),
        failure_persistence: None,
        max_shrink_iters: 2048,
        rng_seed,
        ..ProptestConfig::default()
    }
}
