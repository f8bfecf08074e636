//! Max and average pooling over NCHW rows (no padding, floor rounding, as PyTorch's
//! `nn.MaxPool2d(k, s)` / `nn.AvgPool2d(k, s)`).
//!
//! Max pooling needs the winner of each window in its backward pass. It is recomputed
//! from the op's input by the same branch-free scan the forward pass makes (the first
//! element strictly greater than every earlier one), so the trace stays "the output of
//! every op" and the workspace grows by nothing; the scan costs what the forward pass
//! costs, far less than the convolution beside it. Strict evaluates the trace at the
//! current beliefs, so the winners are those of the beliefs.

use crate::{Pool2d, Scalar};

impl Pool2d {
    /// Calls `visit(channel_plane_offset, out_index, window_origin)` for every window of
    /// one sample: `window_origin` is the input index of its top-left element.
    #[inline]
    fn for_each_window(&self, mut visit: impl FnMut(usize, usize)) {
        let out = self.output_shape();
        let (width, plane) = (self.input.width, self.input.plane());
        let mut out_index = 0;
        for c in 0..self.input.channels {
            for oh in 0..out.height {
                for ow in 0..out.width {
                    let origin = c * plane + oh * self.stride[0] * width + ow * self.stride[1];
                    visit(out_index, origin);
                    out_index += 1;
                }
            }
        }
    }
}

/// `output[r][c][p] = max` of the window of `p` (NaN if the window holds a NaN).
///
/// Lengths: `input` rows x `pool.input.len()`, `output` rows x `pool.output_shape().len()`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn max_forward<T: Scalar>(pool: &Pool2d, rows: usize, input: &[T], output: &mut [T]) {
    with_scan!(pool, scan => max_forward_by(pool, rows, input, output, scan))
}

/// Picks the window scan once per call: unrolled for 2x2 and 3x3 windows, generic
/// otherwise.
macro_rules! with_scan {
    ($pool:expr, $scan:ident => $body:expr) => {{
        let width = $pool.input.width;
        match $pool.kernel {
            [2, 2] => {
                let $scan = |x: &[T], origin: usize| window_max_fixed::<T, 2, 2>(x, origin, width);
                $body
            }
            [3, 3] => {
                let $scan = |x: &[T], origin: usize| window_max_fixed::<T, 3, 3>(x, origin, width);
                $body
            }
            [kh, kw] => {
                let $scan = |x: &[T], origin: usize| window_max(x, origin, kh, kw, width);
                $body
            }
        }
    }};
}
use with_scan;

fn max_forward_by<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    input: &[T],
    output: &mut [T],
    scan: impl Fn(&[T], usize) -> (T, usize, bool),
) {
    let (in_len, out_len) = (pool.input.len(), pool.output_shape().len());
    for (x, y) in input[..rows * in_len]
        .chunks_exact(in_len)
        .zip(output[..rows * out_len].chunks_exact_mut(out_len))
    {
        pool.for_each_window(|o, origin| {
            let (best, _, nan) = scan(x, origin);
            y[o] = if nan { T::nan() } else { best };
        });
    }
}

/// [`window_max`] for a `KH x KW` window known at compile time (fully unrolled).
#[inline(always)]
fn window_max_fixed<T: Scalar, const KH: usize, const KW: usize>(
    x: &[T],
    origin: usize,
    width: usize,
) -> (T, usize, bool) {
    let (mut best, mut at, mut nan) = (x[origin], origin, false);
    for i in 0..KH {
        let start = origin + i * width;
        for (j, &v) in x[start..start + KW].iter().enumerate() {
            let better = v > best;
            best = if better { v } else { best };
            at = if better { start + j } else { at };
            nan |= v.is_nan();
        }
    }
    (best, at, nan)
}

/// The maximum of the window at `origin`, the index (in the sample) of its first
/// occurrence, and whether the window holds a NaN (NaNs never win the comparison).
/// Selects, not branches, so the scan does not stall on unpredictable comparisons.
#[inline(always)]
fn window_max<T: Scalar>(
    x: &[T],
    origin: usize,
    kh: usize,
    kw: usize,
    width: usize,
) -> (T, usize, bool) {
    let (mut best, mut at, mut nan) = (x[origin], origin, false);
    for i in 0..kh {
        let start = origin + i * width;
        for (j, &v) in x[start..start + kw].iter().enumerate() {
            let better = v > best;
            best = if better { v } else { best };
            at = if better { start + j } else { at };
            nan |= v.is_nan();
        }
    }
    (best, at, nan)
}

