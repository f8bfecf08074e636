//! Portable 2-d convolution kernels (direct loops, no scratch, no allocation).
//!
//! Every kernel walks the `(out channel, in channel, ki, kj)` taps of the filter and, for
//! each tap, the output rows whose input row lies inside the image; along a row it touches
//! only the output columns whose input column is inside the image, so zero padding costs
//! nothing and there is no per-element bounds test. Stride-1 rows are contiguous slices
//! (the common case vectorises as an `axpy` or a dot product).
//!
//! These are the bodies of [`Backend`](crate::Backend)'s `conv2d_*` methods and the
//! reference that faster backends are tested against.

use super::portable::dot;
use crate::{Conv2d, Scalar};

/// One filter tap `(ki, kj)`: the output rows and columns it reaches and the input
/// offsets of the first of them.
struct Tap {
    rows: core::ops::Range<usize>,
    cols: core::ops::Range<usize>,
    /// Input row of output row 0 would be `row0 - ph` (kept unsigned: `ki`).
    ki: usize,
    kj: usize,
}

impl Conv2d {
    #[inline]
    fn tap(&self, ki: usize, kj: usize) -> Tap {
        let out = self.output_shape();
        Tap {
            rows: valid_outputs(
                out.height,
                self.input.height,
                self.stride[0],
                ki,
                self.padding[0],
            ),
            cols: valid_outputs(
                out.width,
                self.input.width,
                self.stride[1],
                kj,
                self.padding[1],
            ),
            ki,
            kj,
        }
    }

    /// Input row of output row `oh` for this tap (valid for `oh` in `tap.rows`).
    #[inline]
    fn input_row(&self, tap: &Tap, oh: usize) -> usize {
        oh * self.stride[0] + tap.ki - self.padding[0]
    }

    /// Input column of output column `ow` for this tap (valid for `ow` in `tap.cols`).
    #[inline]
    fn input_col(&self, tap: &Tap, ow: usize) -> usize {
        ow * self.stride[1] + tap.kj - self.padding[1]
    }
}

/// `output[r][o][p] = bias[o] + sum_{i,ki,kj} weight[o][i][ki][kj] * input[r][i][p + (ki,kj)]`.
///
/// Lengths: `input` rows x `conv.input.len()`, `weight` [`Conv2d::weight_len`], `bias`
/// `out_channels`, `output` rows x `conv.output_shape().len()` (overwritten).
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn forward<T: Scalar>(
    conv: &Conv2d,
    rows: usize,
    input: &[T],
    weight: &[T],
    bias: &[T],
    output: &mut [T],
) {
    correlate(conv, rows, input, weight, Some(bias), output);
}

/// Jacobian-vector product of the convolution with respect to its input: the convolution
/// of `tangent_input` without the bias (overwrites `tangent_output`).
///
/// Lengths as [`forward`] without the bias.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn jvp<T: Scalar>(
    conv: &Conv2d,
    rows: usize,
    tangent_input: &[T],
    weight: &[T],
    tangent_output: &mut [T],
) {
    correlate(conv, rows, tangent_input, weight, None, tangent_output);
}

