//! Weights packed once per call, shared by every row block and every iteration of a
//! relaxation: [`PackedWeights`] and the backend it lends, [`PackedFast`].
//!
//! The forward product `x W^T` and the input VJP `g W` of a linear op are, from 24 rows
//! on, `Nn` products whose right-hand side is the weight matrix (transposed for the
//! forward product), which [`gemm()`](super::gemm) copies into panels on every call.
//! Strict predicts through the same weights in every iteration, FixedPred and Strict
//! pull errors back through them (20 times per call at `n = 20`), and every row block
//! does the same. Packing each weight matrix both ways once per call and reading the
//! panels from there does the same products in the same order, so the results are the
//! bits [`Fast`] gives; only the copies are gone.

use super::kernels::Family;
use super::matmul::{pack_rhs_block, packed_rhs_len, PACK_DEPTH_BLOCK, PACK_ROWS};
use super::{Fast, GemmScalar, MatRef};
use pcnet_core::Scalar;
use pcnet_core::{Backend, Conv2d, InputBelief, LinearDims, NetworkSpec, Op, OpKey, PcError};

/// Where one linear op's packed weights live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackedLayer {
    /// The op (layer 1-based, op 0-based): the key the schedule passes with its products.
    key: OpKey,
    /// Index of the op's first weight in the parameters the panels were packed from.
    weight_offset: usize,
    inputs: usize,
    outputs: usize,
    /// Offset in [`PackedWeights::panels`] of `W^T` packed for the forward product.
    forward: usize,
    /// Offset of `W` packed for the input VJP, when the relaxation needs that VJP.
    input_vjp: Option<usize>,
}

/// Reusable storage for a network's weight matrices packed for the fast kernels.
///
/// [`PackedWeights::pack`] packs the weights of every linear op of a network, for the
/// forward product and (where the relaxation computes it) the input VJP, and returns a
/// [`PackedFast`] backend that reads them. The
/// storage grows on first use and is reused after, so packing again for the same
/// network allocates nothing. [`crate::batch::BatchRunner`] keeps one and packs once
/// per call, before its row blocks run.
///
/// # Example
/// ```
/// use pcnet_core::{infer_with, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};
/// use pcnet_std::fast::{Fast, PackedWeights};
/// let layers = [Layer::dense(3, 40, Activation::Relu), Layer::dense(40, 2, Activation::Identity)];
/// let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
/// let params: Vec<f32> = (0..spec.parameter_len()).map(|i| ((i % 7) as f32 - 3.0) / 10.0).collect();
/// let rows = 32;
/// let inputs: Vec<f32> = (0..3 * rows).map(|i| ((i % 5) as f32 - 2.0) / 2.0).collect();
/// let classes: Vec<usize> = (0..rows).map(|r| r % 2).collect();
/// let batch = Batch::new(&inputs, Targets::Classes(&classes));
/// let settings = Settings::strict(0.1, 20);
/// let mut workspace = vec![0.0; spec.workspace_len(rows)];
/// let (mut packed_updates, mut fast_updates) = (vec![0.0; spec.parameter_len()], vec![0.0; spec.parameter_len()]);
///
/// let mut packed = PackedWeights::new();
/// let backend = packed.pack(&spec, &params, &settings)?;
/// infer_with(&backend, &spec, &params, batch, &settings, &mut workspace, &mut packed_updates)?;
/// infer_with(&Fast::default(), &spec, &params, batch, &settings, &mut workspace, &mut fast_updates)?;
/// // The same products in the same order: the same bits.
/// assert!(packed_updates.iter().zip(&fast_updates).all(|(a, b)| a.to_bits() == b.to_bits()));
/// # Ok::<(), pcnet_core::PcError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct PackedWeights<T> {
    panels: Vec<T>,
    layers: Vec<PackedLayer>,
    units: Vec<PackUnit>,
}

/// One `k` block of one packed matrix: the unit of work the packing splits over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackUnit {
    /// Index into [`PackedWeights::layers`].
    layer: usize,
    /// `W^T` (forward) or `W` (input VJP).
    transposed: bool,
    depth: usize,
    depth_end: usize,
    /// Where the block's panels start in [`PackedWeights::panels`].
    offset: usize,
}

