//! Fast f32/f64 kernels: the [`Fast`] backend and the safe [`gemm()`] it is built on.
//!
//! [`Fast`] implements [`pcnet_core::Backend`] for `f32` and `f64`, so the relaxation
//! schedule of pcnet-core runs unchanged on top of it (`pcnet_core::infer_with(&Fast, ...)`).
//! The three products of a linear op map onto one [`gemm()`] call each:
//!
//! | product | shape (`m x k` times `k x n`) |
//! |---|---|
//! | forward `out = x W^T + b` | rows x inputs times inputs x outputs (`W^T` is a strided view) |
//! | input VJP `g_in = g W` | rows x outputs times outputs x inputs |
//! | parameter VJP `g_W = g^T x` | outputs x rows times rows x inputs |
//!
//! Products of fewer than 24 rows read their operands where they are: the forward
//! product as a tile of dot products along contiguous rows of `x` and `W`, the VJPs by
//! broadcasting elements of `g` against rows of `W` or `x`; at one row (batch 1) the
//! kernels widen their tiles to keep eight independent sums in flight. From 24 rows on,
//! every product broadcasts against `rhs` copied into contiguous panels first (`W^T` by
//! SIMD 8 x 8 transposes), in a buffer each thread grows once and reuses, so nothing is
//! allocated after the first call on a shape; a transposed `g` is also copied, a few rows
//! at a time, to the stack. [`PackedWeights`] packs the weights both ways once per call
//! instead of once per product ([`PackedFast`], which the batch runner uses), with the
//! same bits.
//!
//! Convolutions (`conv2d_*`) are im2col plus one [`gemm()`] per sample (see `conv.rs`).
//!
//! Results differ from [`pcnet_core::Portable`] only by summation order: every product
//! element is within `gamma_k sum |a_i b_i|` of the exact value for both.
//! `pcnet_core::Scalar` is sealed to f32 and f64, so every scalar pc computes in has a fast
//! path; code generic over any `T: Scalar` that cannot name `Fast: Backend<T>` uses
//! [`pcnet_core::Portable`].

mod avx512;
mod buffer;
mod conv;
mod matmul;
mod packed;
mod simd;

pub use buffer::Scratch;
pub use matmul::{gemm, Accumulate, GemmScalar, MatMut, MatRef};
pub use packed::{PackedFast, PackedWeights};

use pcnet_core::{Backend, Conv2d, LinearDims};

/// The fast backend: pc's SIMD matrix products, single threaded per call.
///
/// # Example
/// ```
/// use pcnet_core::{infer_with, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
/// use pcnet_std::fast::Fast;
/// let layers = [Layer::dense(3, 4, Activation::Relu), Layer::dense(4, 2, Activation::Identity)];
/// let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
/// let params: Vec<f32> = (0..spec.parameter_len()).map(|i| ((i % 7) as f32 - 3.0) / 10.0).collect();
/// let mut workspace = vec![0.0; spec.workspace_len(2)];
/// let mut updates = vec![0.0; spec.parameter_len()];
/// let batch = Batch::new(&[1.0, 0.5, -1.0, 0.0, 2.0, 1.0], Targets::Classes(&[1, 0]));
/// let inference = infer_with(&Fast, &spec, &params, batch, &Settings::strict(0.1, 20), &mut workspace, &mut updates)?;
/// assert!(inference.loss() > 0.0);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fast;

