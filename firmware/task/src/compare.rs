//! Host check of a firmware run: trains the same task on the host and compares the loss
//! per epoch that the firmware printed (as `f32` bits) with the host's own.
//!
//! Usage: `compare LOG...` (each LOG is the captured output of one firmware run). Exits 0
//! when every log holds every epoch of both algorithms, each within
//! `LOSS_TOLERANCE` of the host, the device's own verdict line `PASS`, and a learned network.

use pc_firmware_task::{agrees, prepare, train, Buffers, EPOCHS, LEARNED_RATIO};
use pcnet_core::Algorithm;
use std::process::ExitCode;

fn host_losses(algorithm: Algorithm) -> [f32; EPOCHS] {
    let mut buffers = Box::new(Buffers::new());
    prepare(&mut buffers);
    let outcome = train(&mut buffers, algorithm, |_, _| {}).expect("host training failed");
    if std::env::var_os("COMPARE_VERBOSE").is_some() {
        println!("{} {:?}", algorithm.name(), outcome.losses);
    }
    outcome.losses
}

fn check(log: &str, text: &str, host: &[(Algorithm, [f32; EPOCHS])]) -> Result<usize, String> {
    let mut bitwise = 0;
    for (algorithm, losses) in host {
        for (epoch, &expected) in losses.iter().enumerate() {
            let prefix = format!("loss {} epoch={epoch} ", algorithm.name());
            let line = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .ok_or_else(|| format!("{log}: no line `{prefix}...`"))?;
            let bits = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bits=0x"))
                .ok_or_else(|| format!("{log}: no bits in `{line}`"))?;
            let device = f32::from_bits(
                u32::from_str_radix(bits, 16).map_err(|e| format!("{log}: `{line}`: {e}"))?,
            );
            if !agrees(device, expected) {
                return Err(format!(
                    "{log}: {} epoch {epoch}: device {device:e}, host {expected:e}",
                    algorithm.name()
                ));
            }
            bitwise += usize::from(device.to_bits() == expected.to_bits());
        }
    }
    if !text.lines().any(|l| l.trim() == "PASS") {
        return Err(format!("{log}: the firmware did not report PASS"));
    }
    Ok(bitwise)
}

fn main() -> ExitCode {
    let logs: Vec<String> = std::env::args().skip(1).collect();
    if logs.is_empty() {
        eprintln!("usage: compare LOG...");
        return ExitCode::from(2);
    }
    let host: Vec<(Algorithm, [f32; EPOCHS])> = [Algorithm::FixedPred, Algorithm::Strict]
        .into_iter()
        .map(|a| (a, host_losses(a)))
        .collect();
    let mut failed = 0;
    for (algorithm, losses) in &host {
        if losses[EPOCHS - 1] >= LEARNED_RATIO * losses[0] {
            eprintln!("{} did not learn on the host", algorithm.name());
            failed += 1;
        }
        println!(
            "host {}: first epoch loss {:.6}, last {:.6}",
            algorithm.name(),
            losses[0],
            losses[EPOCHS - 1]
        );
    }
    for log in &logs {
        let result = std::fs::read_to_string(log)
            .map_err(|e| format!("{log}: {e}"))
            .and_then(|text| check(log, &text, &host));
        match result {
            Ok(bitwise) => println!(
                "{log}: all {} epoch losses agree with the host ({bitwise} bitwise equal)",
                2 * EPOCHS
            ),
            Err(message) => {
                eprintln!("{message}");
                failed += 1;
            }
        }
    }
    let checks = logs.len() + host.len();
    println!("{} passed, {} failed", checks - failed, failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
