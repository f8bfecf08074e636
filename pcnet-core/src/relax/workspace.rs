//! How the workspace is cut: the named [`Region`]s of a relaxation, and the [`LayerSlot`]
//! of every layer inside them and inside the parameter slice.

use crate::{layer::Values, NetworkSpec};

/// The offsets of one layer inside the workspace regions and the parameter slice.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LayerSlot {
    /// Start of `v_{l-1}` in an activation region.
    pub input_offset: usize,
    /// Width of `v_{l-1}` per sample.
    pub input_width: usize,
    /// Start of `v_l` in an activation region.
    pub output_offset: usize,
    /// Width of `v_l` per sample.
    pub output_width: usize,
    /// Range of the layer's trace in the trace region.
    pub trace_offset: usize,
    pub trace_len: usize,
    /// Range of the layer's parameters.
    pub param_offset: usize,
    pub param_len: usize,
}

impl LayerSlot {
    /// The layer's values in whole regions holding one evaluation of every layer (`rows`
    /// rows): its input `v_{l-1}` in the activation region `inputs`, its trace in
    /// `traces`, its output `v_l` in the activation region `outputs`.
    #[inline(always)]
    pub fn values<'a, T>(
        &self,
        rows: usize,
        inputs: &'a [T],
        traces: &'a [T],
        outputs: &'a [T],
    ) -> Values<'a, T> {
        Values {
            input: &inputs[self.input_offset..self.output_offset],
            trace: &traces[self.trace_offset..self.trace_offset + self.trace_len],
            output: &outputs[self.output_offset..self.output_offset + rows * self.output_width],
        }
    }
}

/// The workspace cut into its [`Region`]s, in their order.
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) struct Regions<'w, T> {
    /// [`Region::Feedforward`].
    pub vhat: &'w mut [T],
    /// [`Region::Beliefs`].
    pub beliefs: &'w mut [T],
    /// [`Region::Errors`].
    pub errors: &'w mut [T],
    #[cfg_attr(not(feature = "strict"), allow(dead_code))]
    /// [`Region::Predictions`].
    pub predictions: &'w mut [T],
    /// [`Region::Traces`].
    pub traces: &'w mut [T],
    /// [`Region::OutputGradient`].
    pub dldy: &'w mut [T],
    /// Two halves of `rows x max_width` for the layer VJPs.
    pub scratch: &'w mut [T],
    /// `rows x max_width` for a VJP result.
    pub vjp: &'w mut [T],
    /// Set by the algorithm that wrote the parameter updates: bit `min(l - 1, 63)` is
    /// set unless layer `l`'s updates were proven finite as they were written
    /// ([`LayerView::backward`](crate::layer::LayerView::backward)); the final check reads only the layers whose bit is set.
    pub unproven_updates: u64,
}

/// Whole regions holding one evaluation of every layer: layer inputs (an activation
/// region), traces and layer outputs (an activation region).
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) struct At<'a, T> {
    pub inputs: &'a [T],
    pub traces: &'a [T],
    pub outputs: &'a [T],
}

/// The regions of the workspace, in the order they are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Region {
    /// The feedforward values `vhat_l` (an activation region).
    Feedforward,
    /// The beliefs `v_l` (an activation region; FixedPred keeps its offsets there).
    Beliefs,
    /// The prediction errors `epsilon_l` (an activation region).
    Errors,
    /// Strict's predictions `f_l(v_{l-1})` at the current beliefs (an activation region).
    Predictions,
    /// The layers' traces (intermediate values their backward passes need).
    Traces,
    /// dLoss/dy at the feedforward output (rows x outputs).
    OutputGradient,
    /// Two halves of `rows x max_width` for the layer VJPs.
    Scratch,
    /// `rows x max_width` for a VJP result.
    Vjp,
}

/// How many [`Region`]s a workspace holds.
pub(crate) const REGION_COUNT: usize = 8;

/// The length of each [`Region`], indexed by `Region as usize`.
pub(crate) type RegionLens = [usize; REGION_COUNT];

