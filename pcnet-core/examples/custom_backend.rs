//! Plugging in a custom `Backend`: the matrix products are the only part of pcnet-core a
//! backend replaces (pcnet-std's SIMD `Fast` is one), so a backend is also the place to
//! observe them. This one counts the multiply-adds of every product and hands the work to
//! the portable kernels, then compares what Exact, FixedPred and Strict cost on the same
//! batch, and checks the results are the bits of the built-in `Portable` backend.
//!
//! ```text
//! cargo run -p pcnet-core --example custom_backend
//! ```

use core::cell::Cell;
use pcnet_core::kernels::portable;
use pcnet_core::{
    infer, infer_with, Activation, Backend, Batch, Layer, LinearDims, Loss, NetworkSpec, OpKey,
    PcError, Scalar, Settings, Targets,
};

/// Counts multiply-adds, by kind of product, and computes them with the portable loops.
#[derive(Default)]
struct CountingBackend {
    forward: Cell<u64>,
    backward_input: Cell<u64>,
    backward_parameters: Cell<u64>,
}

impl CountingBackend {
    fn add(counter: &Cell<u64>, dims: LinearDims) {
        counter.set(counter.get() + (dims.rows * dims.inputs * dims.outputs) as u64);
    }

    fn total(&self) -> u64 {
        self.forward.get() + self.backward_input.get() + self.backward_parameters.get()
    }
}

// The defaults of the convolution methods (portable loops) are kept: this network is dense.
impl<T: Scalar> Backend<T> for CountingBackend {
    fn linear_forward(
        &self,
        _key: OpKey,
        dims: LinearDims,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        Self::add(&self.forward, dims);
        portable::linear_forward(dims, input, weight, bias, output);
    }

    fn linear_backward_input(
        &self,
        _key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        Self::add(&self.backward_input, dims);
        portable::linear_backward_input(dims, grad_output, weight, grad_input);
    }

    fn linear_backward_parameters(
        &self,
        _key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        Self::add(&self.backward_parameters, dims);
        portable::linear_backward_parameters(dims, grad_output, input, grad_weight, grad_bias);
    }
}

const LAYERS: [Layer; 3] = [
    Layer::dense(64, 32, Activation::Relu),
    Layer::dense(32, 16, Activation::Relu),
    Layer::dense(16, 10, Activation::Identity),
];
const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
const ROWS: usize = 8;

fn main() -> Result<(), PcError> {
    let params: Vec<f64> = (0..SPEC.parameter_len())
        .map(|i| (((i * 2654435761) % 1000) as f64 / 1000.0 - 0.5) * 0.3)
        .collect();
    let inputs: Vec<f64> = (0..ROWS * 64)
        .map(|i| ((i * 37) % 17) as f64 / 17.0)
        .collect();
    let classes: Vec<usize> = (0..ROWS).map(|row| row % 10).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let mut workspace = vec![0.0; SPEC.workspace_len(ROWS)];
    let (mut counted, mut reference) = (
        vec![0.0; SPEC.parameter_len()],
        vec![0.0; SPEC.parameter_len()],
    );

    // One feedforward pass (rows x weights), the unit the costs are given in.
    let weights = 64 * 32 + 32 * 16 + 16 * 10;
    let feedforward = (ROWS * weights) as u64;
    let n = 20;
    println!("multiply-adds on a 64-32-16-10 network, {ROWS} rows (x one feedforward pass):");
    for settings in [
        Settings::exact(),
        Settings::fixed_pred(0.1, n),
        Settings::strict(0.1, n),
    ] {
        let backend = CountingBackend::default();
        let loss = infer_with(
            &backend,
            &SPEC,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut counted,
        )?
        .loss();
        let portable_loss = infer(
            &SPEC,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut reference,
        )?
        .loss();
        assert_eq!(
            counted, reference,
            "the counting backend computes Portable's bits"
        );
        assert_eq!(loss, portable_loss);
        println!(
            "  {:10} forward {:7}  input gradients {:7}  parameter gradients {:7}  total {:8} ({:.1}x)",
            settings.algorithm.name(),
            backend.forward.get(),
            backend.backward_input.get(),
            backend.backward_parameters.get(),
            backend.total(),
            backend.total() as f64 / feedforward as f64,
        );
        // Every algorithm runs the feedforward pass at least once, and one parameter-gradient
        // sweep: the same products, transposed.
        assert!(backend.forward.get() >= feedforward);
        assert_eq!(backend.backward_parameters.get(), feedforward);
    }
    Ok(())
}