impl<T: Scalar> PackedWeights<T> {
    /// Empty storage; the first [`PackedWeights::pack`] sizes it.
    pub fn new() -> Self {
        PackedWeights {
            panels: Vec::new(),
            layers: Vec::new(),
            units: Vec::new(),
        }
    }

    /// Packs the weights of `params` (laid out as `spec` says) of every linear op for the
    /// forward product, and for the input VJP where a relaxation with `settings` computes
    /// it: every linear op except the first op of layer 1 when the input is clamped. The
    /// returned backend borrows both this storage and `params`, so neither can change
    /// while it is in use, and computes exactly what [`Fast::default`] computes
    /// ([`PackedWeights::pack_for`] packs for another [`Fast`] value's family).
    ///
    /// # Errors
    /// Every error of [`NetworkSpec::validate`], and [`PcError::LengthMismatch`] when
    /// `params` does not hold [`NetworkSpec::parameter_len`] values.
    pub fn pack<'a>(
        &'a mut self,
        spec: &NetworkSpec<'_>,
        params: &'a [T],
        settings: &pcnet_core::Settings<'_, T>,
    ) -> Result<PackedFast<'a, T>, PcError> {
        self.pack_on(Fast::default(), spec, params, settings, PACK_ROWS, false)
    }

    /// [`PackedWeights::pack`] for `fast`'s kernel family: the returned backend computes
    /// exactly what `fast` computes.
    ///
    /// # Errors
    /// As [`PackedWeights::pack`].
    ///
    /// # Example
    /// ```
    /// use pcnet_core::{Activation, Layer, Loss, NetworkSpec, Settings};
    /// use pcnet_std::fast::{Fast, Isa, PackedWeights};
    /// let layers = [Layer::dense(3, 40, Activation::Relu), Layer::dense(40, 2, Activation::Identity)];
    /// let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    /// let params = vec![0.1_f64; spec.parameter_len()];
    /// let mut packed = PackedWeights::new();
    /// let backend = packed.pack_for(Fast::with_isa(Isa::Portable)?, &spec, &params, &Settings::strict(0.1, 20))?;
    /// assert_eq!(backend.fast().isa(), Isa::Portable);
    /// # Ok::<(), pcnet_std::Error>(())
    /// ```
    pub fn pack_for<'a>(
        &'a mut self,
        fast: Fast,
        spec: &NetworkSpec<'_>,
        params: &'a [T],
        settings: &pcnet_core::Settings<'_, T>,
    ) -> Result<PackedFast<'a, T>, PcError> {
        self.pack_on(fast, spec, params, settings, PACK_ROWS, false)
    }

    /// [`PackedWeights::pack`] for products of `rows` rows (below 24 they read the
    /// weights in place: nothing is packed), with the matrices' `k` blocks spread over the
    /// threads of the current rayon pool when `parallel` (call it inside
    /// `ThreadPool::install`; pc never uses rayon's global pool). Each block is written by
    /// one thread, the same values whoever writes it.
    pub(crate) fn pack_on<'a>(
        &'a mut self,
        fast: Fast,
        spec: &NetworkSpec<'_>,
        params: &'a [T],
        settings: &pcnet_core::Settings<'_, T>,
        rows: usize,
        parallel: bool,
    ) -> Result<PackedFast<'a, T>, PcError> {
        spec.validate()?;
        let family = fast.family;
        if params.len() != spec.parameter_len() {
            return Err(PcError::LengthMismatch {
                what: "parameters",
                expected: spec.parameter_len(),
                given: params.len(),
            });
        }
        self.layers.clear();
        let layers = if rows >= PACK_ROWS {
            spec.layers()
        } else {
            &[]
        };
        let mut total = 0;
        let mut layer_offset = 0;
        for (index, layer) in layers.iter().enumerate() {
            let mut op_offset = layer_offset;
            for (op_index, op) in layer.ops().iter().enumerate() {
                if let Op::Linear { inputs, outputs } = *op {
                    if inputs > 0 && outputs > 0 {
                        let forward = total;
                        total += packed_rhs_len::<T>(family, inputs, outputs);
                        let vjp_needed =
                            index > 0 || op_index > 0 || settings.input == InputBelief::Free;
                        let input_vjp = vjp_needed.then_some(total);
                        if vjp_needed {
                            total += packed_rhs_len::<T>(family, outputs, inputs);
                        }
                        self.layers.push(PackedLayer {
                            key: OpKey::new(index + 1, op_index),
                            weight_offset: op_offset,
                            inputs,
                            outputs,
                            forward,
                            input_vjp,
                        });
                    }
                }
                op_offset += op.parameter_len();
            }
            layer_offset += layer.parameter_len();
        }
        if self.panels.len() < total {
            self.panels.resize(total, T::zero());
        }
        self.units.clear();
        for (index, layer) in self.layers.iter().enumerate() {
            let matrices = [
                (true, Some(layer.forward), layer.inputs, layer.outputs),
                (false, layer.input_vjp, layer.outputs, layer.inputs),
            ];
            for (transposed, offset, k, n) in matrices {
                let Some(offset) = offset else { continue };
                let padded = packed_rhs_len::<T>(family, 1, n); // one row of panels
                for depth in (0..k).step_by(PACK_DEPTH_BLOCK) {
                    self.units.push(PackUnit {
                        layer: index,
                        transposed,
                        depth,
                        depth_end: (depth + PACK_DEPTH_BLOCK).min(k),
                        offset: offset + depth * padded,
                    });
                }
            }
        }
        let (units, layers, panels) = (&self.units, &self.layers, &mut self.panels[..total]);
        let packed_all = super::typed!(T; (params); (panels);
            fill(family, units, panels, 0, params, layers, parallel); else false);
        if !packed_all {
            // Unreachable (the lengths above are the ones `pack_rhs_block` asks for); without
            // panels the backend is plain `Fast`.
            self.layers.clear();
        }
        Ok(PackedFast {
            fast,
            params,
            layers: &self.layers,
            panels: &self.panels,
        })
    }
}

