//! The `avx2` family: AVX2 + FMA kernels on x86-64, 256-bit vectors (8 f32, 4 f64).
//!
//! [`Token`] is made only after run-time detection of both features, and every entry
//! point takes one, so the `#[target_feature]` code below can only run on a processor
//! that has them. The entry points check the shapes ([`Nn::check`], [`Nt::check`])
//! before any SIMD load; the transposing pack reads and writes through bounds-checked
//! subslices only.
//!
//! Why one file of ~850 lines: the whole AVX2 + FMA family (f32 and f64 tiles, the transposing pack, their lane sums), kept together so that its `unsafe` sits in one file behind one safe interface.
#![allow(unsafe_code)]

use super::{fits, Family, Kind};

/// Proof that this processor has AVX2 and FMA: only [`Token::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(());

impl Token {
    /// A token if this processor has AVX2 and FMA (detected by std, which caches it).
    pub fn detect() -> Option<Token> {
        (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
            .then_some(Token(()))
    }

    /// The family this token proves.
    fn family(self) -> Family {
        Family(Kind::Avx2(self))
    }
}

/// The AVX2 + FMA kernels for one scalar type, generated for f32 and f64.
macro_rules! avx2_kernels {
    (
        $module:ident, $t:ty, $lanes:expr, $vector:ty,
        $zero:ident, $broadcast:ident, $load:ident, $store:ident, $fma:ident, $add:ident,
        $hsum:ident, $hsum4:ident, $transpose:ident
    ) => {
        pub(super) mod $module {
            use super::super::{
                pack_panels, Nn, Nt, Panel, NN_DEPTH_BLOCK, NN_ROW_BLOCK, NT_DEPTH_BLOCK,
                NT_ROW_BLOCK,
            };
            use super::{$hsum4, Token};
            use core::arch::x86_64::*;

            const LANES: usize = $lanes;
            /// Columns of a packed panel: two vectors.
            const WIDTH: usize = 2 * LANES;

            /// Runs `problem`; `false` (nothing written) when its views do not fit.
            pub(in super::super) fn nn(token: Token, problem: Nn<'_, $t>) -> bool {
                if !problem.check(token.family()) {
                    return false;
                }
                // SAFETY: `token` proves AVX2 and FMA, and `check` proved that for every
                // i < m, p < k, j < n the offsets i * a_row_stride + p * a_column_stride,
                // p * b_row_stride + j and i * c_row_stride + j are inside `a`, `b` and
                // `c` (and the panels hold every `k` block), which are the only addresses
                // the kernels form; `c` is an exclusive borrow, so it aliases neither
                // input, and its rows do not overlap.
                unsafe { run_nn(token, problem) };
                true
            }

            /// Runs `problem`; `false` (nothing written) when its views do not fit.
            pub(in super::super) fn nt(token: Token, problem: Nt<'_, $t>) -> bool {
                if !problem.check() {
                    return false;
                }
                let _ = token;
                // SAFETY: `token` proves AVX2 and FMA; as in `nn`, with offsets
                // i * a_row_stride + p, j * b_row_stride + p and i * c_row_stride + j.
                unsafe { run_nt(problem) };
                true
            }

            /// The transposing pack (see `Kernels::pack_transposed`).
            pub(in super::super) fn pack_transposed(
                token: Token,
                b: &[$t],
                b_column_stride: usize,
                n: usize,
                depth: usize,
                depth_end: usize,
                panel: &mut [$t],
            ) -> bool {
                let _ = token;
                // SAFETY: `token` proves AVX2; the function reads and writes only through
                // bounds-checked subslices.
                unsafe { super::$transpose(b, b_column_stride, n, depth, depth_end, panel) }
            }

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
            unsafe fn run_nn(token: Token, mut problem: Nn<'_, $t>) {
                let (m, k) = (problem.m, problem.k);
                let padded = problem.n.div_ceil(WIDTH) * WIDTH;
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
                                token.family(),
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
            unsafe fn run_nt(mut problem: Nt<'_, $t>) {
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
#[target_feature(enable = "avx2,fma")]
fn hsum_f32(v: core::arch::x86_64::__m256) -> f32 {
    use core::arch::x86_64::*;
    let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    let single = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
    _mm_cvtss_f32(single)
}

/// The four lanes of `v` summed as (0+2) + (1+3).
#[target_feature(enable = "avx2,fma")]
fn hsum_f64(v: core::arch::x86_64::__m256d) -> f64 {
    use core::arch::x86_64::*;
    let halves = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    let single = _mm_add_sd(halves, _mm_unpackhi_pd(halves, halves));
    _mm_cvtsd_f64(single)
}

/// The lanes of each of four vectors summed: element `c` is vector `c`'s sum, as
/// ((0+1)+(2+3)) + ((4+5)+(6+7)).
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
    hsum4_f32,
    pack_transposed_f32
);
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
    hsum4_f64,
    pack_transposed_f64
);

#[cfg(test)]
mod tests {
    use super::super::{pack_panels_by_value, Kernels};
    use super::*;
    use core::arch::x86_64::*;
    use pcnet_core::Scalar;

    /// Element `c` of the four-vector sums is vector `c`'s lanes added (small integers,
    /// so exact in any order): a wrong shuffle would swap or mix vectors.
    #[test]
    fn four_lane_sums_keep_each_vector_in_its_place() {
        if Token::detect().is_none() {
            eprintln!("skipped: this processor has no AVX2 + FMA");
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
        let Some(token) = Token::detect() else {
            eprintln!("skipped: this processor has no AVX2 + FMA");
            return;
        };
        let family = token.family();
        let width = family.panel_width::<T>();
        let cases: [(usize, usize, usize); 5] =
            [(16, 8, 0), (37, 29, 3), (8, 4, 0), (5, 300, 1), (40, 17, 0)];
        for (n, k, stride_pad) in cases {
            let stride = k + stride_pad;
            let b: Vec<T> = (0..n * stride)
                .map(|i| T::from_f64(i as f64 + 0.5))
                .collect();
            for (depth, depth_end) in [(0, k), (k / 3, k), (1, k.min(1 + 11))] {
                let len = (depth_end - depth) * n.div_ceil(width) * width;
                let mut simd = vec![T::nan(); len];
                let mut by_value = vec![T::nan(); len];
                assert!(T::pack_transposed(
                    family, &b, stride, n, depth, depth_end, &mut simd
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
