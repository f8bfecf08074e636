//! The kernel families a test runs on, shared by the integration tests (`mod families;`).
//!
//! Without `PC_ISA`, every family of [`Isa::ALL`] this machine runs, and each one it lacks
//! reported on standard error as skipped, by name (written to the process's stderr
//! directly, so libtest's capture does not hide it). With `PC_ISA` set (how
//! scripts/test.d/45-isa.sh runs the suite once per family), that family only; a value
//! naming no family or one this machine lacks fails the test instead of passing it on
//! another family.

use pcnet_std::fast::{Fast, Isa};
use std::io::Write;

/// The families to test, as [`Fast`] values.
pub fn families() -> Vec<Fast> {
    if std::env::var_os("PC_ISA").is_some() {
        let fast = Fast::new().unwrap_or_else(|error| panic!("PC_ISA: {error}"));
        return vec![fast];
    }
    let mut stderr = std::io::stderr();
    Isa::ALL
        .into_iter()
        .filter_map(|isa| match Fast::with_isa(isa) {
            Ok(fast) => Some(fast),
            Err(error) => {
                // Best effort: a closed stderr must not fail the test.
                let _ = writeln!(stderr, "kernel family {isa}: skipped ({error})");
                None
            }
        })
        .collect()
}
