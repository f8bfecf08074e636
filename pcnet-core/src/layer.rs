//! Forward pass and vector-Jacobian products of one layer's op chain.
//!
//! This is the whole layer interface the relaxation schedule uses: `forward` (with the
//! intermediate values kept in a trace), and `backward`, the vector-Jacobian product with
//! respect to the layer input and/or its parameters, at the point the trace was taken.
//! The kind of each op is matched once per op and call, never per element.

#[cfg(all(feature = "conv", feature = "safe-step"))]
use crate::kernels::conv;
#[cfg(feature = "conv")]
use crate::kernels::pool;
use crate::scalar::{first_non_finite, sums_of_products_stay_finite};
use crate::{kernels::LinearDims, Backend, Layer, Op, OpKey, Scalar, MAX_OPS_PER_LAYER};

/// One layer applied to a block of `rows` samples with its parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerView<'a, T> {
    pub layer: &'a Layer,
    /// The layer's index, 1-based (its products' [`OpKey::layer`]).
    pub index: usize,
    pub rows: usize,
    pub input_width: usize,
    pub params: &'a [T],
}

/// The values of one layer evaluation: its input, the intermediate op outputs and its output.
pub(crate) struct Values<'a, T> {
    pub input: &'a [T],
    pub trace: &'a [T],
    pub output: &'a [T],
}

/// Per-op sizes of a layer, computed once per call without allocating.
struct OpPlan {
    /// Features per sample entering op k.
    widths: [usize; MAX_OPS_PER_LAYER + 1],
    /// Offset of op k's parameters within the layer's parameters.
    param_offsets: [usize; MAX_OPS_PER_LAYER],
    /// Offset of op k's output within the trace (meaningful for all but the last op of
    /// a plain layer).
    trace_offsets: [usize; MAX_OPS_PER_LAYER],
    count: usize,
}

impl<T: Scalar> LayerView<'_, T> {
    /// `Some(alpha)` for a residual layer. Without the `residual` feature this is the
    /// constant `None` (such builds have no residual layers), so every residual path
    /// below is compiled out and plain layers cost no code for them.
    #[inline(always)]
    fn residual(&self) -> Option<T> {
        self.layer.residual_scale().map(T::from_f64)
    }
}

