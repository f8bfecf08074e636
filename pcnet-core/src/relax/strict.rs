//! Strict predictive coding: simultaneous gradient descent on the energy
//! `F(v) = sum_{0<l<L} |f_l(v_{l-1}) - v_l|^2 / 2 + Loss(f_L(v_{L-1}), y)`,
//! with every Jacobian evaluated at the current beliefs.

use super::{activation_range, At, InputBelief, Problem, Regions, Report};
use crate::{scalar::max_abs_difference, Backend, PcError, Scalar};

/// Runs the relaxation. The predictions region holds `f_l(v_{l-1})` at the current beliefs
/// and the traces region the matching intermediate values.
// Not inlined into `infer_with`: only one algorithm runs per call, so keeping their
// frames separate bounds the stack by the largest one instead of their sum.
#[inline(never)]
pub(super) fn run<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    updates: &mut [T],
) -> Result<Report<T>, PcError> {
    let (depth, rows, settings) = (problem.depth(), problem.rows, problem.settings);
    let spec = &problem.spec;
    let eta = settings.step_size;
    let lowest = if settings.input == InputBelief::Free {
        0
    } else {
        1
    };
    let half = T::one() / (T::one() + T::one());

    // Beliefs start at the feedforward values (or the caller's), predictions likewise.
    regions.beliefs.copy_from_slice(regions.vhat);
    regions.predictions.copy_from_slice(regions.vhat);
    regions.errors.fill(T::zero());
    let from_feedforward = match settings.initial_beliefs {
        None => true,
        Some(initial) => {
            let hidden =
                activation_range(spec, rows, 1).start..activation_range(spec, rows, depth).start;
            regions.beliefs[hidden].copy_from_slice(initial);
            recompute_predictions(problem, regions, 2);
            false
        }
    };

    let mut residual = T::zero();
    let mut energy = T::zero();
    let mut initial_energy = T::zero();
    let mut iterations = 0;
    let mut converged = false;
    for iteration in 1..=settings.iterations.max(1) {
        // Errors of this iteration, from the beliefs as they stand.
        let top = activation_range(spec, rows, depth);
        let (below, top_errors) = regions.errors.split_at_mut(top.start);
        energy = problem.loss(&regions.predictions[top], top_errors);
        let lower = activation_range(spec, rows, lowest).start;
        let moving = lower..below.len();
        let mut squares = T::zero();
        for ((error, &prediction), &belief) in below[moving.clone()]
            .iter_mut()
            .zip(&regions.predictions[moving.clone()])
            .zip(&regions.beliefs[moving])
        {
            *error = prediction - belief;
            squares = *error * *error + squares;
        }
        energy = energy + half * squares;
        if iteration == 1 {
            initial_energy = energy;
        }
        if !energy.is_finite() || energy > settings.divergence_ratio * initial_energy {
            return Err(PcError::Diverged { iteration });
        }
        if settings.iterations == 0 {
            break;
        }

        // Move every hidden belief: v_l += eta (epsilon_l - J_{l+1}(v_l)^T epsilon_{l+1}).
        // From the feedforward start epsilon_{l+1} is exactly zero for l < L - iteration.
        let first_active = if from_feedforward {
            depth.saturating_sub(iteration).max(lowest)
        } else {
            lowest
        };
        residual = T::zero();
        for (above, slot) in problem.slots(first_active + 1, depth) {
            let output_range = slot.output_offset..slot.output_offset + rows * slot.output_width;
            let values = slot.values(rows, regions.beliefs, regions.traces, regions.predictions);
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
            let errors = &regions.errors[here.clone()];
            // The residual is the largest |velocity| = |error - pulled|.
            residual = max_abs_difference(residual, errors, vjp);
            for ((belief, &error), &pulled) in
                regions.beliefs[here].iter_mut().zip(errors).zip(vjp.iter())
            {
                let velocity = error - pulled;
                *belief = eta * velocity + *belief;
            }
        }
        iterations = iteration;
        if !residual.is_finite() {
            return Err(PcError::Diverged { iteration });
        }
        // Predictions at the new beliefs: layer l changes when v_{l-1} moved (never layer
        // 1 with the input clamped).
        recompute_predictions(problem, regions, (first_active + 1).max(1 + lowest));
        if settings
            .tolerance
            .is_some_and(|tolerance| residual <= tolerance)
        {
            converged = true;
            break;
        }
    }
    converged |= residual <= settings.tolerance.unwrap_or(T::zero());

    // Parameter updates at the final beliefs with the last errors. From the feedforward
    // start, layers the signal has not reached have exactly zero errors and updates.
    let at = At {
        inputs: regions.beliefs,
        traces: regions.traces,
        outputs: regions.predictions,
    };
    let unproven = problem.parameter_updates(
        &at,
        regions.errors,
        regions.scratch,
        updates,
        from_feedforward.then_some(iterations.max(1)),
    );
    regions.keep_unproven_updates(unproven);
    Ok(Report {
        iterations,
        residual,
        energy: Some(energy),
        converged,
    })
}

/// `predictions_l = f_l(v_{l-1})` for layers `from..=L`, refreshing their traces.
fn recompute_predictions<T: Scalar, B: Backend<T>>(
    problem: &Problem<'_, '_, T, B>,
    regions: &mut Regions<'_, T>,
    from: usize,
) {
    for (layer, slot) in problem.slots(from, problem.depth()) {
        let input = &regions.beliefs[slot.input_offset..slot.output_offset];
        let trace = &mut regions.traces[slot.trace_offset..slot.trace_offset + slot.trace_len];
        let output = &mut regions.predictions
            [slot.output_offset..slot.output_offset + problem.rows * slot.output_width];
        problem.forward_layer(layer, &slot, input, trace, output);
    }
}
