//! Batched, parallel predictive coding whose results never depend on the thread count.
//!
//! [`BatchRunner`] splits a batch into row blocks of [`BLOCK_ROWS`] rows (or as set with
//! [`BatchRunner::with_block_rows`]; the last block
//! may be shorter), runs pcnet-core's relaxation schedule ([`pcnet_core::infer_with`]) on each
//! block with [`Batch::block_of`] (so each block's loss and `dLoss/dy` carry the whole
//! batch's `1/B`) in the block's own preallocated workspace, and then adds the blocks'
//! parameter updates and losses **in block order**. PC relaxation is per sample, so with a
//! fixed iteration count each block computes exactly what a whole-batch call computes for
//! its rows; only the order of the final sums over rows differs from a single call, and it
//! is fixed by the block size alone. Which thread runs which block does not matter, so the
//! bits are the same for any [`Par`]. A tolerance or Strict's divergence test is applied
//! per block.
//!
//! The runner owns every buffer; after the first call on a given network and batch size
//! it allocates nothing at all, with [`pcnet_core::Portable`] or with [`Fast`], dense or
//! convolutional (tests/no_alloc.rs counts every allocation).
//!
//! # Example
//! ```
//! use pcnet_core::{Activation, Batch, Layer, Loss, NetworkSpec, Settings, Sgd, Targets};
//! use pcnet_std::batch::{BatchRunner, Par};
//!
//! let layers = [Layer::dense(4, 16, Activation::Relu), Layer::dense(16, 3, Activation::Identity)];
//! let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
//! let mut params: Vec<f32> = (0..spec.parameter_len()).map(|i| ((i * 7 % 13) as f32 - 6.0) / 20.0).collect();
//! let inputs: Vec<f32> = (0..4 * 100).map(|i| ((i % 9) as f32 - 4.0) / 4.0).collect();
//! let classes: Vec<usize> = (0..100).map(|r| r % 3).collect();
//! let batch = Batch::new(&inputs, Targets::Classes(&classes));
//! let settings = Settings::fixed_pred(0.1, 20);
//!
//! let mut runner = BatchRunner::new();
//! // One relaxation: loss, updates (what Torch2PC writes into .grad), outputs.
//! let outcome = runner.run(Par::Rayon(2), &spec, &params, batch, &settings)?;
//! let correct = outcome.correct(&classes);
//! assert!(correct <= 100 && outcome.updates().len() == spec.parameter_len());
//!
//! // A learning step: the same, then the optimizer; all-or-nothing.
//! let mut sgd = Sgd::new(0.05);
//! let mut state = vec![0.0_f32; spec.parameter_len()];
//! let loss = runner.learn(Par::Seq, &spec, &mut params, &mut sgd, &mut state, batch, &settings)?.loss();
//! assert!(loss.is_finite());
//! # Ok::<(), pcnet_core::PcError>(())
//! ```

use crate::fast::{Fast, PackedFast, PackedWeights};
use pcnet_core::{
    infer_with, Backend, Batch, NetworkSpec, Optimizer, PcError, Portable, Report, Scalar, Settings,
};
use rayon::prelude::*;

/// Rows per block unless the runner is told otherwise ([`BatchRunner::with_block_rows`]).
///
/// Results depend on the block size (it fixes the order in which per-row contributions
/// to the parameter updates and the loss are added) and on nothing else. It trades
/// matrix-product efficiency (more rows per product amortise the packing of each weight
/// matrix: on 784-256-256-10 in f32, 128-row blocks ran Strict about 10% faster than
/// 64-row blocks, 256-row blocks another 10%) against parallelism (a batch of 256 still
/// gives two blocks, one per core on two cores) and memory (a 128-row block of that
/// network keeps about 2.5 MiB of f32 relaxation state).
pub const BLOCK_ROWS: usize = 128;

/// Parameters per chunk when block updates are added in parallel (each chunk still adds
/// the blocks in order, so the split does not change a bit).
const REDUCE_CHUNK: usize = 1 << 14;

/// How much parallelism a call may use (as faer's `Par`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Par {
    /// Everything on the calling thread.
    #[default]
    Seq,
    /// Row blocks spread over a rayon pool of this many threads (0: one per available
    /// core). A batch of one block runs on the calling thread whatever this says, and no
    /// more threads are used than there are blocks.
    Rayon(usize),
}

