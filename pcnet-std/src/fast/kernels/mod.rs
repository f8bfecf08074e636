//! The matrix-product micro-kernels behind [`gemm()`](super::gemm), one module per
//! instruction-set family, all behind the safe interface of this module:
//!
//! | module | family | processor |
//! |---|---|---|
//! | `portable` | [`Isa::Portable`] | any (plain loops, no FMA) |
//! | `avx2` | [`Isa::Avx2`] | x86-64 with AVX2 and FMA |
//! | `avx512` | [`Isa::Avx512`] | x86-64 with AVX-512F |
//!
//! A [`Family`] is a proof that the processor runs a family: it is only made by
//! [`Family::new`] after run-time detection, and [`super::Fast`] stores one, chosen at
//! construction. The per-scalar [`Kernels`] trait dispatches on it with one `match`;
//! the callers (matmul.rs, conv.rs, packed.rs) never name an instruction set, so a family
//! (AVX-512, an aarch64 NEON one) is added here and in its own module without touching
//! them. `unsafe` lives in the ISA modules only, for SIMD loads and stores whose offsets
//! [`Nn::check`] and [`Nt::check`] proved in bounds before any kernel runs.
//!
//! Two product forms cover every product pc computes:
//!
//! | form | computes | operands in memory |
//! |---|---|---|
//! | [`Nn`] | `C[i][j] (+)= sum_p A[i][p] B[p][j]` | `B` and `C` rows contiguous, `A` any strides |
//! | [`Nt`] | `C[i][j] (+)= sum_p A[i][p] B[j][p]` | rows of `A`, `B` and `C` contiguous |
//!
//! `Nn` keeps a tile of `C` in registers, broadcasts one element of `A` per row and loads
//! `B`'s row as vectors; `Nt` computes a tile of dot products with vectors along `p` and
//! sums each vector's lanes at the end. Both walk `p` in blocks so that the panels they
//! reuse stay in the L1 and L2 caches. `Nn` reads `B` in place, or copies each `k` block
//! of it into contiguous panels first (given scratch; a transposed `B` by SIMD transposes
//! where the family has them), or reads panels packed before the call ([`Panel`]).
//!
//! The summation order of every element depends on the family, `k`, the block sizes and
//! the column position only: never on timing, threads or the other elements.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod avx512;
mod portable;

use super::Isa;
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

/// The scratch an [`Nn`] product of `n` columns and depth `k` needs to pack `B` in
/// panels of `width` columns (what [`Family::scratch_len`] is for the portable and AVX2
/// families).
pub fn nn_panel_len(width: usize, n: usize, k: usize) -> usize {
    k.min(NN_DEPTH_BLOCK) * n.div_ceil(width) * width
}

/// The values every `k` block of a `k x n` matrix `B` packed by [`pack_depth_block`] in
/// panels of `width` columns take, one block after the other (block `d` from `d * n`,
/// rounded up to whole panels).
pub fn nn_packed_len(width: usize, n: usize, k: usize) -> usize {
    k * n.div_ceil(width) * width
}

/// Packs rows `depth..depth_end` of the `k x n` matrix `B` (strides `b_row_stride`,
/// `b_column_stride`) into `packed`: what [`Panel::Scratch`] holds while the kernels work
/// on that `k` block, and what [`Panel::Packed`] holds from `depth * n` (rounded up to
/// whole panels) on. `false` (nothing written) when the view or `packed` is too small.
#[allow(clippy::too_many_arguments)]
pub fn pack_depth_block<T: Kernels>(
    family: Family,
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
    let width = family.panel_width::<T>();
    let padded = n.div_ceil(width) * width;
    if depth_end > k
        || !fits(b.len(), k, n, b_row_stride, b_column_stride)
        || packed.len() < (depth_end - depth) * padded
    {
        return false;
    }
    pack_panels(
        family,
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
/// `q W..(q + 1) W` (`W` = [`Family::panel_width`]) row after row, zeros past column `n`.
#[allow(clippy::too_many_arguments)]
fn pack_panels<T: Kernels>(
    family: Family,
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
        && T::pack_transposed(family, b, b_column_stride, n, depth, depth_end, panel)
    {
        return;
    }
    let width = family.panel_width::<T>();
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

/// [`pack_panels`] one value at a time (any strides), in panels of `width` columns.
#[allow(clippy::too_many_arguments)]
fn pack_panels_by_value<T: Scalar>(
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
    /// Every offset the kernels of `family` touch is inside its slice, and `C`'s rows do
    /// not overlap.
    fn check(&self, family: Family) -> bool {
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
                Panel::Scratch(panel) => panel.len() >= family.scratch_len::<T>(self.n, self.k),
                Panel::Packed(packed) => packed.len() >= family.packed_len::<T>(self.n, self.k),
            }
    }
}

impl<T> Nt<'_, T> {
    /// Every offset the kernels touch is inside its slice, and `C`'s rows do not overlap.
    fn check(&self) -> bool {
        self.m > 0
            && self.n > 0
            && self.k > 0
            && (self.m == 1 || self.c_row_stride >= self.n)
            && fits(self.a.len(), self.m, self.k, self.a_row_stride, 1)
            && fits(self.b.len(), self.n, self.k, self.b_row_stride, 1)
            && fits(self.c.len(), self.m, self.n, self.c_row_stride, 1)
    }
}

/// A kernel family this processor runs: made only by [`Family::new`], after run-time
/// detection, so holding one proves that its instructions exist (the ISA modules' tokens
/// cannot be made any other way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Family(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Token),
    Avx512(avx512::Token),
}

