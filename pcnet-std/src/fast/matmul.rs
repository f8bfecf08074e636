//! The safe matrix product of the fast kernels.
//!
//! [`gemm()`] computes `dst = lhs * rhs` or `dst += lhs * rhs` for strided matrix views
//! ([`MatRef`], [`MatMut`]). Every view is checked when it is built, so that each element
//! it addresses lies inside its slice; the product checks that the shapes fit, then maps
//! the strides onto one of the two forms of the micro-kernels in `kernels/` (of the family
//! a [`Fast`](super::Fast) value holds, see [`Isa`](super::Isa)), which check the bounds
//! once more before any SIMD load.
//!
//! A product runs on the calling thread: pc's parallelism splits batches into row blocks
//! one level up, so results never depend on the number of threads. An `Nn` product of
//! [`PACK_ROWS`] rows or more, or one whose `rhs` has no unit column stride, first copies
//! `rhs` into panels in this thread's scratch buffer (grown on first use, then reused, so
//! nothing is allocated once a thread has seen the largest shape).

use super::buffer::{with_buffer, ThreadBuffer};
use super::kernels::{pack_depth_block, Family, Kernels, Nn, Nt, Panel, NN_DEPTH_BLOCK};
use pcnet_core::{PcError, Scalar};

/// The `k` blocks in which [`pack_rhs_block`] packs (those of the broadcast kernel).
pub(crate) const PACK_DEPTH_BLOCK: usize = NN_DEPTH_BLOCK;

/// From this many rows of `dst` on, `rhs` is packed into panels before an `Nn` product:
/// the copy costs one pass over a `k` block of `rhs` and saves the cache conflicts of
/// reading its rows in place many times.
pub(crate) const PACK_ROWS: usize = 24;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The scalar types the fast kernels handle: `f32` and `f64`.
///
/// Sealed: the micro-kernels exist for these two types only, so no other type can name
/// this trait, and a call with one is a compile error.
pub trait GemmScalar: Scalar + Kernels + sealed::Sealed {
    /// This thread's buffer for packed panels of `rhs`.
    #[doc(hidden)]
    fn panel_buffer() -> &'static ThreadBuffer<Self>;
    /// This thread's buffer for the im2col columns of a convolution.
    #[doc(hidden)]
    fn column_buffer() -> &'static ThreadBuffer<Self>;
}

macro_rules! buffers {
    ($t:ty, $panels:ident, $columns:ident) => {
        std::thread_local! {
            static $panels: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
            static $columns: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        impl GemmScalar for $t {
            fn panel_buffer() -> &'static ThreadBuffer<$t> {
                &$panels
            }

            fn column_buffer() -> &'static ThreadBuffer<$t> {
                &$columns
            }
        }
    };
}
buffers!(f32, PANELS_F32, COLUMNS_F32);
buffers!(f64, PANELS_F64, COLUMNS_F64);

/// A read-only strided matrix view: element `(i, j)` is `data[i * row_stride + j * column_stride]`.
///
/// # Example
/// ```
/// use pcnet_std::fast::MatRef;
/// let data = [1.0_f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let a = MatRef::row_major(&data, 2, 3)?;      // [[1, 2, 3], [4, 5, 6]]
/// assert_eq!(a.transpose().get(2, 1), Some(6.0)); // column 2 of row 1
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    columns: usize,
    row_stride: usize,
    column_stride: usize,
}

/// A writable matrix view, row-major or column-major (so that distinct elements never
/// share memory): element `(i, j)` is `data[i * row_stride + j * column_stride]`.
///
/// # Example
/// ```
/// use pcnet_std::fast::MatMut;
/// let mut data = [0.0_f64; 6];
/// let c = MatMut::row_major(&mut data, 2, 3)?;
/// assert_eq!((c.rows(), c.columns()), (2, 3));
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    columns: usize,
    row_stride: usize,
    column_stride: usize,
}

/// The number of elements a strided view spans, `(rows-1) rs + (columns-1) cs + 1`, or
/// `None` on overflow; 0 for an empty view.
fn span(rows: usize, columns: usize, row_stride: usize, column_stride: usize) -> Option<usize> {
    if rows == 0 || columns == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((columns - 1).checked_mul(column_stride)?)?
        .checked_add(1)
}

/// Strides must fit in `isize` for the pointer arithmetic of `gemm`.
fn stride_fits(stride: usize) -> bool {
    isize::try_from(stride).is_ok()
}

