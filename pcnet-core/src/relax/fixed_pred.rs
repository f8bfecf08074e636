//! Predictive coding under the fixed prediction assumption, kept in error space.
//!
//! Torch2PC stores beliefs `v` and recovers `epsilon = vhat - v` by subtraction, which in
//! f32 loses every digit of an error smaller than `ulp(vhat)`. Here the state is the
//! offset `e_l = vhat_l - v_l` itself, updated by the algebraically identical
//! `e_l <- (1 - eta) epsilon_l + eta J_{l+1}(vhat_l)^T epsilon_{l+1}`, so small errors keep
//! their relative precision; beliefs are formed once at the end.

use super::{activation_range, At, InputBelief, Problem, Regions, Report};
use crate::{scalar::max_abs_difference, Backend, PcError, Scalar};

/// Runs the relaxation; the beliefs region holds the offsets `e_l` until the end.
// Not inlined into `infer_with`: only one algorithm runs per call, so keeping their
// frames separate bounds the stack by the largest one instead of their sum.
///
/// `SKIP_SETTLED`: with `eta = 1` move only the layer at the signal front (see the loop);
/// `false` only in the test that holds the skip to bit-identical results.
#[inline(never)]
pub(super) fn run<const SKIP_SETTLED: bool, T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    updates: &mut [T],
) -> Result<Report<T>, PcError> {
    let (depth, rows, settings) = (problem.depth(), problem.rows, problem.settings);
    let spec = &problem.spec;
    let eta = settings.step_size;
    let keep = T::one() - eta;
    let lowest = if settings.input == InputBelief::Free {
        0
    } else {
        1
    };
    let top = activation_range(spec, rows, depth);
    // The offsets of the layers that may move start at zero; the other belief regions
    // (a clamped input, the top) are copied from `vhat` at the end.
    let moving_regions =
        activation_range(spec, rows, lowest).start..activation_range(spec, rows, depth).start;
    regions.errors[..top.start].fill(T::zero());
    regions.beliefs[moving_regions].fill(T::zero());
    regions.errors[top].copy_from_slice(regions.dldy);

    let mut residual = T::zero();
    let mut iterations = 0;
    let mut converged = false;
    for iteration in 1..=settings.iterations {
        // Signal front: from the feedforward start, epsilon_{l+1} is exactly zero in this
        // iteration for l < L - iteration, so those offsets stay exactly zero.
        let first_active = depth.saturating_sub(iteration).max(lowest);
        let active = activation_range(spec, rows, first_active).start
            ..activation_range(spec, rows, depth).start;
        regions.errors[active.clone()].copy_from_slice(&regions.beliefs[active]);
        residual = T::zero();
        // With eta = 1 an offset is its pulled error alone (`keep` is 0), final once the
        // error above it is: layer L - 1 settles in iteration 1 (epsilon_L is fixed), and
        // layer L - t in iteration t, the signal front. The layers behind the front would
        // recompute, bit for bit, the offsets they hold, with zero velocity (the residual
        // is a maximum from zero, so unchanged): only the front moves, and once it has
        // passed the lowest moving layer nothing does. One VJP per layer in all, as Exact.
        let moving = if SKIP_SETTLED && keep == T::zero() {
            let front = depth
                .checked_sub(iteration)
                .filter(|&front| front >= lowest);
            front.map_or(0..0, |front| front..front + 1)
        } else {
            first_active..depth
        };
        for (above, slot) in problem.slots(moving.start + 1, moving.end) {
            // g = J_{above}(vhat_{above - 1})^T epsilon_{above}
            let output_range = slot.output_offset..slot.output_offset + rows * slot.output_width;
            let values = slot.values(rows, regions.vhat, regions.traces, regions.vhat);
            let vjp = &mut regions.vjp[..rows * slot.input_width];
            problem.backward_layer(
                above,
                &slot,
                &values,
                &regions.errors[output_range],
                regions.scratch,
                Some(&mut *vjp),
                None,
            );
            let here = slot.input_offset..slot.output_offset;
            let offsets = &mut regions.beliefs[here.clone()];
            let errors = &regions.errors[here];
            // The residual is the largest |velocity| = |error - pulled|.
            residual = max_abs_difference(residual, errors, vjp);
            for ((offset, &error), &pulled) in offsets.iter_mut().zip(errors).zip(vjp.iter()) {
                *offset = keep * error + eta * pulled;
            }
        }
        iterations = iteration;
        if !residual.is_finite() {
            return Err(PcError::Diverged { iteration });
        }
        if settings
            .tolerance
            .is_some_and(|tolerance| residual <= tolerance)
        {
            converged = true;
            break;
        }
    }
    converged |= residual <= settings.tolerance.unwrap_or(T::zero());

    // Beliefs v_l = vhat_l - e_l for the layers that moved; v_L = vhat_L; clamped v_0 = x.
    let moving =
        activation_range(spec, rows, lowest).start..activation_range(spec, rows, depth).start;
    for (belief, &vhat) in regions.beliefs[moving.clone()]
        .iter_mut()
        .zip(&regions.vhat[moving.clone()])
    {
        *belief = vhat - *belief;
    }
    let top = activation_range(spec, rows, depth);
    // A clamped input's belief is `x`, which `Inference::beliefs` reads from `vhat_0`.
    regions.beliefs[top.clone()].copy_from_slice(&regions.vhat[top]);

    // Parameter updates at the feedforward values with the last errors. Layers the signal
    // has not reached (l + n <= L, l < L) have exactly zero errors and updates.
    let at = At {
        inputs: regions.vhat,
        traces: regions.traces,
        outputs: regions.vhat,
    };
    let unproven = problem.parameter_updates(
        &at,
        regions.errors,
        regions.scratch,
        updates,
        Some(iterations),
    );
    regions.keep_unproven_updates(unproven);
    Ok(Report {
        iterations,
        residual,
        energy: None,
        converged,
    })
}
