//! The matrix-product micro-kernels behind [`gemm()`](super::gemm): AVX2 + FMA on x86-64
//! (chosen at run time), plain loops elsewhere. The only place where pcnet-std uses
//! `unsafe`, and only for SIMD loads and stores whose offsets [`Nn::check`] and
//! [`Nt::check`] proved in bounds before any kernel runs.
//!
//! Two product forms cover every product pc computes:
//!
//! | form | computes | operands in memory |
//! |---|---|---|
//! | [`Nn`] | `C[i][j] (+)= sum_p A[i][p] B[p][j]` | `B` and `C` rows contiguous, `A` any strides |
//! | [`Nt`] | `C[i][j] (+)= sum_p A[i][p] B[j][p]` | rows of `A`, `B` and `C` contiguous |
//!
//! `Nn` keeps a tile of `C` (6 rows x 2 vectors) in registers, broadcasts one element of
//! `A` per row and loads `B`'s row as vectors; `Nt` computes a tile of dot products with
//! vectors along `p` and sums each vector's lanes at the end. Both walk `p` in blocks so
//! that the panels they reuse stay in the L1 and L2 caches. `Nn` reads `B` in place, or
//! copies each `k` block of it into contiguous panels first (given scratch; a transposed
//! `B` by SIMD transposes), or reads panels packed before the call ([`Panel`]).
//!
//! The summation order of every element depends on `k`, the block sizes and the column
//! position only: never on timing, threads or the other elements.
#![allow(unsafe_code)]

use pcnet_core::Scalar;

/// `k` block of [`Nn`]: a 256 x 16 f32 panel of `B` (16 KiB) stays in L1.
pub(crate) const NN_DEPTH_BLOCK: usize = 256;
/// Row block of [`Nn`]: 96 rows of a `k` block of `A` stay in L2.
const NN_ROW_BLOCK: usize = 96;
/// `k` block of [`Nt`]: a few rows of `B` (8 KiB each in f32) stay in L1.
const NT_DEPTH_BLOCK: usize = 2048;
/// Row block of [`Nt`]: 64 rows of a `k` block of `A` stay in L2.
const NT_ROW_BLOCK: usize = 64;

/// `C (+)= A B` with `C` row-major (unit column stride), `A` strided, and `B` either
/// row-major or copied, one `k` block at a time, into `panel` (any strides then).
pub struct Nn<'a, T> {
    /// Rows of `C` and `A`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// The elements of `A`.
    pub a: &'a [T],
    /// Distance between rows of `A`.
    pub a_row_stride: usize,
    /// Distance between columns of `A`.
    pub a_column_stride: usize,
    /// The elements of `B`.
    pub b: &'a [T],
    /// Distance between rows of `B`.
    pub b_row_stride: usize,
    /// Distance between columns of `B` (1 unless `panel` is given).
    pub b_column_stride: usize,
    /// The elements of `C`.
    pub c: &'a mut [T],
    /// Distance between rows of `C`.
    pub c_row_stride: usize,
    /// Add to `C` instead of overwriting it.
    pub add: bool,
    /// Where the kernels read `B` from.
    pub panel: Panel<'a, T>,
}

/// Where [`Nn`] reads `B`: in place, copied block by block into scratch, or from panels
/// packed before the call (by [`pack_depth_block`], e.g. once for many products with the
/// same weights). The panels hold the same values in the same places whichever way they
/// were filled, and the kernels run the same tiles over them, so the result is the same
/// bit for bit.
pub enum Panel<'a, T> {
    /// Read `B` where it is (unit column stride only).
    InPlace,
    /// Scratch of [`nn_panel_len`] values to copy each `k` block of `B` into.
    Scratch(&'a mut [T]),
    /// Every `k` block of `B` already packed: [`nn_packed_len`] values.
    Packed(&'a [T]),
}

/// A kernel family: the instruction set the micro-kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Plain loops (no SIMD, no FMA).
    Portable,
    /// AVX2 + FMA (x86-64), 256-bit vectors.
    Avx2,
    /// AVX-512F (x86-64), 512-bit vectors: `super::avx512`.
    Avx512,
}

impl Isa {
    /// The family every product of this process runs: the best the processor has, or
    /// the one `PC_ISA` (`portable`, `avx2`, `avx512`) names when the processor has it
    /// (else the best below it). Read and detected once, then cached.
    pub fn active() -> Isa {
        static ACTIVE: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = if super::avx512::available() {
                Isa::Avx512
            } else if simd_available() {
                Isa::Avx2
            } else {
                Isa::Portable
            };
            match std::env::var("PC_ISA").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if best != Isa::Portable => Isa::Avx2,
                _ => best,
            }
        })
    }
}

/// The columns of one packed panel of `B` for the AVX2 family (two vectors: 16 f32 or
/// 8 f64); the portable family packs the same way.
const fn avx2_panel_width<T>() -> usize {
    64 / core::mem::size_of::<T>()
}

/// The columns of one packed panel of `B` for the family `isa`.
pub fn panel_width<T>(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => super::avx512::panel_width::<T>(),
        Isa::Avx2 | Isa::Portable => avx2_panel_width::<T>(),
    }
}

/// The scratch an [`Nn`] product of `n` columns and depth `k` needs to pack `B` for the
/// family `isa`.
pub fn nn_panel_len<T>(isa: Isa, n: usize, k: usize) -> usize {
    if isa == Isa::Avx512 {
        return super::avx512::nn_panel_len::<T>(n, k);
    }
    let width = panel_width::<T>(isa);
    k.min(NN_DEPTH_BLOCK) * n.div_ceil(width) * width
}

