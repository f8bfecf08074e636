//! The learning step: relax, compute parameter updates, apply the optimizer.

use crate::{
    error::check_len, relax::infer_checked, Backend, Batch, Inference, NetworkSpec, Optimizer,
    PcError, Portable, Scalar, Settings,
};

/// A network's parameters and optimizer, borrowed from the caller, ready to learn.
///
/// A step is all-or-nothing: when the relaxation fails (bad input, divergence) or any
/// update or new parameter would be non-finite, [`Learner::step`] returns the error and the
/// parameters, optimizer state and step count are exactly as before.
///
/// # Example
#[cfg_attr(feature = "fixed-pred", doc = "```")]
#[cfg_attr(not(feature = "fixed-pred"), doc = "```ignore")]
/// use pcnet_core::{Activation, Batch, Layer, Learner, Loss, NetworkSpec, Settings, Sgd, Targets};
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
/// # Ok::<(), pcnet_core::PcError>(())
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

    /// One learning step: [`infer_with`](crate::infer_with) computes the parameter
    /// updates into `updates`, then the optimizer applies them.
    ///
    /// # Errors
    /// Every error of [`infer_with`](crate::infer_with) and [`Optimizer::step`]; after an
    /// error the parameters and the optimizer are unchanged.
    pub fn step_with<'w, B: Backend<T>>(
        &mut self,
        backend: &B,
        batch: Batch<'_, T>,
        settings: &Settings<'_, T>,
        workspace: &'w mut [T],
        updates: &mut [T],
    ) -> Result<Inference<'w, 's, T>, PcError> {
        // `new` checked the network and the parameters; only the optimizer writes them,
        // with finite values.
        let inference = infer_checked::<false, T, B>(
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

// Every optional capability built (the default features; see build.rs).
#[cfg(all(test, pc_all_features))]
mod tests {
    use crate::{
        Activation, Adam, Batch, Layer, Learner, Loss, NetworkSpec, Optimizer, PcError, Settings,
        Targets,
    };
    use std::vec;

    const LAYERS: [Layer; 3] = [
        Layer::dense(3, 6, Activation::Tanh),
        Layer::dense(6, 6, Activation::Tanh),
        Layer::dense(6, 2, Activation::Identity),
    ];
    const SPEC: NetworkSpec<'static> = NetworkSpec::new(&LAYERS, Loss::Mse);

    fn parameters(scale: f64) -> std::vec::Vec<f64> {
        (0..SPEC.parameter_len())
            .map(|i| scale * (((i * 37) % 23) as f64 / 11.0 - 1.0))
            .collect()
    }

    /// A failed step (bad input, diverged relaxation) leaves parameters, optimizer state
    /// and step count exactly as before, and learning continues correctly afterwards: the
    /// next good step equals the step a fresh copy of the untouched model takes.
    #[test]
    fn failed_steps_leave_the_model_untouched() {
        let mut params = parameters(3.0);
        let mut state = vec![0.0; Adam::<f64>::state_len(params.len())];
        let mut workspace = vec![0.0; SPEC.workspace_len(2)];
        let mut updates = vec![0.0; SPEC.parameter_len()];
        let inputs = [0.5, -0.25, 1.0, 0.0, 0.75, -1.0];
        let targets = [1.0, 0.0, -1.0, 0.5];
        let batch = Batch::new(&inputs[..], Targets::Values(&targets[..]));
        let mut learner = Learner::new(SPEC, &mut params, Adam::new(0.01), &mut state).unwrap();
        learner
            .step(
                batch,
                &Settings::strict(0.1, 10),
                &mut workspace,
                &mut updates,
            )
            .unwrap();
        let (saved_params, saved_state) = (
            learner.parameters().to_vec(),
            learner.optimizer_state().to_vec(),
        );

        let nan_inputs = [f64::NAN; 6];
        let bad = Batch::new(&nan_inputs[..], Targets::Values(&targets[..]));
        assert!(matches!(
            learner.step(
                bad,
                &Settings::strict(0.1, 10),
                &mut workspace,
                &mut updates
            ),
            Err(PcError::NonFinite { what: "inputs", .. })
        ));
        let diverging = Settings::strict(1.99, 5000);
        assert!(matches!(
            learner.step(batch, &diverging, &mut workspace, &mut updates),
            Err(PcError::Diverged { .. })
        ));
        assert_eq!(learner.parameters(), &saved_params[..]);
        assert_eq!(learner.optimizer_state(), &saved_state[..]);
        assert_eq!(learner.optimizer().steps, 1);

        learner
            .step(
                batch,
                &Settings::strict(0.1, 10),
                &mut workspace,
                &mut updates,
            )
            .unwrap();
        let continued = learner.parameters().to_vec();

        let mut fresh_params = saved_params.clone();
        let mut fresh_state = saved_state.clone();
        let mut adam = Adam::new(0.01);
        adam.steps = 1;
        let mut fresh = Learner::new(SPEC, &mut fresh_params, adam, &mut fresh_state).unwrap();
        fresh
            .step(
                batch,
                &Settings::strict(0.1, 10),
                &mut workspace,
                &mut updates,
            )
            .unwrap();
        assert_eq!(fresh.parameters(), &continued[..]);
    }

    #[test]
    fn construction_checks_lengths() {
        let mut params = parameters(1.0);
        let mut short_state = vec![0.0; 3];
        assert!(matches!(
            Learner::new(SPEC, &mut params, Adam::new(0.01), &mut short_state),
            Err(PcError::LengthMismatch {
                what: "optimizer state",
                ..
            })
        ));
        let mut state = vec![0.0; 2 * SPEC.parameter_len()];
        assert!(matches!(
            Learner::new(SPEC, &mut params[1..], Adam::new(0.01), &mut state[2..]),
            Err(PcError::LengthMismatch {
                what: "parameters",
                ..
            })
        ));
    }
}
