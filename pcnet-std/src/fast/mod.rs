//! Fast f32/f64 kernels: the [`Fast`] backend and the safe [`gemm()`] it is built on.
//!
//! [`Fast`] implements [`pcnet_core::Backend`] for `f32` and `f64`, so the relaxation
//! schedule of pcnet-core runs unchanged on top of it (`pcnet_core::infer_with(&Fast::default(), ...)`).
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
//! The kernels come in instruction-set families ([`Isa`]: `portable`, `avx2`, and
//! `avx512` where built), one module each under `kernels/`; a [`Fast`] value holds the
//! family it runs, chosen when it is made ([`Fast::default`] / [`Fast::new`]: the
//! `PC_ISA` environment variable, else the best the processor has; [`Fast::with_isa`]).
//!
//! Results differ from [`pcnet_core::Portable`], and between families, only by summation
//! order: every product element is within `gamma_k sum |a_i b_i|` of the exact value for
//! each. Within one family they are the same bits whatever the thread count.
//! `pcnet_core::Scalar` is sealed to f32 and f64, so every scalar pc computes in has a fast
//! path: [`Fast`] implements `Backend<T>` for every `T: Scalar` (each call runs the
//! kernels of its concrete type), and code generic over `T: Scalar` needs no extra bound.

mod buffer;
mod conv;
mod isa;
mod kernels;
mod matmul;
mod packed;

pub use buffer::Scratch;
pub use isa::Isa;
pub use matmul::{gemm, Accumulate, GemmScalar, MatMut, MatRef};
pub use packed::{PackedFast, PackedWeights};

use kernels::Family;
use pcnet_core::{Backend, Conv2d, LinearDims, OpKey, Scalar};
use std::sync::OnceLock;

/// The fast backend: pc's SIMD matrix products, single threaded per call, on one kernel
/// family ([`Isa`]) chosen when the value is made.
///
/// [`Fast::default`] and [`Fast::new`] run the family `PC_ISA` names, else the best one
/// the processor has ([`Isa::detected`]); [`Fast::with_isa`] runs the one given. The
/// family is part of the value: every call on it runs the same kernels, whatever other
/// `Fast` values in the process run.
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
/// let fast = Fast::default();
/// let inference = infer_with(&fast, &spec, &params, batch, &Settings::strict(0.1, 20), &mut workspace, &mut updates)?;
/// assert!(inference.loss() > 0.0);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fast {
    family: Family,
}

impl Fast {
    /// The backend on the family this process runs by default ([`Isa::selected`]:
    /// `PC_ISA` when set, else [`Isa::detected`]).
    ///
    /// # Errors
    /// [`crate::Error::UnknownIsa`] or [`crate::Error::UnavailableIsa`] when `PC_ISA`
    /// names no family or one this processor lacks.
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::{Fast, Isa};
    /// let fast = Fast::new()?;
    /// assert_eq!(fast.isa(), Isa::selected()?);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn new() -> Result<Fast, crate::Error> {
        Fast::with_isa(Isa::selected()?)
    }

    /// The backend on `isa`'s kernels.
    ///
    /// # Errors
    /// [`crate::Error::UnavailableIsa`] when this processor (or this build) cannot run
    /// that family; never undefined behaviour.
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::{Fast, Isa};
    /// for &isa in Isa::available() {
    ///     assert_eq!(Fast::with_isa(isa)?.isa(), isa);
    /// }
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn with_isa(isa: Isa) -> Result<Fast, crate::Error> {
        Family::new(isa)
            .map(|family| Fast { family })
            .ok_or(crate::Error::UnavailableIsa {
                isa,
                available: Isa::available(),
            })
    }

    /// The family this backend runs.
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::{Fast, Isa};
    /// assert_eq!(Fast::with_isa(Isa::Portable)?.isa(), Isa::Portable);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.family.isa()
    }

    /// [`gemm()`] on this backend's family.
    ///
    /// # Errors
    /// As [`gemm()`].
    ///
    /// # Example
    /// ```
    /// use pcnet_std::fast::{Accumulate, Fast, Isa, MatMut, MatRef};
    /// let (a, b) = ([1.0_f64, 2.0], [3.0_f64, 4.0]);
    /// let mut c = [0.0_f64];
    /// let fast = Fast::with_isa(Isa::Portable)?;
    /// fast.gemm(
    ///     MatMut::row_major(&mut c, 1, 1)?,
    ///     MatRef::row_major(&a, 1, 2)?,
    ///     MatRef::row_major(&b, 2, 1)?,
    ///     Accumulate::Overwrite,
    /// )?;
    /// assert_eq!(c, [11.0]);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn gemm<T: GemmScalar>(
        &self,
        dst: MatMut<'_, T>,
        lhs: MatRef<'_, T>,
        rhs: MatRef<'_, T>,
        accumulate: Accumulate,
    ) -> Result<(), pcnet_core::PcError> {
        matmul::gemm_on(self.family, dst, lhs, rhs, accumulate)
    }
}

