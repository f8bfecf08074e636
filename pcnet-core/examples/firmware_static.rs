//! Firmware-style learning: every buffer a fixed-size array sized by pcnet-core's `const fn`s,
//! no allocator, no std in the learning code, exactly what a microcontroller runs (see
//! `firmware/` for the same on a Cortex-M4F and a RISC-V core under QEMU).
//!
//! The task: fit `y = sin(pi x)` on 16 points of `[-1, 1]` with a 1-8-1 tanh network trained
//! by strict predictive coding and SGD with momentum, then store the model as model bytes
//! (what firmware writes to flash) and read it back. Uses only what the `strict` feature
//! builds (tanh, MSE, Strict, SGD), so it also runs with
//! `--no-default-features --features strict`.
//!
//! ```text
//! cargo run -p pcnet-core --example firmware_static
//! ```

use pcnet_core::model_bytes::{model_len, read_model, write_model, OptimizerKind};
use pcnet_core::{
    forward, Activation, Batch, Layer, Learner, Loss, NetworkSpec, PcError, Settings, Sgd, Targets,
};

const LAYERS: [Layer; 2] = [
    Layer::dense(1, 8, Activation::Tanh),
    Layer::dense(8, 1, Activation::Identity),
];
const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
const ROWS: usize = 16;
const PARAMETERS: usize = SPEC.parameter_len();
/// The bytes of the model alone (no optimizer state): a compile-time constant too.
const MODEL_BYTES: usize = model_len::<f32>(&SPEC, OptimizerKind::None);

/// Everything the learning step touches. On a microcontroller this is one `static`; here it
/// lives on `main`'s stack, which is the same thing to pcnet-core: caller-owned memory.
struct Buffers {
    parameters: [f32; PARAMETERS],
    momentum: [f32; PARAMETERS],
    workspace: [f32; SPEC.workspace_len(ROWS)],
    updates: [f32; PARAMETERS],
    forward_workspace: [f32; SPEC.forward_workspace_len(ROWS)],
    outputs: [f32; ROWS],
    model: [u8; MODEL_BYTES],
}

fn main() -> Result<(), PcError> {
    let mut buffers = Buffers {
        parameters: [0.0; PARAMETERS],
        momentum: [0.0; PARAMETERS],
        workspace: [0.0; SPEC.workspace_len(ROWS)],
        updates: [0.0; PARAMETERS],
        forward_workspace: [0.0; SPEC.forward_workspace_len(ROWS)],
        outputs: [0.0; ROWS],
        model: [0; MODEL_BYTES],
    };
    // A fixed, spread-out initialisation (firmware has no random source it can trust).
    for (i, p) in buffers.parameters.iter_mut().enumerate() {
        *p = (((i * 7919) % 23) as f32 - 11.0) / 12.0;
    }
    let mut inputs = [0.0_f32; ROWS];
    let mut targets = [0.0_f32; ROWS];
    for (i, (x, y)) in inputs.iter_mut().zip(&mut targets).enumerate() {
        *x = -1.0 + 2.0 * i as f32 / (ROWS - 1) as f32;
        *y = (core::f32::consts::PI * *x).sin();
    }
    let batch = Batch::new(&inputs, Targets::Values(&targets));
    let settings = Settings::strict(0.2, 20);
    let mut learner = Learner::new(
        SPEC,
        &mut buffers.parameters,
        Sgd::new(0.1).with_momentum(0.9),
        &mut buffers.momentum,
    )?;
    let mut first_loss = None;
    let mut loss = f32::NAN;
    for step in 0..400 {
        loss = learner
            .step(
                batch,
                &settings,
                &mut buffers.workspace,
                &mut buffers.updates,
            )?
            .loss();
        first_loss.get_or_insert(loss);
        if step % 100 == 0 {
            println!("step {step:3}: loss {loss:.5}");
        }
    }
    let first_loss = first_loss.unwrap_or(f32::NAN);
    println!("step 399: loss {loss:.5} (from {first_loss:.5})");
    assert!(loss < first_loss / 10.0, "Strict PC learned the curve");

    // Store the model as flash would hold it, read it back, and check its predictions.
    let written = write_model(&SPEC, &buffers.parameters, None, &mut buffers.model)?;
    let mut layers = [Layer::dense(1, 1, Activation::Identity); 2];
    let mut restored = [0.0_f32; PARAMETERS];
    let spec = read_model(&buffers.model[..written], &mut layers, &mut restored)?;
    assert_eq!(
        restored, buffers.parameters,
        "model bytes round-trip exactly"
    );
    forward(
        &spec,
        &restored,
        &inputs,
        &mut buffers.forward_workspace,
        &mut buffers.outputs,
    )?;
    let mse = buffers
        .outputs
        .iter()
        .zip(&targets)
        .map(|(y, t)| (y - t) * (y - t))
        .sum::<f32>()
        / ROWS as f32;
    println!("{written} model bytes; restored network's MSE {mse:.5}");
    Ok(())
}
