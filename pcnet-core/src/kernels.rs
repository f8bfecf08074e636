//! Matrix kernels, and the [`Backend`] hook through which faster ones plug in.
//!
//! The relaxation schedule calls only the three products of a linear op and the three of
//! a 2-d convolution below (pooling, activations and flatten are cheap elementwise or
//! windowed loops in pcnet-core itself). pcnet-core's [`Portable`] backend implements them
//! with plain loops (direct loops for convolution, see [`crate::ops::conv`]; several independent
//! accumulators, lengths checked once, plain `a * b + c` so that a Cortex-M4F emits one
//! `vmla.f32`); pcnet-std implements [`Backend`] for its SIMD/blocked kernels, and the
//! schedule does not change.

use crate::Scalar;
#[cfg(feature = "conv")]
use crate::{ops::conv, Conv2d};

/// Sizes of one linear op applied to a block of rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearDims {
    /// Samples (rows of the input).
    pub rows: usize,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
}

/// Which op of which network layer a product call belongs to: `layer` 1-based (as in the
/// paper and [`crate::PcError`]), `op` 0-based within the layer's op chain.
///
/// The schedule passes it with every product, so a backend that keeps something per op
/// (weights packed once per call, say) finds it by key instead of by comparing slices.
/// A call that belongs to no network op passes [`OpKey::NONE`]; a backend must compute
/// the same result whatever key it is given, the key only lets it find what it prepared.
///
/// # Example
/// ```
/// use pcnet_core::OpKey;
/// let key = OpKey::new(2, 0); // the first op of layer 2
/// assert_ne!(key, OpKey::NONE);
/// assert_eq!((key.layer, key.op), (2, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpKey {
    /// Layer index, 1-based (0 in [`OpKey::NONE`]).
    pub layer: usize,
    /// Operation index within the layer, 0-based.
    pub op: usize,
}

impl OpKey {
    /// The key of a product that belongs to no network op (layer 0).
    pub const NONE: OpKey = OpKey { layer: 0, op: 0 };

    /// Op `op` (0-based) of layer `layer` (1-based).
    pub const fn new(layer: usize, op: usize) -> OpKey {
        OpKey { layer, op }
    }
}

/// The matrix products a linear op needs. Every method receives slices of exactly the
/// lengths its documentation states (the schedule checks them once, up front).
///
/// Every method also receives the [`OpKey`] of the op it computes for (or
/// [`OpKey::NONE`]). Implementations must compute the same mathematical result as
/// [`Portable`], whatever the key; they may sum in another order. Two more rules, which the schedule's bad-input checks rely on
/// (with the `finiteness-proofs` feature): a linear forward product forms every product
/// `input[r][i] * weight[o][i]`, zero inputs included, so that a NaN or infinite weight
/// makes its output NaN or infinite (the parameters are proven finite from the outputs
/// instead of being scanned); and the parameter-gradient methods overwrite every value
/// of their outputs.
///
/// # Example
/// ```
/// use pcnet_core::{Backend, LinearDims, OpKey, Portable};
/// let dims = LinearDims { rows: 1, inputs: 2, outputs: 1 };
/// let mut out = [0.0_f64];
/// Portable.linear_forward(OpKey::NONE, dims, &[1.0, 2.0], &[3.0, 4.0], &[0.5], &mut out);
/// assert_eq!(out, [11.5]);
/// ```
pub trait Backend<T: Scalar> {
    /// `output[r][o] = bias[o] + sum_i input[r][i] * weight[o][i]`.
    ///
    /// Lengths: `input` rows x inputs, `weight` outputs x inputs, `bias` outputs,
    /// `output` rows x outputs.
    fn linear_forward(
        &self,
        key: OpKey,
        dims: LinearDims,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        let _ = key;
        portable::linear_forward(dims, input, weight, bias, output);
    }

    /// `grad_input[r][i] = sum_o grad_output[r][o] * weight[o][i]` (overwrites).
    ///
    /// Lengths: `grad_output` rows x outputs, `weight` outputs x inputs, `grad_input` rows x inputs.
    fn linear_backward_input(
        &self,
        key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        let _ = key;
        portable::linear_backward_input(dims, grad_output, weight, grad_input);
    }

    /// `grad_weight[o][i] = sum_r grad_output[r][o] * input[r][i]`,
    /// `grad_bias[o] = sum_r grad_output[r][o]` (both overwritten).
    fn linear_backward_parameters(
        &self,
        key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        let _ = key;
        portable::linear_backward_parameters(dims, grad_output, input, grad_weight, grad_bias);
    }