/// The values every `k` block of a `k x n` matrix `B` packed by [`pack_depth_block`]
/// for the family `isa` take, one block after the other (block `d` from `d * n`, rounded
/// up to whole panels).
pub fn nn_packed_len<T>(isa: Isa, n: usize, k: usize) -> usize {
    let width = panel_width::<T>(isa);
    k * n.div_ceil(width) * width
}

/// Packs rows `depth..depth_end` of the `k x n` matrix `B` (strides `b_row_stride`,
/// `b_column_stride`) into `packed`: what [`Panel::Scratch`] holds while the kernels work
/// on that `k` block, and what [`Panel::Packed`] holds from `depth * n` (rounded up to
/// whole panels) on. `false` (nothing written) when the view or `packed` is too small.
#[allow(clippy::too_many_arguments)]
pub fn pack_depth_block<T: Kernels>(
    isa: Isa,
    b: &[T],
    b_row_stride: usize,
    b_column_stride: usize,
    k: usize,
    n: usize,
    depth: usize,
    depth_end: usize,
    packed: &mut [T],
) -> bool {
    if k == 0 || n == 0 || depth >= depth_end {
        return true;
    }
    let padded = n.div_ceil(panel_width::<T>(isa)) * panel_width::<T>(isa);
    if depth_end > k
        || !fits(b.len(), k, n, b_row_stride, b_column_stride)
        || packed.len() < (depth_end - depth) * padded
    {
        return false;
    }
    pack_panels(
        isa,
        b,
        b_row_stride,
        b_column_stride,
        n,
        depth,
        depth_end,
        &mut packed[..(depth_end - depth) * padded],
    );
    true
}

/// Copies rows `depth..depth_end` of `B` into `panel`: panel `q` holds columns
/// `q W..(q + 1) W` (`W` = [`panel_width`] of `isa`) row after row, zeros past column `n`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_panels<T: Kernels>(
    isa: Isa,
    b: &[T],
    b_row_stride: usize,
    b_column_stride: usize,
    n: usize,
    depth: usize,
    depth_end: usize,
    panel: &mut [T],
) {
    if b_row_stride == 1
        && b_column_stride != 1
        && T::pack_transposed(isa, b, b_column_stride, n, depth, depth_end, panel)
    {
        return;
    }
    let width = panel_width::<T>(isa);
    pack_panels_by_value(
        width,
        b,
        b_row_stride,
        b_column_stride,
        n,
        depth,
        depth_end,
        panel,
    );
}

/// [`pack_panels`] one value at a time (any strides), panels `width` columns wide.
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_panels_by_value<T: Scalar>(
    width: usize,
    b: &[T],
    b_row_stride: usize,
    b_column_stride: usize,
    n: usize,
    depth: usize,
    depth_end: usize,
    panel: &mut [T],
) {
    let depth_len = depth_end - depth;
    for (index, first) in (0..n).step_by(width).enumerate() {
        let columns = width.min(n - first);
        let target = &mut panel[index * depth_len * width..][..depth_len * width];
        for (p, row) in target.chunks_exact_mut(width).enumerate() {
            let start = (depth + p) * b_row_stride + first * b_column_stride;
            if b_column_stride == 1 && columns == width {
                // A constant length: a few vector moves, not a call to `memmove`.
                row.copy_from_slice(&b[start..start + width]);
                continue;
            }
            if b_column_stride == 1 {
                row[..columns].copy_from_slice(&b[start..start + columns]);
            } else {
                for (column, value) in row[..columns].iter_mut().enumerate() {
                    *value = b[start + column * b_column_stride];
                }
            }
            row[columns..].fill(T::zero());
        }
    }
}

/// `C (+)= A B^T` with `A`, `B` and `C` row-major (unit column strides).
pub struct Nt<'a, T> {
    /// Rows of `C` and `A`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// The elements of `A`.
    pub a: &'a [T],
    /// Distance between rows of `A`.
    pub a_row_stride: usize,
    /// The elements of `B`.
    pub b: &'a [T],
    /// Distance between rows of `B`.
    pub b_row_stride: usize,
    /// The elements of `C`.
    pub c: &'a mut [T],
    /// Distance between rows of `C`.
    pub c_row_stride: usize,
    /// Add to `C` instead of overwriting it.
    pub add: bool,
}

/// The largest offset of a strided `rows x columns` view, `None` on overflow.
fn last_offset(
    rows: usize,
    columns: usize,
    row_stride: usize,
    column_stride: usize,
) -> Option<usize> {
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((columns - 1).checked_mul(column_stride)?)
}

fn fits(len: usize, rows: usize, columns: usize, row_stride: usize, column_stride: usize) -> bool {
    matches!(last_offset(rows, columns, row_stride, column_stride), Some(last) if last < len)
}

impl<T> Nn<'_, T> {
    /// Every offset the kernels of the family `isa` touch is inside its slice, and `C`'s
    /// rows do not overlap.
    pub(super) fn check(&self, isa: Isa) -> bool {
        self.m > 0
            && self.n > 0
            && self.k > 0
            && (self.m == 1 || self.c_row_stride >= self.n)
            && fits(
                self.a.len(),
                self.m,
                self.k,
                self.a_row_stride,
                self.a_column_stride,
            )
            && fits(
                self.b.len(),
                self.k,
                self.n,
                self.b_row_stride,
                self.b_column_stride,
            )
            && fits(self.c.len(), self.m, self.n, self.c_row_stride, 1)
            && match &self.panel {
                Panel::InPlace => self.b_column_stride == 1,
                Panel::Scratch(panel) => panel.len() >= nn_panel_len::<T>(isa, self.n, self.k),
                Panel::Packed(packed) => packed.len() >= nn_packed_len::<T>(isa, self.n, self.k),
            }
    }
}

