//! Exact backpropagation as one reverse sweep (Torch2PC's `ExactPredErrs` is O(L^2)).

use super::{activation_range, layer_bit, InputBelief, Problem, Regions, Report};
use crate::{Backend, Scalar};

/// `epsilon_L = dLoss/dy`, `epsilon_l = J_{l+1}(vhat_l)^T epsilon_{l+1}`, and each layer's
/// parameter gradient in the same sweep; then `v_l = vhat_l - epsilon_l`.
// Not inlined into `infer_with`: only one algorithm runs per call, so keeping their
// frames separate bounds the stack by the largest one instead of their sum.
#[inline(never)]
pub(super) fn run<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    updates: &mut [T],
) -> Report<T> {
    let (depth, rows) = (problem.depth(), problem.rows);
    let free_input = problem.settings.input == InputBelief::Free;
    let top = activation_range(&problem.spec, rows, depth);
    let input = activation_range(&problem.spec, rows, 0);
    // Every region but a clamped input's is written below: the top with dLoss/dy, each
    // other with the VJP of the layer above (which overwrites, a `Backend` rule).
    if !free_input {
        regions.errors[input.clone()].fill(T::zero());
    }
    regions.errors[top].copy_from_slice(regions.dldy);
    let mut unproven = 0;
    for layer in (1..=depth).rev() {
        let slot = problem.slot(layer);
        let values = slot.values(rows, regions.vhat, regions.traces, regions.vhat);
        let (below, above) = regions.errors.split_at_mut(slot.output_offset);
        let grad_input = (layer > 1 || free_input).then(|| &mut below[slot.input_offset..]);
        let grads = &mut updates[slot.param_offset..slot.param_offset + slot.param_len];
        let proven = problem.backward_layer(
            layer,
            &slot,
            &values,
            &above[..rows * slot.output_width],
            regions.scratch,
            grad_input,
            Some(grads),
        );
        if !proven {
            unproven |= layer_bit(layer);
        }
    }
    regions.keep_unproven_updates(unproven);
    // A clamped input's belief is `x` (`Inference::beliefs` reads it from `vhat_0`).
    let moved = if free_input { 0 } else { input.end };
    for ((belief, &vhat), &error) in regions.beliefs[moved..]
        .iter_mut()
        .zip(&regions.vhat[moved..])
        .zip(&regions.errors[moved..])
    {
        *belief = vhat - error;
    }
    Report {
        iterations: 0,
        residual: T::zero(),
        energy: None,
        converged: true,
    }
}
