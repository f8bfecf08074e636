//! The AVX-512 kernel family: the micro-kernels of `avx2.rs` ([`Nn`], [`Nt`] and the
//! transposing pack) redone for 512-bit vectors (16 f32 or 8 f64 lanes) and 32 vector
//! registers, with AVX-512F only.
//!
//! - [`Nn`] over packed panels keeps a tile of `C` of [`PACKED_ROWS`] rows x 2 vectors in
//!   registers (24 accumulators): each step loads one row of a panel of `B` (two aligned
//!   vectors) and broadcasts one element of `A` per row from a copy of the tile's rows of
//!   `A`, laid out `p` after `p` on the stack, so that every load of the inner loop is
//!   sequential. The panels are [`panel_width`] columns wide (32 f32, 16 f64), and a
//!   scratch panel starts on a cache line. Read in place (few rows), `B` is loaded as up
//!   to four vectors per row.
//! - [`Nt`] computes tiles of 4 x 4 dot products with vectors along `p`; each sum's lanes
//!   are added in a fixed order at the end.
//! - The transposing pack transposes 16 x 16 f32 (8 x 8 f64) blocks in registers.
//!
//! Edges (the last columns of `C`, the last `p` of a dot product, the last rows and
//! columns of a transposed block) are masked loads and stores, never scalar tails.
//!
//! Every element of a product is one chain of fused multiply-adds over `p` within each
//! `k` block (one chain per lane for [`Nt`]), whatever tile it falls in: the results
//! depend on the shapes only, never on how rows are split between threads.
//!
//! The unsafe code is confined to this file: [`Avx512Kernels`] is the safe interface,
//! which detects the instructions and checks every slice once before any kernel runs.
//!
//! Why one file of ~1300 lines: the whole AVX-512 family (f32 and f64 tiles, masked edges, the transposing pack) and its unit tests against the plain loops, kept together so that its `unsafe` sits in one file behind one safe interface.
#![allow(unsafe_code)]

use super::{Family, Kind, Nn, Nt, NN_DEPTH_BLOCK};

/// Proof that this processor has AVX-512F: only [`Token::detect`] makes one (every entry
/// point of [`Avx512Kernels`] also checks [`available`] itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(());

impl Token {
    /// A token if this processor has AVX-512F.
    pub fn detect() -> Option<Token> {
        available().then_some(Token(()))
    }
}

/// The family of this module.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn family() -> Family {
    Family(Kind::Avx512(Token(())))
}

/// Vectors per packed panel of `B` (the columns of one tile of `C`).
const PANEL_VECTORS: usize = 2;

/// Rows of the register tile of [`Nn`] over packed panels: 12 x 2 accumulators, two
/// vectors of `B` and the broadcast make 27 of the 32 registers.
pub(crate) const PACKED_ROWS: usize = 12;

/// `k` block of [`Nt`]: a few rows of `B` (8 KiB each in f32) stay in L1.
const NT_DEPTH_BLOCK: usize = 2048;

/// Row block of [`Nt`]: 64 rows of a `k` block of `A` stay in L2.
const NT_ROW_BLOCK: usize = 64;

/// Columns of `B` (one `k` block of them) whose panels stay in L2 while the row tiles
/// of `A` run over them: 1 MiB of panels.
const fn column_block<T>() -> usize {
    (1 << 20) / (NN_DEPTH_BLOCK * core::mem::size_of::<T>())
}

/// The columns of one packed panel of `B` for this family: two 512-bit vectors, 32 f32
/// or 16 f64.
pub(crate) const fn panel_width<T>() -> usize {
    PANEL_VECTORS * 64 / core::mem::size_of::<T>()
}

/// The scratch an [`Nn`] product of `n` columns and depth `k` needs to pack `B` for this
/// family: one `k` block of panels, and one cache line more so that they can start on a
/// 64-byte boundary (every vector load of `B` then stays within one line).
pub(crate) fn nn_panel_len<T>(n: usize, k: usize) -> usize {
    let width = panel_width::<T>();
    k.min(NN_DEPTH_BLOCK) * n.div_ceil(width) * width + 64 / core::mem::size_of::<T>()
}