impl<T> Nt<'_, T> {
    /// Every offset the kernels touch is inside its slice, and `C`'s rows do not overlap.
    pub(super) fn check(&self) -> bool {
        self.m > 0
            && self.n > 0
            && self.k > 0
            && (self.m == 1 || self.c_row_stride >= self.n)
            && fits(self.a.len(), self.m, self.k, self.a_row_stride, 1)
            && fits(self.b.len(), self.n, self.k, self.b_row_stride, 1)
            && fits(self.c.len(), self.m, self.n, self.c_row_stride, 1)
    }
}

/// The scalar types with micro-kernels: f32 and f64.
pub trait Kernels: Scalar {
    /// Runs `problem`; `false` (and nothing written) when its views do not fit.
    fn nn(problem: Nn<'_, Self>) -> bool;
    /// Runs `problem`; `false` (and nothing written) when its views do not fit.
    fn nt(problem: Nt<'_, Self>) -> bool;
    /// What `pack_panels` writes for a `B` whose rows are contiguous columns of memory
    /// (`B[p][j]` at `b[p + j * b_column_stride]`: the transpose of a row-major matrix),
    /// with the SIMD transposes of the family `isa` (panels as wide as its
    /// [`panel_width`]); `false` (nothing written) for the portable family or without
    /// the instructions.
    #[doc(hidden)]
    fn pack_transposed(
        isa: Isa,
        b: &[Self],
        b_column_stride: usize,
        n: usize,
        depth: usize,
        depth_end: usize,
        panel: &mut [Self],
    ) -> bool;
}

/// Plain loops (no FMA): the path when the CPU lacks AVX2 or FMA, or is not x86-64.
mod plain {
    use super::{Nn, Nt, NN_DEPTH_BLOCK, NT_DEPTH_BLOCK};
    use pcnet_core::Scalar;

    pub(super) fn nn<T: Scalar>(p: Nn<'_, T>) {
        let Nn {
            m,
            n,
            k,
            a,
            a_row_stride,
            a_column_stride,
            b,
            b_row_stride,
            b_column_stride,
            c,
            c_row_stride,
            add,
            panel: _,
        } = p;
        for depth in (0..k).step_by(NN_DEPTH_BLOCK) {
            let depth_end = (depth + NN_DEPTH_BLOCK).min(k);
            let add = add || depth > 0;
            for i in 0..m {
                let row = &mut c[i * c_row_stride..][..n];
                if !add {
                    row.fill(T::zero());
                }
                for q in depth..depth_end {
                    let factor = a[i * a_row_stride + q * a_column_stride];
                    let start = q * b_row_stride;
                    for (j, out) in row.iter_mut().enumerate() {
                        *out = *out + factor * b[start + j * b_column_stride];
                    }
                }
            }
        }
    }

    pub(super) fn nt<T: Scalar>(p: Nt<'_, T>) {
        let Nt {
            m,
            n,
            k,
            a,
            a_row_stride,
            b,
            b_row_stride,
            c,
            c_row_stride,
            add,
        } = p;
        for depth in (0..k).step_by(NT_DEPTH_BLOCK) {
            let depth_end = (depth + NT_DEPTH_BLOCK).min(k);
            let add = add || depth > 0;
            for i in 0..m {
                let a_row = &a[i * a_row_stride..][depth..depth_end];
                for j in 0..n {
                    let b_row = &b[j * b_row_stride..][depth..depth_end];
                    let mut sum = T::zero();
                    for (&x, &y) in a_row.iter().zip(b_row) {
                        sum = sum + x * y;
                    }
                    let out = &mut c[i * c_row_stride + j];
                    *out = if add { *out + sum } else { sum };
                }
            }
        }
    }
}

/// The AVX2 + FMA kernels for one scalar type, generated for f32 and f64.
#[cfg(target_arch = "x86_64")]
macro_rules! avx2_kernels {
    (
        $module:ident, $t:ty, $lanes:expr, $vector:ty,
        $zero:ident, $broadcast:ident, $load:ident, $store:ident, $fma:ident, $add:ident,
        $hsum:ident, $hsum4:ident
    ) => {
        mod $module {
            use super::$hsum4;
            use super::{
                avx2_panel_width, pack_panels, Isa, Nn, Nt, Panel, NN_DEPTH_BLOCK, NN_ROW_BLOCK,
                NT_DEPTH_BLOCK, NT_ROW_BLOCK,
            };
            use core::arch::x86_64::*;

            const LANES: usize = $lanes;

            /// A tile of `R` rows x `V` vectors of `C` over `p` in `0..depth`.
            ///
            /// # Safety
            /// AVX2 and FMA are available; for i < R, p < depth and j < V * LANES,
            /// `a + i * ars + p * acs`, `b + p * brs + j` and `c + i * crs + j` are in
            /// bounds of their slices.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_tile<const R: usize, const V: usize>(
                depth: usize,
                a: *const $t,
                ars: usize,
                acs: usize,
                b: *const $t,
                brs: usize,
                c: *mut $t,
                crs: usize,
                add: bool,
            ) {
                let mut acc: [[$vector; V]; R] = [[$zero(); V]; R];
                for p in 0..depth {
                    let row = b.add(p * brs);
                    let mut bv: [$vector; V] = [$zero(); V];
                    for v in 0..V {
                        bv[v] = $load(row.add(v * LANES));
                    }
                    for i in 0..R {
                        let factor = $broadcast(*a.add(i * ars + p * acs));
                        for v in 0..V {
                            acc[i][v] = $fma(factor, bv[v], acc[i][v]);
                        }
                    }
                }
                for i in 0..R {
                    for v in 0..V {
                        let out = c.add(i * crs + v * LANES);
                        let sum = if add {
                            $add($load(out), acc[i][v])
                        } else {
                            acc[i][v]
                        };
                        $store(out, sum);
                    }
                }
            }

            /// Column `j` of rows `0..rows` of `C` (a column after the last full vector).
            ///
            /// # Safety
            /// As [`nn_tile`] for i < rows and the column `j`.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_column(
                rows: usize,
                j: usize,
                depth: usize,
                a: *const $t,
                ars: usize,
                acs: usize,
                b: *const $t,
                brs: usize,
                c: *mut $t,
                crs: usize,
                add: bool,
            ) {
                for i in 0..rows {
                    let mut sum: $t = 0.0;
                    for p in 0..depth {
                        sum = (*a.add(i * ars + p * acs)).mul_add(*b.add(p * brs + j), sum);
                    }
                    let out = c.add(i * crs + j);
                    *out = if add { *out + sum } else { sum };
                }
            }

            /// Rows `first..first + R` of `C`, every column, over `p` in
            /// `depth..depth_end`, reading `B` where it is (unit column stride).
            ///
            /// # Safety
            /// AVX2 and FMA are available and `problem` passed [`Nn::check`].
            #[target_feature(enable = "avx2,fma")]
            unsafe fn nn_rows_in_place<const R: usize, const V: usize>(
                problem: &mut Nn<'_, $t>,
                first: usize,
                depth: usize,
                depth_end: usize,
                add: bool,
            ) {
                let (ars, acs, brs, crs) = (
                    problem.a_row_stride,
                    problem.a_column_stride,
                    problem.b_row_stride,
                    problem.c_row_stride,
                );
                let a = problem.a.as_ptr().add(first * ars + depth * acs);
                let b = problem.b.as_ptr().add(depth * brs);
                let c = problem.c.as_mut_ptr().add(first * crs);
                let kc = depth_end - depth;
                let width = V * LANES;
                let full = problem.n / width * width;
                let mut j = 0;
                while j < full {
                    nn_tile::<R, V>(kc, a, ars, acs, b.add(j), brs, c.add(j), crs, add);
                    j += width;
                }
                // Whole vectors left over, then single columns.
                while j + LANES <= problem.n {
                    nn_tile::<R, 1>(kc, a, ars, acs, b.add(j), brs, c.add(j), crs, add);
                    j += LANES;
                }
                while j < problem.n {
                    nn_column(R, j, kc, a, ars, acs, b, brs, c, crs, add);
                    j += 1;
                }
            }

            /// Rows `first..first + R` (`R <= 6`) of `C`, every column, over `p` in
            /// `depth..depth_end`, reading `B` from the packed panels.
            ///
            /// `a_copy` is given exactly when `A`'s columns are not contiguous; `A`'s rows
            /// are then copied into it first.
            ///
            /// # Safety
            /// AVX2 and FMA are available, `problem` passed [`Nn::check`], and `panel`
            /// points to rows `depth..depth_end` of `B` packed by `pack_panels`.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_rows_packed<const R: usize>(
                problem: &mut Nn<'_, $t>,
                panel: *const $t,
                a_copy: Option<&mut [$t; 6 * NN_DEPTH_BLOCK]>,
                first: usize,
                depth: usize,
                depth_end: usize,
                add: bool,
            ) {
                const WIDTH: usize = avx2_panel_width::<$t>();
                let (ars, acs, crs) = (
                    problem.a_row_stride,
                    problem.a_column_stride,
                    problem.c_row_stride,
                );
                let mut a = problem.a.as_ptr().add(first * ars + depth * acs);
                let c = problem.c.as_mut_ptr().add(first * crs);
                let kc = depth_end - depth;
                let n = problem.n;
                // `A`'s rows copied to the stack, `R` values per `p` side by side, when
                // its columns are not contiguous: a transposed `A` (the weight gradient
                // `E^T X`) steps a whole row of `E` per `p`, and at strides of a multiple
                // of 1 KiB those reads fall into a handful of L1 sets and miss. The
                // same products in the same order, so the same bits.
                let (ars, acs) = match a_copy {
                    Some(copy) => {
                        for p in 0..kc {
                            for i in 0..R {
                                copy[p * R + i] = *a.add(i * ars + p * acs);
                            }
                        }
                        a = copy.as_ptr();
                        (1, R)
                    }
                    None => (ars, acs),
                };
                for (index, j) in (0..n).step_by(WIDTH).enumerate() {
                    let b = panel.add(index * kc * WIDTH);
                    let columns = WIDTH.min(n - j);
                    if columns == WIDTH {
                        nn_tile::<R, 2>(kc, a, ars, acs, b, WIDTH, c.add(j), crs, add);
                    } else {
                        // The last, partial panel: through a full tile on the stack.
                        let mut tile = [0.0 as $t; 6 * WIDTH];
                        if add {
                            for i in 0..R {
                                for jj in 0..columns {
                                    tile[i * WIDTH + jj] = *c.add(i * crs + j + jj);
                                }
                            }
                        }
                        nn_tile::<R, 2>(kc, a, ars, acs, b, WIDTH, tile.as_mut_ptr(), WIDTH, add);
                        for i in 0..R {
                            for jj in 0..columns {
                                *c.add(i * crs + j + jj) = tile[i * WIDTH + jj];
                            }
                        }
                    }
                }
            }

            /// # Safety
            /// AVX2 and FMA are available and `problem` passed [`Nn::check`].
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn nn(mut problem: Nn<'_, $t>) {
                let (m, k) = (problem.m, problem.k);
                let padded =
                    problem.n.div_ceil(avx2_panel_width::<$t>()) * avx2_panel_width::<$t>();
                // Stack room for 6 rows of a transposed `A` over one `k` block, only when
                // `A` is transposed and the panels path below will copy it.
                let copy_a =
                    problem.a_column_stride != 1 && !matches!(problem.panel, Panel::InPlace);
                let mut a_rows = copy_a.then(|| [0.0 as $t; 6 * NN_DEPTH_BLOCK]);
                for depth in (0..k).step_by(NN_DEPTH_BLOCK) {
                    let depth_end = (depth + NN_DEPTH_BLOCK).min(k);
                    let add = problem.add || depth > 0;
                    let panel = match &mut problem.panel {
                        Panel::InPlace => None,
                        Panel::Scratch(panel) => {
                            pack_panels(
                                Isa::Avx2,
                                problem.b,
                                problem.b_row_stride,
                                problem.b_column_stride,
                                problem.n,
                                depth,
                                depth_end,
                                panel,
                            );
                            Some(panel.as_ptr())
                        }
                        Panel::Packed(packed) => Some(packed.as_ptr().add(depth * padded)),
                    };
                    if let Some(panel) = panel {
                        macro_rules! rows {
                            ($r:literal, $i:expr) => {
                                nn_rows_packed::<$r>(
                                    &mut problem,
                                    panel,
                                    a_rows.as_mut(),
                                    $i,
                                    depth,
                                    depth_end,
                                    add,
                                )
                            };
                        }
                        for block in (0..m).step_by(NN_ROW_BLOCK) {
                            let block_end = (block + NN_ROW_BLOCK).min(m);
                            let mut i = block;
                            while i + 6 <= block_end {
                                rows!(6, i);
                                i += 6;
                            }
                            match block_end - i {
                                0 => {}
                                1 => rows!(1, i),
                                2 => rows!(2, i),
                                3 => rows!(3, i),
                                4 => rows!(4, i),
                                _ => rows!(5, i),
                            }
                        }
                        continue;
                    }
                    if m == 1 {
                        // One row: wide tiles keep eight independent sums in flight.
                        nn_rows_in_place::<1, 8>(&mut problem, 0, depth, depth_end, add);
                        continue;
                    }
                    let mut i = 0;
                    while i + 6 <= m {
                        nn_rows_in_place::<6, 2>(&mut problem, i, depth, depth_end, add);
                        i += 6;
                    }
                    match m - i {
                        0 => {}
                        1 => nn_rows_in_place::<1, 4>(&mut problem, i, depth, depth_end, add),
                        2 => nn_rows_in_place::<2, 4>(&mut problem, i, depth, depth_end, add),
                        3 => nn_rows_in_place::<3, 2>(&mut problem, i, depth, depth_end, add),
                        4 => nn_rows_in_place::<4, 2>(&mut problem, i, depth, depth_end, add),
                        _ => nn_rows_in_place::<5, 2>(&mut problem, i, depth, depth_end, add),
                    }
                }
            }

            /// The lanes of `v` summed in a fixed order.
            #[target_feature(enable = "avx2,fma")]
            fn lane_sum(v: $vector) -> $t {
                super::$hsum(v)
            }

            /// A tile of `R` rows of `A` x `C` rows of `B`: `R * C` dot products over
            /// `p` in `depth..depth_end`, stored at `c + i * crs + j`.
            ///
            /// # Safety
            /// AVX2 and FMA are available; for i < R, j < C and p in the range,
            /// `a + i * ars + p`, `b + j * brs + p` and `c + i * crs + j` are in bounds.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nt_tile<const R: usize, const C: usize>(
                depth: usize,
                depth_end: usize,
                a: *const $t,
                ars: usize,
                b: *const $t,
                brs: usize,
                c: *mut $t,
                crs: usize,
                add: bool,
            ) {
                let mut acc: [[$vector; C]; R] = [[$zero(); C]; R];
                let vector_end = depth + (depth_end - depth) / LANES * LANES;
                let mut p = depth;
                while p < vector_end {
                    let mut av: [$vector; R] = [$zero(); R];
                    for i in 0..R {
                        av[i] = $load(a.add(i * ars + p));
                    }
                    for j in 0..C {
                        let bv = $load(b.add(j * brs + p));
                        for i in 0..R {
                            acc[i][j] = $fma(av[i], bv, acc[i][j]);
                        }
                    }
                    p += LANES;
                }
                for i in 0..R {
                    // Four columns' lanes summed together (a few shuffles for all four
                    // instead of a few for each), then any columns left one by one.
                    let mut sums = [0.0 as $t; C];
                    let mut j = 0;
                    while j + 4 <= C {
                        let four = $hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
                        sums[j..j + 4].copy_from_slice(&four);
                        j += 4;
                    }
                    while j < C {
                        sums[j] = lane_sum(acc[i][j]);
                        j += 1;
                    }
                    for (j, &lanes) in sums.iter().enumerate() {
                        let mut sum = lanes;
                        for q in vector_end..depth_end {
                            sum = (*a.add(i * ars + q)).mul_add(*b.add(j * brs + q), sum);
                        }
                        let out = c.add(i * crs + j);
                        *out = if add { *out + sum } else { sum };
                    }
                }
            }

