//! 2-d convolution as im2col plus [`gemm()`](super::gemm): the [`Fast`](super::Fast) backend's
//! `conv2d_*` methods.
//!
//! Per sample, the input image (`C x H x W`) is unrolled into its column matrix
//! `cols` of shape `(C kh kw) x (OH OW)` (zero where a tap falls in the padding), so that
//!
//! | product | as a matrix product |
//! |---|---|
//! | forward | `out_r = W cols_r + b` (`OC x Ckk` times `Ckk x P`) |
//! | input VJP | `dcols = W^T g_r`, then added back into the image (col2im); for stride 1 the convolution of `g_r` with the flipped kernel instead |
//! | parameter VJP | `gW = sum_r g_r cols_r^T` (`OC x P` times `P x Ckk`), samples in order |
//!
//! The column matrix lives in a per-thread buffer that grows to the largest
//! [`Conv2d::columns_len`] it has seen and is then reused: after the first call on a
//! shape nothing allocates. Samples are processed in index order and each product's
//! summation order depends on the shapes only, so results are the same for any thread
//! count; they differ from [`pcnet_core::kernels::conv`]'s direct loops only by summation order.

use super::buffer::with_buffer;
use super::kernels::Family;
use super::matmul::gemm_on;
use super::{Accumulate, GemmScalar, MatMut, MatRef};
use pcnet_core::{Conv2d, PcError};

/// Output positions `o` in `0..count` whose input index `o * stride + offset - pad` lies
/// in `0..size`.
fn valid(count: usize, size: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
    let low = if pad > offset {
        (pad - offset).div_ceil(stride)
    } else {
        0
    };
    let high = if size + pad > offset {
        ((size - 1 + pad - offset) / stride + 1).min(count)
    } else {
        0
    };
    (low.min(high), high)
}

/// `target.copy_from_slice(source)` for the short rows of an image (tens of values),
/// in fixed 8-value blocks the compiler keeps inline rather than calling `memmove`.
#[inline(always)]
fn copy_short<T: Copy>(target: &mut [T], source: &[T]) {
    let mut targets = target.chunks_exact_mut(8);
    let mut sources = source.chunks_exact(8);
    for (t, s) in (&mut targets).zip(&mut sources) {
        if let (Ok(t), Ok(s)) = (<&mut [T; 8]>::try_from(t), <&[T; 8]>::try_from(s)) {
            *t = *s;
        }
    }
    for (t, s) in targets.into_remainder().iter_mut().zip(sources.remainder()) {
        *t = *s;
    }
}

/// `target.fill(zero)` for short rows, inline like [`copy_short`].
#[inline(always)]
fn zero_short<T: GemmScalar>(target: &mut [T]) {
    let mut targets = target.chunks_exact_mut(8);
    for t in &mut targets {
        if let Ok(t) = <&mut [T; 8]>::try_from(t) {
            *t = [T::zero(); 8];
        }
    }
    for t in targets.into_remainder() {
        *t = T::zero();
    }
}

/// Unrolls one sample `x` (`C x H x W`) into `cols` (`Ckk x P`).
fn im2col<T: GemmScalar>(conv: &Conv2d, x: &[T], cols: &mut [T]) {
    let (input, output) = (conv.input, conv.output_shape());
    let [kh, kw] = conv.kernel;
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let positions = output.plane();
    let mut rows = cols.chunks_exact_mut(positions);
    for channel in x.chunks_exact(input.plane()).take(input.channels) {
        for ki in 0..kh {
            let (r0, r1) = valid(output.height, input.height, sh, ki, ph);
            for kj in 0..kw {
                let Some(row) = rows.next() else { return };
                let (c0, c1) = valid(output.width, input.width, sw, kj, pw);
                row[..r0 * output.width].fill(T::zero());
                row[r1 * output.width..].fill(T::zero());
                for oh in r0..r1 {
                    let ih = oh * sh + ki - ph;
                    let source = &channel[ih * input.width..(ih + 1) * input.width];
                    let target = &mut row[oh * output.width..(oh + 1) * output.width];
                    zero_short(&mut target[..c0]);
                    zero_short(&mut target[c1..]);
                    let first = c0 * sw + kj - pw;
                    if sw == 1 {
                        copy_short(&mut target[c0..c1], &source[first..first + (c1 - c0)]);
                    } else {
                        for (t, &s) in target[c0..c1]
                            .iter_mut()
                            .zip(source[first..].iter().step_by(sw))
                        {
                            *t = s;
                        }
                    }
                }
            }
        }
    }
}

