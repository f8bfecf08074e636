//! `pc-bench reference DIR`: runs every Torch2PC reference case (`*.json`) under DIR
//! through [`pcnet_reference`] and prints one line per case (`PASS`, `FAIL` naming the
//! file and the first field out of tolerance, `SKIP` with the reason) and a count.

use crate::Error;
use pcnet_reference::{find_cases, load_case, Outcome};
use std::path::Path;

/// The count of a `reference` run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cases within tolerance.
    pub passed: usize,
    /// Cases out of tolerance, unreadable or failing to run.
    pub failed: usize,
    /// Cases the library cannot run, with a stated reason.
    pub skipped: usize,
}

/// Runs every case under `dir`, printing a line per case and the count.
///
/// ```
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/torch2pc");
/// let counts = pcnet_bench::reference::run(&dir).unwrap();
/// assert!(counts.passed > 0 && counts.failed == 0);
/// ```
///
/// # Errors
/// [`Error::Io`] when `dir` cannot be read, [`Error::Usage`] when it holds no case.
pub fn run(dir: &Path) -> Result<Counts, Error> {
    let files = find_cases(dir).map_err(Error::io(dir))?;
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "no *.json case found under {}",
            dir.display()
        )));
    }
    let mut counts = Counts::default();
    for file in &files {
        let shown = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let case = match load_case(file) {
            Ok(case) => case,
            Err(error) => {
                println!("{shown}  FAIL  {error}");
                counts.failed += 1;
                continue;
            }
        };
        match case.run() {
            Outcome::Pass { worst } => {
                println!("{}  PASS  max rel err {worst:.2e}", case.name);
                counts.passed += 1;
            }
            Outcome::Fail {
                worst,
                field,
                index,
                expected,
                actual,
            } => {
                println!(
                    "{}  FAIL  max rel err {worst:.2e} at {}: `{field}`[{index}] expected {expected:e}, got {actual:e}",
                    case.name,
                    file.display()
                );
                counts.failed += 1;
            }
            Outcome::Skip { reason } => {
                println!("{}  SKIP  {reason}", case.name);
                counts.skipped += 1;
            }
            Outcome::Error { message } => {
                println!("{}  FAIL  {}: {message}", case.name, file.display());
                counts.failed += 1;
            }
        }
    }
    if counts.skipped > 0 {
        println!(
            "{} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.skipped
        );
    } else {
        println!("{} passed, {} failed", counts.passed, counts.failed);
    }
    Ok(counts)
}
