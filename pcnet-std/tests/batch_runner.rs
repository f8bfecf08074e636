//! The batch runner: bit-identical for any thread count, equal to pcnet-core's single call.
//! The thread-count tests run once per kernel family this machine has (`families`).

mod families;

use pcnet_core::{
    infer, Activation, Algorithm, Batch, Layer, Loss, NetworkSpec, PcError, Portable, Scalar,
    Settings, Sgd, Targets,
};
use pcnet_std::batch::{BatchRunner, Par, BLOCK_ROWS};
use pcnet_std::fast::Fast;

/// Small blocks keep the debug-build tests quick and give several blocks per batch.
const SMALL_BLOCK: usize = 16;

const LAYERS: [Layer; 3] = [
    Layer::dense(12, 20, Activation::Relu),
    Layer::dense(20, 16, Activation::Tanh),
    Layer::dense(16, 5, Activation::Identity),
];

fn values<T: Scalar>(len: usize, seed: u64, scale: f64) -> Vec<T> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            T::from_f64((((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) * scale)
        })
        .collect()
}

fn settings<T: Scalar>() -> [Settings<'static, T>; 4] {
    [
        Settings::exact(),
        Settings::fixed_pred(T::one(), 3),
        Settings::fixed_pred(T::from_f64(0.1), 20),
        Settings::strict(T::from_f64(0.1), 20),
    ]
}

fn bits<T: Scalar>(values: &[T]) -> Vec<u64> {
    values.iter().map(|&v| v.to_f64().to_bits()).collect()
}

/// Every thread count gives the same bits: loss, updates, outputs and reports.
fn same_bits_for_every_thread_count<T: Scalar>(loss: Loss)
where
    pcnet_std::fast::Fast: pcnet_std::batch::RunnerBackend<T>,
{
    // Blocks of 16 rows read the weights in place; of 32, from panels packed once per
    // call (on the pool's threads when there is a pool).
    for fast in families::families() {
        for block_rows in [SMALL_BLOCK, 2 * SMALL_BLOCK] {
            same_bits_with_blocks_of::<T>(fast, loss, block_rows);
        }
    }
}

fn same_bits_with_blocks_of<T: Scalar>(fast: Fast, loss: Loss, block_rows: usize)
where
    pcnet_std::fast::Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let spec = NetworkSpec::new(&LAYERS, loss);
    let rows = 3 * block_rows + 11; // four blocks, the last one short
    let params: Vec<T> = values(spec.parameter_len(), 1, 0.4);
    let inputs: Vec<T> = values(rows * 12, 2, 1.0);
    let classes: Vec<usize> = (0..rows).map(|r| (r * 7) % 5).collect();
    let target_values: Vec<T> = values(rows * 5, 3, 1.0);
    let targets = match loss {
        Loss::CrossEntropy => Targets::Classes(&classes),
        _ => Targets::Values(&target_values),
    };
    let batch = Batch::new(&inputs, targets);
    let runner_of = || {
        BatchRunner::<T>::with_backend(fast)
            .with_block_rows(block_rows)
            .unwrap()
    };
    for settings in settings::<T>() {
        let mut runner = runner_of();
        let seq = runner
            .run(Par::Seq, &spec, &params, batch, &settings)
            .unwrap();
        let expected = (
            seq.loss().to_f64().to_bits(),
            bits(seq.updates()),
            bits(seq.outputs()),
            seq.block_reports().to_vec(),
        );
        assert_eq!(seq.block_reports().len(), 4);
        for threads in [1, 2, 3, 8] {
            let mut fresh = runner_of();
            for runner in [&mut runner, &mut fresh] {
                let par = runner
                    .run(Par::Rayon(threads), &spec, &params, batch, &settings)
                    .unwrap();
                let got = (
                    par.loss().to_f64().to_bits(),
                    bits(par.updates()),
                    bits(par.outputs()),
                    par.block_reports().to_vec(),
                );
                assert!(
                    got == expected,
                    "{} {:?} with {threads} threads differs from one thread ({block_rows}-row blocks)",
                    fast.isa(),
                    settings.algorithm
                );
            }
        }
    }
}

#[test]
fn results_are_bit_identical_for_1_2_3_and_8_threads_f32() {
    same_bits_for_every_thread_count::<f32>(Loss::CrossEntropy);
}

#[test]
fn results_are_bit_identical_for_1_2_3_and_8_threads_f64() {
    same_bits_for_every_thread_count::<f64>(Loss::Mse);
}

