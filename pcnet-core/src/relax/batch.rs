//! One batch of inputs and targets ([`Batch`]), and the row check every entry point
//! runs on it.

use crate::{loss::Targets, NetworkSpec, PcError, Scalar};
use core::ops::Bound;

/// One batch: inputs (rows x input width, row-major) and their targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch<'a, T> {
    /// Inputs, rows x input width.
    pub inputs: &'a [T],
    /// Targets.
    pub targets: Targets<'a, T>,
    /// The number of rows the loss averages over; `None` for this batch's own rows. Set
    /// it to process a large batch in blocks (see [`Batch::block_of`]).
    pub loss_rows: Option<usize>,
}

impl<'a, T: Scalar> Batch<'a, T> {
    /// A batch whose loss averages over its own rows.
    pub fn new(inputs: &'a [T], targets: Targets<'a, T>) -> Self {
        Batch {
            inputs,
            targets,
            loss_rows: None,
        }
    }

    /// This batch as a block of a larger batch of `total_rows` rows: its loss and output
    /// gradient carry the `1 / total_rows` of the whole batch's mean, so block results
    /// add up to the whole batch's.
    #[must_use = "returns the changed value; the original is not modified"]
    pub fn block_of(self, total_rows: usize) -> Self {
        Batch {
            loss_rows: Some(total_rows),
            ..self
        }
    }

    /// Checks this batch against `spec` and returns its number of rows: the inputs are
    /// not empty and a whole number of rows, the targets fit those rows (shape, classes
    /// in range), and [`loss_rows`](Self::loss_rows), when set, is at least the rows.
    /// The values' finiteness is not checked here.
    ///
    /// # Errors
    /// [`PcError::EmptyBatch`], [`PcError::LengthMismatch`] for inputs that are not whole
    /// rows, the errors of [`Targets::check`], and [`PcError::InvalidHyperparameter`] for
    /// `loss_rows` below the rows.
    ///
    /// # Example
    /// ```
    /// use pcnet_core::{Activation, Batch, Layer, Loss, NetworkSpec, PcError, Targets};
    /// let layers = [Layer::dense(2, 1, Activation::Identity)];
    /// let spec = NetworkSpec::new(&layers, Loss::Mse);
    /// let batch = Batch::new(&[1.0_f64, 2.0, 3.0, 4.0], Targets::Values(&[0.5, 1.5]));
    /// assert_eq!(batch.check_rows(&spec), Ok(2));
    /// let ragged = Batch::new(&[1.0_f64, 2.0, 3.0], Targets::Values(&[0.5, 1.5]));
    /// assert!(matches!(ragged.check_rows(&spec), Err(PcError::LengthMismatch { .. })));
    /// ```
    pub fn check_rows(&self, spec: &NetworkSpec<'_>) -> Result<usize, PcError> {
        let input_width = spec.input_len();
        if self.inputs.is_empty() {
            return Err(PcError::EmptyBatch);
        }
        if self.inputs.len() % input_width != 0 {
            return Err(PcError::LengthMismatch {
                what: "inputs",
                expected: (self.inputs.len() / input_width + 1) * input_width,
                given: self.inputs.len(),
            });
        }
        let rows = self.inputs.len() / input_width;
        self.targets.check(spec.loss(), rows, spec.output_len())?;
        if let Some(loss_rows) = self.loss_rows {
            if loss_rows < rows {
                return Err(PcError::InvalidHyperparameter {
                    name: "loss rows",
                    value: loss_rows as f64,
                    min: Bound::Included(rows as f64),
                    max: Bound::Unbounded,
                });
            }
        }
        Ok(rows)
    }
}