impl Par {
    /// The number of threads this asks for (`Rayon(0)` resolved to the available cores).
    pub fn threads(&self) -> usize {
        match *self {
            Par::Seq => 1,
            Par::Rayon(0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Par::Rayon(threads) => threads,
        }
    }
}

/// `len` values starting on a cache-line (64-byte) boundary, inside a `Vec` with room to
/// spare. The allocator aligns large blocks to 16 bytes only, so every other 32-byte
/// vector store or load would straddle two cache lines, which costs more than an aligned
/// one. Measured (`pc-bench speed`, 784-256-256-10, f32, one thread, medians): Exact at
/// batch 1 40.0 -> 36.5 us (its 1 MB of parameter updates is one store per value),
/// FixedPred eta 1 n 3 at batch 1 45.2 -> 41.0 us, Exact at batch 1024 15.0 -> 14.6 ms.
#[derive(Debug)]
struct LineAligned<T> {
    storage: Vec<T>,
    offset: usize,
    len: usize,
}

impl<T: Scalar> LineAligned<T> {
    const LINE: usize = 64;

    fn new() -> Self {
        LineAligned {
            storage: Vec::new(),
            offset: 0,
            len: 0,
        }
    }

    /// Holds `len` values from now on (the values are unspecified after it grows).
    fn resize(&mut self, len: usize) {
        let slack = Self::LINE / core::mem::size_of::<T>();
        if self.storage.len() < len + slack {
            self.storage.resize(len + slack, T::zero());
        }
        // A `T` is aligned to its size, so the distance to the next line is whole values.
        let address = self.storage.as_ptr() as usize;
        self.offset = (Self::LINE - address % Self::LINE) % Self::LINE / core::mem::size_of::<T>();
        self.len = len;
    }

    fn as_slice(&self) -> &[T] {
        &self.storage[self.offset..self.offset + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// One block's buffers and results.
#[derive(Debug)]
struct Block<T> {
    /// The fast kernels' scratch, lent to whichever thread runs this block.
    scratch: crate::fast::Scratch,
    workspace: LineAligned<T>,
    updates: LineAligned<T>,
    loss: T,
    report: Option<Report<T>>,
    error: Option<PcError>,
}

impl<T: Scalar> Block<T> {
    fn new() -> Self {
        Block {
            scratch: crate::fast::Scratch::default(),
            workspace: LineAligned::new(),
            updates: LineAligned::new(),
            loss: T::zero(),
            report: None,
            error: None,
        }
    }
}

/// A backend the [`BatchRunner`] prepares once per call, before its row blocks run, into
/// the backend the blocks share ([`RunnerBackend::Prepared`]).
///
/// [`Fast`] packs the weight matrices for the input VJP once ([`PackedWeights`]), where
/// each product would otherwise copy them into panels again, in every block and every
/// iteration; the prepared backend computes the same bits as [`Fast`].
/// [`pcnet_core::Portable`] needs nothing and runs as it is. Another backend implements it
/// with `Cache = ()` and `Prepared<'a> = Self` (when `Self: Clone`), returning a copy of
/// itself.
///
/// # Example
/// ```
/// use pcnet_core::{Activation, Layer, Loss, NetworkSpec, Portable, Settings};
/// use pcnet_std::batch::RunnerBackend;
/// let layers = [Layer::dense(2, 3, Activation::Tanh), Layer::dense(3, 1, Activation::Identity)];
/// let spec = NetworkSpec::new(&layers, Loss::Mse);
/// let params = vec![0.1_f64; spec.parameter_len()];
/// let prepared = Portable.prepare(&mut (), &spec, &params, &Settings::exact(), 64, false)?;
/// assert_eq!(prepared, Portable);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
pub trait RunnerBackend<T: Scalar>: Backend<T> + Sync {
    /// What the runner keeps for [`RunnerBackend::prepare`] between calls (e.g. buffers
    /// that grow once).
    type Cache: Default + Send + core::fmt::Debug;
    /// The backend one call's row blocks run on.
    type Prepared<'a>: Backend<T> + Send + Sync
    where
        Self: 'a,
        T: 'a;

    /// Prepares for one call on `params` with blocks of at most `block_rows` rows. With
    /// `parallel` the runner calls it inside its thread pool (`ThreadPool::install`), so
    /// it may split its work with `rayon::join`; the result must not depend on that.
    ///
    /// # Errors
    /// Any [`PcError`] for a network or parameters that do not fit.
    fn prepare<'a>(
        &'a self,
        cache: &'a mut Self::Cache,
        spec: &NetworkSpec<'_>,
        params: &'a [T],
        settings: &Settings<'_, T>,
        block_rows: usize,
        parallel: bool,
    ) -> Result<Self::Prepared<'a>, PcError>;
}

impl<T: Scalar> RunnerBackend<T> for Portable {
    type Cache = ();
    type Prepared<'a>
        = Portable
    where
        T: 'a;

    fn prepare<'a>(
        &'a self,
        _cache: &'a mut (),
        _spec: &NetworkSpec<'_>,
        _params: &'a [T],
        _settings: &Settings<'_, T>,
        _block_rows: usize,
        _parallel: bool,
    ) -> Result<Portable, PcError> {
        Ok(Portable)
    }
}

impl<T: Scalar> RunnerBackend<T> for Fast {
    type Cache = PackedWeights<T>;
    type Prepared<'a> = PackedFast<'a, T>;