/// Adds `cols` (`Ckk x P`) back into one sample's image gradient `gx` (`C x H x W`).
fn col2im<T: GemmScalar>(conv: &Conv2d, cols: &[T], gx: &mut [T]) {
    let (input, output) = (conv.input, conv.output_shape());
    let [kh, kw] = conv.kernel;
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let mut rows = cols.chunks_exact(output.plane());
    for channel in gx.chunks_exact_mut(input.plane()).take(input.channels) {
        for ki in 0..kh {
            let (r0, r1) = valid(output.height, input.height, sh, ki, ph);
            for kj in 0..kw {
                let Some(row) = rows.next() else { return };
                let (c0, c1) = valid(output.width, input.width, sw, kj, pw);
                for oh in r0..r1 {
                    let ih = oh * sh + ki - ph;
                    let target = &mut channel[ih * input.width..(ih + 1) * input.width];
                    let source = &row[oh * output.width + c0..oh * output.width + c1];
                    let first = c0 * sw + kj - pw;
                    if sw == 1 {
                        for (t, &s) in target[first..first + source.len()].iter_mut().zip(source) {
                            *t = *t + s;
                        }
                    } else {
                        for (t, &s) in target[first..].iter_mut().step_by(sw).zip(source) {
                            *t = *t + s;
                        }
                    }
                }
            }
        }
    }
}

/// Lengths every method checks before touching anything.
fn check(conv: &Conv2d, rows: usize, image: usize, output: usize) -> Result<(), PcError> {
    let (in_len, out_len) = (conv.input.len(), conv.output_shape().len());
    let needed = rows.checked_mul(in_len).zip(rows.checked_mul(out_len));
    match needed {
        Some((i, o)) if i <= image && o <= output => Ok(()),
        _ => Err(PcError::BufferTooSmall {
            what: "convolution operand",
            needed: rows.saturating_mul(in_len.max(out_len)),
            given: image.min(output),
        }),
    }
}

/// See [`pcnet_core::Backend::conv2d_forward`].
pub(super) fn forward<T: GemmScalar>(
    family: Family,
    conv: &Conv2d,
    rows: usize,
    input: &[T],
    weight: &[T],
    bias: &[T],
    output: &mut [T],
) -> Result<(), PcError> {
    check(conv, rows, input.len(), output.len())?;
    let (in_len, out_len) = (conv.input.len(), conv.output_shape().len());
    let (filters, positions) = (conv.filter_len(), conv.output_shape().plane());
    let weight = MatRef::row_major(weight, conv.out_channels, filters)?;
    let bias = bias
        .get(..conv.out_channels)
        .ok_or(PcError::BufferTooSmall {
            what: "bias",
            needed: conv.out_channels,
            given: bias.len(),
        })?;
    with_buffer(T::column_buffer(), conv.columns_len(), |cols| {
        for (x, y) in input[..rows * in_len]
            .chunks_exact(in_len)
            .zip(output[..rows * out_len].chunks_exact_mut(out_len))
        {
            im2col(conv, x, cols);
            for (channel, &b) in y.chunks_exact_mut(positions).zip(bias) {
                channel.fill(b);
            }
            gemm_on(
                family,
                MatMut::row_major(y, conv.out_channels, positions)?,
                weight,
                MatRef::row_major(cols, filters, positions)?,
                Accumulate::Add,
            )?;
        }
        Ok(())
    })
}

/// See [`pcnet_core::Backend::conv2d_backward_input`].
pub(super) fn backward_input<T: GemmScalar>(
    family: Family,
    conv: &Conv2d,
    rows: usize,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
) -> Result<(), PcError> {
    check(conv, rows, grad_input.len(), grad_output.len())?;
    if let Some(transposed) = transposed(conv) {
        return backward_input_as_convolution(
            family,
            conv,
            &transposed,
            rows,
            grad_output,
            weight,
            grad_input,
        );
    }
    let (in_len, out_len) = (conv.input.len(), conv.output_shape().len());
    let (filters, positions) = (conv.filter_len(), conv.output_shape().plane());
    let weight_t = MatRef::row_major(weight, conv.out_channels, filters)?.transpose();
    with_buffer(T::column_buffer(), conv.columns_len(), |cols| {
        for (g, gx) in grad_output[..rows * out_len]
            .chunks_exact(out_len)
            .zip(grad_input[..rows * in_len].chunks_exact_mut(in_len))
        {
            gemm_on(
                family,
                MatMut::row_major(cols, filters, positions)?,
                weight_t,
                MatRef::row_major(g, conv.out_channels, positions)?,
                Accumulate::Overwrite,
            )?;
            gx.fill(T::zero());
            col2im(conv, cols, gx);
        }
        Ok(())
    })
}