/// Block-wise fast results equal pcnet-core's single portable call. Both compute every row's
/// relaxation with the same schedule; only summation orders differ (kernel blocking and
/// the block-wise sums over rows), a few rounding errors of f64 amplified by at most 20
/// iterations of a well-conditioned network: within 1e-12 of each array's largest value.
#[test]
fn block_results_equal_single_portable_call_to_1e_12_in_f64() {
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let spec = NetworkSpec::new(&LAYERS, loss);
        let rows = 2 * BLOCK_ROWS + 30; // the default block size
        let params: Vec<f64> = values(spec.parameter_len(), 4, 0.4);
        let inputs: Vec<f64> = values(rows * 12, 5, 1.0);
        let classes: Vec<usize> = (0..rows).map(|r| (r * 3) % 5).collect();
        let target_values: Vec<f64> = values(rows * 5, 6, 1.0);
        let targets = match loss {
            Loss::CrossEntropy => Targets::Classes(&classes),
            _ => Targets::Values(&target_values),
        };
        let batch = Batch::new(&inputs, targets);
        for settings in settings::<f64>() {
            let mut workspace = vec![0.0; spec.workspace_len(rows)];
            let mut updates = vec![0.0; spec.parameter_len()];
            let single = infer(
                &spec,
                &params,
                batch,
                &settings,
                &mut workspace,
                &mut updates,
            )
            .unwrap();
            let mut runner = BatchRunner::new();
            let blocked = runner
                .run(Par::Rayon(2), &spec, &params, batch, &settings)
                .unwrap();
            let close = |a: &[f64], b: &[f64], what: &str| {
                let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                for (index, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() <= 1e-12 * scale,
                        "{:?} {loss:?} {what}[{index}]: {x} vs {y}",
                        settings.algorithm
                    );
                }
            };
            for layer in 1..=spec.depth() {
                let range = spec.parameter_offset(layer)
                    ..spec
                        .parameter_offset(layer + 1)
                        .min(spec.parameter_len())
                        .max(spec.parameter_offset(layer) + 1);
                close(
                    &blocked.updates()[range.clone()],
                    &updates[range],
                    "updates",
                );
            }
            close(
                blocked.outputs(),
                single.feedforward(spec.depth()),
                "outputs",
            );
            assert!((blocked.loss() - single.loss()).abs() <= 1e-12 * single.loss().abs());
            if settings.algorithm == Algorithm::Strict {
                let (a, b) = (
                    blocked.report().energy.unwrap(),
                    single.report().energy.unwrap(),
                );
                assert!((a - b).abs() <= 1e-12 * b.abs());
            }
            assert_eq!(blocked.report().iterations, single.report().iterations);
        }
    }
}

#[test]
fn portable_backend_runner_matches_fast_runner_within_rounding() {
    let spec = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
    let params: Vec<f64> = values(spec.parameter_len(), 7, 0.4);
    let inputs: Vec<f64> = values(70 * 12, 8, 1.0);
    let classes: Vec<usize> = (0..70).map(|r| r % 5).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let settings = Settings::strict(0.1, 20);
    let mut fast = BatchRunner::new();
    let mut slow = BatchRunner::with_backend(Portable);
    let a = fast
        .run(Par::Seq, &spec, &params, batch, &settings)
        .unwrap();
    let b = slow
        .run(Par::Seq, &spec, &params, batch, &settings)
        .unwrap();
    assert!((a.loss() - b.loss()).abs() <= 1e-12 * b.loss());
    let scale = b.updates().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (x, y) in a.updates().iter().zip(b.updates()) {
        assert!((x - y).abs() <= 1e-12 * scale);
    }
}

#[test]
fn accuracy_counts_argmax_matches() {
    let layers = [Layer::dense(2, 2, Activation::Identity)];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    // Identity weights, zero bias: outputs equal inputs.
    let params = [1.0_f64, 0.0, 0.0, 1.0, 0.0, 0.0];
    let inputs = [1.0, 0.0, 0.0, 1.0, 2.0, 1.0];
    let classes = [0, 0, 0];
    let mut runner = BatchRunner::new();
    let outcome = runner
        .run(
            Par::Seq,
            &spec,
            &params,
            Batch::new(&inputs, Targets::Classes(&classes)),
            &Settings::exact(),
        )
        .unwrap();
    assert_eq!(outcome.correct(&classes), 2);
    assert_eq!(outcome.outputs(), &inputs);
}