/// The views below are built from lengths pcnet-core's schedule checked up front, so they
/// cannot fail; if they ever did (a broken caller of the trait), fall back to the
/// portable kernel, which indexes with bounds checks, rather than return garbage.
macro_rules! impl_fast {
    ($t:ty) => {
        impl Backend<$t> for Fast {
            fn linear_forward(
                &self,
                dims: LinearDims,
                input: &[$t],
                weight: &[$t],
                bias: &[$t],
                output: &mut [$t],
            ) {
                if forward(dims, input, weight, bias, &[], output).is_err() {
                    pcnet_core::kernels::portable::linear_forward(
                        dims, input, weight, bias, output,
                    );
                }
            }

            fn linear_backward_input(
                &self,
                dims: LinearDims,
                grad_output: &[$t],
                weight: &[$t],
                grad_input: &mut [$t],
            ) {
                if backward_input(dims, grad_output, weight, &[], grad_input).is_err() {
                    pcnet_core::kernels::portable::linear_backward_input(
                        dims,
                        grad_output,
                        weight,
                        grad_input,
                    );
                }
            }

            fn linear_backward_parameters(
                &self,
                dims: LinearDims,
                grad_output: &[$t],
                input: &[$t],
                grad_weight: &mut [$t],
                grad_bias: &mut [$t],
            ) {
                if backward_parameters(dims, grad_output, input, grad_weight, grad_bias).is_err() {
                    pcnet_core::kernels::portable::linear_backward_parameters(
                        dims,
                        grad_output,
                        input,
                        grad_weight,
                        grad_bias,
                    );
                }
            }

            fn conv2d_forward(
                &self,
                conv: &Conv2d,
                rows: usize,
                input: &[$t],
                weight: &[$t],
                bias: &[$t],
                output: &mut [$t],
            ) {
                if conv::forward(conv, rows, input, weight, bias, output).is_err() {
                    pcnet_core::ops::conv::forward(conv, rows, input, weight, bias, output);
                }
            }

            fn conv2d_backward_input(
                &self,
                conv: &Conv2d,
                rows: usize,
                grad_output: &[$t],
                weight: &[$t],
                grad_input: &mut [$t],
            ) {
                if conv::backward_input(conv, rows, grad_output, weight, grad_input).is_err() {
                    pcnet_core::ops::conv::backward_input(
                        conv,
                        rows,
                        grad_output,
                        weight,
                        grad_input,
                    );
                }
            }

            fn conv2d_backward_parameters(
                &self,
                conv: &Conv2d,
                rows: usize,
                grad_output: &[$t],
                input: &[$t],
                grad_weight: &mut [$t],
                grad_bias: &mut [$t],
            ) {
                if conv::backward_parameters(conv, rows, grad_output, input, grad_weight, grad_bias)
                    .is_err()
                {
                    pcnet_core::ops::conv::backward_parameters(
                        conv,
                        rows,
                        grad_output,
                        input,
                        grad_weight,
                        grad_bias,
                    );
                }
            }
        }
    };
}

impl_fast!(f32);
impl_fast!(f64);

use matmul::gemm_packed;
use pcnet_core::PcError;

/// `output = input W^T + bias`: the bias in every row, then the product added; with
/// `packed` (`W^T` packed for all its `k` blocks, or empty) read instead of packing again.
fn forward<T: GemmScalar>(
    dims: LinearDims,
    input: &[T],
    weight: &[T],
    bias: &[T],
    packed: &[T],
    output: &mut [T],
) -> Result<(), PcError> {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    let bias = bias.get(..outputs).ok_or(PcError::BufferTooSmall {
        what: "bias",
        needed: outputs,
        given: bias.len(),
    })?;
    let out_len = rows * outputs;
    if output.len() < out_len {
        return Err(PcError::BufferTooSmall {
            what: "output",
            needed: out_len,
            given: output.len(),
        });
    }
    if outputs == 0 {
        return Ok(());
    }
    for row in output[..out_len].chunks_exact_mut(outputs) {
        row.copy_from_slice(bias);
    }
    gemm_packed(
        MatMut::row_major(output, rows, outputs)?,
        MatRef::row_major(input, rows, inputs)?,
        MatRef::row_major(weight, outputs, inputs)?.transpose(),
        packed,
        Accumulate::Add,
    )
}

/// `grad_input = grad_output W`, reading `packed` (`W` packed, or empty) if given.
fn backward_input<T: GemmScalar>(
    dims: LinearDims,
    grad_output: &[T],
    weight: &[T],
    packed: &[T],
    grad_input: &mut [T],
) -> Result<(), PcError> {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    gemm_packed(
        MatMut::row_major(grad_input, rows, inputs)?,
        MatRef::row_major(grad_output, rows, outputs)?,
        MatRef::row_major(weight, outputs, inputs)?,
        packed,
        Accumulate::Overwrite,
    )
}

fn backward_parameters<T: GemmScalar>(
    dims: LinearDims,
    grad_output: &[T],
    input: &[T],
    grad_weight: &mut [T],
    grad_bias: &mut [T],
) -> Result<(), PcError> {
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    let gradient = MatRef::row_major(grad_output, rows, outputs)?;
    gemm(
        MatMut::row_major(grad_weight, outputs, inputs)?,
        gradient.transpose(),
        MatRef::row_major(input, rows, inputs)?,
        Accumulate::Overwrite,
    )?;
    let given = grad_bias.len();
    let grad_bias = grad_bias
        .get_mut(..outputs)
        .ok_or(PcError::BufferTooSmall {
            what: "bias gradient",
            needed: outputs,
            given,
        })?;
    grad_bias.fill(T::zero());
    if outputs > 0 {
        for row in grad_output[..rows * outputs].chunks_exact(outputs) {
            for (sum, &g) in grad_bias.iter_mut().zip(row) {
                *sum = *sum + g;
            }
        }
    }
    Ok(())
}
