//! Matrix kernels, and the [`Backend`] hook through which faster ones plug in.
//!
//! The relaxation schedule calls only the three products of a linear op and the three of
//! a 2-d convolution below (pooling, activations and flatten are cheap elementwise or
//! windowed loops in pcnet-core itself). pcnet-core's [`Portable`] backend implements them
//! with plain loops (direct loops for convolution, see [`conv`]; several independent
//! accumulators, lengths checked once, plain `a * b + c` so that a Cortex-M4F emits one
//! `vmla.f32`); pcnet-std implements [`Backend`] for its SIMD/blocked kernels, and the
//! schedule does not change.

#[cfg(feature = "conv")]
use crate::Conv2d;
use crate::Scalar;

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

#[cfg(feature = "conv")]
pub mod conv;
#[cfg(feature = "conv")]
pub mod pool;
pub mod portable;

#[cfg(test)]
mod tests;