/// Whether this processor runs the AVX-512 family (AVX-512F; detected once, then
/// cached by std).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The AVX-512 kernels of one scalar type, behind a safe interface: each call checks
/// that the processor has AVX-512F and that every offset it will touch is inside its
/// slice, and returns `false` (nothing written) when not.
pub(crate) trait Avx512Kernels: Sized {
    /// Runs `problem` (its panels, if any, laid out for this family).
    fn nn(problem: Nn<'_, Self>) -> bool;
    /// Runs `problem`.
    fn nt(problem: Nt<'_, Self>) -> bool;
    /// Packs rows `depth..depth_end` of `B` (`B[p][j]` at `b[p + j * b_column_stride]`)
    /// into panels of [`panel_width`] columns: what the value-by-value pack writes.
    fn pack_transposed(
        b: &[Self],
        b_column_stride: usize,
        n: usize,
        depth: usize,
        depth_end: usize,
        panel: &mut [Self],
    ) -> bool;
}

/// Whether the elements `p + j * column_stride` for `p < depth_end`, `j < n` are inside
/// a slice of `len` values (`false` on overflow).
#[cfg(target_arch = "x86_64")]
fn transposed_fits(len: usize, n: usize, column_stride: usize, depth_end: usize) -> bool {
    matches!(
        (n - 1)
            .checked_mul(column_stride)
            .and_then(|last| last.checked_add(depth_end - 1)),
        Some(last) if last < len
    )
}

/// The generic parts of the family for one scalar type.
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_kernels {
    (
        $module:ident, $t:ty, $lanes:expr, $vector:ty, $mask:ty,
        $zero:ident, $broadcast:ident, $load:ident, $store:ident,
        $masked_load:ident, $masked_store:ident, $fma:ident, $add:ident,
        $hsum:ident, $hsum4:ident, $transpose:ident
    ) => {
        mod $module {
            use super::super::{pack_panels, Nn, Nt, Panel, NN_DEPTH_BLOCK};
            use super::{
                column_block, panel_width, transposed_fits, $hsum, $hsum4, $transpose,
                NT_DEPTH_BLOCK, NT_ROW_BLOCK, PACKED_ROWS, PANEL_VECTORS,
            };
            use core::arch::x86_64::*;
            use core::mem::MaybeUninit;

            const LANES: usize = $lanes;
            const WIDTH: usize = panel_width::<$t>();
            const ALL: $mask = !0;
            /// How many panel rows ahead [`nn_tile_packed`] prefetches.
            const PREFETCH_ROWS: usize = 8;

            /// The first `count` lanes (all from `LANES` on).
            #[inline(always)]
            fn lanes_mask(count: usize) -> $mask {
                if count >= LANES {
                    ALL
                } else {
                    ((1u32 << count) - 1) as $mask
                }
            }

            /// A tile's rows of `A` over one `k` block, `p` after `p`.
            #[repr(C, align(64))]
            struct RowsOfA([$t; PACKED_ROWS * NN_DEPTH_BLOCK]);

            /// Stores (or adds) the tile `acc` to `C` at `c + i * crs + v * LANES`, lanes
            /// of vector `v` where `masks[v]` is set.
            ///
            /// # Safety
            /// AVX-512F is available; every masked-in lane's address is inside `C`.
            #[target_feature(enable = "avx512f")]
            #[inline]
            unsafe fn store_tile<const R: usize, const V: usize>(
                acc: &[[$vector; V]; R],
                c: *mut $t,
                crs: usize,
                add: bool,
                masks: [$mask; V],
            ) {
                for i in 0..R {
                    for v in 0..V {
                        let out = c.wrapping_add(i * crs + v * LANES);
                        let sum = if add {
                            $add($masked_load(masks[v], out), acc[i][v])
                        } else {
                            acc[i][v]
                        };
                        $masked_store(out, masks[v], sum);
                    }
                }
            }

            /// A tile of `R` rows x `V` (1 or 2) vectors of `C` over `kc` values of `p`,
            /// from rows of `A` (copied `p` after `p`, `a[p * R + i]`, when `COPIED`;
            /// else `a[i * ars + p * acs]`) and a packed panel (`b[p * WIDTH + j]`, its
            /// first `V` vectors); `masks` select the columns of `C` written.
            ///
            /// # Safety
            /// AVX-512F is available; `a` holds the `kc * R` values addressed, `b`
            /// `kc * WIDTH`, and the masked-in lanes of `c + i * crs` for i < R are
            /// inside `C`.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_tile_packed<const R: usize, const V: usize, const COPIED: bool>(
                kc: usize,
                a: *const $t,
                ars: usize,
                acs: usize,
                b: *const $t,
                c: *mut $t,
                crs: usize,
                add: bool,
                masks: [$mask; V],
            ) {
                // The tile of `C` is read (or written) only after the loop: fetched into
                // L2 now, its misses overlap the products instead of following them.
                for i in 0..R {
                    let row = c.wrapping_add(i * crs) as *const i8;
                    for offset in [0, 64, V * 64 - 1] {
                        _mm_prefetch::<_MM_HINT_T1>(row.wrapping_add(offset));
                    }
                }
                let (ars, acs) = if COPIED { (1, R) } else { (ars, acs) };
                let mut acc: [[$vector; V]; R] = [[$zero(); V]; R];
                let (mut a, mut b) = (a, b);
                for _ in 0..kc {
                    // The panel row eight steps ahead (the next panel's first rows near the
                    // end: panels follow each other in memory), from L2 to L1.
                    let ahead = b.wrapping_add(PREFETCH_ROWS * WIDTH) as *const i8;
                    _mm_prefetch::<_MM_HINT_T0>(ahead);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
                    let mut bv: [$vector; V] = [$zero(); V];
                    for v in 0..V {
                        bv[v] = $load(b.add(v * LANES));
                    }
                    for i in 0..R {
                        let factor = $broadcast(*a.add(i * ars));
                        for v in 0..V {
                            acc[i][v] = $fma(factor, bv[v], acc[i][v]);
                        }
                    }
                    a = a.wrapping_add(acs);
                    b = b.wrapping_add(WIDTH);
                }
                store_tile::<R, V>(&acc, c, crs, add, masks);
            }

            /// A tile of `R` rows x `V` vectors of `C` over `kc` values of `p`, reading `A`
            /// (strides `ars`, `acs`) and `B` (row stride `brs`) in place; the last
            /// vector's lanes are those of `last`.
            ///
            /// # Safety
            /// AVX-512F is available; for i < R, p < kc and every masked-in column `j`,
            /// `a + i * ars + p * acs`, `b + p * brs + j` and `c + i * crs + j` are inside
            /// their slices.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_tile<const R: usize, const V: usize>(
                kc: usize,
                a: *const $t,
                ars: usize,
                acs: usize,
                b: *const $t,
                brs: usize,
                c: *mut $t,
                crs: usize,
                add: bool,
                last: $mask,
            ) {
                let mut acc: [[$vector; V]; R] = [[$zero(); V]; R];
                for p in 0..kc {
                    let row = b.add(p * brs);
                    let mut bv: [$vector; V] = [$zero(); V];
                    for v in 0..V - 1 {
                        bv[v] = $load(row.add(v * LANES));
                    }
                    bv[V - 1] = $masked_load(last, row.wrapping_add((V - 1) * LANES));
                    for i in 0..R {
                        let factor = $broadcast(*a.add(i * ars + p * acs));
                        for v in 0..V {
                            acc[i][v] = $fma(factor, bv[v], acc[i][v]);
                        }
                    }
                }
                let mut masks = [ALL; V];
                masks[V - 1] = last;
                store_tile::<R, V>(&acc, c, crs, add, masks);
            }

            /// Rows `first..first + R` of `C`, every column, over `p` in
            /// `depth..depth_end`, reading `B` where it is (unit column stride).
            ///
            /// # Safety
            /// AVX-512F is available and `problem` passed [`Nn::check`].
            #[target_feature(enable = "avx512f")]
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
                let (kc, n) = (depth_end - depth, problem.n);
                let mut j = 0;
                while j + V * LANES <= n {
                    nn_tile::<R, V>(kc, a, ars, acs, b.add(j), brs, c.add(j), crs, add, ALL);
                    j += V * LANES;
                }
                // Single vectors, the last one masked.
                while j < n {
                    let last = lanes_mask(n - j);
                    nn_tile::<R, 1>(kc, a, ars, acs, b.add(j), brs, c.add(j), crs, add, last);
                    j += LANES;
                }
            }

            /// Copies `R` rows of `kc` values of a row-major `A` (`a[i * ars + p]`) to
            /// `rows[p * R + i]`, by blocks of `LANES` rows x `LANES` values transposed in
            /// registers (rows past `R` and values past `kc` masked out).
            ///
            /// # Safety
            /// AVX-512F is available; `a[i * ars + p]` is in bounds for i < R, p < kc, and
            /// `rows` holds `kc * R` values.
            #[target_feature(enable = "avx512f")]
            unsafe fn copy_rows<const R: usize>(
                a: *const $t,
                ars: usize,
                kc: usize,
                rows: *mut $t,
            ) {
                for p in (0..kc).step_by(LANES) {
                    let count = LANES.min(kc - p);
                    let mask = lanes_mask(count);
                    for first in (0..R).step_by(LANES) {
                        let height = LANES.min(R - first);
                        let mut block = [$zero(); LANES];
                        for (i, row) in block.iter_mut().take(height).enumerate() {
                            *row = $masked_load(mask, a.add((first + i) * ars + p));
                        }
                        let columns = $transpose(block);
                        let store = lanes_mask(height);
                        for (pp, column) in columns.iter().take(count).enumerate() {
                            $masked_store(rows.add((p + pp) * R + first), store, *column);
                        }
                    }
                }
            }

            /// Rows `first..first + R` (`R <= PACKED_ROWS`) of `C`, columns
            /// `columns.start..columns.end` (whole panels but for the last), over `p` in
            /// `depth..depth_end`, reading `B` from the packed panels at `panel`. The
            /// rows of `A` are copied into `rows_of_a` first.
            ///
            /// # Safety
            /// AVX-512F is available, `problem` passed [`Nn::check`], `panel` points to
            /// rows `depth..depth_end` of `B` packed by `pack_panels` for this family, and
            /// `columns.start` is a multiple of [`panel_width`].
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn nn_rows_packed<const R: usize>(
                problem: &mut Nn<'_, $t>,
                panel: *const $t,
                rows_of_a: *mut $t,
                first: usize,
                columns: core::ops::Range<usize>,
                depth: usize,
                depth_end: usize,
                add: bool,
            ) {
                let (ars, acs, crs) = (
                    problem.a_row_stride,
                    problem.a_column_stride,
                    problem.c_row_stride,
                );
                let a = problem.a.as_ptr().add(first * ars + depth * acs);
                let c = problem.c.as_mut_ptr().add(first * crs);
                let kc = depth_end - depth;
                // The rows copied when their tiles are many (the copy costs about one
                // tile) or `A` is transposed (its column steps a whole row of memory,
                // and at strides of a multiple of 1 KiB those reads share a few L1
                // sets and miss).
                let copy = acs != 1 || columns.len() > 2 * WIDTH;
                if copy && acs == 1 {
                    copy_rows::<R>(a, ars, kc, rows_of_a);
                } else if copy {
                    for p in 0..kc {
                        for i in 0..R {
                            *rows_of_a.add(p * R + i) = *a.add(i * ars + p * acs);
                        }
                    }
                }
                let mut j = columns.start;
                while j < columns.end {
                    let b = panel.add(j / WIDTH * kc * WIDTH);
                    let count = (problem.n - j).min(WIDTH);
                    let c = c.add(j);
                    macro_rules! tile {
                        ($v:literal, $masks:expr) => {
                            if copy {
                                nn_tile_packed::<R, $v, true>(
                                    kc, rows_of_a, 1, R, b, c, crs, add, $masks,
                                )
                            } else {
                                nn_tile_packed::<R, $v, false>(
                                    kc, a, ars, acs, b, c, crs, add, $masks,
                                )
                            }
                        };
                    }
                    if count > LANES {
                        tile!(2, [ALL, lanes_mask(count - LANES)]);
                    } else {
                        // A narrow last panel: its zero half is not multiplied.
                        tile!(1, [lanes_mask(count)]);
                    }
                    j += WIDTH;
                }
            }

            /// # Safety
            /// AVX-512F is available and `problem` passed [`Nn::check`] for this family.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn nn(mut problem: Nn<'_, $t>) {
                let (m, n, k) = (problem.m, problem.n, problem.k);
                let padded = n.div_ceil(WIDTH) * WIDTH;
                let mut rows_of_a = MaybeUninit::<RowsOfA>::uninit();
                let rows_of_a = rows_of_a.as_mut_ptr() as *mut $t;
                for depth in (0..k).step_by(NN_DEPTH_BLOCK) {
                    let depth_end = (depth + NN_DEPTH_BLOCK).min(k);
                    let add = problem.add || depth > 0;
                    let panel = match &mut problem.panel {
                        Panel::InPlace => None,
                        Panel::Scratch(scratch) => {
                            // `check` granted a cache line of slack for this shift.
                            let shift = scratch
                                .as_ptr()
                                .align_offset(64)
                                .min(64 / core::mem::size_of::<$t>());
                            let panel = &mut scratch[shift..];
                            pack_panels(
                                super::family(),
                                problem.b,
                                problem.b_row_stride,
                                problem.b_column_stride,
                                n,
                                depth,
                                depth_end,
                                panel,
                            );
                            Some(panel.as_ptr())
                        }
                        Panel::Packed(packed) => Some(packed.as_ptr().add(depth * padded)),
                    };
                    if let Some(panel) = panel {
                        let block = column_block::<$t>();
                        for column in (0..n).step_by(block) {
                            let columns = column..(column + block).min(n);
                            macro_rules! rows {
                                ($r:literal, $i:expr) => {
                                    nn_rows_packed::<$r>(
                                        &mut problem,
                                        panel,
                                        rows_of_a,
                                        $i,
                                        columns.clone(),
                                        depth,
                                        depth_end,
                                        add,
                                    )
                                };
                            }
                            let mut i = 0;
                            while i + PACKED_ROWS <= m {
                                rows!(12, i);
                                i += PACKED_ROWS;
                            }
                            match m - i {
                                0 => {}
                                1 => rows!(1, i),
                                2 => rows!(2, i),
                                3 => rows!(3, i),
                                4 => rows!(4, i),
                                5 => rows!(5, i),
                                6 => rows!(6, i),
                                7 => rows!(7, i),
                                8 => rows!(8, i),
                                9 => rows!(9, i),
                                10 => rows!(10, i),
                                _ => rows!(11, i),
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
                        nn_rows_in_place::<6, 4>(&mut problem, i, depth, depth_end, add);
                        i += 6;
                    }
                    match m - i {
                        0 => {}
                        1 => nn_rows_in_place::<1, 4>(&mut problem, i, depth, depth_end, add),
                        2 => nn_rows_in_place::<2, 4>(&mut problem, i, depth, depth_end, add),
                        3 => nn_rows_in_place::<3, 4>(&mut problem, i, depth, depth_end, add),
                        4 => nn_rows_in_place::<4, 4>(&mut problem, i, depth, depth_end, add),
                        _ => nn_rows_in_place::<5, 4>(&mut problem, i, depth, depth_end, add),
                    }
                }
            }

            /// A tile of `R` rows of `A` x `C` rows of `B`: `R * C` dot products over `p`
            /// in `depth..depth_end` (the last vector masked), stored at
            /// `c + i * crs + j`.
            ///
            /// # Safety
            /// AVX-512F is available; for i < R, j < C and p in the range,
            /// `a + i * ars + p`, `b + j * brs + p` and `c + i * crs + j` are in bounds.
            #[target_feature(enable = "avx512f")]
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
                let full_end = depth + (depth_end - depth) / LANES * LANES;
                let mut p = depth;
                while p < full_end {
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
                if p < depth_end {
                    // The last `p`, masked: the other lanes add 0 * 0.
                    let mask = lanes_mask(depth_end - p);
                    let mut av: [$vector; R] = [$zero(); R];
                    for i in 0..R {
                        av[i] = $masked_load(mask, a.add(i * ars + p));
                    }
                    for j in 0..C {
                        let bv = $masked_load(mask, b.add(j * brs + p));
                        for i in 0..R {
                            acc[i][j] = $fma(av[i], bv, acc[i][j]);
                        }
                    }
                }
                for i in 0..R {
                    // Four sums' lanes added together (fewer shuffles for all four than
                    // for each alone), then any left one by one.
                    let mut sums = [0.0 as $t; C];
                    let mut j = 0;
                    while j + 4 <= C {
                        let four = $hsum4([acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]]);
                        sums[j..j + 4].copy_from_slice(&four);
                        j += 4;
                    }
                    while j < C {
                        sums[j] = $hsum(acc[i][j]);
                        j += 1;
                    }
                    for (j, &sum) in sums.iter().enumerate() {
                        let out = c.add(i * crs + j);
                        *out = if add { *out + sum } else { sum };
                    }
                }
            }

            /// Rows `first..first + R` of `C`, every column, one `k` block.
            ///
            /// # Safety
            /// AVX-512F is available and `problem` passed [`Nt::check`].
            #[target_feature(enable = "avx512f")]
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
                    let (b, c) = (b.add(j * brs), c.add(j));
                    nt_tile::<R, C>(depth, depth_end, a, ars, b, brs, c, crs, add);
                    j += C;
                }
                while j < n {
                    let (b, c) = (b.add(j * brs), c.add(j));
                    nt_tile::<R, 1>(depth, depth_end, a, ars, b, brs, c, crs, add);
                    j += 1;
                }
            }

            /// # Safety
            /// AVX-512F is available and `problem` passed [`Nt::check`].
            #[target_feature(enable = "avx512f")]
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
                        while i + 4 <= block_end {
                            nt_rows::<4, 4>(&mut problem, i, depth, depth_end, add);
                            i += 4;
                        }
                        match block_end - i {
                            0 => {}
                            1 => nt_rows::<1, 8>(&mut problem, i, depth, depth_end, add),
                            2 => nt_rows::<2, 4>(&mut problem, i, depth, depth_end, add),
                            _ => nt_rows::<3, 4>(&mut problem, i, depth, depth_end, add),
                        }
                    }
                }
            }

            /// The transposing pack: for each panel and each block of `LANES` values of
            /// `p`, the panel's columns (runs of `p`, contiguous in `b`) are loaded as
            /// vectors (masked to the block's `p`; columns past `n` stay zero),
            /// transposed in registers and stored as the block's panel rows.
            /// `false` (nothing written) when a slice is too short for the shape.
            ///
            /// # Safety
            /// AVX-512F is available.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn pack_transposed(
                b: &[$t],
                column_stride: usize,
                n: usize,
                depth: usize,
                depth_end: usize,
                panel: &mut [$t],
            ) -> bool {
                let depth_len = depth_end.saturating_sub(depth);
                if n == 0 || depth_len == 0 {
                    return true;
                }
                let panels = n.div_ceil(WIDTH);
                if panel.len() < panels * depth_len * WIDTH
                    || !transposed_fits(b.len(), n, column_stride, depth_end)
                {
                    return false;
                }
                for q in 0..panels {
                    let first = q * WIDTH;
                    let columns = WIDTH.min(n - first);
                    let target = &mut panel[q * depth_len * WIDTH..][..depth_len * WIDTH];
                    for p in (depth..depth_end).step_by(LANES) {
                        let count = LANES.min(depth_end - p);
                        let mask = lanes_mask(count);
                        for half in 0..PANEL_VECTORS {
                            let mut rows = [$zero(); LANES];
                            for (jj, row) in rows.iter_mut().enumerate() {
                                let column = half * LANES + jj;
                                if column < columns {
                                    let start = (first + column) * column_stride + p;
                                    let values = &b[start..start + count];
                                    // SAFETY: the masked-in lanes are the `count` values
                                    // of a bounds-checked subslice.
                                    *row = $masked_load(mask, values.as_ptr());
                                }
                            }
                            let block = $transpose(rows);
                            for (pp, row) in block.iter().take(count).enumerate() {
                                let start = (p - depth + pp) * WIDTH + half * LANES;
                                let out = &mut target[start..start + LANES];
                                // SAFETY: a bounds-checked subslice of `LANES` values.
                                $store(out.as_mut_ptr(), *row);
                            }
                        }
                    }
                }
                true
            }
        }

        impl Avx512Kernels for $t {
            fn nn(problem: Nn<'_, $t>) -> bool {
                if !available() || !problem.check(family()) {
                    return false;
                }
                // SAFETY: the CPU has AVX-512F (just detected), and `check` proved that
                // for every i < m, p < k, j < n the offsets
                // i * a_row_stride + p * a_column_stride, p * b_row_stride + j and
                // i * c_row_stride + j are inside `a`, `b` and `c`, and that the scratch
                // or packed panels hold this family's lengths; the kernels form no other
                // addresses but masked-out lanes, which are never accessed. `c` is an
                // exclusive borrow, so it aliases neither input, and its rows do not
                // overlap.
                unsafe { $module::nn(problem) };
                true
            }

            fn nt(problem: Nt<'_, $t>) -> bool {
                if !available() || !problem.check() {
                    return false;
                }
                // SAFETY: as in `nn`, with offsets i * a_row_stride + p,
                // j * b_row_stride + p and i * c_row_stride + j.
                unsafe { $module::nt(problem) };
                true
            }

            fn pack_transposed(
                b: &[$t],
                b_column_stride: usize,
                n: usize,
                depth: usize,
                depth_end: usize,
                panel: &mut [$t],
            ) -> bool {
                if !available() {
                    return false;
                }
                // SAFETY: the CPU has AVX-512F (just detected); the function checks the
                // shape against both slices and reads and writes only through
                // bounds-checked subslices.
                unsafe { $module::pack_transposed(b, b_column_stride, n, depth, depth_end, panel) }
            }
        }
    };
}

