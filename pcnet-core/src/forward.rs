//! The feedforward pass alone: a network's outputs for a batch of inputs, with no targets,
//! no loss and no backward work (inference). The same op kernels as the relaxation's
//! feedforward sweep, so the outputs are the bits [`infer`](crate::infer) computes as
//! `vhat_L` with the same backend.

use crate::{
    error::{check_finite, check_len},
    layer::LayerView,
    Backend, NetworkSpec, PcError, Portable, Scalar,
};

impl NetworkSpec<'_> {
    /// Length of the workspace slice that [`forward`] needs for `rows` samples (much less
    /// than [`workspace_len`](Self::workspace_len)): two blocks of
    /// [`max_width`](Self::max_width) per sample, for the values entering and leaving a
    /// layer, and the intermediate op values of the layer with the most.
    ///
    /// ```
    /// use pcnet_core::{Activation, Layer, Loss, NetworkSpec};
    /// const LAYERS: [Layer; 2] = [
    ///     Layer::dense(784, 256, Activation::Relu),
    ///     Layer::dense(256, 10, Activation::Identity),
    /// ];
    /// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
    /// // 2 x 784 for the values in flight, 256 for layer 1's linear output before its ReLU.
    /// assert_eq!(SPEC.forward_workspace_len(1), 2 * 784 + 256);
    /// let workspace = [0.0_f32; SPEC.forward_workspace_len(8)]; // a static array
    /// assert_eq!(workspace.len(), 8 * (2 * 784 + 256));
    /// ```
    pub const fn forward_workspace_len(&self, rows: usize) -> usize {
        let layers = self.layers();
        let mut width = self.input_len();
        let mut widest_trace = 0;
        let mut l = 0;
        while l < layers.len() {
            let trace = layers[l].trace_len(width);
            if trace > widest_trace {
                widest_trace = trace;
            }
            width = layers[l].output_len(width);
            l += 1;
        }
        self.max_width()
            .saturating_mul(2)
            .saturating_add(widest_trace)
            .saturating_mul(rows)
    }
}

/// The network's outputs for a batch of inputs on the [`Portable`] kernels; see
/// [`forward_with`] to pick the backend.
///
/// `inputs` holds whole rows of [`NetworkSpec::input_len`] values; `outputs` receives
/// `rows x` [`NetworkSpec::output_len`] values, row-major; `workspace` needs at least
/// [`NetworkSpec::forward_workspace_len`]`(rows)` values (its contents on return are
/// scratch). Nothing allocates. Returns the number of rows.
///
/// ```
/// use pcnet_core::{forward, Activation, Layer, Loss, NetworkSpec};
/// const LAYERS: [Layer; 1] = [Layer::dense(2, 1, Activation::Relu)];
/// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
/// // y = relu(2 x0 - x1 + 0.5)
/// let params = [2.0, -1.0, 0.5];
/// let inputs = [1.0, 1.0, 0.0, 3.0]; // two rows
/// let mut workspace = [0.0; SPEC.forward_workspace_len(2)];
/// let mut outputs = [0.0; 2];
/// assert_eq!(forward(&SPEC, &params, &inputs, &mut workspace, &mut outputs)?, 2);
/// assert_eq!(outputs, [1.5, 0.0]);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
///
/// # Errors
/// Checked before any output is written: the errors of
/// [`NetworkSpec::check_parameters`]; [`PcError::EmptyBatch`] for no inputs;
/// [`PcError::LengthMismatch`] when `inputs` is not whole rows or `outputs` is not
/// `rows * output_len` long; [`PcError::NonFinite`] for a NaN or infinite input;
/// [`PcError::BufferTooSmall`] for a short workspace. Then [`PcError::NonFinite`]
/// (`"outputs"`) when finite values overflow on the way, in which case `outputs` is left
/// as it was.
pub fn forward<T: Scalar>(
    spec: &NetworkSpec<'_>,
    params: &[T],
    inputs: &[T],
    workspace: &mut [T],
    outputs: &mut [T],
) -> Result<usize, PcError> {
    forward_with(&Portable, spec, params, inputs, workspace, outputs)
}

