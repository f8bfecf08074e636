//! The block runner behind `pc_kernels.infer` and `pc_kernels.torch.PCInfer`.
//!
//! It computes what [`pcnet_std::batch::BatchRunner::run`] computes, on the same
//! decomposition (row blocks of [`BLOCK_ROWS`] rows, each relaxed by
//! [`pcnet_core::infer_with`] on the [`Fast`] kernels with the weights packed once per call
//! by [`RunnerBackend::prepare`], each block's loss and `dLoss/dy` carrying the whole
//! batch's `1/B` through [`Batch::block_of`], the blocks' updates and losses added in
//! block order), so the loss and the parameter updates are the same bits as the batch
//! runner's, for any thread count. The batch runner returns the loss, the updates and the
//! outputs only; Torch2PC's `PCInfer` also returns every layer's feedforward values,
//! beliefs and errors, so this runner also copies those out of each block's workspace into
//! one caller-owned results buffer (laid out as [`Model::results_len`] says), on the
//! thread that ran the block while its values are in cache. Block 0 writes its parameter
//! updates straight into the caller's buffer, so a batch of one block copies no updates.

use crate::model::Model;
use pcnet_core::{infer_with, Batch, PcError, Report, Scalar, Settings, Targets};
use pcnet_std::batch::{Par, RunnerBackend, BLOCK_ROWS};
use pcnet_std::fast::{Fast, Scratch};
use rayon::prelude::*;

/// A cache line, in bytes.
const LINE: usize = 64;

/// The part of `buffer` from its first cache-line boundary on (a `T` is aligned to its
/// size, so the distance to the boundary is whole values).
fn line_aligned<T>(buffer: &mut [T]) -> &mut [T] {
    let size = core::mem::size_of::<T>();
    let offset = (LINE - buffer.as_ptr() as usize % LINE) % LINE / size;
    let start = offset.min(buffer.len());
    &mut buffer[start..]
}

/// Parameters per chunk when block updates are added on a pool (the order over blocks is
/// the same in every chunk, so the split changes no bit).
const REDUCE_CHUNK: usize = 1 << 14;

/// One call's inputs. `settings` carries no initial beliefs; Strict's starting beliefs,
/// if any, come in `initial_beliefs`.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a, T> {
    /// Flat parameters in pcnet-core's layout (PyTorch's arrays one after another).
    pub params: &'a [T],
    /// Inputs, rows x input width.
    pub inputs: &'a [T],
    /// Targets of the whole batch.
    pub targets: Targets<'a, T>,
    /// Algorithm, step size, iterations, input belief.
    pub settings: Settings<'a, T>,
    /// Strict only: beliefs `v_1..v_{L-1}` to start from, each rows x width, layer after
    /// layer (Torch2PC's `vinit` without its first and last entries).
    pub initial_beliefs: Option<&'a [T]>,
    /// Threads: 1 runs on the calling thread, 0 uses every available core.
    pub threads: usize,
}

/// What a call returns besides the buffers it filled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary<T> {
    /// The batch loss at the feedforward output.
    pub loss: T,
    /// The blocks' reports combined as [`pcnet_std::batch::BatchOutcome::report`] does.
    pub report: Report<T>,
}

/// One block's share of a call: its index, buffers, pieces of the results, and (block 0)
/// the caller's updates.
type BlockWork<'a, T> = (
    usize,
    ((&'a mut Block<T>, Vec<&'a mut [T]>), Option<&'a mut [T]>),
);

#[derive(Debug)]
struct Block<T> {
    scratch: Scratch,
    workspace: Vec<T>,
    updates: Vec<T>,
    beliefs: Vec<T>,
    loss: T,
    report: Option<Report<T>>,
    error: Option<PcError>,
}