/// The sixteen lanes of `v` summed in a fixed order: the two halves, then as the AVX2
/// family sums eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hsum_f32(v: core::arch::x86_64::__m512) -> f32 {
    use core::arch::x86_64::*;
    let low = _mm512_castps512_ps256(v);
    let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let eight = _mm256_add_ps(low, high);
    let halves = _mm_add_ps(
        _mm256_castps256_ps128(eight),
        _mm256_extractf128_ps::<1>(eight),
    );
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    let single = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
    _mm_cvtss_f32(single)
}

/// The eight lanes of `v` summed in a fixed order: the two halves, then pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hsum_f64(v: core::arch::x86_64::__m512d) -> f64 {
    use core::arch::x86_64::*;
    let four = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd::<1>(v));
    let halves = _mm_add_pd(
        _mm256_castpd256_pd128(four),
        _mm256_extractf128_pd::<1>(four),
    );
    let single = _mm_add_sd(halves, _mm_unpackhi_pd(halves, halves));
    _mm_cvtsd_f64(single)
}

/// The lanes of each of four vectors summed in a fixed order: element `c` is the sum of
/// `v[c]`, as ((L0 + L2) + (L1 + L3)) over its 128-bit lanes `L`, each lane's four
/// values as (0 + 2) + (1 + 3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hsum4_f32(v: [core::arch::x86_64::__m512; 4]) -> [f32; 4] {
    use core::arch::x86_64::*;
    // Lanes (v0 L0+L2, v0 L1+L3, v1 L0+L2, v1 L1+L3), the same for v2, v3.
    let low = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x44>(v[0], v[1]),
        _mm512_shuffle_f32x4::<0xEE>(v[0], v[1]),
    );
    let high = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x44>(v[2], v[3]),
        _mm512_shuffle_f32x4::<0xEE>(v[2], v[3]),
    );
    // 128-bit lane `c`: vector c's (L0+L2) + (L1+L3).
    let lanes = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(low, high),
        _mm512_shuffle_f32x4::<0xDD>(low, high),
    );
    let pairs = _mm512_add_ps(lanes, _mm512_permute_ps::<0x4E>(lanes));
    let sums = _mm512_add_ps(pairs, _mm512_permute_ps::<0xB1>(pairs));
    let first = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        sums,
    );
    let mut out = [0.0; 4];
    // SAFETY: `out` holds four f32, the 16 bytes an unaligned store writes.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm512_castps512_ps128(first)) };
    out
}