/// The [`Fast`] backend reading packed weights for the forward product and the input
/// VJP; made by [`PackedWeights::pack`].
///
/// A product's packed weights are looked up by the [`OpKey`] the schedule passes with it
/// (the op of the network the panels were packed for), and used only if the weight slice
/// is that op's, at its address inside the parameters the panels were packed from, which
/// this backend borrows: while it lives those parameters cannot change, so that slice
/// holds the packed values. Any other call (another key, other parameters, a layer that
/// was not packed) goes through [`Fast`] unchanged.
///
/// # Example
/// See [`PackedWeights`].
#[derive(Clone, Copy, Debug)]
pub struct PackedFast<'a, T> {
    fast: Fast,
    params: &'a [T],
    layers: &'a [PackedLayer],
    panels: &'a [T],
}

impl<T: Scalar> PackedFast<'_, T> {
    /// The [`Fast`] backend (and so the kernel family) these panels were packed for.
    ///
    /// # Example
    /// See [`PackedWeights::pack_for`].
    pub fn fast(&self) -> Fast {
        self.fast
    }

    /// The packed linear op `key`, if it was packed and `weight` (with `dims`) is its
    /// weight matrix.
    fn layer_of(&self, key: OpKey, dims: LinearDims, weight: &[T]) -> Option<&PackedLayer> {
        // `layers` is in network order, so sorted by key.
        let index = self
            .layers
            .binary_search_by_key(&key, |layer| layer.key)
            .ok()?;
        let layer = &self.layers[index];
        // Where `weight` starts inside the borrowed parameters, if it does (addresses are
        // compared, never dereferenced): the key's op must own this slice.
        let bytes = (weight.as_ptr() as usize).checked_sub(self.params.as_ptr() as usize)?;
        let size = core::mem::size_of::<T>();
        if bytes % size != 0 || bytes / size >= self.params.len() {
            return None;
        }
        let owned = layer.weight_offset == bytes / size
            && layer.inputs == dims.inputs
            && layer.outputs == dims.outputs
            && weight.len() >= dims.inputs * dims.outputs;
        owned.then_some(layer)
    }

    /// `W^T` packed for the forward product of that op.
    fn forward_panels(&self, key: OpKey, dims: LinearDims, weight: &[T]) -> Option<&[T]> {
        let layer = self.layer_of(key, dims, weight)?;
        let len = packed_rhs_len::<T>(self.fast.family, layer.inputs, layer.outputs);
        self.panels.get(layer.forward..layer.forward + len)
    }

    /// `W` packed for the input VJP of that op.
    fn input_vjp_panels(&self, key: OpKey, dims: LinearDims, weight: &[T]) -> Option<&[T]> {
        let layer = self.layer_of(key, dims, weight)?;
        let offset = layer.input_vjp?;
        let len = packed_rhs_len::<T>(self.fast.family, layer.outputs, layer.inputs);
        self.panels.get(offset..offset + len)
    }
}