fn correlate<T: Scalar>(
    conv: &Conv2d,
    rows: usize,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
) {
    let (in_shape, out_shape) = (conv.input, conv.output_shape());
    let (in_len, out_len) = (in_shape.len(), out_shape.len());
    let (in_plane, out_plane) = (in_shape.plane(), out_shape.plane());
    let (kh, kw) = (conv.kernel[0], conv.kernel[1]);
    let weight = &weight[..conv.weight_len()];
    let sw = conv.stride[1];
    for (x, y) in input[..rows * in_len]
        .chunks_exact(in_len)
        .zip(output[..rows * out_len].chunks_exact_mut(out_len))
    {
        for (o, (y_channel, filter)) in y
            .chunks_exact_mut(out_plane)
            .zip(weight.chunks_exact(conv.filter_len()))
            .enumerate()
        {
            y_channel.fill(bias.map_or(T::zero(), |bias| bias[o]));
            for (x_channel, kernel) in x.chunks_exact(in_plane).zip(filter.chunks_exact(kh * kw)) {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let w = kernel[ki * kw + kj];
                        let tap = conv.tap(ki, kj);
                        let (c0, c1) = (tap.cols.start, tap.cols.end);
                        if c0 >= c1 {
                            continue;
                        }
                        let first = conv.input_col(&tap, c0);
                        for oh in tap.rows.clone() {
                            let ih = conv.input_row(&tap, oh);
                            let x_row = &x_channel[ih * in_shape.width..(ih + 1) * in_shape.width];
                            let y_row = &mut y_channel
                                [oh * out_shape.width + c0..oh * out_shape.width + c1];
                            if sw == 1 {
                                for (yv, &xv) in y_row.iter_mut().zip(&x_row[first..]) {
                                    *yv = w * xv + *yv;
                                }
                            } else {
                                for (yv, &xv) in
                                    y_row.iter_mut().zip(x_row[first..].iter().step_by(sw))
                                {
                                    *yv = w * xv + *yv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `grad_input[r][i][q] = sum_{o,ki,kj} weight[o][i][ki][kj] * grad_output[r][o][q - (ki,kj)]`
/// (the transpose of [`forward`]'s linear part; overwrites `grad_input`).
///
/// Lengths: `grad_output` rows x `conv.output_shape().len()`, `weight`
/// [`Conv2d::weight_len`], `grad_input` rows x `conv.input.len()`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn backward_input<T: Scalar>(
    conv: &Conv2d,
    rows: usize,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
) {
    let (in_shape, out_shape) = (conv.input, conv.output_shape());
    let (in_len, out_len) = (in_shape.len(), out_shape.len());
    let (in_plane, out_plane) = (in_shape.plane(), out_shape.plane());
    let (kh, kw) = (conv.kernel[0], conv.kernel[1]);
    let weight = &weight[..conv.weight_len()];
    let sw = conv.stride[1];
    for (g, gx) in grad_output[..rows * out_len]
        .chunks_exact(out_len)
        .zip(grad_input[..rows * in_len].chunks_exact_mut(in_len))
    {
        gx.fill(T::zero());
        for (g_channel, filter) in g
            .chunks_exact(out_plane)
            .zip(weight.chunks_exact(conv.filter_len()))
        {
            for (gx_channel, kernel) in gx
                .chunks_exact_mut(in_plane)
                .zip(filter.chunks_exact(kh * kw))
            {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let w = kernel[ki * kw + kj];
                        let tap = conv.tap(ki, kj);
                        let (c0, c1) = (tap.cols.start, tap.cols.end);
                        if c0 >= c1 {
                            continue;
                        }
                        let first = conv.input_col(&tap, c0);
                        for oh in tap.rows.clone() {
                            let ih = conv.input_row(&tap, oh);
                            let gx_row =
                                &mut gx_channel[ih * in_shape.width..(ih + 1) * in_shape.width];
                            let g_row =
                                &g_channel[oh * out_shape.width + c0..oh * out_shape.width + c1];
                            if sw == 1 {
                                for (gxv, &gv) in gx_row[first..].iter_mut().zip(g_row) {
                                    *gxv = w * gv + *gxv;
                                }
                            } else {
                                for (gxv, &gv) in gx_row[first..].iter_mut().step_by(sw).zip(g_row)
                                {
                                    *gxv = w * gv + *gxv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `grad_weight[o][i][ki][kj] = sum_{r,p} grad_output[r][o][p] * input[r][i][p + (ki,kj)]`,
/// `grad_bias[o] = sum_{r,p} grad_output[r][o][p]` (both overwritten).
///
/// Lengths: `grad_output` rows x `conv.output_shape().len()`, `input` rows x
/// `conv.input.len()`, `grad_weight` [`Conv2d::weight_len`], `grad_bias` `out_channels`.
// Kept out of line so the layer VJP that dispatches to it keeps a small stack frame.
#[inline(never)]
pub fn backward_parameters<T: Scalar>(
    conv: &Conv2d,
    rows: usize,
    grad_output: &[T],
    input: &[T],
    grad_weight: &mut [T],
    grad_bias: &mut [T],
) {
    let (in_shape, out_shape) = (conv.input, conv.output_shape());
    let (in_len, out_len) = (in_shape.len(), out_shape.len());
    let (in_plane, out_plane) = (in_shape.plane(), out_shape.plane());
    let (kh, kw) = (conv.kernel[0], conv.kernel[1]);
    let grad_weight = &mut grad_weight[..conv.weight_len()];
    let grad_bias = &mut grad_bias[..conv.out_channels];
    grad_weight.fill(T::zero());
    grad_bias.fill(T::zero());
    let sw = conv.stride[1];
    for (g, x) in grad_output[..rows * out_len]
        .chunks_exact(out_len)
        .zip(input[..rows * in_len].chunks_exact(in_len))
    {
        for ((g_channel, filter), gb) in g
            .chunks_exact(out_plane)
            .zip(grad_weight.chunks_exact_mut(conv.filter_len()))
            .zip(grad_bias.iter_mut())
        {
            let mut sum = T::zero();
            for &v in g_channel {
                sum = sum + v;
            }
            *gb = *gb + sum;
            for (x_channel, kernel) in x
                .chunks_exact(in_plane)
                .zip(filter.chunks_exact_mut(kh * kw))
            {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let tap = conv.tap(ki, kj);
                        let (c0, c1) = (tap.cols.start, tap.cols.end);
                        if c0 >= c1 {
                            continue;
                        }
                        let first = conv.input_col(&tap, c0);
                        let mut acc = T::zero();
                        for oh in tap.rows.clone() {
                            let ih = conv.input_row(&tap, oh);
                            let x_row = &x_channel[ih * in_shape.width..(ih + 1) * in_shape.width];
                            let g_row =
                                &g_channel[oh * out_shape.width + c0..oh * out_shape.width + c1];
                            if sw == 1 {
                                acc = acc + dot(g_row, &x_row[first..]);
                            } else {
                                let mut s = T::zero();
                                for (&gv, &xv) in
                                    g_row.iter().zip(x_row[first..].iter().step_by(sw))
                                {
                                    s = gv * xv + s;
                                }
                                acc = acc + s;
                            }
                        }
                        kernel[ki * kw + kj] = kernel[ki * kw + kj] + acc;
                    }
                }
            }
        }
    }
}

/// The range of output positions `o` along one axis whose input index
/// `o * stride + offset - pad` lies in `0..size`, clipped to `0..count`.
#[inline]
fn valid_outputs(
    count: usize,
    size: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> core::ops::Range<usize> {
    // o * stride + offset >= pad  <=>  o >= ceil((pad - offset) / stride)
    let low = if pad > offset {
        (pad - offset).div_ceil(stride)
    } else {
        0
    };
    // o * stride + offset - pad <= size - 1  <=>  o <= (size - 1 + pad - offset) / stride
    let high = if size + pad > offset {
        ((size - 1 + pad - offset) / stride + 1).min(count)
    } else {
        0
    };
    low.min(high)..high
}