/// Vector-Jacobian product of max pooling: each window's gradient goes to its first
/// maximum (overlapping windows add up), at `input`.
///
/// Lengths: `input` and `grad_input` rows x `pool.input.len()`, `grad_output` rows x
/// `pool.output_shape().len()`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn max_backward<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    input: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
) {
    with_scan!(pool, scan => max_backward_by(pool, rows, input, grad_output, grad_input, scan))
}

fn max_backward_by<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    input: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    scan: impl Fn(&[T], usize) -> (T, usize, bool),
) {
    let (in_len, out_len) = (pool.input.len(), pool.output_shape().len());
    for ((x, g), gx) in input[..rows * in_len]
        .chunks_exact(in_len)
        .zip(grad_output[..rows * out_len].chunks_exact(out_len))
        .zip(grad_input[..rows * in_len].chunks_exact_mut(in_len))
    {
        gx.fill(T::zero());
        pool.for_each_window(|o, origin| {
            let (_, k, _) = scan(x, origin);
            gx[k] = gx[k] + g[o];
        });
    }
}

/// Jacobian-vector product of max pooling: each output takes the tangent of its window's
/// first maximum. `output` is [`max_forward`]'s output at `input`.
///
/// Lengths: `input` and `tangent_input` rows x `pool.input.len()`, `output` and
/// `tangent_output` rows x `pool.output_shape().len()`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn max_jvp<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    input: &[T],
    output: &[T],
    tangent_input: &[T],
    tangent_output: &mut [T],
) {
    with_scan!(pool, scan => max_jvp_by(pool, rows, input, output, tangent_input, tangent_output, scan))
}

fn max_jvp_by<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    input: &[T],
    output: &[T],
    tangent_input: &[T],
    tangent_output: &mut [T],
    scan: impl Fn(&[T], usize) -> (T, usize, bool),
) {
    let (in_len, out_len) = (pool.input.len(), pool.output_shape().len());
    for (((x, y), t), ty) in input[..rows * in_len]
        .chunks_exact(in_len)
        .zip(output[..rows * out_len].chunks_exact(out_len))
        .zip(tangent_input[..rows * in_len].chunks_exact(in_len))
        .zip(tangent_output[..rows * out_len].chunks_exact_mut(out_len))
    {
        pool.for_each_window(|o, origin| {
            let (_, k, nan) = scan(x, origin);
            ty[o] = if nan || y[o].is_nan() { T::nan() } else { t[k] };
        });
    }
}

/// `output[r][c][p] =` mean of the window of `p` (sum divided by `kh * kw`). Linear, so it
/// is also its own Jacobian-vector product.
///
/// Lengths: `input` rows x `pool.input.len()`, `output` rows x `pool.output_shape().len()`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn avg_forward<T: Scalar>(pool: &Pool2d, rows: usize, input: &[T], output: &mut [T]) {
    let (in_len, out_len) = (pool.input.len(), pool.output_shape().len());
    let (kh, kw, width) = (pool.kernel[0], pool.kernel[1], pool.input.width);
    let divisor = T::from_usize(kh * kw);
    for (x, y) in input[..rows * in_len]
        .chunks_exact(in_len)
        .zip(output[..rows * out_len].chunks_exact_mut(out_len))
    {
        pool.for_each_window(|o, origin| {
            let mut sum = T::zero();
            for i in 0..kh {
                for &v in &x[origin + i * width..origin + i * width + kw] {
                    sum = sum + v;
                }
            }
            y[o] = sum / divisor;
        });
    }
}

/// Vector-Jacobian product of average pooling: each window spreads `grad / (kh * kw)` over
/// its elements (overlapping windows add up).
///
/// Lengths: `grad_output` rows x `pool.output_shape().len()`, `grad_input` rows x
/// `pool.input.len()` (overwritten).
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn avg_backward<T: Scalar>(
    pool: &Pool2d,
    rows: usize,
    grad_output: &[T],
    grad_input: &mut [T],
) {
    let (in_len, out_len) = (pool.input.len(), pool.output_shape().len());
    let (kh, kw, width) = (pool.kernel[0], pool.kernel[1], pool.input.width);
    let divisor = T::from_usize(kh * kw);
    for (g, gx) in grad_output[..rows * out_len]
        .chunks_exact(out_len)
        .zip(grad_input[..rows * in_len].chunks_exact_mut(in_len))
    {
        gx.fill(T::zero());
        pool.for_each_window(|o, origin| {
            let share = g[o] / divisor;
            for i in 0..kh {
                for v in &mut gx[origin + i * width..origin + i * width + kw] {
                    *v = *v + share;
                }
            }
        });
    }
}