            /// Rows `first..first + R` of `C`, every column, one `k` block.
            ///
            /// # Safety
            /// AVX2 and FMA are available and `problem` passed [`Nt::check`].
            #[target_feature(enable = "avx2,fma")]
            unsafe fn nt_rows<const R: usize, const C: usize>(
                problem: &mut Nt<'_, $t>,
                first: usize,
                depth: usize,
                depth_end: usize,
                add: bool,
            ) {
                let (ars, brs, crs) = (
                    problem.a_row_stride,
                    problem.b_row_stride,
                    problem.c_row_stride,
                );
                let a = problem.a.as_ptr().add(first * ars);
                let b = problem.b.as_ptr();
                let c = problem.c.as_mut_ptr().add(first * crs);
                let n = problem.n;
                let mut j = 0;
                while j + C <= n {
                    nt_tile::<R, C>(
                        depth,
                        depth_end,
                        a,
                        ars,
                        b.add(j * brs),
                        brs,
                        c.add(j),
                        crs,
                        add,
                    );
                    j += C;
                }
                while j < n {
                    nt_tile::<R, 1>(
                        depth,
                        depth_end,
                        a,
                        ars,
                        b.add(j * brs),
                        brs,
                        c.add(j),
                        crs,
                        add,
                    );
                    j += 1;
                }
            }

