//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the same
//! harness function the cargo-fuzz target calls, on stable: CI without nightly still checks
//! the seeds and every regression input. Also feeds each target a few thousand
//! pseudo-random byte strings, a cheap stand-in for fuzzing in an ordinary `cargo test`.

use pcnet_fuzz_harness::TARGETS;
use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `target` on `bytes`, and on a panic names the input.
fn run(name: &str, target: fn(&[u8]), label: &str, bytes: &[u8]) {
    if std::panic::catch_unwind(|| target(bytes)).is_err() {
        panic!(
            "fuzz target `{name}` failed on {label} ({} bytes: {bytes:02x?})",
            bytes.len()
        );
    }
}

#[test]
fn every_corpus_file_passes_its_target() {
    for &(name, target) in TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable corpus entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target `{name}` has no corpus files");
        for file in files {
            let bytes = std::fs::read(&file).expect("a readable corpus file");
            run(name, target, &file.display().to_string(), &bytes);
        }
    }
}

/// xorshift64*: a fixed stream of pseudo-random bytes, the same on every run.
fn pseudo_random_inputs(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..count).map(move |_| {
        let len = (next() % 512) as usize;
        (0..len).map(|_| (next() >> 56) as u8).collect()
    })
}

#[test]
fn every_target_survives_pseudo_random_bytes() {
    let count = std::env::var("PC_FUZZ_SMOKE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for (index, &(name, target)) in TARGETS.iter().enumerate() {
        for (case, bytes) in pseudo_random_inputs(0x5EED + index as u64, count).enumerate() {
            run(name, target, &format!("pseudo-random case {case}"), &bytes);
        }
    }
}

/// Replays one committed regression input.
fn regression(target: &str, file: &str) {
    let &(_, function) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let bytes = std::fs::read(corpus_dir(target).join(file)).expect("the regression file");
    function(&bytes);
}

/// `portable::linear_forward` with zero outputs and nonzero inputs panicked
/// (`chunks_exact_mut(0)`); found by `fast_kernels` on pseudo-random bytes.
#[test]
fn regression_portable_forward_with_zero_outputs() {
    regression("fast_kernels", "regression-portable-forward-zero-outputs");
}

/// A safe-step margin that is positive in f64 but 0 in f32 gave a safe step size of 0,
/// outside the documented `(0, 2)`; found by `network`.
#[test]
fn regression_safe_step_size_stays_positive_in_f32() {
    regression("network", "regression-safe-step-margin-underflow");
}
