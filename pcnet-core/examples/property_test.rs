//! Writing a property test with `pcnet_core::strategies` (feature `proptest-support`):
//! proptest draws random networks (depth, widths, activations, loss, batch, parameters,
//! inputs, targets), checks a statement on each, and on a failure shrinks the network to a
//! small case whose `Debug` output rebuilds it with `RandomNetwork::from_parts`.
//!
//! The statement here: `forward` (inference alone) gives, bit for bit, the output layer of
//! the feedforward pass that `infer` runs before its relaxation. In a crate of your own the
//! body of `main` goes into a `#[test]` under `tests/`, with
//! `pcnet-core = { version = "0.1", features = ["proptest-support"] }` and `proptest` in
//! `[dev-dependencies]`; here it runs as an example:
//!
//! ```text
//! cargo run -p pcnet-core --features proptest-support --example property_test
//! ```

use pcnet_core::strategies::{cnns, networks, NetworkConfig, RandomNetwork};
use pcnet_core::{forward, infer, Settings};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The property: `forward`'s outputs are `infer`'s feedforward output layer.
fn forward_is_the_feedforward_of_infer(net: &RandomNetwork) -> Result<(), TestCaseError> {
    let spec = net.spec();
    let mut workspace = vec![0.0; spec.workspace_len(net.rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    let inference = infer(
        &spec,
        &net.params,
        net.batch(),
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    );
    let inference = match inference {
        Ok(inference) => inference,
        // A drawn network may overflow (large weights, deep): then there is no output to compare.
        Err(error) => return Err(TestCaseError::reject(format!("infer failed: {error}"))),
    };
    let relaxed_output = inference.feedforward(spec.depth());
    let mut forward_workspace = vec![0.0; spec.forward_workspace_len(net.rows)];
    let mut outputs = vec![0.0; net.rows * spec.output_len()];
    forward(
        &spec,
        &net.params,
        &net.inputs,
        &mut forward_workspace,
        &mut outputs,
    )
    .map_err(|error| TestCaseError::fail(format!("forward failed where infer did not: {error}")))?;
    prop_assert_eq!(&outputs[..], relaxed_output);
    Ok(())
}

/// `cases` cases; no failure file (an example has no source directory for one to go with).
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn main() {
    let mut runner = self::runner(200);
    let dense = NetworkConfig::default().with_depth(1..=5);
    match runner.run(&networks(dense), |net| {
        forward_is_the_feedforward_of_infer(&net)
    }) {
        Ok(()) => println!("forward = infer's feedforward output on 200 random dense networks"),
        Err(failure) => panic!("the property failed: {failure}"),
    }
    let mut runner = self::runner(50);
    match runner.run(&cnns(), |net| forward_is_the_feedforward_of_infer(&net)) {
        Ok(()) => println!("forward = infer's feedforward output on 50 random CNNs"),
        Err(failure) => panic!("the property failed: {failure}"),
    }
}