impl<T: Scalar> LayerView<'_, T> {
    fn plan(&self) -> OpPlan {
        let mut plan = OpPlan {
            widths: [0; MAX_OPS_PER_LAYER + 1],
            param_offsets: [0; MAX_OPS_PER_LAYER],
            trace_offsets: [0; MAX_OPS_PER_LAYER],
            count: self.layer.ops().len(),
        };
        plan.widths[0] = self.input_width;
        let (mut params, mut trace) = (0, 0);
        for (k, op) in self.layer.ops().iter().enumerate() {
            plan.param_offsets[k] = params;
            plan.trace_offsets[k] = trace;
            plan.widths[k + 1] = op.output_len(plan.widths[k]);
            params += op.parameter_len();
            trace += self.rows * plan.widths[k + 1];
        }
        plan
    }

    /// The input and the output of op `k` within one evaluation of the layer, `values`.
    #[inline(always)]
    fn op_values<'v>(&self, plan: &OpPlan, values: &Values<'v, T>, k: usize) -> (&'v [T], &'v [T]) {
        let rows = self.rows;
        let (in_width, out_width) = (plan.widths[k], plan.widths[k + 1]);
        let input = if k == 0 {
            &values.input[..rows * in_width]
        } else {
            &values.trace[plan.trace_offsets[k - 1]..plan.trace_offsets[k]]
        };
        let output = if k == plan.count - 1 && self.residual().is_none() {
            &values.output[..rows * out_width]
        } else {
            &values.trace[plan.trace_offsets[k]..plan.trace_offsets[k] + rows * out_width]
        };
        (input, output)
    }

    /// The output of the layer's first op in `values` (after [`forward`](Self::forward)).
    pub fn first_op_output<'v>(&self, values: &Values<'v, T>) -> &'v [T] {
        self.op_values(&self.plan(), values, 0).1
    }

    /// Evaluates the layer: writes the intermediate op outputs into `trace` and the layer
    /// output into `output`.
    pub fn forward<B: Backend<T>>(
        &self,
        backend: &B,
        input: &[T],
        trace: &mut [T],
        output: &mut [T],
    ) {
        let plan = self.plan();
        let rows = self.rows;
        let last = plan.count - 1;
        for (k, op) in self.layer.ops().iter().enumerate() {
            let (in_width, out_width) = (plan.widths[k], plan.widths[k + 1]);
            let (done, rest) = trace.split_at_mut(plan.trace_offsets[k]);
            let source: &[T] = if k == 0 {
                &input[..rows * in_width]
            } else {
                &done[plan.trace_offsets[k - 1]..plan.trace_offsets[k]]
            };
            let target: &mut [T] = if k == last && self.residual().is_none() {
                &mut output[..rows * out_width]
            } else {
                &mut rest[..rows * out_width]
            };
            match *op {
                Op::Linear { inputs, outputs } => {
                    let weights = &self.params[plan.param_offsets[k]..];
                    let (weight, bias) = weights.split_at(inputs * outputs);
                    let dims = LinearDims {
                        rows,
                        inputs,
                        outputs,
                    };
                    backend.linear_forward(
                        OpKey::new(self.index, k),
                        dims,
                        source,
                        weight,
                        &bias[..outputs],
                        target,
                    );
                }
                Op::Activation(activation) => activation.forward_in_network(source, target),
                Op::Flatten => target.copy_from_slice(source),
                #[cfg(feature = "conv")]
                Op::Conv2d(conv) => {
                    let weights = &self.params[plan.param_offsets[k]..];
                    let (weight, bias) = weights.split_at(conv.weight_len());
                    let bias = &bias[..conv.out_channels];
                    backend.conv2d_forward(
                        OpKey::new(self.index, k),
                        &conv,
                        rows,
                        source,
                        weight,
                        bias,
                        target,
                    );
                }
                #[cfg(feature = "conv")]
                Op::MaxPool2d(pool) => pool::max_forward(&pool, rows, source, target),
                #[cfg(feature = "conv")]
                Op::AvgPool2d(pool) => pool::avg_forward(&pool, rows, source, target),
                // Image ops in a build without `conv`: `NetworkSpec::validate` rejects them.
                #[cfg(not(feature = "conv"))]
                Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) => {}
            }
        }
        if let Some(scale) = self.residual() {
            // v_l = v_{l-1} + alpha g(v_{l-1}), g(v_{l-1}) the trace's last op output.
            let len = rows * plan.widths[0];
            let branch = &trace[plan.trace_offsets[last]..plan.trace_offsets[last] + len];
            skip_sum(&input[..len], scale, branch, &mut output[..len]);
        }
    }

    /// After [`forward`](Self::forward) wrote `values`: whether the layer's parameters are
    /// proven finite without reading them. A linear op forms every product
    /// `input[r][i] * weight[o][i]` (the [`Backend`] contract) and adds `bias[o]`, and no
    /// sum turns NaN or infinity back into a finite value. So if every output is finite,
    /// every product was: each input element is finite (it meets every weight row, and an
    /// infinite or NaN factor makes the product infinite or NaN, `inf * 0` included), and
    /// then each weight is finite (it meets a finite input, and `inf * 0` is NaN), and so
    /// is each bias. Finite outputs alone prove the op's parameters finite, at the cost of
    /// scanning `rows * outputs` values instead of `inputs * outputs`. A convolution's
    /// weights (few) are scanned directly, since a tap may meet only padding. `false` asks
    /// the caller to scan the parameters.
    pub fn parameters_proven_finite(&self, values: &Values<'_, T>) -> bool {
        let plan = self.plan();
        let mut proven = true;
        for (k, op) in self.layer.ops().iter().enumerate() {
            match *op {
                Op::Linear { .. } => {
                    let (_, target) = self.op_values(&plan, values, k);
                    proven &= first_non_finite(target).is_none();
                }
                Op::Conv2d(conv) => {
                    let offset = plan.param_offsets[k];
                    let params = &self.params[offset..offset + conv.parameter_len()];
                    proven &= first_non_finite(params).is_none();
                }
                _ => {}
            }
        }
        proven
    }

    /// Vector-Jacobian product of the layer at the point `values` was evaluated, with the
    /// cotangent `grad_output`: writes the input gradient into `grad_input` and the
    /// parameter gradient into `grad_params` (layer-local layout), each when given.
    ///
    /// Returns whether the parameter gradient is proven finite from the magnitudes of the
    /// factors of its products (`scalar::sums_of_products_stay_finite`); `false` asks the
    /// caller to scan it. `true` when no parameter gradient was asked for; always `false`
    /// without the `finiteness-proofs` feature.
    ///
    /// `scratch` must hold `2 * rows * max_width` values.
    pub fn backward<B: Backend<T>>(
        &self,
        backend: &B,
        values: &Values<'_, T>,
        grad_output: &[T],
        scratch: &mut [T],
        mut grad_input: Option<&mut [T]>,
        mut grad_params: Option<&mut [T]>,
    ) -> bool {
        let mut gradient_bounded = cfg!(feature = "finiteness-proofs");
        let plan = self.plan();
        let rows = self.rows;
        let half = scratch.len() / 2;
        let (first_half, second_half) = scratch.split_at_mut(half);
        // Where the gradient with respect to the current op's output lives:
        // 0 = `grad_output`, 1 = first scratch half, 2 = second scratch half.
        let mut current = 0u8;
        if let Some(scale) = self.residual() {
            // The branch's cotangent is alpha times the layer's; the skip adds the
            // layer's own to the input gradient below.
            let len = rows * plan.widths[0];
            scale_into(scale, &grad_output[..len], &mut first_half[..len]);
            current = 1;
        }
        for k in (0..plan.count).rev() {
            let op = self.layer.ops()[k];
            let (in_width, out_width) = (plan.widths[k], plan.widths[k + 1]);
            let (op_input, op_output) = self.op_values(&plan, values, k);
            let (gradient, spare): (&[T], &mut [T]) = match current {
                0 => (grad_output, &mut *first_half),
                1 => (&*first_half, &mut *second_half),
                _ => (&*second_half, &mut *first_half),
            };
            let gradient = &gradient[..rows * out_width];
            if let (Op::Linear { inputs, outputs }, Some(params_out)) =
                (op, grad_params.as_deref_mut())
            {
                let offset = plan.param_offsets[k];
                let (grad_weight, grad_bias) = params_out[offset..].split_at_mut(inputs * outputs);
                let dims = LinearDims {
                    rows,
                    inputs,
                    outputs,
                };
                backend.linear_backward_parameters(
                    OpKey::new(self.index, k),
                    dims,
                    gradient,
                    op_input,
                    grad_weight,
                    &mut grad_bias[..outputs],
                );
                // Worth it only when the factors are fewer than the gradient's values.
                gradient_bounded &= rows.saturating_mul(inputs + outputs) < inputs * outputs
                    && sums_of_products_stay_finite(gradient, op_input, rows);
            }
            #[cfg(feature = "conv")]
            if let (Op::Conv2d(conv), Some(params_out)) = (op, grad_params.as_deref_mut()) {
                let offset = plan.param_offsets[k];
                let (grad_weight, grad_bias) = params_out[offset..].split_at_mut(conv.weight_len());
                let grad_bias = &mut grad_bias[..conv.out_channels];
                backend.conv2d_backward_parameters(
                    OpKey::new(self.index, k),
                    &conv,
                    rows,
                    gradient,
                    op_input,
                    grad_weight,
                    grad_bias,
                );
                let positions = conv.output_shape().plane();
                let factors = rows.saturating_mul(in_width.saturating_add(out_width));
                gradient_bounded &= factors < conv.parameter_len()
                    && sums_of_products_stay_finite(
                        gradient,
                        op_input,
                        rows.saturating_mul(positions),
                    );
            }
            let target: &mut [T] = if k == 0 {
                match grad_input.as_deref_mut() {
                    Some(target) => target,
                    None => break,
                }
            } else {
                spare
            };
            let target = &mut target[..rows * in_width];
            match op {
                Op::Linear { inputs, outputs } => {
                    let weight = &self.params
                        [plan.param_offsets[k]..plan.param_offsets[k] + inputs * outputs];
                    let dims = LinearDims {
                        rows,
                        inputs,
                        outputs,
                    };
                    backend.linear_backward_input(
                        OpKey::new(self.index, k),
                        dims,
                        gradient,
                        weight,
                        target,
                    );
                }
                Op::Activation(activation) => {
                    activation.backward_in_network(op_input, op_output, gradient, target)
                }
                Op::Flatten => target.copy_from_slice(gradient),
                #[cfg(feature = "conv")]
                Op::Conv2d(conv) => {
                    let offset = plan.param_offsets[k];
                    let weight = &self.params[offset..offset + conv.weight_len()];
                    backend.conv2d_backward_input(
                        OpKey::new(self.index, k),
                        &conv,
                        rows,
                        gradient,
                        weight,
                        target,
                    );
                }
                #[cfg(feature = "conv")]
                Op::MaxPool2d(pool) => pool::max_backward(&pool, rows, op_input, gradient, target),
                #[cfg(feature = "conv")]
                Op::AvgPool2d(pool) => pool::avg_backward(&pool, rows, gradient, target),
                // Image ops in a build without `conv`: `NetworkSpec::validate` rejects them.
                #[cfg(not(feature = "conv"))]
                Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) => {}
            }
            current = if current == 1 { 2 } else { 1 };
        }
        if let (Some(_), Some(grad_input)) = (self.residual(), grad_input) {
            // (I + alpha J_g)^T c = c + J_g^T (alpha c).
            let len = rows * plan.widths[0];
            add_into(&grad_output[..len], &mut grad_input[..len]);
        }
        gradient_bounded
    }

    /// Jacobian-vector product (forward mode) of the layer with respect to its input, at
    /// the point `values` was evaluated: `tangent_output = J_l(input) tangent_input`, per
    /// sample. Used by the curvature analysis (`stability`), not by the relaxation.
    ///
    /// `scratch` must hold `2 * rows * max_width` values.
    #[cfg(feature = "safe-step")]
    pub fn jvp(
        &self,
        values: &Values<'_, T>,
        tangent_input: &[T],
        scratch: &mut [T],
        tangent_output: &mut [T],
    ) {
        let plan = self.plan();
        let rows = self.rows;
        let last = plan.count - 1;
        let half = scratch.len() / 2;
        let (first_half, second_half) = scratch.split_at_mut(half);
        // Where the tangent of the current op's input lives:
        // 0 = `tangent_input`, 1 = first scratch half, 2 = second scratch half.
        let mut current = 0u8;
        for (k, op) in self.layer.ops().iter().enumerate() {
            let (in_width, out_width) = (plan.widths[k], plan.widths[k + 1]);
            let (op_input, op_output) = self.op_values(&plan, values, k);
            let (tangent, spare): (&[T], &mut [T]) = match current {
                0 => (tangent_input, &mut *first_half),
                1 => (&*first_half, &mut *second_half),
                _ => (&*second_half, &mut *first_half),
            };
            let tangent = &tangent[..rows * in_width];
            let target: &mut [T] = if k == last {
                &mut *tangent_output
            } else {
                spare
            };
            let target = &mut target[..rows * out_width];
            match *op {
                Op::Linear { inputs, outputs } => {
                    let offset = plan.param_offsets[k];
                    let weight = &self.params[offset..offset + inputs * outputs];
                    for (row_out, row_in) in target
                        .chunks_exact_mut(outputs)
                        .zip(tangent.chunks_exact(inputs))
                    {
                        for (out, weight_row) in row_out.iter_mut().zip(weight.chunks_exact(inputs))
                        {
                            *out = crate::kernels::portable::dot(weight_row, row_in);
                        }
                    }
                }
                // Elementwise: the Jacobian is diagonal, so its product equals the VJP's.
                Op::Activation(activation) => {
                    activation.backward_in_network(op_input, op_output, tangent, target)
                }
                Op::Flatten => target.copy_from_slice(tangent),
                // Linear: the convolution of the tangent without the bias.
                #[cfg(feature = "conv")]
                Op::Conv2d(conv) => {
                    let offset = plan.param_offsets[k];
                    let weight = &self.params[offset..offset + conv.weight_len()];
                    conv::jvp(&conv, rows, tangent, weight, target);
                }
                // The tangent of each window's first maximum (the winners at `values`).
                #[cfg(feature = "conv")]
                Op::MaxPool2d(pool) => {
                    pool::max_jvp(&pool, rows, op_input, op_output, tangent, target)
                }
                // Linear: the average of the tangent.
                #[cfg(feature = "conv")]
                Op::AvgPool2d(pool) => pool::avg_forward(&pool, rows, tangent, target),
                // Image ops in a build without `conv`: `NetworkSpec::validate` rejects them.
                #[cfg(not(feature = "conv"))]
                Op::Conv2d(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) => {}
            }
            current = if current == 1 { 2 } else { 1 };
        }
        if let Some(scale) = self.residual() {
            // (I + alpha J_g) t: the chain wrote J_g t into `tangent_output`.
            let len = rows * plan.widths[0];
            let output = &mut tangent_output[..len];
            for (out, &tangent) in output.iter_mut().zip(&tangent_input[..len]) {
                *out = tangent + scale * *out;
            }
        }
    }
}

/// `output = input + scale * branch`, elementwise: a residual layer's skip sum.
#[inline]
fn skip_sum<T: Scalar>(input: &[T], scale: T, branch: &[T], output: &mut [T]) {
    for ((out, &x), &g) in output.iter_mut().zip(input).zip(branch) {
        *out = x + scale * g;
    }
}

/// `target = scale * source`, elementwise.
#[inline]
fn scale_into<T: Scalar>(scale: T, source: &[T], target: &mut [T]) {
    for (out, &value) in target.iter_mut().zip(source) {
        *out = scale * value;
    }
}

/// `target += source`, elementwise.
#[inline]
fn add_into<T: Scalar>(source: &[T], target: &mut [T]) {
    for (out, &value) in target.iter_mut().zip(source) {
        *out = *out + value;
    }
}

// Residual layers against an independent naive evaluation (they need `LayerView`).
#[cfg(all(test, feature = "residual", feature = "exact", feature = "fixed-pred"))]
mod tests;