/// The lanes of each of four vectors summed in a fixed order: element `c` is the sum of
/// `v[c]`, as ((L0 + L2) + (L1 + L3)) over its 128-bit lanes `L`, each lane's two values
/// as 0 + 1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hsum4_f64(v: [core::arch::x86_64::__m512d; 4]) -> [f64; 4] {
    use core::arch::x86_64::*;
    let low = _mm512_add_pd(
        _mm512_shuffle_f64x2::<0x44>(v[0], v[1]),
        _mm512_shuffle_f64x2::<0xEE>(v[0], v[1]),
    );
    let high = _mm512_add_pd(
        _mm512_shuffle_f64x2::<0x44>(v[2], v[3]),
        _mm512_shuffle_f64x2::<0xEE>(v[2], v[3]),
    );
    let lanes = _mm512_add_pd(
        _mm512_shuffle_f64x2::<0x88>(low, high),
        _mm512_shuffle_f64x2::<0xDD>(low, high),
    );
    let sums = _mm512_add_pd(lanes, _mm512_permute_pd::<0x55>(lanes));
    let first = _mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 0, 0, 0, 0), sums);
    let mut out = [0.0; 4];
    // SAFETY: `out` holds four f64, the 32 bytes an unaligned store writes.
    unsafe { _mm256_storeu_pd(out.as_mut_ptr(), _mm512_castpd512_pd256(first)) };
    out
}

