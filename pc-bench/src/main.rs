//! `pc-bench`: the command-line program of pc.
//!
//! * `pc-bench reference DIR`: runs every Torch2PC reference case under DIR.

use pc_bench::reference::{find_cases, load_case, Outcome};
use std::{path::PathBuf, process::ExitCode};

const USAGE: &str = "usage: pc-bench <command> [args]

commands:
  reference DIR   run every Torch2PC reference case (*.json) under DIR, recursively,
                  in f64; prints PASS/FAIL/SKIP per case and `N passed, M failed`";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("reference") => match args.get(1) {
            Some(dir) if args.len() == 2 => reference(PathBuf::from(dir)),
            _ => usage_error("reference takes exactly one directory"),
        },
        Some("reproduce") => reproduce(&args[1..]),
        Some("speed") => speed_result(pc_bench::speed::speed(&args[1..])),
        Some("peak") => speed_result(pc_bench::speed::peak(&args[1..])),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}\n  {}", pc_bench::reproduce::USAGE);
            println!("{}", pc_bench::speed::USAGE);
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown command `{other}`")),
        None => usage_error("no command given"),
    }
}

/// Exit status of `speed` and `peak`: a usage error prints the message and the usage.
fn speed_result(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pc-bench: {message}\n\n{}", pc_bench::speed::USAGE);
            ExitCode::from(2)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!(
        "pc-bench: {message}\n\n{USAGE}\n  {}",
        pc_bench::reproduce::USAGE
    );
    ExitCode::from(2)
}

fn reference(dir: PathBuf) -> ExitCode {
    let files = match find_cases(&dir) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("pc-bench: cannot read {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if files.is_empty() {
        eprintln!("pc-bench: no *.json case found under {}", dir.display());
        return ExitCode::FAILURE;
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for file in &files {
        let shown = file
            .strip_prefix(&dir)
            .unwrap_or(file)
            .display()
            .to_string();
        let case = match load_case(file) {
            Ok(case) => case,
            Err(error) => {
                println!("{shown}  FAIL  {error}");
                failed += 1;
                continue;
            }
        };
        match case.run() {
            Outcome::Pass { worst } => {
                println!("{}  PASS  max rel err {worst:.2e}", case.name);
                passed += 1;
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
                failed += 1;
            }
            Outcome::Skip { reason } => {
                println!("{}  SKIP  {reason}", case.name);
                skipped += 1;
            }
            Outcome::Error { message } => {
                println!("{}  FAIL  {}: {message}", case.name, file.display());
                failed += 1;
            }
        }
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn reproduce(args: &[String]) -> ExitCode {
    let options = match pc_bench::reproduce::Options::parse(args) {
        Ok(options) => options,
        Err(message) => return usage_error(&format!("reproduce: {message}")),
    };
    match pc_bench::reproduce::run(&options) {
        Ok(summary) => {
            println!("{summary}");
            println!("wrote {}", options.out.join("report.md").display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("pc-bench reproduce: {message}");
            ExitCode::FAILURE
        }
    }
}