fn check_view(
    what: &'static str,
    len: usize,
    rows: usize,
    columns: usize,
    row_stride: usize,
    column_stride: usize,
) -> Result<(), PcError> {
    match span(rows, columns, row_stride, column_stride) {
        Some(needed) if stride_fits(row_stride) && stride_fits(column_stride) => {
            if needed <= len {
                Ok(())
            } else {
                Err(PcError::BufferTooSmall {
                    what,
                    needed,
                    given: len,
                })
            }
        }
        _ => Err(PcError::InvalidHyperparameter {
            name: "matrix stride",
            value: row_stride.max(column_stride) as f64,
            min: core::ops::Bound::Included(0.0),
            // isize::MAX + 1 is a power of two, exact in f64: every valid stride is below it.
            max: core::ops::Bound::Excluded(isize::MAX as f64 + 1.0),
        }),
    }
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A strided view.
    ///
    /// # Errors
    /// [`PcError::BufferTooSmall`] when an element would lie outside `data`,
    /// [`PcError::InvalidHyperparameter`] when the strides overflow.
    pub fn new(
        data: &'a [T],
        rows: usize,
        columns: usize,
        row_stride: usize,
        column_stride: usize,
    ) -> Result<Self, PcError> {
        check_view(
            "matrix view",
            data.len(),
            rows,
            columns,
            row_stride,
            column_stride,
        )?;
        Ok(MatRef {
            data,
            rows,
            columns,
            row_stride,
            column_stride,
        })
    }

    /// A row-major `rows x columns` view of the first `rows * columns` elements.
    ///
    /// # Errors
    /// As [`MatRef::new`].
    pub fn row_major(data: &'a [T], rows: usize, columns: usize) -> Result<Self, PcError> {
        Self::new(data, rows, columns, columns, 1)
    }

    /// The transposed view (no data moves).
    pub fn transpose(self) -> Self {
        MatRef {
            rows: self.columns,
            columns: self.rows,
            row_stride: self.column_stride,
            column_stride: self.row_stride,
            ..self
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Element `(row, column)`, if inside the view.
    pub fn get(&self, row: usize, column: usize) -> Option<T> {
        (row < self.rows && column < self.columns)
            .then(|| self.data[row * self.row_stride + column * self.column_stride])
    }
}

impl<'a, T: Copy> MatMut<'a, T> {
    /// A row-major `rows x columns` view with `row_stride >= columns` between rows.
    ///
    /// # Errors
    /// As [`MatRef::new`], and [`PcError::InvalidHyperparameter`] when
    /// `row_stride < columns` (rows would overlap).
    pub fn row_major_strided(
        data: &'a mut [T],
        rows: usize,
        columns: usize,
        row_stride: usize,
    ) -> Result<Self, PcError> {
        if row_stride < columns && rows > 1 {
            return Err(PcError::InvalidHyperparameter {
                name: "row stride",
                value: row_stride as f64,
                min: core::ops::Bound::Included(columns as f64),
                max: core::ops::Bound::Excluded(isize::MAX as f64 + 1.0),
            });
        }
        check_view("output matrix", data.len(), rows, columns, row_stride, 1)?;
        Ok(MatMut {
            data,
            rows,
            columns,
            row_stride,
            column_stride: 1,
        })
    }

    /// A row-major `rows x columns` view of the first `rows * columns` elements.
    ///
    /// # Errors
    /// As [`MatRef::new`].
    pub fn row_major(data: &'a mut [T], rows: usize, columns: usize) -> Result<Self, PcError> {
        Self::row_major_strided(data, rows, columns, columns)
    }

    /// A column-major `rows x columns` view (element `(i, j)` at `i + j * rows`).
    ///
    /// # Errors
    /// As [`MatRef::new`].
    pub fn column_major(data: &'a mut [T], rows: usize, columns: usize) -> Result<Self, PcError> {
        check_view("output matrix", data.len(), rows, columns, 1, rows)?;
        Ok(MatMut {
            data,
            rows,
            columns,
            row_stride: 1,
            column_stride: rows,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn columns(&self) -> usize {
        self.columns
    }
}

/// Whether [`gemm()`] overwrites its output or adds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// `dst = lhs * rhs` (the old contents are never read, so they may be NaN).
    Overwrite,
    /// `dst = dst + lhs * rhs`.
    Add,
}

/// The matrix product `dst = lhs * rhs` (or `dst += lhs * rhs`) with pc's blocked SIMD
/// micro-kernels of the process's default family (that of [`Fast::default`](super::Fast),
/// see [`Isa::selected`](super::Isa::selected); [`Fast::gemm`](super::Fast::gemm) runs
/// a chosen one), single threaded.
///
/// `lhs` is `m x k`, `rhs` is `k x n`, `dst` is `m x n`; any strides. A product with
/// `k = 0` writes zeros (or leaves `dst` as it is when accumulating). Each element is a
/// length-`k` dot product summed in an order of the kernel's choosing (blocked, with FMA),
/// so it is within `gamma_k sum |a_i b_i|` of the exact value, like any summation order.
/// The order depends on the shapes only, never on timing or thread count.
///
/// This is the function for other fast paths of pcnet-std (e.g. convolution as im2col):
/// build the views once over existing buffers and call it. Products of many rows copy
/// `rhs` into this thread's scratch buffer, which grows on first use and is reused
/// after: once a thread has seen a shape, a product of that shape allocates nothing.
///
/// # Errors
/// [`PcError::ShapeMismatch`] when the shapes do not chain (`layer` and `op` are 0,
/// `expected`/`given` are the two disagreeing sizes).
///
/// # Example
/// ```
/// use pcnet_std::fast::{gemm, Accumulate, MatMut, MatRef};
/// let a = [1.0_f32, 2.0, 3.0, 4.0]; // 2 x 2
/// let b = [5.0_f32, 6.0, 7.0, 8.0]; // 2 x 2
/// let mut c = [f32::NAN; 4];
/// gemm(
///     MatMut::row_major(&mut c, 2, 2)?,
///     MatRef::row_major(&a, 2, 2)?,
///     MatRef::row_major(&b, 2, 2)?,
///     Accumulate::Overwrite,
/// )?;
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
pub fn gemm<T: GemmScalar>(
    dst: MatMut<'_, T>,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: Accumulate,
) -> Result<(), PcError> {
    super::Fast::default().gemm(dst, lhs, rhs, accumulate)
}

/// [`gemm()`] on `family`'s kernels.
pub(crate) fn gemm_on<T: GemmScalar>(
    family: Family,
    dst: MatMut<'_, T>,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: Accumulate,
) -> Result<(), PcError> {
    let mismatch = |expected: usize, given: usize| PcError::ShapeMismatch {
        layer: 0,
        op: 0,
        expected,
        given,
    };
    if lhs.columns != rhs.rows {
        return Err(mismatch(lhs.columns, rhs.rows));
    }
    if dst.rows != lhs.rows {
        return Err(mismatch(lhs.rows, dst.rows));
    }
    if dst.columns != rhs.columns {
        return Err(mismatch(rhs.columns, dst.columns));
    }
    let (m, n, k) = (dst.rows, dst.columns, lhs.columns);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if accumulate == Accumulate::Overwrite {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.row_stride + j * dst.column_stride] = T::zero();
                }
            }
        }
        return Ok(());
    }
    let add = accumulate == Accumulate::Add;
    // A column-major `dst` is the row-major `dst^T = rhs^T lhs^T`.
    let (dst, lhs, rhs) = if dst.column_stride != 1 {
        let transposed = MatMut {
            rows: dst.columns,
            columns: dst.rows,
            row_stride: dst.column_stride,
            column_stride: dst.row_stride,
            data: dst.data,
        };
        (transposed, rhs.transpose(), lhs.transpose())
    } else {
        (dst, lhs, rhs)
    };
    let (m, n, given) = (dst.rows, dst.columns, dst.data.len());
    // The dot-product form for a transposed `rhs` with few rows; from `PACK_ROWS` rows on,
    // copying `rhs^T` into panels (SIMD transposes) and running the broadcast form is
    // faster, and lets a caller pack it once for many products (`gemm_packed`).
    let ran =
        if lhs.column_stride == 1 && rhs.row_stride == 1 && rhs.column_stride != 1 && m < PACK_ROWS
        {
            T::nt(
                family,
                Nt {
                    m,
                    n,
                    k,
                    a: lhs.data,
                    a_row_stride: lhs.row_stride,
                    b: rhs.data,
                    b_row_stride: rhs.column_stride,
                    c: dst.data,
                    c_row_stride: dst.row_stride,
                    add,
                },
            )
        } else {
            let pack = rhs.column_stride != 1 || m >= PACK_ROWS;
            let problem = nn_problem(dst, lhs, rhs, add, Panel::InPlace);
            if pack {
                // `rhs` copied into contiguous panels (this thread's scratch buffer, grown on
                // first use and then reused, so no allocation after that).
                with_buffer(T::panel_buffer(), family.scratch_len::<T>(n, k), |panel| {
                    T::nn(
                        family,
                        Nn {
                            panel: Panel::Scratch(panel),
                            ..problem
                        },
                    )
                })
            } else {
                T::nn(family, problem)
            }
        };
    if !ran {
        // The view constructors and the shape checks above make this unreachable; a
        // typed error rather than a panic if that reasoning is ever broken.
        return Err(PcError::BufferTooSmall {
            what: "matrix view",
            needed: m * n,
            given,
        });
    }
    Ok(())
}