    /// A 2-d convolution of `rows` NCHW samples:
    /// `output[r][o][p] = bias[o] + sum_{i,ki,kj} weight[o][i][ki][kj] * input[r][i][p + (ki,kj)]`
    /// (PyTorch's cross-correlation with zero padding; overwrites `output`).
    ///
    /// Lengths: `input` rows x `conv.input.len()`, `weight` [`Conv2d::weight_len`], `bias`
    /// `conv.out_channels`, `output` rows x `conv.output_shape().len()`.
    #[cfg(feature = "conv")]
    #[allow(clippy::too_many_arguments)]
    fn conv2d_forward(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        let _ = key;
        conv::forward(conv, rows, input, weight, bias, output);
    }

    /// The input gradient of a 2-d convolution (the transposed convolution of
    /// `grad_output`; overwrites `grad_input`).
    ///
    /// Lengths: `grad_output` rows x `conv.output_shape().len()`, `weight`
    /// [`Conv2d::weight_len`], `grad_input` rows x `conv.input.len()`.
    #[cfg(feature = "conv")]
    fn conv2d_backward_input(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        let _ = key;
        conv::backward_input(conv, rows, grad_output, weight, grad_input);
    }

    /// The parameter gradient of a 2-d convolution, summed over the rows:
    /// `grad_weight[o][i][ki][kj] = sum_{r,p} grad_output[r][o][p] * input[r][i][p + (ki,kj)]`,
    /// `grad_bias[o] = sum_{r,p} grad_output[r][o][p]` (both overwritten).
    ///
    /// Lengths: `grad_output` rows x `conv.output_shape().len()`, `input` rows x
    /// `conv.input.len()`, `grad_weight` [`Conv2d::weight_len`], `grad_bias` `conv.out_channels`.
    #[cfg(feature = "conv")]
    #[allow(clippy::too_many_arguments)]
    fn conv2d_backward_parameters(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        let _ = key;
        conv::backward_parameters(conv, rows, grad_output, input, grad_weight, grad_bias);
    }
}

/// The portable backend: plain Rust loops, no allocation, no `unsafe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Portable;

impl<T: Scalar> Backend<T> for Portable {}

/// The portable kernels themselves, public so that faster backends can be tested against
/// them and can fall back to them.
pub mod portable {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers make every product and sum exact, whatever the order.
    #[test]
    fn kernels_match_naive_loops_exactly() {
        let dims = LinearDims {
            rows: 3,
            inputs: 7,
            outputs: 5,
        };
        let input: [f64; 21] = core::array::from_fn(|i| ((i * 7) % 11) as f64 - 5.0);
        let weight: [f64; 35] = core::array::from_fn(|i| ((i * 3) % 13) as f64 - 6.0);
        let bias: [f64; 5] = core::array::from_fn(|i| i as f64 - 2.0);
        let mut out = [0.0; 15];
        Portable.linear_forward(OpKey::NONE, dims, &input, &weight, &bias, &mut out);
        for r in 0..3 {
            for o in 0..5 {
                let mut s = bias[o];
                for i in 0..7 {
                    s += input[r * 7 + i] * weight[o * 7 + i];
                }
                assert_eq!(out[r * 5 + o], s);
            }
        }
        let grad_out: [f64; 15] = core::array::from_fn(|i| (i % 4) as f64 - 1.0);
        let mut gin = [f64::NAN; 21];
        Portable.linear_backward_input(OpKey::NONE, dims, &grad_out, &weight, &mut gin);
        for r in 0..3 {
            for i in 0..7 {
                let s: f64 = (0..5)
                    .map(|o| grad_out[r * 5 + o] * weight[o * 7 + i])
                    .sum();
                assert_eq!(gin[r * 7 + i], s);
            }
        }
        let mut gw = [f64::NAN; 35];
        let mut gb = [f64::NAN; 5];
        Portable.linear_backward_parameters(OpKey::NONE, dims, &grad_out, &input, &mut gw, &mut gb);
        for o in 0..5 {
            assert_eq!(gb[o], (0..3).map(|r| grad_out[r * 5 + o]).sum::<f64>());
            for i in 0..7 {
                let s: f64 = (0..3).map(|r| grad_out[r * 5 + o] * input[r * 7 + i]).sum();
                assert_eq!(gw[o * 7 + i], s);
            }
        }
    }
}
