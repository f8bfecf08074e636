//! The portable linear kernels themselves (plain loops, several independent
//! accumulators), public so that faster backends can be tested against them and can fall
//! back to them.

use super::LinearDims;
use crate::Scalar;

/// Dot product with four independent accumulators (so the loop vectorises).
#[inline]
pub fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [T::zero(); 4];
    let a_chunks = a.chunks_exact(4);
    let b_chunks = b.chunks_exact(4);
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        acc[0] = x[0] * y[0] + acc[0];
        acc[1] = x[1] * y[1] + acc[1];
        acc[2] = x[2] * y[2] + acc[2];
        acc[3] = x[3] * y[3] + acc[3];
    }
    let mut tail = T::zero();
    for (&x, &y) in a_rest.iter().zip(b_rest) {
        tail = x * y + tail;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail
}

/// `y[i] += alpha * x[i]`.
#[inline]
pub fn axpy<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) {
    let len = x.len().min(y.len());
    for (yi, &xi) in y[..len].iter_mut().zip(&x[..len]) {
        *yi = alpha * xi + *yi;
    }
}

/// See [`Backend::linear_forward`](super::Backend::linear_forward).
pub fn linear_forward<T: Scalar>(
    dims: LinearDims,
    input: &[T],
    weight: &[T],
    bias: &[T],
    output: &mut [T],
) {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    let (input, weight) = (&input[..rows * inputs], &weight[..outputs * inputs]);
    let (bias, output) = (&bias[..outputs], &mut output[..rows * outputs]);
    if outputs == 0 {
        return; // nothing to write (and `chunks_exact_mut(0)` would panic)
    }
    if inputs == 0 {
        for row in output.chunks_exact_mut(outputs.max(1)) {
            row.copy_from_slice(&bias[..row.len()]);
        }
        return;
    }
    for (x, out_row) in input
        .chunks_exact(inputs)
        .zip(output.chunks_exact_mut(outputs))
    {
        for ((out, w), &b) in out_row
            .iter_mut()
            .zip(weight.chunks_exact(inputs))
            .zip(bias)
        {
            *out = dot(x, w) + b;
        }
    }
}

/// See [`Backend::linear_backward_input`](super::Backend::linear_backward_input).
pub fn linear_backward_input<T: Scalar>(
    dims: LinearDims,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
) {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    if inputs == 0 || outputs == 0 {
        grad_input[..rows * inputs].fill(T::zero());
        return;
    }
    let (grad_output, weight) = (&grad_output[..rows * outputs], &weight[..outputs * inputs]);
    let grad_input = &mut grad_input[..rows * inputs];
    for (g, gin) in grad_output
        .chunks_exact(outputs)
        .zip(grad_input.chunks_exact_mut(inputs))
    {
        gin.fill(T::zero());
        for (&go, w) in g.iter().zip(weight.chunks_exact(inputs)) {
            axpy(go, w, gin);
        }
    }
}

/// See [`Backend::linear_backward_parameters`](super::Backend::linear_backward_parameters).
pub fn linear_backward_parameters<T: Scalar>(
    dims: LinearDims,
    grad_output: &[T],
    input: &[T],
    grad_weight: &mut [T],
    grad_bias: &mut [T],
) {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    let grad_weight = &mut grad_weight[..outputs * inputs];
    let grad_bias = &mut grad_bias[..outputs];
    grad_weight.fill(T::zero());
    grad_bias.fill(T::zero());
    if outputs == 0 {
        return;
    }
    let grad_output = &grad_output[..rows * outputs];
    for (r, g) in grad_output.chunks_exact(outputs).enumerate() {
        for (gb, &go) in grad_bias.iter_mut().zip(g) {
            *gb = *gb + go;
        }
        if inputs == 0 {
            continue;
        }
        let x = &input[r * inputs..(r + 1) * inputs];
        for (&go, gw) in g.iter().zip(grad_weight.chunks_exact_mut(inputs)) {
            axpy(go, x, gw);
        }
    }
}
