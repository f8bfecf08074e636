//! The `portable` family: plain loops (no FMA, no SIMD), on every processor.
//!
//! The family the others are measured against, and the one a processor without AVX2 + FMA
//! (or not x86-64) runs: each element is summed in `p` order within each `k` block. Safe
//! code; every index is bounds-checked, after [`Nn::check`] / [`Nt::check`] proved the
//! shapes fit (`false`, nothing written, when they do not).

use super::{Family, Nn, Nt, NN_DEPTH_BLOCK, NT_DEPTH_BLOCK};
use pcnet_core::Scalar;

/// Runs `p` (any strides; the panel, if given, is not used).
pub(super) fn nn<T: Scalar>(p: Nn<'_, T>, family: Family) -> bool {
    if !p.check(family) {
        return false;
    }
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
    true
}

/// Runs `p`.
pub(super) fn nt<T: Scalar>(p: Nt<'_, T>) -> bool {
    if !p.check() {
        return false;
    }
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
    true
}
