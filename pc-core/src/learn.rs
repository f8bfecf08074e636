//! The learning step: relax, compute parameter updates, apply the optimizer.

use crate::{
    error::check_len, infer_with, Backend, Batch, Inference, NetworkSpec, Optimizer, PcError,
    Portable, Scalar, Settings,
};

/// A network's parameters and optimizer, borrowed from the caller, ready to learn.
///
/// A step is all-or-nothing: when the relaxation fails (bad input, divergence) or any
/// update or new parameter would be non-finite, [`Learner::step`] returns the error and the
/// parameters, optimizer state and step count are exactly as before.
///
/// # Example
/// ```
/// use pc_core::{Activation, Batch, Layer, Learner, Loss, NetworkSpec, Settings, Sgd, Targets};
/// const LAYERS: [Layer; 2] = [Layer::dense(2, 4, Activation::Tanh), Layer::dense(4, 1, Activation::Identity)];
/// const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);
/// let mut params = [0.0_f32; SPEC.parameter_len()];
/// for (i, p) in params.iter_mut().enumerate() {
///     *p = ((i * 7 % 11) as f32 - 5.0) / 10.0;
/// }
/// let mut state = [0.0_f32; SPEC.parameter_len()]; // SGD keeps one buffer per parameter
/// let mut workspace = [0.0_f32; SPEC.workspace_len(4)];
/// let mut updates = [0.0_f32; SPEC.parameter_len()];
/// let inputs = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
/// let targets = [0.0, 1.0, 1.0, 0.0];
/// let batch = Batch::new(&inputs, Targets::Values(&targets));
/// let mut learner = Learner::new(SPEC, &mut params, Sgd::new(0.1), &mut state)?;
/// let first = learner.step(batch, &Settings::fixed_pred(1.0, 2), &mut workspace, &mut updates)?.loss();
/// for _ in 0..200 {
///     learner.step(batch, &Settings::fixed_pred(1.0, 2), &mut workspace, &mut updates)?;
/// }
/// let last = learner.step(batch, &Settings::fixed_pred(1.0, 2), &mut workspace, &mut updates)?.loss();
/// assert!(last < first);
/// # Ok::<(), pc_core::PcError>(())
/// ```
#[derive(Debug)]
pub struct Learner<'a, 's, T, O> {
    spec: NetworkSpec<'s>,
    parameters: &'a mut [T],
    optimizer: O,
    optimizer_state: &'a mut [T],
}

impl<'a, 's, T: Scalar, O: Optimizer<T>> Learner<'a, 's, T, O> {
    /// Checks the network, the parameter and state lengths, and the optimizer.
    ///
    /// # Errors
    /// [`PcError::LengthMismatch`] for slices that do not fit the network,
    /// [`PcError::NonFinite`] for non-finite parameters, and the optimizer's own errors.
    pub fn new(
        spec: NetworkSpec<'s>,
        parameters: &'a mut [T],
        optimizer: O,
        optimizer_state: &'a mut [T],
    ) -> Result<Self, PcError> {
        spec.check_parameters(parameters)?;
        check_len(
            "optimizer state",
            O::state_len(parameters.len()),
            optimizer_state.len(),
        )?;
        optimizer.validate()?;
        Ok(Learner {
            spec,
            parameters,
            optimizer,
            optimizer_state,
        })
    }

    /// The network.
    pub fn spec(&self) -> &NetworkSpec<'s> {
        &self.spec
    }

    /// The parameters.
    pub fn parameters(&self) -> &[T] {
        self.parameters
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer state.
    pub fn optimizer_state(&self) -> &[T] {
        self.optimizer_state
    }

    /// One learning step with the portable kernels. See [`Learner::step_with`].
    pub fn step<'w>(
        &mut self,
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
        workspace: &'w mut [T],
        updates: &mut [T],
    ) -> Result<Inference<'w, 's, T>, PcError> {
        self.step_with(&Portable, batch, settings, workspace, updates)
    }

    /// One learning step: [`infer_with`] computes the parameter updates into `updates`,
    /// then the optimizer applies them.
    ///
    /// # Errors
    /// Every error of [`infer_with`] and [`Optimizer::step`]; after an error the parameters
    /// and the optimizer are unchanged.
    pub fn step_with<'w, B: Backend<T>>(
        &mut self,
        backend: &B,
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
        workspace: &'w mut [T],
        updates: &mut [T],
    ) -> Result<Inference<'w, 's, T>, PcError> {
        let inference = infer_with(
            backend,
            &self.spec,
            self.parameters,
            batch,
            settings,
            workspace,
            updates,
        )?;
        self.optimizer
            .step(self.parameters, updates, self.optimizer_state)?;
        Ok(inference)
    }
}
