//! Picks the memory map of the target, and runs the learning task on the host so the
//! firmware can compare its own loss curve with the host's (`host_losses.rs` in OUT_DIR).

use pc_firmware_task::pcnet_core::Algorithm;
use pc_firmware_task::{prepare, train, Buffers};
use std::{env, fs, path::PathBuf};

fn host_losses(algorithm: Algorithm) -> String {
    let mut buffers = Box::new(Buffers::new());
    prepare(&mut buffers);
    let outcome = train(&mut buffers, algorithm, |_, _| {}).expect("host training failed");
    let bits: Vec<String> = outcome
        .losses
        .iter()
        .map(|l| format!("0x{:08x}", l.to_bits()))
        .collect();
    bits.join(", ")
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let target = env::var("TARGET").unwrap();
    let memory = if target.starts_with("thumb") {
        Some("memory-arm.x")
    } else if target.starts_with("riscv") {
        Some("memory-riscv.x")
    } else {
        None
    };
    if let Some(memory) = memory {
        fs::copy(memory, out.join("memory.x")).unwrap();
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rerun-if-changed={memory}");
    }
    let expected = format!(
        "/// Host loss per epoch, FixedPred (`f32` bits).\n\
         const HOST_FIXED_PRED: [u32; EPOCHS] = [{}];\n\
         /// Host loss per epoch, Strict (`f32` bits).\n\
         const HOST_STRICT: [u32; EPOCHS] = [{}];\n",
        host_losses(Algorithm::FixedPred),
        host_losses(Algorithm::Strict)
    );
    fs::write(out.join("host_losses.rs"), expected).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
