//! `pc-bench`: the command-line program of pc (`pc-bench --help` lists the commands).
//!
//! * `pc-bench reference DIR`: runs every Torch2PC reference case under DIR.
//! * `pc-bench reproduce [--quick] ...`: the paper's experiments and a report.
//! * `pc-bench speed ...`, `pc-bench peak`: timings of pc's fast paths.
//! * `pc-bench depth`: plain vs conditioned Strict on deep linear residual networks.
//!
//! The arguments are parsed by clap (module `cli`); each command is a module of the
//! library, which returns a typed [`pcnet_bench::Error`]. A failing command prints
//! `pc-bench <command>: <message>` and exits with status 1 (2 for `speed` and `peak`, as
//! for a usage error, which is what their failures mostly are).

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (command, status, result) = match Cli::parse().command {
        Command::Reference { dir } => match pcnet_bench::reference::run(&dir) {
            Ok(counts) if counts.failed > 0 => return ExitCode::FAILURE,
            other => ("reference", 1, other.map(|_| ())),
        },
        Command::Reproduce(args) => {
            let options = args.options();
            let result = pcnet_bench::reproduce::run(&options).map(|summary| {
                println!("{summary}");
                println!("wrote {}", options.out.join("report.md").display());
            });
            ("reproduce", 1, result)
        }
        Command::Speed(args) => {
            let result = args
                .config()
                .map_err(pcnet_bench::Error::Usage)
                .and_then(|config| pcnet_bench::speed::speed(&config));
            ("speed", 2, result)
        }
        Command::Depth(args) => {
            let result = pcnet_bench::depth::depth(&args.options())
                .map(|_| ())
                .map_err(pcnet_bench::Error::Depth);
            ("depth", 1, result)
        }
        Command::Peak(args) => (
            "peak",
            2,
            pcnet_bench::peak::peak(args.isa.as_deref(), args.json),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pc-bench {command}: {error}");
            ExitCode::from(status)
        }
    }
}