    fn prepare<'a>(
        &'a self,
        cache: &'a mut PackedWeights<T>,
        spec: &NetworkSpec<'_>,
        params: &'a [T],
        settings: &Settings<'_, T>,
        block_rows: usize,
        parallel: bool,
    ) -> Result<PackedFast<'a, T>, PcError> {
        cache.pack_on(*self, spec, params, settings, block_rows, parallel)
    }
}

/// An owned, reusable runner for batched relaxations on a backend (by default [`Fast`]).
///
/// See the [module documentation](self) for what it computes and an example.
#[derive(Debug)]
pub struct BatchRunner<T: Scalar, B: RunnerBackend<T> = Fast> {
    backend: B,
    prepared: B::Cache,
    block_rows: usize,
    blocks: Vec<Block<T>>,
    reports: Vec<Report<T>>,
    outputs: Vec<T>,
    pool: Option<(usize, rayon::ThreadPool)>,
}

impl<T: Scalar> Default for BatchRunner<T, Fast> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> BatchRunner<T, Fast> {
    /// A runner on the [`Fast`] kernels of the process's default family
    /// ([`Fast::default`]). It allocates its buffers on first use.
    pub fn new() -> Self {
        Self::with_backend(Fast::default())
    }
}

/// The result of [`BatchRunner::run`]: views into the runner's buffers.
#[derive(Clone, Copy, Debug)]
pub struct BatchOutcome<'r, T> {
    loss: T,
    rows: usize,
    output_width: usize,
    updates: &'r [T],
    outputs: &'r [T],
    reports: &'r [Report<T>],
}

impl<'r, T: Scalar> BatchOutcome<'r, T> {
    /// The batch loss at the feedforward output (the blocks' losses added in order).
    pub fn loss(&self) -> T {
        self.loss
    }

    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The parameter updates of the whole batch (what Torch2PC writes into `.grad`), in
    /// the layout of the parameters.
    pub fn updates(&self) -> &'r [T] {
        self.updates
    }

    /// The feedforward network outputs `vhat_L`, rows x outputs (for accuracy).
    pub fn outputs(&self) -> &'r [T] {
        self.outputs
    }

    /// Each block's relaxation report, in block order.
    pub fn block_reports(&self) -> &'r [Report<T>] {
        self.reports
    }

    /// The blocks' reports combined: the most iterations, the largest residual, the
    /// summed energy (Strict; the whole batch's energy), converged when every block did.
    pub fn report(&self) -> Report<T> {
        let mut combined = Report {
            iterations: 0,
            residual: T::zero(),
            energy: None,
            converged: true,
        };
        for report in self.reports {
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
        combined
    }

    /// How many rows' largest output (first one on ties) is the given class.
    pub fn correct(&self, classes: &[usize]) -> usize {
        if self.output_width == 0 {
            return 0;
        }
        self.outputs
            .chunks_exact(self.output_width)
            .zip(classes)
            .filter(|(row, &class)| {
                let mut best = 0;
                for (index, &value) in row.iter().enumerate() {
                    if value > row[best] {
                        best = index;
                    }
                }
                best == class
            })
            .count()
    }
}

impl<T: Scalar, B: RunnerBackend<T>> BatchRunner<T, B> {
    /// A runner on any backend (e.g. [`pcnet_core::Portable`] for comparisons).
    #[must_use]
    pub fn with_backend(backend: B) -> Self {
        BatchRunner {
            backend,
            prepared: B::Cache::default(),
            block_rows: BLOCK_ROWS,
            blocks: Vec::new(),
            reports: Vec::new(),
            outputs: Vec::new(),
            pool: None,
        }
    }

    /// The same runner with blocks of `rows` rows instead of [`BLOCK_ROWS`]. Results
    /// depend on the block size (the order of the sums over rows), never on the threads.
    ///
    /// # Errors
    /// [`PcError::InvalidHyperparameter`] for `rows == 0`.
    pub fn with_block_rows(self, rows: usize) -> Result<Self, PcError> {
        if rows == 0 {
            return Err(PcError::InvalidHyperparameter {
                name: "block rows",
                value: 0.0,
                min: core::ops::Bound::Included(1.0),
                max: core::ops::Bound::Unbounded,
            });
        }
        Ok(BatchRunner {
            block_rows: rows,
            blocks: Vec::new(),
            ..self
        })
    }