            /// # Safety
            /// AVX2 and FMA are available and `problem` passed [`Nt::check`].
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn nt(mut problem: Nt<'_, $t>) {
                let (m, k) = (problem.m, problem.k);
                for depth in (0..k).step_by(NT_DEPTH_BLOCK) {
                    let depth_end = (depth + NT_DEPTH_BLOCK).min(k);
                    let add = problem.add || depth > 0;
                    if m == 1 {
                        nt_rows::<1, 8>(&mut problem, 0, depth, depth_end, add);
                        continue;
                    }
                    for block in (0..m).step_by(NT_ROW_BLOCK) {
                        let block_end = (block + NT_ROW_BLOCK).min(m);
                        let mut i = block;
                        while i + 3 <= block_end {
                            nt_rows::<3, 4>(&mut problem, i, depth, depth_end, add);
                            i += 3;
                        }
                        match block_end - i {
                            0 => {}
                            1 => nt_rows::<1, 8>(&mut problem, i, depth, depth_end, add),
                            _ => nt_rows::<2, 4>(&mut problem, i, depth, depth_end, add),
                        }
                    }
                }
            }
        }
    };
}

/// The eight lanes of `v` summed as ((0+4)+(2+6)) + ((1+5)+(3+7)).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum_f32(v: core::arch::x86_64::__m256) -> f32 {
    use core::arch::x86_64::*;
    let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    let single = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
    _mm_cvtss_f32(single)
}