impl Region {
    /// Where this region starts in a workspace laid out by `lens`, and its length.
    pub fn range(self, lens: &RegionLens) -> core::ops::Range<usize> {
        let index = self as usize;
        let start: usize = lens[..index].iter().sum();
        start..start + lens[index]
    }
}

/// Region lengths, indexed by [`Region`] (`Region as usize`), in the order they are laid out.
pub(crate) fn region_lens(spec: &NetworkSpec<'_>, rows: usize) -> RegionLens {
    let activations = rows * spec.activation_len();
    let widest = rows * spec.max_width();
    let mut lens = [0; REGION_COUNT];
    lens[Region::Feedforward as usize] = activations;
    lens[Region::Beliefs as usize] = activations;
    lens[Region::Errors as usize] = activations;
    lens[Region::Predictions as usize] = activations;
    lens[Region::Traces as usize] = rows * spec.trace_len();
    lens[Region::OutputGradient as usize] = rows * spec.output_len();
    lens[Region::Scratch as usize] = 2 * widest;
    lens[Region::Vjp as usize] = widest;
    lens
}

impl<'w, T> Regions<'w, T> {
    /// Cuts `workspace` (exactly the sum of `lens`, or longer) into its regions.
    pub(crate) fn split(workspace: &'w mut [T], lens: RegionLens) -> Self {
        let (vhat, rest) = workspace.split_at_mut(lens[Region::Feedforward as usize]);
        let (beliefs, rest) = rest.split_at_mut(lens[Region::Beliefs as usize]);
        let (errors, rest) = rest.split_at_mut(lens[Region::Errors as usize]);
        let (predictions, rest) = rest.split_at_mut(lens[Region::Predictions as usize]);
        let (traces, rest) = rest.split_at_mut(lens[Region::Traces as usize]);
        let (dldy, rest) = rest.split_at_mut(lens[Region::OutputGradient as usize]);
        let (scratch, rest) = rest.split_at_mut(lens[Region::Scratch as usize]);
        let (vjp, _) = rest.split_at_mut(lens[Region::Vjp as usize]);
        Regions {
            vhat,
            beliefs,
            errors,
            predictions,
            traces,
            dldy,
            scratch,
            vjp,
            unproven_updates: u64::MAX,
        }
    }

    /// What an algorithm leaves for the final check of the updates: `unproven`, the
    /// [`layer_bit`]s of the layers whose updates it could not prove finite. Without the
    /// `finiteness-proofs` feature the check scans everything and this is not kept.
    pub(crate) fn keep_unproven_updates(&mut self, unproven: u64) {
        if cfg!(feature = "finiteness-proofs") {
            self.unproven_updates = unproven;
        }
    }
}

/// Offsets of `v_l` (0-based `l`, `l = 0..=L`) in an activation region.
pub(crate) fn activation_range(
    spec: &NetworkSpec<'_>,
    rows: usize,
    layer: usize,
) -> core::ops::Range<usize> {
    let mut offset = 0;
    let mut width = spec.input_len();
    for l in 0..layer {
        offset += rows * width;
        width = spec.layers()[l].output_len(width);
    }
    offset..offset + rows * width
}

/// The slot of layer `layer` (1-based).
pub(crate) fn slot(spec: &NetworkSpec<'_>, rows: usize, layer: usize) -> LayerSlot {
    let (mut input_offset, mut input_width) = (0, spec.input_len());
    let (mut trace_offset, mut param_offset) = (0, 0);
    for current in &spec.layers()[..layer - 1] {
        input_offset += rows * input_width;
        trace_offset += rows * current.trace_len(input_width);
        param_offset += current.parameter_len();
        input_width = current.output_len(input_width);
    }
    let current = &spec.layers()[layer - 1];
    LayerSlot {
        input_offset,
        input_width,
        output_offset: input_offset + rows * input_width,
        output_width: current.output_len(input_width),
        trace_offset,
        trace_len: rows * current.trace_len(input_width),
        param_offset,
        param_len: current.parameter_len(),
    }
}

/// The bit of layer `l` (`1..=L`) in [`Regions::unproven_updates`].
pub(crate) fn layer_bit(layer: usize) -> u64 {
    1 << (layer - 1).min(63)
}