/// The values of a `k x n` right-hand side packed block by block ([`pack_rhs_block`]) for
/// `family`'s kernels.
pub(crate) fn packed_rhs_len<T>(family: Family, k: usize, n: usize) -> usize {
    family.packed_len::<T>(n, k)
}

/// Packs rows `depth..depth_end` of `rhs` (`k x n`, any strides; `depth` a multiple of
/// [`PACK_DEPTH_BLOCK`] and `depth_end` the end of that block or `k`) into `packed`,
/// `(depth_end - depth) x n` rounded up to whole panels: the part of [`packed_rhs_len`]
/// values starting at `depth * n` (rounded up the same way) that [`gemm_packed`] reads
/// for that block, as [`gemm()`] packs it into scratch. `false` (nothing written) when
/// the view or `packed` is too small.
pub(crate) fn pack_rhs_block<T: GemmScalar>(
    family: Family,
    rhs: MatRef<'_, T>,
    depth: usize,
    depth_end: usize,
    packed: &mut [T],
) -> bool {
    pack_depth_block(
        family,
        rhs.data,
        rhs.row_stride,
        rhs.column_stride,
        rhs.rows,
        rhs.columns,
        depth,
        depth_end,
        packed,
    )
}

/// [`gemm()`] on `family` with `rhs` also given packed (every `k` block by
/// [`pack_rhs_block`] from this same `rhs`, for the same family): the
/// same products in the same order, so the same bits, without copying `rhs` into
/// scratch. Where [`gemm()`] would not pack (`dst` column-major, or fewer than
/// [`PACK_ROWS`] rows) or `packed` is too short, this is [`gemm()`].
///
/// # Errors
/// As [`gemm()`].
pub(crate) fn gemm_packed<T: GemmScalar>(
    family: Family,
    dst: MatMut<'_, T>,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    packed: &[T],
    accumulate: Accumulate,
) -> Result<(), PcError> {
    let (m, n, k) = (dst.rows, dst.columns, lhs.columns);
    let usable = dst.column_stride == 1
        && lhs.columns == rhs.rows
        && dst.rows == lhs.rows
        && dst.columns == rhs.columns
        && m >= PACK_ROWS
        && n > 0
        && k > 0
        && packed.len() >= packed_rhs_len::<T>(family, k, n);
    if !usable {
        return gemm_on(family, dst, lhs, rhs, accumulate);
    }
    let given = dst.data.len();
    let add = accumulate == Accumulate::Add;
    if !T::nn(
        family,
        nn_problem(dst, lhs, rhs, add, Panel::Packed(packed)),
    ) {
        return Err(PcError::BufferTooSmall {
            what: "matrix view",
            needed: m * n,
            given,
        });
    }
    Ok(())
}

/// The `Nn` form of `dst (+)= lhs * rhs` (`dst` row-major, shapes already checked).
fn nn_problem<'a, T>(
    dst: MatMut<'a, T>,
    lhs: MatRef<'a, T>,
    rhs: MatRef<'a, T>,
    add: bool,
    panel: Panel<'a, T>,
) -> Nn<'a, T> {
    Nn {
        m: dst.rows,
        n: dst.columns,
        k: lhs.columns,
        a: lhs.data,
        a_row_stride: lhs.row_stride,
        a_column_stride: lhs.column_stride,
        b: rhs.data,
        b_row_stride: rhs.row_stride,
        b_column_stride: rhs.column_stride,
        c: dst.data,
        c_row_stride: dst.row_stride,
        add,
        panel,
    }
}