/// Reusable buffers and thread pool for relaxations of one scalar type.
///
/// ```
/// use pcnet_core::{Activation, Loss, Settings, Targets};
/// use pcnet_py::model::{Model, OpDesc};
/// use pcnet_py::runner::{Request, Runner};
/// let model = Model::new(
///     &[vec![OpDesc::Linear { inputs: 2, outputs: 3 }, OpDesc::Activation(Activation::Tanh)],
///       vec![OpDesc::Linear { inputs: 3, outputs: 1 }]],
///     &[2],
///     Loss::Mse,
/// )?;
/// let params = vec![0.25_f64; model.spec().parameter_len()];
/// let request = Request {
///     params: &params,
///     inputs: &[1.0, -1.0, 0.5, 2.0],
///     targets: Targets::Values(&[0.5, -0.5]),
///     settings: Settings::fixed_pred(0.1, 20),
///     initial_beliefs: None,
///     threads: 1,
/// };
/// let mut results = vec![0.0; model.results_len(2)];
/// let mut updates = vec![0.0; params.len()];
/// let summary = Runner::new().run(&model, &request, &mut results, &mut updates).map_err(|e| e.to_string())?;
/// assert!(summary.loss > 0.0 && summary.report.iterations == 20);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug)]
pub struct Runner<T: Scalar>
where
    Fast: RunnerBackend<T>,
{
    cache: <Fast as RunnerBackend<T>>::Cache,
    blocks: Vec<Block<T>>,
    pool: Option<(usize, rayon::ThreadPool)>,
}

impl<T: Scalar> Default for Runner<T>
where
    Fast: RunnerBackend<T>,
{
    fn default() -> Self {
        Self::new()
    }
}

fn add_assign<T: Scalar>(target: &mut [T], source: &[T]) {
    for (t, &s) in target.iter_mut().zip(source) {
        *t = *t + s;
    }
}

/// A block's error with its indices made relative to the whole batch.
fn whole_batch_error(
    error: PcError,
    start: usize,
    input_width: usize,
    output_width: usize,
) -> PcError {
    match error {
        PcError::NonFinite {
            what: "inputs",
            index,
        } => PcError::NonFinite {
            what: "inputs",
            index: index + start * input_width,
        },
        PcError::NonFinite {
            what: "targets",
            index,
        } => PcError::NonFinite {
            what: "targets",
            index: index + start * output_width,
        },
        PcError::ClassOutOfRange {
            row,
            class,
            classes,
        } => PcError::ClassOutOfRange {
            row: row + start,
            class,
            classes,
        },
        other => other,
    }
}