/// The four lanes of `v` summed as (0+2) + (1+3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum_f64(v: core::arch::x86_64::__m256d) -> f64 {
    use core::arch::x86_64::*;
    let halves = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    let single = _mm_add_sd(halves, _mm_unpackhi_pd(halves, halves));
    _mm_cvtsd_f64(single)
}

/// The lanes of each of four vectors summed: element `c` is vector `c`'s sum, as
/// ((0+1)+(2+3)) + ((4+5)+(6+7)).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum4_f32(
    v0: core::arch::x86_64::__m256,
    v1: core::arch::x86_64::__m256,
    v2: core::arch::x86_64::__m256,
    v3: core::arch::x86_64::__m256,
) -> [f32; 4] {
    use core::arch::x86_64::*;
    // Pairs, then quadruples, within each 128-bit half; then the two halves.
    let pairs = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    let sums = _mm_add_ps(
        _mm256_castps256_ps128(pairs),
        _mm256_extractf128_ps::<1>(pairs),
    );
    let mut out = [0.0; 4];
    // SAFETY: `out` holds four f32, the 16 bytes an unaligned store writes.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), sums) };
    out
}

/// The lanes of each of four vectors summed: element `c` is vector `c`'s sum, as
/// (0+1) + (2+3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum4_f64(
    v0: core::arch::x86_64::__m256d,
    v1: core::arch::x86_64::__m256d,
    v2: core::arch::x86_64::__m256d,
    v3: core::arch::x86_64::__m256d,
) -> [f64; 4] {
    use core::arch::x86_64::*;
    let low = _mm256_hadd_pd(v0, v1); // v0 01, v1 01, v0 23, v1 23
    let high = _mm256_hadd_pd(v2, v3); // v2 01, v3 01, v2 23, v3 23
    let sums = _mm256_add_pd(
        _mm256_permute2f128_pd::<0x20>(low, high),
        _mm256_permute2f128_pd::<0x31>(low, high),
    );
    let mut out = [0.0; 4];
    // SAFETY: `out` holds four f64, the 32 bytes an unaligned store writes.
    unsafe { _mm256_storeu_pd(out.as_mut_ptr(), sums) };
    out
}