/// Packs `units` (ascending offsets; `panels` starts at offset `base`), halving the list
/// over `rayon::join` when `parallel`. `false` if a block did not fit (unreachable: the
/// lengths are the ones the packing asks for).
fn fill<T: GemmScalar>(
    family: Family,
    units: &[PackUnit],
    panels: &mut [T],
    base: usize,
    params: &[T],
    layers: &[PackedLayer],
    parallel: bool,
) -> bool {
    if parallel && units.len() > 1 {
        let middle = units.len() / 2;
        let split = units[middle].offset - base;
        let (left, right) = panels.split_at_mut(split);
        let (done_left, done_right) = rayon::join(
            || fill(family, &units[..middle], left, base, params, layers, true),
            || {
                let base = units[middle].offset;
                fill(family, &units[middle..], right, base, params, layers, true)
            },
        );
        return done_left && done_right;
    }
    units.iter().all(|unit| {
        let layer = &layers[unit.layer];
        let start = layer.weight_offset;
        let Some(values) = params.get(start..start + layer.inputs * layer.outputs) else {
            return false;
        };
        let Ok(weight) = MatRef::row_major(values, layer.outputs, layer.inputs) else {
            return false;
        };
        let (rhs, n) = if unit.transposed {
            (weight.transpose(), layer.outputs)
        } else {
            (weight, layer.inputs)
        };
        let len = packed_rhs_len::<T>(family, unit.depth_end - unit.depth, n);
        let Some(target) = panels.get_mut(unit.offset - base..unit.offset - base + len) else {
            return false;
        };
        pack_rhs_block(family, rhs, unit.depth, unit.depth_end, target)
    })
}

impl<T: Scalar> Backend<T> for PackedFast<'_, T> {
    fn linear_forward(
        &self,
        key: OpKey,
        dims: LinearDims,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        let family = self.fast.family;
        let done = self
            .forward_panels(key, dims, weight)
            .is_some_and(|packed| {
                super::typed!(T; (input, weight, bias, packed); (output);
                super::forward(family, dims, input, weight, bias, packed, output).is_ok();
                else false)
            });
        if !done {
            self.fast
                .linear_forward(key, dims, input, weight, bias, output)
        }
    }

    fn linear_backward_input(
        &self,
        key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        let family = self.fast.family;
        let done = self
            .input_vjp_panels(key, dims, weight)
            .is_some_and(|packed| {
                super::typed!(T; (grad_output, weight, packed); (grad_input);
                super::backward_input(family, dims, grad_output, weight, packed, grad_input)
                    .is_ok();
                else false)
            });
        if !done {
            self.fast
                .linear_backward_input(key, dims, grad_output, weight, grad_input)
        }
    }

    fn linear_backward_parameters(
        &self,
        key: OpKey,
        dims: LinearDims,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        self.fast
            .linear_backward_parameters(key, dims, grad_output, input, grad_weight, grad_bias)
    }

    fn conv2d_forward(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        input: &[T],
        weight: &[T],
        bias: &[T],
        output: &mut [T],
    ) {
        self.fast
            .conv2d_forward(key, conv, rows, input, weight, bias, output)
    }

    fn conv2d_backward_input(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) {
        self.fast
            .conv2d_backward_input(key, conv, rows, grad_output, weight, grad_input)
    }

    fn conv2d_backward_parameters(
        &self,
        key: OpKey,
        conv: &Conv2d,
        rows: usize,
        grad_output: &[T],
        input: &[T],
        grad_weight: &mut [T],
        grad_bias: &mut [T],
    ) {
        self.fast.conv2d_backward_parameters(
            key,
            conv,
            rows,
            grad_output,
            input,
            grad_weight,
            grad_bias,
        )
    }
}