/// Transposes 16 x 16 f32: lane `r` of vector `x` of the result is lane `x` of vector `r`
/// of `rows`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose_f32(rows: [core::arch::x86_64::__m512; 16]) -> [core::arch::x86_64::__m512; 16] {
    use core::arch::x86_64::*;
    // Within each 128-bit lane `l`, groups of four rows: quads[g][c] holds rows
    // 4g..4g+4 at column 4l + c.
    let mut quads = [[_mm512_setzero_ps(); 4]; 4];
    for (g, quad) in quads.iter_mut().enumerate() {
        let r = &rows[4 * g..4 * g + 4];
        let t0 = _mm512_unpacklo_ps(r[0], r[1]);
        let t1 = _mm512_unpackhi_ps(r[0], r[1]);
        let t2 = _mm512_unpacklo_ps(r[2], r[3]);
        let t3 = _mm512_unpackhi_ps(r[2], r[3]);
        quad[0] = _mm512_shuffle_ps::<0x44>(t0, t2);
        quad[1] = _mm512_shuffle_ps::<0xEE>(t0, t2);
        quad[2] = _mm512_shuffle_ps::<0x44>(t1, t3);
        quad[3] = _mm512_shuffle_ps::<0xEE>(t1, t3);
    }
    // Then the 4 x 4 transpose of 128-bit lanes across the four groups.
    let mut out = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        let u0 = _mm512_shuffle_f32x4::<0x44>(quads[0][c], quads[1][c]);
        let u1 = _mm512_shuffle_f32x4::<0xEE>(quads[0][c], quads[1][c]);
        let u2 = _mm512_shuffle_f32x4::<0x44>(quads[2][c], quads[3][c]);
        let u3 = _mm512_shuffle_f32x4::<0xEE>(quads[2][c], quads[3][c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(u0, u2);
        out[4 + c] = _mm512_shuffle_f32x4::<0xDD>(u0, u2);
        out[8 + c] = _mm512_shuffle_f32x4::<0x88>(u1, u3);
        out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(u1, u3);
    }
    out
}