/// `pack_panels` for a transposed `B` (`B[p][j]` at `b[p + j * column_stride]`), in
/// 8 x 8 blocks: eight columns' runs of eight `p` are loaded as vectors, transposed in
/// registers and stored as eight panel rows. Panel rows past `n` are zeros, and partial
/// blocks (the last `p` or the last columns) are copied one value at a time. `false`
/// (nothing written) when a slice is too short for the shape.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_transposed_f32(
    b: &[f32],
    column_stride: usize,
    n: usize,
    depth: usize,
    depth_end: usize,
    panel: &mut [f32],
) -> bool {
    use core::arch::x86_64::*;
    const LANES: usize = 8;
    const WIDTH: usize = 16;
    let depth_len = depth_end - depth;
    if n == 0 || depth_len == 0 {
        return true;
    }
    let panels = n.div_ceil(WIDTH);
    if panel.len() < panels * depth_len * WIDTH || !fits(b.len(), depth_end, n, 1, column_stride) {
        return false;
    }
    let vector_end = depth + depth_len / LANES * LANES;
    for q in 0..panels {
        let first = q * WIDTH;
        let columns = WIDTH.min(n - first);
        let target = &mut panel[q * depth_len * WIDTH..][..depth_len * WIDTH];
        if columns == WIDTH {
            for p in (depth..vector_end).step_by(LANES) {
                for half in 0..2 {
                    let mut rows = [_mm256_setzero_ps(); LANES];
                    for (jj, row) in rows.iter_mut().enumerate() {
                        let start = (first + half * LANES + jj) * column_stride + p;
                        // SAFETY: a bounds-checked subslice of eight values.
                        *row = unsafe { _mm256_loadu_ps(b[start..start + LANES].as_ptr()) };
                    }
                    let t0 = _mm256_unpacklo_ps(rows[0], rows[1]);
                    let t1 = _mm256_unpackhi_ps(rows[0], rows[1]);
                    let t2 = _mm256_unpacklo_ps(rows[2], rows[3]);
                    let t3 = _mm256_unpackhi_ps(rows[2], rows[3]);
                    let t4 = _mm256_unpacklo_ps(rows[4], rows[5]);
                    let t5 = _mm256_unpackhi_ps(rows[4], rows[5]);
                    let t6 = _mm256_unpacklo_ps(rows[6], rows[7]);
                    let t7 = _mm256_unpackhi_ps(rows[6], rows[7]);
                    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                    // Column `pp` of the block: the eight rows' values at p + pp.
                    let columns_of_block = [
                        _mm256_permute2f128_ps::<0x20>(s0, s4),
                        _mm256_permute2f128_ps::<0x20>(s1, s5),
                        _mm256_permute2f128_ps::<0x20>(s2, s6),
                        _mm256_permute2f128_ps::<0x20>(s3, s7),
                        _mm256_permute2f128_ps::<0x31>(s0, s4),
                        _mm256_permute2f128_ps::<0x31>(s1, s5),
                        _mm256_permute2f128_ps::<0x31>(s2, s6),
                        _mm256_permute2f128_ps::<0x31>(s3, s7),
                    ];
                    for (pp, column) in columns_of_block.iter().enumerate() {
                        let start = (p - depth + pp) * WIDTH + half * LANES;
                        let out = &mut target[start..start + LANES];
                        // SAFETY: a bounds-checked subslice of eight values.
                        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *column) };
                    }
                }
            }
        }
        let vector_rows = if columns == WIDTH { vector_end } else { depth };
        for p in vector_rows..depth_end {
            let row = &mut target[(p - depth) * WIDTH..][..WIDTH];
            for (jj, value) in row[..columns].iter_mut().enumerate() {
                *value = b[(first + jj) * column_stride + p];
            }
            row[columns..].fill(0.0);
        }
    }
    true
}