impl<T: Scalar> Runner<T>
where
    Fast: RunnerBackend<T>,
{
    /// A runner with no buffers yet (they grow on first use and are reused after).
    pub fn new() -> Self {
        Runner {
            cache: Default::default(),
            blocks: Vec::new(),
            pool: None,
        }
    }

    fn ensure_pool(&mut self, threads: usize) -> Result<(), PcError> {
        if self.pool.as_ref().map(|(count, _)| *count) != Some(threads) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|_| PcError::InvalidSettings {
                    reason: "could not start the rayon thread pool",
                })?;
            self.pool = Some((threads, pool));
        }
        Ok(())
    }

    /// Runs one relaxation of the whole batch, fills `results` (length
    /// [`Model::results_len`]) and `updates` (length `parameter_len`), and returns the
    /// loss and the combined report.
    ///
    /// # Errors
    /// Every error of [`pcnet_core::infer_with`] (the first block's, with input, target
    /// and row indices counted in the whole batch), [`PcError::EmptyBatch`],
    /// [`PcError::LengthMismatch`] for buffers or initial beliefs of the wrong length, a
    /// non-finite sum of block updates, and [`PcError::InvalidSettings`] when a thread
    /// pool cannot start. The parameters and inputs are only read; after an error
    /// `results` and `updates` hold unspecified values.
    pub fn run(
        &mut self,
        model: &Model,
        request: &Request<'_, T>,
        results: &mut [T],
        updates: &mut [T],
    ) -> Result<Summary<T>, PcError> {
        let spec = model.spec();
        spec.validate()?;
        let depth = spec.depth();
        let widths = model.widths();
        let (input_width, output_width) = (widths[0], widths[depth]);
        let inputs = request.inputs;
        if inputs.is_empty() {
            return Err(PcError::EmptyBatch);
        }
        if !inputs.len().is_multiple_of(input_width) {
            return Err(PcError::LengthMismatch {
                what: "inputs",
                expected: (inputs.len() / input_width + 1) * input_width,
                given: inputs.len(),
            });
        }
        let rows = inputs.len() / input_width;
        request.targets.check(spec.loss(), rows, output_width)?;
        for (what, expected, given) in [
            ("parameters", spec.parameter_len(), request.params.len()),
            ("results", model.results_len(rows), results.len()),
            ("parameter updates", spec.parameter_len(), updates.len()),
        ] {
            if expected != given {
                return Err(PcError::LengthMismatch {
                    what,
                    expected,
                    given,
                });
            }
        }
        let hidden_widths = &widths[1..depth];
        if let Some(beliefs) = request.initial_beliefs {
            let expected = rows * hidden_widths.iter().sum::<usize>();
            if beliefs.len() != expected {
                return Err(PcError::LengthMismatch {
                    what: "initial beliefs",
                    expected,
                    given: beliefs.len(),
                });
            }
        }

        let block_rows = BLOCK_ROWS;
        let block_count = rows.div_ceil(block_rows);
        let prepared_rows = block_rows.min(rows);
        let workspace_len = spec.workspace_len(prepared_rows);
        if self.blocks.len() < block_count {
            self.blocks.resize_with(block_count, || Block {
                scratch: Scratch::default(),
                workspace: Vec::new(),
                updates: Vec::new(),
                beliefs: Vec::new(),
                loss: T::zero(),
                report: None,
                error: None,
            });
        }
        for (index, block) in self.blocks[..block_count].iter_mut().enumerate() {
            // On a cache-line boundary, as the batch runner's workspaces: every other
            // 32-byte vector access would straddle two lines otherwise.
            let slack = LINE / core::mem::size_of::<T>();
            if block.workspace.len() < workspace_len + slack {
                block.workspace.resize(workspace_len + slack, T::zero());
            }
            // Block 0 writes its updates into the caller's buffer.
            let updates_len = if index == 0 { 0 } else { spec.parameter_len() };
            block.updates.resize(updates_len, T::zero());
        }
        let requested = match request.threads {
            0 => Par::Rayon(0).threads(),
            threads => threads,
        };
        let threads = requested.min(block_count);
        if threads > 1 {
            self.ensure_pool(threads)?;
        }
        let pool = match &self.pool {
            Some((_, pool)) if threads > 1 => Some(pool),
            _ => None,
        };

        // The results buffer cut into each block's rows of every section.
        let sections = 3 * (depth + 1) + 1;
        let mut pieces: Vec<Vec<&mut [T]>> = (0..block_count)
            .map(|_| Vec::with_capacity(sections))
            .collect();
        let section_widths = widths
            .iter()
            .chain(&widths)
            .chain(&widths)
            .chain(core::iter::once(&output_width));
        let mut rest = results;
        for &width in section_widths {
            let (section, tail) = rest.split_at_mut(rows * width);
            rest = tail;
            let mut section = section;
            for (index, block_pieces) in pieces.iter_mut().enumerate() {
                let count = (rows - index * block_rows).min(block_rows);
                let (piece, tail) = section.split_at_mut(count * width);
                section = tail;
                block_pieces.push(piece);
            }
        }
        let mut update_targets: Vec<Option<&mut [T]>> = Vec::with_capacity(block_count);
        update_targets.push(Some(&mut *updates));
        update_targets.resize_with(block_count, || None);

        let settings = request.settings;
        let targets = request.targets;
        let initial_beliefs = request.initial_beliefs;
        let (cache, blocks) = (&mut self.cache, &mut self.blocks[..block_count]);
        // The process's kernel family (PC_ISA, else the best detected), chosen once.
        let fast = Fast::default();
        let backend = match pool {
            Some(pool) => pool.install(|| {
                fast.prepare(cache, &spec, request.params, &settings, prepared_rows, true)
            })?,
            None => fast.prepare(
                cache,
                &spec,
                request.params,
                &settings,
                prepared_rows,
                false,
            )?,
        };
        let backend = &backend;
        let spec = &spec;
        let run_block = |(index, ((block, outs), target)): BlockWork<'_, T>| {
            let start = index * block_rows;
            let count = (rows - start).min(block_rows);
            let batch = Batch::new(
                &inputs[start * input_width..(start + count) * input_width],
                targets.rows(start, count, output_width),
            )
            .block_of(rows);
            let Block {
                scratch,
                workspace,
                updates: own_updates,
                beliefs,
                loss,
                report,
                error,
            } = block;
            let settings = match initial_beliefs {
                Some(all) => {
                    beliefs.clear();
                    let mut offset = 0;
                    for &width in hidden_widths {
                        beliefs.extend_from_slice(
                            &all[offset + start * width..offset + (start + count) * width],
                        );
                        offset += rows * width;
                    }
                    settings.with_initial_beliefs(beliefs.as_slice())
                }
                None => settings,
            };
            let updates_out: &mut [T] = match target {
                Some(target) => target,
                None => own_updates.as_mut_slice(),
            };
            let outcome = scratch.lend(|| {
                infer_with(
                    backend,
                    spec,
                    request.params,
                    batch,
                    &settings,
                    line_aligned(workspace),
                    updates_out,
                )
            });
            match outcome {
                Ok(inference) => {
                    let mut outs = outs.into_iter();
                    for kind in 0..3 {
                        for l in 0..=depth {
                            let source = match kind {
                                0 => inference.feedforward(l),
                                1 => inference.beliefs(l),
                                _ => inference.errors(l),
                            };
                            if let Some(out) = outs.next() {
                                out.copy_from_slice(source);
                            }
                        }
                    }
                    if let Some(out) = outs.next() {
                        out.copy_from_slice(inference.output_gradient());
                    }
                    *loss = inference.loss();
                    *report = Some(inference.report());
                    *error = None;
                }
                Err(failure) => {
                    *report = None;
                    *error = Some(whole_batch_error(failure, start, input_width, output_width));
                }
            }
        };
        let work = blocks.iter_mut().zip(pieces).zip(update_targets);
        match pool {
            Some(pool) => pool.install(|| {
                work.collect::<Vec<_>>()
                    .into_par_iter()
                    .enumerate()
                    .for_each(run_block)
            }),
            None => work.enumerate().for_each(run_block),
        }

        let blocks = &self.blocks[..block_count];
        if let Some(error) = blocks.iter().find_map(|block| block.error) {
            return Err(error);
        }
        let mut loss = T::zero();
        let mut combined = Report {
            iterations: 0,
            residual: T::zero(),
            energy: None,
            converged: true,
        };
        for block in blocks {
            loss = loss + block.loss;
            if let Some(report) = block.report {
                combined.iterations = combined.iterations.max(report.iterations);
                if report.residual > combined.residual || report.residual.is_nan() {
                    combined.residual = report.residual;
                }
                combined.energy = match (combined.energy, report.energy) {
                    (Some(sum), Some(energy)) => Some(sum + energy),
                    (None, energy) => energy,
                    (sum, None) => sum,
                };
                combined.converged &= report.converged;
            }
        }
        if block_count > 1 {
            // Block 0's updates are in `updates`; the others are added in block order.
            let rest = &self.blocks[1..block_count];
            match pool {
                Some(pool) => pool.install(|| {
                    updates
                        .par_chunks_mut(REDUCE_CHUNK)
                        .enumerate()
                        .for_each(|(chunk, target)| {
                            let start = chunk * REDUCE_CHUNK;
                            for block in rest {
                                add_assign(target, &block.updates[start..start + target.len()]);
                            }
                        })
                }),
                None => {
                    for block in rest {
                        add_assign(updates, &block.updates);
                    }
                }
            }
            // Each block's updates were checked; only their sum can overflow.
            if let Some(index) = updates.iter().position(|value| !value.is_finite()) {
                return Err(PcError::NonFinite {
                    what: "parameter updates",
                    index,
                });
            }
        }
        Ok(Summary {
            loss,
            report: combined,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OpDesc;
    use pcnet_core::{Activation, Loss, NetworkSpec};
    use pcnet_std::batch::BatchRunner;

    fn mlp(loss: Loss) -> Model {
        Model::new(
            &[
                vec![
                    OpDesc::Linear {
                        inputs: 6,
                        outputs: 9,
                    },
                    OpDesc::Activation(Activation::Relu),
                ],
                vec![
                    OpDesc::Linear {
                        inputs: 9,
                        outputs: 7,
                    },
                    OpDesc::Activation(Activation::Tanh),
                ],
                vec![OpDesc::Linear {
                    inputs: 7,
                    outputs: 4,
                }],
            ],
            &[6],
            loss,
        )
        .unwrap()
    }

    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.5 - 1.0) * 0.8)
            .collect()
    }

    #[test]
    fn loss_and_updates_are_the_batch_runners_bits_for_any_thread_count() {
        let model = mlp(Loss::CrossEntropy);
        let spec = model.spec();
        let rows = 2 * BLOCK_ROWS + 37;
        let params = values(spec.parameter_len(), 1);
        let inputs = values(rows * 6, 2);
        let classes: Vec<usize> = (0..rows).map(|r| (r * 5) % 4).collect();
        for settings in [
            Settings::fixed_pred(0.1, 20),
            Settings::strict(0.1, 20),
            Settings::exact(),
        ] {
            let batch = Batch::new(&inputs, Targets::Classes(&classes));
            let mut reference = BatchRunner::<f64>::new();
            let expected = reference
                .run(Par::Seq, &spec, &params, batch, &settings)
                .unwrap();
            for threads in [1, 2, 3] {
                let request = Request {
                    params: &params,
                    inputs: &inputs,
                    targets: Targets::Classes(&classes),
                    settings,
                    initial_beliefs: None,
                    threads,
                };
                let mut results = vec![0.0; model.results_len(rows)];
                let mut updates = vec![0.0; spec.parameter_len()];
                let summary = Runner::new()
                    .run(&model, &request, &mut results, &mut updates)
                    .unwrap();
                assert_eq!(summary.loss.to_bits(), expected.loss().to_bits());
                assert_eq!(summary.report, expected.report());
                assert!(updates
                    .iter()
                    .zip(expected.updates())
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                // The feedforward outputs are the batch runner's outputs.
                let widths = model.widths();
                let output_start = rows * widths[..3].iter().sum::<usize>();
                assert_eq!(
                    &results[output_start..output_start + rows * 4],
                    expected.outputs()
                );
            }
        }
    }

    #[test]
    fn results_are_each_layers_values_of_a_single_call() {
        let model = mlp(Loss::Mse);
        let spec: NetworkSpec<'_> = model.spec();
        let rows = 5;
        let params = values(spec.parameter_len(), 3);
        let inputs = values(rows * 6, 4);
        let targets = values(rows * 4, 5);
        let settings = Settings::fixed_pred(0.3, 7).with_free_input();
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let mut expected_updates = vec![0.0; spec.parameter_len()];
        let inference = pcnet_core::infer(
            &spec,
            &params,
            Batch::new(&inputs, Targets::Values(&targets)),
            &settings,
            &mut workspace,
            &mut expected_updates,
        )
        .unwrap();
        let request = Request {
            params: &params,
            inputs: &inputs,
            targets: Targets::Values(&targets),
            settings,
            initial_beliefs: None,
            threads: 1,
        };
        let mut results = vec![f64::NAN; model.results_len(rows)];
        let mut updates = vec![f64::NAN; spec.parameter_len()];
        let summary = Runner::new()
            .run(&model, &request, &mut results, &mut updates)
            .unwrap();
        // Fast and Portable kernels agree to rounding.
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
        };
        assert!((summary.loss - inference.loss()).abs() <= 1e-12);
        assert!(close(&updates, &expected_updates));
        let mut offset = 0;
        for kind in 0..3 {
            for (l, &width) in model.widths().iter().enumerate() {
                let expected = match kind {
                    0 => inference.feedforward(l),
                    1 => inference.beliefs(l),
                    _ => inference.errors(l),
                };
                assert!(
                    close(&results[offset..offset + rows * width], expected),
                    "kind {kind} layer {l}"
                );
                offset += rows * width;
            }
        }
        assert!(close(&results[offset..], inference.output_gradient()));
    }

    #[test]
    fn bad_requests_are_errors_with_whole_batch_indices() {
        let model = mlp(Loss::Mse);
        let spec = model.spec();
        let rows = BLOCK_ROWS + 3;
        let params = values(spec.parameter_len(), 6);
        let mut inputs = values(rows * 6, 7);
        let targets = values(rows * 4, 8);
        let bad = (BLOCK_ROWS + 1) * 6 + 2;
        inputs[bad] = f64::NAN;
        let mut results = vec![0.0; model.results_len(rows)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let mut runner = Runner::new();
        let mut request = Request {
            params: &params,
            inputs: &inputs,
            targets: Targets::Values(&targets),
            settings: Settings::strict(0.1, 3),
            initial_beliefs: None,
            threads: 2,
        };
        let error = runner
            .run(&model, &request, &mut results, &mut updates)
            .unwrap_err();
        assert_eq!(
            error,
            PcError::NonFinite {
                what: "inputs",
                index: bad
            }
        );
        request.inputs = &inputs[..0];
        assert_eq!(
            runner
                .run(&model, &request, &mut results, &mut updates)
                .unwrap_err(),
            PcError::EmptyBatch
        );
        request.inputs = &inputs[..bad - 2];
        let short = vec![0.0; 3];
        request.initial_beliefs = Some(&short);
        assert!(matches!(
            runner.run(&model, &request, &mut results, &mut updates),
            Err(PcError::LengthMismatch { .. })
        ));
    }
}
