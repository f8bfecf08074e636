//! `pc-bench`: the command-line program of pc (`pc-bench --help` lists the commands).
//!
//! * `pc-bench reference DIR`: runs every Torch2PC reference case under DIR.
//! * `pc-bench reproduce [--quick] ...`: the paper's experiments and a report.
//! * `pc-bench speed ...`, `pc-bench peak`: timings of pc's fast paths.

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use pcnet_bench::reference::{find_cases, load_case, Outcome};
use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Reference { dir } => reference(dir),
        Command::Reproduce(args) => reproduce(&args.options()),
        Command::Speed(args) => speed_result("speed", pcnet_bench::speed::speed(&args.to_args())),
        Command::Peak(args) => speed_result("peak", pcnet_bench::speed::peak(&args.to_args())),
    }
}

/// Exit status of `speed` and `peak`: an error prints the message (status 2, as for a
/// usage error).
fn speed_result(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!(
                "pc-bench: {message}\n\nFor more information, try 'pc-bench {command} --help'."
            );
            ExitCode::from(2)
        }
    }
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

fn reproduce(options: &pcnet_bench::reproduce::Options) -> ExitCode {
    match pcnet_bench::reproduce::run(options) {
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