/// Transposes 8 x 8 f64: lane `r` of vector `x` of the result is lane `x` of vector `r`
/// of `rows`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose_f64(rows: [core::arch::x86_64::__m512d; 8]) -> [core::arch::x86_64::__m512d; 8] {
    use core::arch::x86_64::*;
    // pairs[g][c] holds rows 2g, 2g + 1 at column 2l + c within 128-bit lane `l`.
    let mut pairs = [[_mm512_setzero_pd(); 2]; 4];
    for (g, pair) in pairs.iter_mut().enumerate() {
        pair[0] = _mm512_unpacklo_pd(rows[2 * g], rows[2 * g + 1]);
        pair[1] = _mm512_unpackhi_pd(rows[2 * g], rows[2 * g + 1]);
    }
    let mut out = [_mm512_setzero_pd(); 8];
    for c in 0..2 {
        let u0 = _mm512_shuffle_f64x2::<0x44>(pairs[0][c], pairs[1][c]);
        let u1 = _mm512_shuffle_f64x2::<0xEE>(pairs[0][c], pairs[1][c]);
        let u2 = _mm512_shuffle_f64x2::<0x44>(pairs[2][c], pairs[3][c]);
        let u3 = _mm512_shuffle_f64x2::<0xEE>(pairs[2][c], pairs[3][c]);
        out[c] = _mm512_shuffle_f64x2::<0x88>(u0, u2);
        out[2 + c] = _mm512_shuffle_f64x2::<0xDD>(u0, u2);
        out[4 + c] = _mm512_shuffle_f64x2::<0x88>(u1, u3);
        out[6 + c] = _mm512_shuffle_f64x2::<0xDD>(u1, u3);
    }
    out
}

#[cfg(target_arch = "x86_64")]
avx512_kernels!(
    single,
    f32,
    16,
    __m512,
    __mmask16,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_maskz_loadu_ps,
    _mm512_mask_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    hsum_f32,
    hsum4_f32,
    transpose_f32
);
#[cfg(target_arch = "x86_64")]
avx512_kernels!(
    double,
    f64,
    8,
    __m512d,
    __mmask8,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_maskz_loadu_pd,
    _mm512_mask_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd,
    hsum_f64,
    hsum4_f64,
    transpose_f64
);