/// For stride 1 and padding below the kernel, the input gradient is itself a
/// convolution: of `g` (`OC x OH x OW`) with the flipped, transposed kernel
/// `W'[i][o][a][b] = W[o][i][kh-1-a][kw-1-b]` and padding `k - 1 - p`, whose output is
/// exactly `IC x H x W`. That is one im2col of `g` and one gemm writing `gx` directly,
/// instead of a gemm into columns and a scatter-add (col2im).
fn transposed(conv: &Conv2d) -> Option<Conv2d> {
    let [kh, kw] = conv.kernel;
    let [ph, pw] = conv.padding;
    if conv.stride != [1, 1] || ph >= kh || pw >= kw {
        return None;
    }
    let out = conv.output_shape();
    let transposed =
        Conv2d::new(out, conv.input.channels, conv.kernel).with_padding([kh - 1 - ph, kw - 1 - pw]);
    (transposed.output_shape() == conv.input).then_some(transposed)
}

fn backward_input_as_convolution<T: GemmScalar>(
    family: Family,
    conv: &Conv2d,
    transposed: &Conv2d,
    rows: usize,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
) -> Result<(), PcError> {
    let (in_len, out_len) = (conv.input.len(), conv.output_shape().len());
    let (kh, kw) = (conv.kernel[0], conv.kernel[1]);
    let (filters, positions) = (transposed.filter_len(), conv.input.plane());
    let weight = weight
        .get(..conv.weight_len())
        .ok_or(PcError::BufferTooSmall {
            what: "weight",
            needed: conv.weight_len(),
            given: weight.len(),
        })?;
    let columns = transposed.columns_len();
    with_buffer(T::column_buffer(), columns + conv.weight_len(), |buffer| {
        let (cols, flipped) = buffer.split_at_mut(columns);
        // flipped[i][o][a][b] = weight[o][i][kh-1-a][kw-1-b]
        let (ins, outs) = (conv.input.channels, conv.out_channels);
        for o in 0..outs {
            for i in 0..ins {
                let source = &weight[(o * ins + i) * kh * kw..][..kh * kw];
                let target = &mut flipped[(i * outs + o) * kh * kw..][..kh * kw];
                for (t, &s) in target.iter_mut().zip(source.iter().rev()) {
                    *t = s;
                }
            }
        }
        let flipped = MatRef::row_major(flipped, ins, filters)?;
        for (g, gx) in grad_output[..rows * out_len]
            .chunks_exact(out_len)
            .zip(grad_input[..rows * in_len].chunks_exact_mut(in_len))
        {
            im2col(transposed, g, cols);
            gemm_on(
                family,
                MatMut::row_major(gx, ins, positions)?,
                flipped,
                MatRef::row_major(cols, filters, positions)?,
                Accumulate::Overwrite,
            )?;
        }
        Ok(())
    })
}

/// See [`pcnet_core::Backend::conv2d_backward_parameters`].
pub(super) fn backward_parameters<T: GemmScalar>(
    family: Family,
    conv: &Conv2d,
    rows: usize,
    grad_output: &[T],
    input: &[T],
    grad_weight: &mut [T],
    grad_bias: &mut [T],
) -> Result<(), PcError> {
    check(conv, rows, input.len(), grad_output.len())?;
    let (in_len, out_len) = (conv.input.len(), conv.output_shape().len());
    let (filters, positions) = (conv.filter_len(), conv.output_shape().plane());
    let given = grad_bias.len();
    let grad_bias = grad_bias
        .get_mut(..conv.out_channels)
        .ok_or(PcError::BufferTooSmall {
            what: "bias gradient",
            needed: conv.out_channels,
            given,
        })?;
    grad_bias.fill(T::zero());
    let grad_weight = grad_weight
        .get_mut(..conv.weight_len())
        .ok_or(PcError::BufferTooSmall {
            what: "weight gradient",
            needed: conv.weight_len(),
            given,
        })?;
    grad_weight.fill(T::zero());
    with_buffer(T::column_buffer(), conv.columns_len(), |cols| {
        for (g, x) in grad_output[..rows * out_len]
            .chunks_exact(out_len)
            .zip(input[..rows * in_len].chunks_exact(in_len))
        {
            im2col(conv, x, cols);
            gemm_on(
                family,
                MatMut::row_major(grad_weight, conv.out_channels, filters)?,
                MatRef::row_major(g, conv.out_channels, positions)?,
                MatRef::row_major(cols, filters, positions)?.transpose(),
                Accumulate::Add,
            )?;
            for (sum, channel) in grad_bias.iter_mut().zip(g.chunks_exact(positions)) {
                let mut total = T::zero();
                for &v in channel {
                    total = total + v;
                }
                *sum = *sum + total;
            }
        }
        Ok(())
    })
}
