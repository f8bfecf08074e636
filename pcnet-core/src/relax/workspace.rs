//! How the workspace is cut: the named [`Region`]s of a relaxation, and the [`LayerSlot`]
//! of every layer inside them and inside the parameter slice.

use crate::{layer::Values, Layer, NetworkSpec};

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

impl LayerSlot {
    /// The slot of the layer after this one, `next` (the following entry of the network's
    /// layers), found from this one's in the time of `next`'s ops: the same offsets
    /// [`slot`] sums over every layer below.
    fn followed_by(&self, next: &Layer, rows: usize) -> LayerSlot {
        let input_width = self.output_width;
        LayerSlot {
            input_offset: self.output_offset,
            input_width,
            output_offset: self.output_offset + rows * input_width,
            output_width: next.output_len(input_width),
            trace_offset: self.trace_offset + self.trace_len,
            trace_len: rows * next.trace_len(input_width),
            param_offset: self.param_offset + self.param_len,
            param_len: next.parameter_len(),
        }
    }
}

/// The layers of a range (1-based, ascending) with their slots, each slot found from the
/// one before: a sweep over `L` layers costs `O(L)`, where a walk from layer 1 per layer
/// would cost `O(L^2)` (at `L = 128` that walk, not the products, was most of a
/// relaxation step).
pub(crate) struct Slots<'s> {
    layers: &'s [Layer],
    rows: usize,
    /// The layer the walk reaches next.
    next: usize,
    /// The first layer yielded.
    first: usize,
    /// The last layer yielded.
    last: usize,
    /// The slot of `next - 1` (for `next = 1`, the input as a layer of no trace or
    /// parameters, whose output is `v_0`).
    slot: LayerSlot,
}

impl Iterator for Slots<'_> {
    type Item = (usize, LayerSlot);

    // One out-of-line copy: inlined into every sweep it costs a firmware's learning step
    // about 1.3 KiB of code (firmware/check.sh budget), and its step is a few additions.
    #[inline(never)]
    fn next(&mut self) -> Option<(usize, LayerSlot)> {
        while self.next <= self.last {
            self.slot = self
                .slot
                .followed_by(&self.layers[self.next - 1], self.rows);
            let layer = self.next;
            self.next += 1;
            if layer >= self.first {
                return Some((layer, self.slot));
            }
        }
        None
    }
}

/// Layers `first..=last` (1-based) with their slots, in ascending order (nothing when
/// `first > last`; `last` at most `L`).
pub(crate) fn slots<'s>(
    spec: &NetworkSpec<'s>,
    rows: usize,
    first: usize,
    last: usize,
) -> Slots<'s> {
    Slots {
        layers: spec.layers(),
        rows,
        next: 1,
        first,
        last,
        slot: LayerSlot {
            output_width: spec.input_len(),
            ..LayerSlot::default()
        },
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

/// The slot of layer `layer` (1-based, at most `L`): a walk over the layers below it.
pub(crate) fn slot(spec: &NetworkSpec<'_>, rows: usize, layer: usize) -> LayerSlot {
    slots(spec, rows, layer, layer)
        .next()
        .map_or(LayerSlot::default(), |(_, slot)| slot)
}

/// The bit of layer `l` (`1..=L`) in [`Regions::unproven_updates`].
pub(crate) fn layer_bit(layer: usize) -> u64 {
    1 << (layer - 1).min(63)
}