#[test]
fn a_failed_learning_step_changes_nothing() {
    let spec = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
    let mut params: Vec<f32> = values(spec.parameter_len(), 9, 0.4);
    let before = params.clone();
    let mut inputs: Vec<f32> = values(100 * 12, 10, 1.0);
    inputs[80 * 12 + 3] = f32::NAN; // in the second block
    let classes: Vec<usize> = (0..100).map(|r| r % 5).collect();
    let mut sgd = Sgd::new(0.1);
    let mut state = vec![0.0; spec.parameter_len()];
    let mut runner = BatchRunner::new();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let error = runner
        .learn(
            Par::Rayon(2),
            &spec,
            &mut params,
            &mut sgd,
            &mut state,
            batch,
            &Settings::fixed_pred(0.1, 20),
        )
        .unwrap_err();
    assert!(
        matches!(error, PcError::NonFinite { what: "inputs", .. }),
        "{error:?}"
    );
    assert_eq!(bits(&params), bits(&before));
    assert!(matches!(
        BatchRunner::<f32>::new().with_block_rows(0),
        Err(PcError::InvalidHyperparameter {
            name: "block rows",
            ..
        })
    ));
    // Empty and ragged batches are errors too.
    assert_eq!(
        runner
            .run(
                Par::Seq,
                &spec,
                &params,
                Batch::new(&[], Targets::Classes(&[])),
                &Settings::exact()
            )
            .unwrap_err(),
        PcError::EmptyBatch
    );
    assert!(matches!(
        runner.run(
            Par::Seq,
            &spec,
            &params,
            Batch::new(&inputs[..13], Targets::Classes(&classes[..1])),
            &Settings::exact()
        ),
        Err(PcError::LengthMismatch { what: "inputs", .. })
    ));
    // A good step moves the parameters and the loss goes down over a few steps.
    inputs[80 * 12 + 3] = 0.5;
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let first = runner
        .learn(
            Par::Seq,
            &spec,
            &mut params,
            &mut sgd,
            &mut state,
            batch,
            &Settings::exact(),
        )
        .unwrap()
        .loss();
    for _ in 0..20 {
        runner
            .learn(
                Par::Rayon(2),
                &spec,
                &mut params,
                &mut sgd,
                &mut state,
                batch,
                &Settings::exact(),
            )
            .unwrap();
    }
    let last = runner
        .run(Par::Seq, &spec, &params, batch, &Settings::exact())
        .unwrap()
        .loss();
    assert!(last < first, "{last} >= {first}");
}

/// On the fast kernels too, a NaN or infinite parameter is named at its index: pcnet-core
/// proves the parameters finite from the forward pass of each block (a block of 4 rows
/// has far fewer activations than the network has parameters), which
/// holds only if the kernels form every product, zero inputs included. Inputs with zeros
/// and ReLU layers (zero activations) make `inf * 0` cases; one and several blocks.
fn non_finite_parameters_are_named<T: Scalar>()
where
    pcnet_std::fast::Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let layers = [
        Layer::dense(40, 30, Activation::Relu),
        Layer::dense(30, 20, Activation::Relu),
        Layer::dense(20, 5, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::Mse);
    let parameter_len = spec.parameter_len();
    let block_rows = 4;
    assert!(block_rows * (spec.activation_len() - spec.input_len()) < parameter_len);
    let params: Vec<T> = values(parameter_len, 1, 0.4);
    let mut runner = BatchRunner::<T>::new().with_block_rows(block_rows).unwrap();
    for rows in [1, block_rows + 3] {
        let mut inputs: Vec<T> = values(rows * 40, 2, 1.0);
        for input in inputs.iter_mut().step_by(3) {
            *input = T::zero();
        }
        let targets: Vec<T> = values(rows * 5, 3, 1.0);
        let batch = Batch::new(&inputs, Targets::Values(&targets));
        for settings in &settings::<T>() {
            assert!(runner
                .run(Par::Seq, &spec, &params, batch, settings)
                .is_ok());
            for index in 0..parameter_len {
                let bad = [T::nan(), T::infinity(), T::neg_infinity()][index % 3];
                let mut broken = params.clone();
                broken[index] = bad;
                let result = runner
                    .run(Par::Seq, &spec, &broken, batch, settings)
                    .map(|outcome| outcome.loss());
                assert_eq!(
                    result,
                    Err(PcError::NonFinite {
                        what: "parameters",
                        index
                    }),
                    "rows {rows}, {:?}, {bad} at {index}",
                    settings.algorithm
                );
            }
        }
    }
}

#[test]
fn non_finite_parameters_are_named_on_the_fast_kernels_f32() {
    non_finite_parameters_are_named::<f32>();
}

#[test]
fn non_finite_parameters_are_named_on_the_fast_kernels_f64() {
    non_finite_parameters_are_named::<f64>();
}

/// Code generic over `T: Scalar` alone (no `Fast: RunnerBackend<T>` bound) runs the fast
/// kernels of its concrete type: the same bits as the same call written for f32 / f64.
fn generic_loss<T: Scalar>(spec: &NetworkSpec<'_>, params: &[T], batch: Batch<'_, T>) -> T {
    let mut runner = BatchRunner::<T>::new();
    runner
        .run(
            Par::Seq,
            spec,
            params,
            batch,
            &Settings::strict(T::from_f64(0.1), 5),
        )
        .unwrap()
        .loss()
}

#[test]
fn code_generic_over_the_scalar_needs_no_backend_bound() {
    let spec = NetworkSpec::new(&LAYERS, Loss::CrossEntropy);
    let rows = 40;
    let params: Vec<f32> = values(spec.parameter_len(), 9, 0.4);
    let inputs: Vec<f32> = values(rows * 12, 10, 1.0);
    let classes: Vec<usize> = (0..rows).map(|r| r % 5).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let concrete = BatchRunner::<f32>::new()
        .run(Par::Seq, &spec, &params, batch, &Settings::strict(0.1, 5))
        .unwrap()
        .loss();
    assert_eq!(
        generic_loss(&spec, &params, batch).to_bits(),
        concrete.to_bits()
    );
}