/// [`pack_transposed_f32`] for f64: 4 x 4 blocks, panels of eight columns.
///
/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_transposed_f64(
    b: &[f64],
    column_stride: usize,
    n: usize,
    depth: usize,
    depth_end: usize,
    panel: &mut [f64],
) -> bool {
    use core::arch::x86_64::*;
    const LANES: usize = 4;
    const WIDTH: usize = 8;
    let depth_len = depth_end - depth;
    if n == 0 || depth_len == 0 {
        return true;
    }
    let panels = n.div_ceil(WIDTH);
    if panel.len() < panels * depth_len * WIDTH || !fits(b.len(), depth_end, n, 1, column_stride) {
        return false;
    }
    let vector_end = depth + depth_len / LANES * LANES;
    for q in 0..panels {
        let first = q * WIDTH;
        let columns = WIDTH.min(n - first);
        let target = &mut panel[q * depth_len * WIDTH..][..depth_len * WIDTH];
        if columns == WIDTH {
            for p in (depth..vector_end).step_by(LANES) {
                for half in 0..2 {
                    let mut rows = [_mm256_setzero_pd(); LANES];
                    for (jj, row) in rows.iter_mut().enumerate() {
                        let start = (first + half * LANES + jj) * column_stride + p;
                        // SAFETY: a bounds-checked subslice of four values.
                        *row = unsafe { _mm256_loadu_pd(b[start..start + LANES].as_ptr()) };
                    }
                    let t0 = _mm256_unpacklo_pd(rows[0], rows[1]);
                    let t1 = _mm256_unpackhi_pd(rows[0], rows[1]);
                    let t2 = _mm256_unpacklo_pd(rows[2], rows[3]);
                    let t3 = _mm256_unpackhi_pd(rows[2], rows[3]);
                    let columns_of_block = [
                        _mm256_permute2f128_pd::<0x20>(t0, t2),
                        _mm256_permute2f128_pd::<0x20>(t1, t3),
                        _mm256_permute2f128_pd::<0x31>(t0, t2),
                        _mm256_permute2f128_pd::<0x31>(t1, t3),
                    ];
                    for (pp, column) in columns_of_block.iter().enumerate() {
                        let start = (p - depth + pp) * WIDTH + half * LANES;
                        let out = &mut target[start..start + LANES];
                        // SAFETY: a bounds-checked subslice of four values.
                        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), *column) };
                    }
                }
            }
        }
        let vector_rows = if columns == WIDTH { vector_end } else { depth };
        for p in vector_rows..depth_end {
            let row = &mut target[(p - depth) * WIDTH..][..WIDTH];
            for (jj, value) in row[..columns].iter_mut().enumerate() {
                *value = b[(first + jj) * column_stride + p];
            }
            row[columns..].fill(0.0);
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
avx2_kernels!(
    avx2_f32,
    f32,
    8,
    __m256,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    hsum_f32,
    hsum4_f32
);
#[cfg(target_arch = "x86_64")]
avx2_kernels!(
    avx2_f64,
    f64,
    4,
    __m256d,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd,
    hsum_f64,
    hsum4_f64
);

/// Whether this CPU runs the AVX2 + FMA kernels (detected once, then cached by std).
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

macro_rules! kernels {
    ($t:ty, $module:ident, $transpose:ident) => {
        impl Kernels for $t {
            fn nn(problem: Nn<'_, $t>) -> bool {
                let isa = Isa::active();
                if isa == Isa::Avx512 {
                    // Checks `problem` itself (its own panel lengths).
                    return <$t as super::avx512::Avx512Kernels>::nn(problem);
                }
                if !problem.check(isa) {
                    return false;
                }
                #[cfg(target_arch = "x86_64")]
                if isa == Isa::Avx2 {
                    // SAFETY: the CPU has AVX2 and FMA (`Isa::active` detected them), and
                    // `check` proved that for every i < m, p < k, j < n the offsets
                    // i * a_row_stride + p * a_column_stride, p * b_row_stride + j and
                    // i * c_row_stride + j are inside `a`, `b` and `c`, which are the only
                    // addresses the kernels form; `c` is an exclusive borrow, so it
                    // aliases neither input, and its rows do not overlap.
                    unsafe { $module::nn(problem) };
                    return true;
                }
                plain::nn(problem);
                true
            }

            fn nt(problem: Nt<'_, $t>) -> bool {
                let isa = Isa::active();
                if isa == Isa::Avx512 {
                    return <$t as super::avx512::Avx512Kernels>::nt(problem);
                }
                if !problem.check() {
                    return false;
                }
                #[cfg(target_arch = "x86_64")]
                if isa == Isa::Avx2 {
                    // SAFETY: as in `nn`, with offsets i * a_row_stride + p,
                    // j * b_row_stride + p and i * c_row_stride + j.
                    unsafe { $module::nt(problem) };
                    return true;
                }
                plain::nt(problem);
                true
            }

            fn pack_transposed(
                isa: Isa,
                b: &[$t],
                b_column_stride: usize,
                n: usize,
                depth: usize,
                depth_end: usize,
                panel: &mut [$t],
            ) -> bool {
                if isa == Isa::Avx512 {
                    return <$t as super::avx512::Avx512Kernels>::pack_transposed(
                        b,
                        b_column_stride,
                        n,
                        depth,
                        depth_end,
                        panel,
                    );
                }
                #[cfg(target_arch = "x86_64")]
                if isa == Isa::Avx2 && simd_available() {
                    // SAFETY: the CPU has AVX2 (just detected); the function reads and
                    // writes only through bounds-checked subslices.
                    return unsafe { $transpose(b, b_column_stride, n, depth, depth_end, panel) };
                }
                let _ = (b, b_column_stride, n, depth, depth_end, panel);
                false
            }
        }
    };
}
kernels!(f32, avx2_f32, pack_transposed_f32);
kernels!(f64, avx2_f64, pack_transposed_f64);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use core::arch::x86_64::*;

    /// Element `c` of the four-vector sums is vector `c`'s lanes added (small integers,
    /// so exact in any order): a wrong shuffle would swap or mix vectors.
    #[test]
    fn four_lane_sums_keep_each_vector_in_its_place() {
        if !simd_available() {
            return;
        }
        let lanes = |c: usize, width: usize| -> Vec<f64> {
            (0..width)
                .map(|lane| (c * 100 + lane * lane) as f64)
                .collect()
        };
        let expected =
            |width: usize| -> Vec<f64> { (0..4).map(|c| lanes(c, width).iter().sum()).collect() };
        let f32_lanes: Vec<Vec<f32>> = (0..4)
            .map(|c| lanes(c, 8).iter().map(|&v| v as f32).collect())
            .collect();
        let f64_lanes: Vec<Vec<f64>> = (0..4).map(|c| lanes(c, 4)).collect();
        // SAFETY: AVX2 and FMA are available (checked above); each load reads 8 f32 or
        // 4 f64 from a vector of that length.
        let (sums_f32, sums_f64) = unsafe {
            let v: Vec<__m256> = f32_lanes
                .iter()
                .map(|l| _mm256_loadu_ps(l.as_ptr()))
                .collect();
            let w: Vec<__m256d> = f64_lanes
                .iter()
                .map(|l| _mm256_loadu_pd(l.as_ptr()))
                .collect();
            (
                hsum4_f32(v[0], v[1], v[2], v[3]),
                hsum4_f64(w[0], w[1], w[2], w[3]),
            )
        };
        let as_f64: Vec<f64> = sums_f32.iter().map(|&v| v as f64).collect();
        assert_eq!(as_f64, expected(8));
        assert_eq!(sums_f64.to_vec(), expected(4));
    }

    /// The SIMD transposing pack writes exactly what the value-by-value pack writes, for
    /// full and partial panels, `p` ranges that do and do not fill whole 8 x 8 (4 x 4)
    /// blocks, a `depth` offset, and padded strides.
    fn transposed_pack_matches<T: Kernels>() {
        if !simd_available() {
            return;
        }
        let cases: [(usize, usize, usize); 5] =
            [(16, 8, 0), (37, 29, 3), (8, 4, 0), (5, 300, 1), (40, 17, 0)];
        for (n, k, stride_pad) in cases {
            let stride = k + stride_pad;
            let b: Vec<T> = (0..n * stride)
                .map(|i| T::from_f64(i as f64 + 0.5))
                .collect();
            for (depth, depth_end) in [(0, k), (k / 3, k), (1, k.min(1 + 11))] {
                let width = panel_width::<T>(Isa::Avx2);
                let len = (depth_end - depth) * n.div_ceil(width) * width;
                let mut simd = vec![T::nan(); len];
                let mut by_value = vec![T::nan(); len];
                assert!(T::pack_transposed(
                    Isa::Avx2,
                    &b,
                    stride,
                    n,
                    depth,
                    depth_end,
                    &mut simd
                ));
                pack_panels_by_value(width, &b, 1, stride, n, depth, depth_end, &mut by_value);
                let bits = |v: &[T]| {
                    v.iter()
                        .map(|&x| Scalar::to_f64(x).to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    bits(&simd),
                    bits(&by_value),
                    "n {n}, k {k}, {depth}..{depth_end}"
                );
            }
        }
    }

    #[test]
    fn transposed_pack_matches_the_value_by_value_pack() {
        transposed_pack_matches::<f32>();
        transposed_pack_matches::<f64>();
    }
}