impl Family {
    /// The portable family (every processor).
    pub const PORTABLE: Family = Family(Kind::Portable);

    /// `isa`'s kernels, if this build has them and this processor runs them.
    pub fn new(isa: Isa) -> Option<Family> {
        match isa {
            Isa::Portable => Some(Family::PORTABLE),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::Token::detect().map(|token| Family(Kind::Avx2(token))),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 => None,
            Isa::Avx512 => avx512::Token::detect().map(|token| Family(Kind::Avx512(token))),
        }
    }

    /// The instruction-set family.
    pub fn isa(self) -> Isa {
        match self.0 {
            Kind::Portable => Isa::Portable,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2(_) => Isa::Avx2,
            Kind::Avx512(_) => Isa::Avx512,
        }
    }

    /// The columns of one packed panel of `B` for this family's `Nn` kernels (two SIMD
    /// vectors: 16 f32 or 8 f64 for AVX2 and the portable family, which packs the same
    /// way; 32 f32 or 16 f64 for AVX-512). Packed panels are read by the family that
    /// packed them.
    pub const fn panel_width<T>(self) -> usize {
        match self.0 {
            Kind::Avx512(_) => avx512::panel_width::<T>(),
            _ => 64 / core::mem::size_of::<T>(),
        }
    }

    /// The scratch an [`Nn`] product of `n` columns and depth `k` needs to pack `B`
    /// ([`Panel::Scratch`]) for this family.
    pub fn scratch_len<T>(self, n: usize, k: usize) -> usize {
        match self.0 {
            Kind::Avx512(_) => avx512::nn_panel_len::<T>(n, k),
            _ => nn_panel_len(self.panel_width::<T>(), n, k),
        }
    }

    /// The values every `k` block of a `k x n` matrix `B` packed for this family take
    /// ([`Panel::Packed`], [`pack_depth_block`]).
    pub fn packed_len<T>(self, n: usize, k: usize) -> usize {
        nn_packed_len(self.panel_width::<T>(), n, k)
    }
}

/// The scalar types with micro-kernels: f32 and f64.
pub trait Kernels: Scalar {
    /// Runs `problem` on `family`'s kernels; `false` (and nothing written) when its views
    /// do not fit.
    fn nn(family: Family, problem: Nn<'_, Self>) -> bool;
    /// Runs `problem` on `family`'s kernels; `false` (and nothing written) when its views
    /// do not fit.
    fn nt(family: Family, problem: Nt<'_, Self>) -> bool;
    /// What `pack_panels` writes for a `B` whose rows are contiguous columns of memory
    /// (`B[p][j]` at `b[p + j * b_column_stride]`: the transpose of a row-major matrix),
    /// with the family's SIMD transposes; `false` (nothing written) for a family without
    /// them (portable) or slices too short.
    #[doc(hidden)]
    fn pack_transposed(
        family: Family,
        b: &[Self],
        b_column_stride: usize,
        n: usize,
        depth: usize,
        depth_end: usize,
        panel: &mut [Self],
    ) -> bool;
}

macro_rules! kernels {
    ($t:ty, $avx2:ident) => {
        impl Kernels for $t {
            fn nn(family: Family, problem: Nn<'_, $t>) -> bool {
                match family.0 {
                    Kind::Portable => portable::nn(problem, family),
                    #[cfg(target_arch = "x86_64")]
                    Kind::Avx2(token) => avx2::$avx2::nn(token, problem),
                    Kind::Avx512(_) => <$t as avx512::Avx512Kernels>::nn(problem),
                }
            }

            fn nt(family: Family, problem: Nt<'_, $t>) -> bool {
                match family.0 {
                    Kind::Portable => portable::nt(problem),
                    #[cfg(target_arch = "x86_64")]
                    Kind::Avx2(token) => avx2::$avx2::nt(token, problem),
                    Kind::Avx512(_) => <$t as avx512::Avx512Kernels>::nt(problem),
                }
            }

            fn pack_transposed(
                family: Family,
                b: &[$t],
                b_column_stride: usize,
                n: usize,
                depth: usize,
                depth_end: usize,
                panel: &mut [$t],
            ) -> bool {
                match family.0 {
                    Kind::Portable => {
                        let _ = (b, b_column_stride, n, depth, depth_end, panel);
                        false
                    }
                    #[cfg(target_arch = "x86_64")]
                    Kind::Avx2(token) => avx2::$avx2::pack_transposed(
                        token,
                        b,
                        b_column_stride,
                        n,
                        depth,
                        depth_end,
                        panel,
                    ),
                    Kind::Avx512(_) => <$t as avx512::Avx512Kernels>::pack_transposed(
                        b,
                        b_column_stride,
                        n,
                        depth,
                        depth_end,
                        panel,
                    ),
                }
            }
        }
    };
}
kernels!(f32, avx2_f32);
kernels!(f64, avx2_f64);