/// [`forward`] on the kernels of `backend` (e.g. pcnet-std's SIMD `Fast`).
///
/// ```
/// use pcnet_core::{forward_with, Activation, Layer, Loss, NetworkSpec, Portable};
/// let layers = [Layer::dense(1, 1, Activation::Tanh)];
/// let spec = NetworkSpec::new(&layers, Loss::Mse);
/// let mut workspace = vec![0.0; spec.forward_workspace_len(1)];
/// let mut outputs = [0.0_f64];
/// forward_with(&Portable, &spec, &[1.0, 0.0], &[0.5], &mut workspace, &mut outputs)?;
/// assert_eq!(outputs, [0.5_f64.tanh()]);
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
///
/// # Errors
/// As [`forward`].
pub fn forward_with<T: Scalar, B: Backend<T>>(
    backend: &B,
    spec: &NetworkSpec<'_>,
    params: &[T],
    inputs: &[T],
    workspace: &mut [T],
    outputs: &mut [T],
) -> Result<usize, PcError> {
    spec.check_parameters(params)?;
    let input_width = spec.input_len();
    if inputs.is_empty() {
        return Err(PcError::EmptyBatch);
    }
    if inputs.len() % input_width != 0 {
        return Err(PcError::LengthMismatch {
            what: "inputs",
            expected: (inputs.len() / input_width + 1) * input_width,
            given: inputs.len(),
        });
    }
    let rows = inputs.len() / input_width;
    check_len("outputs", rows * spec.output_len(), outputs.len())?;
    check_finite("inputs", inputs)?;
    let needed = spec.forward_workspace_len(rows);
    if workspace.len() < needed {
        return Err(PcError::BufferTooSmall {
            what: "workspace",
            needed,
            given: workspace.len(),
        });
    }
    let block = rows * spec.max_width();
    let (mut current, rest) = workspace.split_at_mut(block);
    let (mut next, trace) = rest.split_at_mut(block);
    let (mut width, mut offset) = (input_width, 0);
    for (index, layer) in spec.layers().iter().enumerate() {
        let view = LayerView {
            layer,
            index: index + 1,
            rows,
            input_width: width,
            params: &params[offset..offset + layer.parameter_len()],
        };
        let out_width = layer.output_len(width);
        let source: &[T] = if index == 0 {
            inputs
        } else {
            &current[..rows * width]
        };
        view.forward(backend, source, trace, &mut next[..rows * out_width]);
        core::mem::swap(&mut current, &mut next);
        offset += layer.parameter_len();
        width = out_width;
    }
    let computed = &current[..outputs.len()];
    check_finite("outputs", computed)?;
    outputs.copy_from_slice(computed);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Layer, Loss};

    /// A 2-3-2 tanh/identity network computed by hand.
    #[test]
    fn matches_a_hand_computed_network() {
        let layers = [
            Layer::dense(2, 3, Activation::Tanh),
            Layer::dense(3, 2, Activation::Identity),
        ];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        let params: std::vec::Vec<f64> = (0..spec.parameter_len())
            .map(|i| (i as f64 - 7.0) / 10.0)
            .collect();
        let (w1, b1) = params[..9].split_at(6);
        let (w2, b2) = params[9..].split_at(6);
        let inputs = [0.3, -0.8, 1.1, 0.4];
        let mut expected = [0.0; 4];
        for row in 0..2 {
            let x = &inputs[row * 2..row * 2 + 2];
            let hidden: std::vec::Vec<f64> = (0..3)
                .map(|j| (w1[j * 2] * x[0] + w1[j * 2 + 1] * x[1] + b1[j]).tanh())
                .collect();
            for k in 0..2 {
                expected[row * 2 + k] =
                    (0..3).map(|j| w2[k * 3 + j] * hidden[j]).sum::<f64>() + b2[k];
            }
        }
        let mut workspace = std::vec![0.0; spec.forward_workspace_len(2)];
        let mut outputs = [0.0; 4];
        forward(&spec, &params, &inputs, &mut workspace, &mut outputs).unwrap();
        for (got, want) in outputs.iter().zip(expected) {
            // Same operations in a possibly different order: a few ulps of O(1) values.
            assert!((got - want).abs() <= 1e-14, "{got} vs {want}");
        }
    }

    #[test]
    fn bad_arguments_are_rejected_before_any_write() {
        let layers = [Layer::dense(2, 1, Activation::Identity)];
        let spec = NetworkSpec::new(&layers, Loss::Mse);
        let params = [1.0, 1.0, 0.0];
        let mut workspace = [0.0; 16];
        let mut outputs = [7.0; 2];
        let mut run = |params: &[f64], inputs: &[f64], workspace_len: usize, outputs_len: usize| {
            let result = forward(
                &spec,
                params,
                inputs,
                &mut workspace[..workspace_len],
                &mut outputs[..outputs_len],
            );
            assert_eq!(outputs, [7.0; 2], "nothing written on an error");
            result
        };
        assert_eq!(run(&params, &[], 16, 0), Err(PcError::EmptyBatch));
        assert!(matches!(
            run(&params, &[1.0; 3], 16, 2),
            Err(PcError::LengthMismatch { what: "inputs", .. })
        ));
        assert!(matches!(
            run(&params, &[1.0; 4], 16, 1),
            Err(PcError::LengthMismatch {
                what: "outputs",
                ..
            })
        ));
        assert!(matches!(
            run(&params, &[1.0, f64::NAN], 16, 1),
            Err(PcError::NonFinite {
                what: "inputs",
                index: 1
            })
        ));
        assert!(matches!(
            run(&[1.0, f64::INFINITY, 0.0], &[1.0; 2], 16, 1),
            Err(PcError::NonFinite {
                what: "parameters",
                index: 1
            })
        ));
        assert!(matches!(
            run(&params, &[1.0; 2], 4, 1),
            Err(PcError::BufferTooSmall {
                what: "workspace",
                needed: 5,
                given: 4
            })
        ));
        assert!(matches!(
            run(&[f64::MAX, f64::MAX, 0.0], &[1.0; 2], 16, 1),
            Err(PcError::NonFinite {
                what: "outputs",
                ..
            })
        ));
    }
}