/// The process's default family: [`Isa::selected`], or, when `PC_ISA` is wrong,
/// [`Isa::detected`] after one line on standard error (a `Default` cannot fail; use
/// [`Fast::new`] for the error).
impl Default for Fast {
    fn default() -> Self {
        static DEFAULT: OnceLock<Fast> = OnceLock::new();
        *DEFAULT.get_or_init(|| {
            Fast::new().unwrap_or_else(|error| {
                let fallback = Isa::detected();
                eprintln!("pcnet-std: PC_ISA ignored: {error}; running the {fallback} kernels");
                Fast::with_isa(fallback).unwrap_or(Fast {
                    family: Family::PORTABLE,
                })
            })
        })
    }
}

/// Runs `$body` with the slices named in the first list (shared) and the second
/// (mutable) as the concrete f32 or f64 slices they are ([`pcnet_core::Scalar::as_typed`]),
/// the body compiled once per type; `$mixed` if their types differ (impossible: they all
/// have the caller's `T`).
macro_rules! typed {
    ($t:ty; ($($shared:ident),*); ($($mutable:ident),*); $body:expr; else $mixed:expr) => {{
        use pcnet_core::{ScalarSlice as S, ScalarSliceMut as M};
        match ($(<$t as pcnet_core::Scalar>::as_typed($shared),)* $(<$t as pcnet_core::Scalar>::as_typed_mut($mutable),)*) {
            ($(S::F32($shared),)* $(M::F32($mutable),)*) => $body,
            ($(S::F64($shared),)* $(M::F64($mutable),)*) => $body,
            #[allow(unreachable_patterns)]
            _ => $mixed,
        }
    }};
}
pub(crate) use typed;

/// Every scalar pcnet-core computes in (`T: Scalar`, f32 or f64) runs on the fast kernels
/// of its type, so code generic over `T: Scalar` needs no `Fast: Backend<T>` bound.
///
/// The views below are built from lengths pcnet-core's schedule checked up front, so they
/// cannot fail; if they ever did (a broken caller of the trait), fall back to the
/// portable kernel, which indexes with bounds checks, rather than return garbage.
impl<T: Scalar> Backend<T> for Fast {
    fn linear_forward(
        &self,
        _key: OpKey,
        dims: LinearDims,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (input, weight, bias); (output);
            forward(family, dims, input, weight, bias, &[], output); else Err(MIXED));
        if done.is_err() {
            pcnet_core::kernels::portable::linear_forward(dims, input, weight, bias, output);
        }
    }

    fn linear_backward_input(
        &self,
        _key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (grad_output, weight); (grad_input);
            backward_input(family, dims, grad_output, weight, &[], grad_input); else Err(MIXED));
        if done.is_err() {
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
        _key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (grad_output, input); (grad_weight, grad_bias);
            backward_parameters(family, dims, grad_output, input, grad_weight, grad_bias);
            else Err(MIXED));
        if done.is_err() {
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
        _key: OpKey,
        conv: &Conv2d,
        rows: usize,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (input, weight, bias); (output);
            conv::forward(family, conv, rows, input, weight, bias, output); else Err(MIXED));
        if done.is_err() {
            pcnet_core::kernels::conv::forward(conv, rows, input, weight, bias, output);
        }
    }

    fn conv2d_backward_input(
        &self,
        _key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (grad_output, weight); (grad_input);
            conv::backward_input(family, conv, rows, grad_output, weight, grad_input);
            else Err(MIXED));
        if done.is_err() {
            pcnet_core::kernels::conv::backward_input(conv, rows, grad_output, weight, grad_input);
        }
    }

    fn conv2d_backward_parameters(
        &self,
        _key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        let family = self.family;
        let done = typed!(T; (grad_output, input); (grad_weight, grad_bias);
            conv::backward_parameters(family, conv, rows, grad_output, input, grad_weight, grad_bias);
            else Err(MIXED));
        if done.is_err() {
            pcnet_core::kernels::conv::backward_parameters(
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

/// The error of [`typed!`]'s impossible arm (slices of one call with different types).
const MIXED: PcError = PcError::BufferTooSmall {
    what: "scalar slices of one type",
    needed: 0,
    given: 0,
};

use matmul::gemm_packed;
use pcnet_core::PcError;

/// `output = input W^T + bias`: the bias in every row, then the product added; with
/// `packed` (`W^T` packed for all its `k` blocks, or empty) read instead of packing again.
fn forward<T: GemmScalar>(
    family: Family,
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
        family,
        MatMut::row_major(output, rows, outputs)?,
        MatRef::row_major(input, rows, inputs)?,
        MatRef::row_major(weight, outputs, inputs)?.transpose(),
        packed,
        Accumulate::Add,
    )
}

/// `grad_input = grad_output W`, reading `packed` (`W` packed, or empty) if given.
fn backward_input<T: GemmScalar>(
    family: Family,
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
        family,
        MatMut::row_major(grad_input, rows, inputs)?,
        MatRef::row_major(grad_output, rows, outputs)?,
        MatRef::row_major(weight, outputs, inputs)?,
        packed,
        Accumulate::Overwrite,
    )
}

fn backward_parameters<T: GemmScalar>(
    family: Family,
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
    matmul::gemm_on(
        family,
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