/// Without x86-64 the family is never available: every call declines.
#[cfg(not(target_arch = "x86_64"))]
macro_rules! unavailable {
    ($t:ty) => {
        impl Avx512Kernels for $t {
            fn nn(_: Nn<'_, $t>) -> bool {
                false
            }
            fn nt(_: Nt<'_, $t>) -> bool {
                false
            }
            fn pack_transposed(
                _: &[$t],
                _: usize,
                _: usize,
                _: usize,
                _: usize,
                _: &mut [$t],
            ) -> bool {
                false
            }
        }
    };
}
#[cfg(not(target_arch = "x86_64"))]
unavailable!(f32);
#[cfg(not(target_arch = "x86_64"))]
unavailable!(f64);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::{pack_depth_block, pack_panels_by_value, Kernels, Panel};
    use super::*;
    use pcnet_core::Scalar;

    /// Sizes from 1 to 40 around every vector, panel and tile edge of the family, and one
    /// past a `k` block.
    const SIZES: [usize; 14] = [1, 2, 3, 5, 8, 11, 12, 13, 16, 17, 25, 32, 33, 40];

    /// `false`, with the reason printed, when this processor lacks AVX-512F.
    fn runs() -> bool {
        if !available() {
            eprintln!("skipped: this processor has no AVX-512F");
        }
        available()
    }

    /// Values in [-1, 1) from a fixed-seed linear congruential generator.
    fn values<T: Scalar>(len: usize, seed: u64) -> Vec<T> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                T::from_f64((state >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            })
            .collect()
    }

    /// `gamma_k = k u / (1 - k u)`.
    fn gamma<T: Scalar>(k: usize) -> f64 {
        let ku = k as f64 * T::UNIT_ROUNDOFF.to_f64();
        ku / (1.0 - ku)
    }

    /// Strided views and the sentinel that marks `C`'s padding.
    struct Case<T> {
        m: usize,
        n: usize,
        k: usize,
        a: Vec<T>,
        a_strides: (usize, usize),
        b: Vec<T>,
        b_strides: (usize, usize),
        c: Vec<T>,
        c_row_stride: usize,
    }

    const SENTINEL: f64 = 1.0e30;

    impl<T: Scalar> Case<T> {
        /// `A` row-major or transposed, `B` row-major or transposed, rows padded by
        /// `pad` values; `C` padded too and filled with values to add to.
        fn new(m: usize, n: usize, k: usize, transposed: (bool, bool), pad: usize) -> Self {
            let (a_strides, a_len) = if transposed.0 {
                ((1, m + pad), k * (m + pad))
            } else {
                ((k + pad, 1), m * (k + pad))
            };
            let (b_strides, b_len) = if transposed.1 {
                ((1, k + pad), n * (k + pad))
            } else {
                ((n + pad, 1), k * (n + pad))
            };
            let c_row_stride = n + pad;
            let mut c = values::<T>(m * c_row_stride, (m * 31 + n * 7 + k) as u64);
            for (index, value) in c.iter_mut().enumerate() {
                if index % c_row_stride >= n {
                    *value = T::from_f64(SENTINEL);
                }
            }
            Case {
                m,
                n,
                k,
                a: values(a_len, (m + 3 * k) as u64),
                a_strides,
                b: values(b_len, (n + 5 * k) as u64),
                b_strides,
                c,
                c_row_stride,
            }
        }

        fn a(&self, i: usize, p: usize) -> f64 {
            self.a[i * self.a_strides.0 + p * self.a_strides.1].to_f64()
        }

        fn b(&self, p: usize, j: usize) -> f64 {
            self.b[p * self.b_strides.0 + j * self.b_strides.1].to_f64()
        }

        /// Checks `result` (the product written into a copy of `C`) against the plain
        /// loops in f64: within `2 gamma_{k+1} (|C| + sum |a b|)` (`C` counted as one
        /// more term when added to), and the padding untouched.
        fn check(&self, result: &[T], add: bool, what: &str) {
            let (m, n, k) = (self.m, self.n, self.k);
            for i in 0..m {
                for j in 0..self.c_row_stride {
                    let index = i * self.c_row_stride + j;
                    let got = result[index].to_f64();
                    if j >= n {
                        assert_eq!(
                            got,
                            T::from_f64(SENTINEL).to_f64(),
                            "{what}: padding ({i}, {j}) written"
                        );
                        continue;
                    }
                    let start = if add { self.c[index].to_f64() } else { 0.0 };
                    let (mut exact, mut magnitude) = (start, start.abs());
                    for p in 0..k {
                        exact += self.a(i, p) * self.b(p, j);
                        magnitude += (self.a(i, p) * self.b(p, j)).abs();
                    }
                    let bound = 2.0 * gamma::<T>(k + 1) * magnitude;
                    assert!(
                        (got - exact).abs() <= bound,
                        "{what}: ({i}, {j}) of {m} x {n} x {k}: {got} vs {exact} (bound {bound})"
                    );
                }
            }
        }
    }

    /// Every `k` block of `B` packed for this family, as `PackedWeights` stores them.
    fn packed<T: Kernels>(case: &Case<T>) -> Vec<T> {
        let (k, n) = (case.k, case.n);
        let mut packed = vec![T::nan(); family().packed_len::<T>(n, k)];
        let padded = n.div_ceil(panel_width::<T>()) * panel_width::<T>();
        for depth in (0..k).step_by(NN_DEPTH_BLOCK) {
            let depth_end = (depth + NN_DEPTH_BLOCK).min(k);
            assert!(pack_depth_block(
                family(),
                &case.b,
                case.b_strides.0,
                case.b_strides.1,
                k,
                n,
                depth,
                depth_end,
                &mut packed[depth * padded..],
            ));
        }
        packed
    }

    /// `Nn` in place, through scratch panels and through packed panels, for `A` and `B`
    /// row-major or transposed, overwriting and adding.
    fn nn_matches_the_plain_loops<T: Scalar + Avx512Kernels + Kernels>() {
        if !runs() {
            return;
        }
        let mut count = 0;
        for (index, &m) in SIZES.iter().enumerate() {
            for (offset, &n) in SIZES.iter().chain(&[70]).enumerate() {
                for k in [SIZES[(index + offset) % SIZES.len()], 300] {
                    for layout in 0..4 {
                        let transposed = (layout & 1 == 1, layout & 2 == 2);
                        let case = Case::<T>::new(m, n, k, transposed, (index + layout) % 3);
                        let add = (index + offset + layout) % 2 == 1;
                        let mut scratch = vec![T::nan(); nn_panel_len::<T>(n, k)];
                        let packed = packed(&case);
                        for mode in 0..3 {
                            let panel = match mode {
                                0 if transposed.1 => continue,
                                0 => Panel::InPlace,
                                1 => Panel::Scratch(&mut scratch),
                                _ => Panel::Packed(&packed),
                            };
                            let mut c = case.c.clone();
                            let ran = <T as Avx512Kernels>::nn(Nn {
                                m,
                                n,
                                k,
                                a: &case.a,
                                a_row_stride: case.a_strides.0,
                                a_column_stride: case.a_strides.1,
                                b: &case.b,
                                b_row_stride: case.b_strides.0,
                                b_column_stride: case.b_strides.1,
                                c: &mut c,
                                c_row_stride: case.c_row_stride,
                                add,
                                panel,
                            });
                            assert!(ran, "{m} x {n} x {k} did not run");
                            let what = format!("nn mode {mode} layout {layout} add {add}");
                            case.check(&c, add, &what);
                            count += 1;
                        }
                    }
                }
            }
        }
        assert!(count > 1000, "{count} products");
    }

    #[test]
    fn nn_f32_is_within_the_bound_of_the_plain_loops() {
        nn_matches_the_plain_loops::<f32>();
    }

    #[test]
    fn nn_f64_is_within_the_bound_of_the_plain_loops() {
        nn_matches_the_plain_loops::<f64>();
    }

    /// `Nt` (rows of `A` and `B` contiguous), overwriting and adding, one `k` past a
    /// block of the dot products.
    fn nt_matches_the_plain_loops<T: Scalar + Avx512Kernels>() {
        if !runs() {
            return;
        }
        for (index, &m) in SIZES.iter().enumerate() {
            for (offset, &n) in SIZES.iter().enumerate() {
                let ks = [SIZES[(index + offset) % SIZES.len()], 47];
                let long = (index + offset) % 9 == 0;
                for k in ks.into_iter().chain(long.then_some(NT_DEPTH_BLOCK + 21)) {
                    let pad = (index + offset) % 3;
                    let case = Case::<T>::new(m, n, k, (false, true), pad);
                    let add = (index + offset) % 2 == 0;
                    let mut c = case.c.clone();
                    assert!(T::nt(Nt {
                        m,
                        n,
                        k,
                        a: &case.a,
                        a_row_stride: case.a_strides.0,
                        b: &case.b,
                        b_row_stride: case.b_strides.1,
                        c: &mut c,
                        c_row_stride: case.c_row_stride,
                        add,
                    }));
                    case.check(&c, add, &format!("nt add {add}"));
                }
            }
        }
    }

    #[test]
    fn nt_f32_is_within_the_bound_of_the_plain_loops() {
        nt_matches_the_plain_loops::<f32>();
    }

    #[test]
    fn nt_f64_is_within_the_bound_of_the_plain_loops() {
        nt_matches_the_plain_loops::<f64>();
    }

    /// Rows split between two calls (as between threads) give the bits of one call.
    fn rows_split_anywhere_give_the_same_bits<T: Scalar + Avx512Kernels + Kernels>() {
        if !runs() {
            return;
        }
        let (m, n, k) = (40, 70, 300);
        for transposed in [(false, false), (true, false), (false, true)] {
            let case = Case::<T>::new(m, n, k, transposed, 1);
            let packed = packed(&case);
            let run = |rows: core::ops::Range<usize>, c: &mut [T]| {
                let (ars, acs) = case.a_strides;
                let crs = case.c_row_stride;
                let problem = Nn {
                    m: rows.len(),
                    n,
                    k,
                    a: &case.a[rows.start * ars..],
                    a_row_stride: ars,
                    a_column_stride: acs,
                    b: &case.b,
                    b_row_stride: case.b_strides.0,
                    b_column_stride: case.b_strides.1,
                    c: &mut c[rows.start * crs..],
                    c_row_stride: crs,
                    add: false,
                    panel: Panel::Packed(&packed),
                };
                assert!(<T as Avx512Kernels>::nn(problem));
            };
            let bits = |c: &[T]| {
                c.iter()
                    .map(|v| Scalar::to_f64(*v).to_bits())
                    .collect::<Vec<_>>()
            };
            let mut whole = case.c.clone();
            run(0..m, &mut whole);
            for split in [1, 5, 12, 13, 20, 39] {
                let mut parts = case.c.clone();
                run(0..split, &mut parts);
                run(split..m, &mut parts);
                assert_eq!(bits(&parts), bits(&whole), "split at {split}");
            }
        }
    }

    #[test]
    fn f32_rows_split_anywhere_give_the_same_bits() {
        rows_split_anywhere_give_the_same_bits::<f32>();
    }

    #[test]
    fn f64_rows_split_anywhere_give_the_same_bits() {
        rows_split_anywhere_give_the_same_bits::<f64>();
    }

    /// The transposing pack writes exactly what the value-by-value pack writes: full and
    /// partial panels and transposed blocks, `depth` offsets, padded strides.
    fn transposed_pack_matches<T: Scalar + Avx512Kernels>() {
        if !runs() {
            return;
        }
        let width = panel_width::<T>();
        for n in SIZES.iter().copied().chain([47, 64, 70]) {
            for (k, pad) in [(1, 0), (8, 1), (16, 0), (17, 2), (40, 0), (300, 3)] {
                let stride = k + pad;
                let b: Vec<T> = (0..n * stride)
                    .map(|i| T::from_f64(i as f64 + 0.5))
                    .collect();
                for (depth, depth_end) in [(0, k), (k / 3, k), (k / 2, k.min(k / 2 + 13))] {
                    if depth >= depth_end {
                        continue;
                    }
                    let len = (depth_end - depth) * n.div_ceil(width) * width;
                    let mut simd = vec![T::nan(); len];
                    let mut by_value = vec![T::nan(); len];
                    assert!(T::pack_transposed(
                        &b, stride, n, depth, depth_end, &mut simd
                    ));
                    pack_panels_by_value(width, &b, 1, stride, n, depth, depth_end, &mut by_value);
                    let bits = |v: &[T]| {
                        v.iter()
                            .map(|x| Scalar::to_f64(*x).to_bits())
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
        // Too short a slice: nothing written, `false`.
        let mut panel = vec![T::nan(); width];
        assert!(!T::pack_transposed(&[T::zero(); 3], 2, 2, 0, 2, &mut panel));
        assert!(panel.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn transposed_pack_f32_matches_the_value_by_value_pack() {
        transposed_pack_matches::<f32>();
    }

    #[test]
    fn transposed_pack_f64_matches_the_value_by_value_pack() {
        transposed_pack_matches::<f64>();
    }
}
