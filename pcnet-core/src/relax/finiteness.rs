//! The finiteness proofs: where the forward pass and the algorithms' own writes prove
//! the parameters, the inputs and the parameter updates finite, so that the bad-input
//! checks need not scan them (feature `finiteness-proofs`; the errors are the same).

use super::{layer_bit, Problem, Regions};
use crate::{error::check_finite, scalar::first_non_finite, Backend, NetworkSpec, PcError, Scalar};

/// Whether `infer` proves the inputs finite from the forward pass instead of scanning
/// them: when layer 1 starts with a linear op narrower than its input, finite outputs of
/// that op prove every input finite (see `LayerView::parameters_proven_finite`), reading
/// `rows * outputs` values instead of `rows * inputs`.
pub(super) fn inputs_provable(spec: &NetworkSpec<'_>) -> bool {
    cfg!(feature = "finiteness-proofs")
        && matches!(
            spec.layers().first().and_then(|layer| layer.ops().first()),
            Some(crate::Op::Linear { inputs, outputs }) if outputs < inputs
        )
}

/// Whether `infer` proves the parameters finite from the forward pass instead of
/// scanning them: when the linear ops' outputs it reads (about `rows * (activations -
/// inputs)` values) are fewer than the `parameters`.
pub(super) fn parameters_provable(spec: &NetworkSpec<'_>, rows: usize, parameters: usize) -> bool {
    cfg!(feature = "finiteness-proofs")
        && rows.saturating_mul(spec.activation_len().saturating_sub(spec.input_len())) < parameters
}

/// The final check that the updates are finite: reads them again only where the
/// algorithm could not prove it as it wrote them (`unproven`, [`layer_bit`]s), or all of
/// them without the `finiteness-proofs` feature.
pub(super) fn check_updates<T: Scalar>(
    spec: &NetworkSpec<'_>,
    unproven: u64,
    updates: &[T],
) -> Result<(), PcError> {
    if cfg!(feature = "finiteness-proofs") {
        check_unproven_updates(spec, unproven, updates)
    } else {
        check_finite("parameter updates", updates)
    }
}

/// Scans the updates of the layers whose bit is set in `unproven`, in layer order, so the
/// first non-finite value found is the first of all `updates` (the other layers' were
/// proven finite).
fn check_unproven_updates<T: Scalar>(
    spec: &NetworkSpec<'_>,
    unproven: u64,
    updates: &[T],
) -> Result<(), PcError> {
    for layer in 1..=spec.depth() {
        if unproven & layer_bit(layer) == 0 {
            continue;
        }
        let start = spec.parameter_offset(layer);
        let end = start + spec.layers()[layer - 1].parameter_len();
        if let Some(index) = first_non_finite(&updates[start..end]) {
            return Err(PcError::NonFinite {
                what: "parameter updates",
                index: start + index,
            });
        }
    }
    Ok(())
}

impl<T: Scalar, B: Backend<T>> Problem<'_, '_, T, B> {
    /// Whether the forward pass in `regions` proves every parameter finite
    /// ([`LayerView::parameters_proven_finite`](crate::layer::LayerView::parameters_proven_finite), layer by layer).
    pub fn parameters_proven_finite(&self, regions: &Regions<'_, T>) -> bool {
        self.slots(1, self.depth()).all(|(layer, slot)| {
            let values = slot.values(self.rows, regions.vhat, regions.traces, regions.vhat);
            self.view(layer, &slot).parameters_proven_finite(&values)
        })
    }

    /// Whether the outputs of layer 1's first op (linear: `infer_checked` asks only then)
    /// are all finite, which proves every input finite.
    pub fn inputs_proven_finite(&self, regions: &Regions<'_, T>) -> bool {
        let slot = self.slot(1);
        let values = slot.values(self.rows, regions.vhat, regions.traces, regions.vhat);
        first_non_finite(self.view(1, &slot).first_op_output(&values)).is_none()
    }
}