    /// Rows per block.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// Sizes the buffers for `blocks` blocks of this network (allocates only when they
    /// grow).
    fn prepare(&mut self, spec: &NetworkSpec<'_>, rows: usize, blocks: usize) {
        let workspace_len = spec.workspace_len(self.block_rows.min(rows));
        if self.blocks.len() < blocks {
            self.blocks.resize_with(blocks, Block::new);
        }
        for block in &mut self.blocks[..blocks] {
            if block.workspace.len < workspace_len {
                block.workspace.resize(workspace_len);
            }
            block.updates.resize(spec.parameter_len());
        }
        self.reports.clear();
        self.reports.reserve(blocks);
        self.outputs.resize(rows * spec.output_len(), T::zero());
    }

    /// Starts the rayon pool for `threads` threads on first use (and again only when the
    /// thread count changes).
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

    /// Runs one relaxation of the whole batch: forward pass, relaxation, parameter
    /// updates (no optimizer step). See the [module documentation](self).
    ///
    /// # Errors
    /// Every error of [`pcnet_core::infer_with`] (the first block's in block order, with the
    /// same meaning), [`PcError::EmptyBatch`], and [`PcError::InvalidSettings`] when a
    /// thread pool cannot be started. On error the parameters are untouched (they are
    /// only read).
    pub fn run<'r>(
        &'r mut self,
        par: Par,
        spec: &NetworkSpec<'_>,
        params: &[T],
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
    ) -> Result<BatchOutcome<'r, T>, PcError> {
        spec.validate()?;
        let input_width = spec.input_len();
        let output_width = spec.output_len();
        if batch.inputs.is_empty() {
            return Err(PcError::EmptyBatch);
        }
        if !batch.inputs.len().is_multiple_of(input_width) {
            return Err(PcError::LengthMismatch {
                what: "inputs",
                expected: (batch.inputs.len() / input_width + 1) * input_width,
                given: batch.inputs.len(),
            });
        }
        let rows = batch.inputs.len() / input_width;
        batch.targets.check(spec.loss(), rows, output_width)?;
        if settings.initial_beliefs.is_some() {
            return Err(PcError::InvalidSettings {
                reason:
                    "the batch runner does not take initial beliefs; use pcnet_core::infer_with",
            });
        }
        let total_rows = batch.loss_rows.unwrap_or(rows);
        let block_rows = self.block_rows;
        let block_count = rows.div_ceil(block_rows);
        self.prepare(spec, rows, block_count);
        let threads = par.threads().min(block_count);

        if threads > 1 {
            self.ensure_pool(threads)?;
        }
        let pool = match &self.pool {
            Some((_, pool)) if threads > 1 => Some(pool),
            _ => None,
        };
        // Prepared (weights packed) once for all blocks, on the pool's threads if any.
        let (runner_backend, prepared) = (&self.backend, &mut self.prepared);
        let prepared_rows = block_rows.min(rows);
        let backend = match pool {
            Some(pool) => pool.install(move || {
                runner_backend.prepare(prepared, spec, params, settings, prepared_rows, true)
            })?,
            None => {
                runner_backend.prepare(prepared, spec, params, settings, prepared_rows, false)?
            }
        };
        let backend = &backend;
        let run_block = |(index, (block, outputs)): (usize, (&mut Block<T>, &mut [T]))| {
            let start = index * block_rows;
            let count = (rows - start).min(block_rows);
            let block_batch = Batch::new(
                &batch.inputs[start * input_width..(start + count) * input_width],
                batch.targets.rows(start, count, output_width),
            )
            .block_of(total_rows);
            let Block {
                scratch,
                workspace,
                updates,
                ..
            } = block;
            match scratch.lend(|| {
                infer_with(
                    backend,
                    spec,
                    params,
                    block_batch,
                    settings,
                    workspace.as_mut_slice(),
                    updates.as_mut_slice(),
                )
            }) {
                Ok(inference) => {
                    outputs.copy_from_slice(inference.feedforward(spec.depth()));
                    block.loss = inference.loss();
                    block.report = Some(inference.report());
                    block.error = None;
                }
                Err(error) => {
                    block.report = None;
                    block.error = Some(error);
                }
            }
        };
        let chunk = block_rows * output_width.max(1);
        let blocks = &mut self.blocks[..block_count];
        // updates = block 0 + block 1 + ... in block order, element by element. On one
        // thread each block's updates are added to block 0's as soon as the block is done,
        // while they are still in cache; with a pool, in a pass over all blocks below.
        match pool {
            None => {
                let (first, rest) = blocks.split_at_mut(1);
                let first = &mut first[0];
                let mut outputs = self.outputs.chunks_mut(chunk);
                if let Some(output) = outputs.next() {
                    run_block((0, (&mut *first, output)));
                }
                for (index, (block, output)) in rest.iter_mut().zip(outputs).enumerate() {
                    run_block((index + 1, (&mut *block, output)));
                    if first.error.is_none() && block.error.is_none() {
                        add_assign(first.updates.as_mut_slice(), block.updates.as_slice());
                    }
                }
            }
            Some(pool) => pool.install(|| {
                blocks
                    .par_iter_mut()
                    .zip(self.outputs.par_chunks_mut(chunk))
                    .enumerate()
                    .for_each(run_block)
            }),
        }

        // Errors and reports in block order.
        for block in &self.blocks[..block_count] {
            if let Some(error) = block.error {
                return Err(error);
            }
        }
        let mut loss = T::zero();
        for block in &self.blocks[..block_count] {
            loss = loss + block.loss;
            if let Some(report) = block.report {
                self.reports.push(report);
            }
        }

        let (first, rest) = self.blocks[..block_count].split_at_mut(1);
        let total = first[0].updates.as_mut_slice();
        if let Some(pool) = pool.filter(|_| !rest.is_empty()) {
            // Chunks of the sum on the pool's threads, each chunk over the blocks in order.
            pool.install(|| {
                total
                    .par_chunks_mut(REDUCE_CHUNK)
                    .enumerate()
                    .for_each(|(chunk_index, target)| {
                        let start = chunk_index * REDUCE_CHUNK;
                        for block in rest.iter() {
                            let source = &block.updates.as_slice()[start..start + target.len()];
                            add_assign(target, source);
                        }
                    })
            });
        }
        // Each block's updates were checked; only a sum of several can overflow.
        if !rest.is_empty() {
            let mut bad = false;
            for &value in total.iter() {
                bad |= !value.is_finite();
            }
            if bad {
                let index = total.iter().position(|value| !value.is_finite());
                return Err(PcError::NonFinite {
                    what: "parameter updates",
                    index: index.unwrap_or(0),
                });
            }
        }
        Ok(BatchOutcome {
            loss,
            rows,
            output_width,
            updates: self.blocks[0].updates.as_slice(),
            outputs: &self.outputs,
            reports: &self.reports,
        })
    }

    /// One learning step: [`BatchRunner::run`], then `optimizer` applies the updates to
    /// `params` (with its state slice `state`).
    ///
    /// # Errors
    /// Every error of [`BatchRunner::run`] and [`Optimizer::step`]. All-or-nothing: after
    /// an error the parameters, the optimizer state and its step count are unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn learn<'r, O: Optimizer<T>>(
        &'r mut self,
        par: Par,
        spec: &NetworkSpec<'_>,
        params: &mut [T],
        optimizer: &mut O,
        state: &mut [T],
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
    ) -> Result<BatchOutcome<'r, T>, PcError> {
        let outcome = self.run(par, spec, params, batch, settings)?;
        optimizer.step(params, outcome.updates(), state)?;
        Ok(outcome)
    }
}

/// `total[i] += values[i]` for every `i`.
fn add_assign<T: Scalar>(total: &mut [T], values: &[T]) {
    for (sum, &value) in total.iter_mut().zip(values) {
        *sum = *sum + value;
    }
}

#[cfg(test)]
mod tests {
    use super::LineAligned;

    /// Whatever the allocator returns and however the buffer grows or shrinks, the
    /// slice starts on a 64-byte boundary and has the asked length.
    fn starts_on_a_line<T: pcnet_core::Scalar>() {
        let mut buffer = LineAligned::<T>::new();
        assert!(buffer.as_slice().is_empty());
        for len in [1, 7, 64, 1000, 3, 269_322, 10, 0, 100_000] {
            buffer.resize(len);
            assert_eq!(buffer.as_slice().len(), len);
            assert_eq!(buffer.as_mut_slice().len(), len);
            assert_eq!(buffer.as_slice().as_ptr() as usize % 64, 0, "len {len}");
        }
    }

    #[test]
    fn line_aligned_buffers_start_on_a_cache_line() {
        starts_on_a_line::<f32>();
        starts_on_a_line::<f64>();
    }
}
