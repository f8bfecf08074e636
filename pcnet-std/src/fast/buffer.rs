//! The per-thread buffers of the fast kernels (packed panels of a product's `rhs`, im2col
//! columns of a convolution) and [`Scratch`], which lets a unit of work own them.
//!
//! Each buffer grows to the largest length a thread has asked for and is reused after,
//! so once a thread has seen a shape, the kernels allocate nothing.

use super::GemmScalar;
use pcnet_core::Scalar;
use std::cell::RefCell;
use std::thread::LocalKey;

/// One thread's growable buffer.
pub type ThreadBuffer<T> = LocalKey<RefCell<Vec<T>>>;

/// Runs `f` on this thread's `buffer`, grown to at least `len` values (contents
/// unspecified).
pub(super) fn with_buffer<T: Scalar, R>(
    buffer: &'static ThreadBuffer<T>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    buffer.with(|cell| match cell.try_borrow_mut() {
        Ok(mut own) => {
            if own.len() < len {
                own.resize(len, T::zero());
            }
            f(&mut own[..len])
        }
        // Re-entered on this thread (pc never does): a fresh buffer keeps the result right.
        Err(_) => f(&mut vec![T::zero(); len]),
    })
}

/// Exchanges this thread's `buffer` with `other` (a pointer swap, no element moves).
fn swap_buffer<T>(buffer: &'static ThreadBuffer<T>, other: &mut Vec<T>) {
    buffer.with(|cell| {
        if let Ok(mut own) = cell.try_borrow_mut() {
            core::mem::swap(&mut *own, other);
        }
    })
}

/// Scratch buffers of the fast kernels that follow a unit of work instead of a thread.
///
/// Products of many rows pack an operand, and convolutions unfold their input, into
/// buffers that the kernels keep per thread (grown on first use, then reused). With a
/// thread pool the same row block can run on a different thread each call, which would
/// then grow its own buffers again. A `Scratch` owned with the block and lent to the
/// thread that runs it ([`Scratch::lend`]) keeps the grown buffers with the block, so
/// after the first call on a shape nothing is allocated, whichever thread runs what.
/// [`crate::batch::BatchRunner`] keeps one per row block.
///
/// # Example
/// ```
/// use pcnet_std::fast::{gemm, Accumulate, MatMut, MatRef, Scratch};
/// let (a, b) = (vec![1.0_f32; 64 * 32], vec![2.0_f32; 32 * 48]);
/// let mut c = vec![0.0_f32; 64 * 48];
/// let mut scratch = Scratch::default();
/// for _ in 0..2 {
///     // The first call grows the scratch; later calls on any thread reuse it.
///     scratch.lend(|| {
///         gemm(
///             MatMut::row_major(&mut c, 64, 48)?,
///             MatRef::row_major(&a, 64, 32)?,
///             MatRef::row_major(&b, 32, 48)?,
///             Accumulate::Overwrite,
///         )
///     })?;
/// }
/// assert!(c.iter().all(|&v| v == 64.0));
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Debug, Default)]
pub struct Scratch {
    panels_f32: Vec<f32>,
    panels_f64: Vec<f64>,
    columns_f32: Vec<f32>,
    columns_f64: Vec<f64>,
}

impl Scratch {
    /// Runs `f` with these buffers as the calling thread's kernel scratch, then gives the
    /// thread its own buffers back (the exchanges move pointers, never elements).
    pub fn lend<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.exchange();
        let result = f();
        self.exchange();
        result
    }

    fn exchange(&mut self) {
        swap_buffer(f32::panel_buffer(), &mut self.panels_f32);
        swap_buffer(f64::panel_buffer(), &mut self.panels_f64);
        swap_buffer(f32::column_buffer(), &mut self.columns_f32);
        swap_buffer(f64::column_buffer(), &mut self.columns_f64);
    }
}
