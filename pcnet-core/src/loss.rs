//! Loss functions on the network output, with their gradients.

use crate::{error::check_len, ParseNameError, PcError, Scalar};

/// The loss applied to the network output `y` (rows x outputs).
///
/// # Example
/// ```
/// use pcnet_core::{Loss, Targets};
/// let output = [0.5_f64, -0.5];
/// let target = [0.0_f64, 0.0];
/// let mut grad = [0.0; 2];
/// let loss = Loss::Mse
///     .value_and_gradient(&output, 2, Targets::Values(&target), 1, &mut grad)
///     .unwrap();
/// assert_eq!(loss, 0.25); // mean of 0.25 and 0.25
/// assert_eq!(grad, [0.5, -0.5]); // 2 (y - t) / (rows * outputs)
/// ```
///
/// New losses may be added in a minor release (the enum is `#[non_exhaustive]`): a `match`
/// on it needs a `_` arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Loss {
    /// Mean squared error over every element, as PyTorch's `MSELoss()`.
    #[default]
    Mse,
    /// Summed squared error, as PyTorch's `MSELoss(reduction="sum")`.
    MseSum,
    /// Softmax cross-entropy on the raw outputs with class-index targets, mean over rows,
    /// as PyTorch's `CrossEntropyLoss()`; computed with log-sum-exp, so large logits are safe.
    CrossEntropy,
}

/// Targets of one batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Targets<'a, T> {
    /// One target value per output, row-major (rows x outputs), for the MSE losses.
    Values(&'a [T]),
    /// One class index per row, for cross-entropy.
    Classes(&'a [usize]),
}

impl<T: Scalar> Targets<'_, T> {
    /// Checks lengths, class ranges and finiteness against a batch of `rows` rows and a
    /// network with `outputs` outputs.
    pub fn check(&self, loss: Loss, rows: usize, outputs: usize) -> Result<(), PcError> {
        match (*self, loss) {
            (Targets::Values(values), Loss::Mse | Loss::MseSum) => {
                check_len("targets", rows * outputs, values.len())?;
                crate::error::check_finite("targets", values)
            }
            (Targets::Classes(classes), Loss::CrossEntropy) => {
                check_len("targets", rows, classes.len())?;
                match classes.iter().position(|&class| class >= outputs) {
                    None => Ok(()),
                    Some(row) => Err(PcError::ClassOutOfRange {
                        row,
                        class: classes[row],
                        classes: outputs,
                    }),
                }
            }
            (Targets::Values(_), Loss::CrossEntropy) => Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "cross-entropy needs class-index targets",
            }),
            (Targets::Classes(_), _) => Err(PcError::InvalidNetwork {
                layer: 0,
                reason: "the MSE losses need value targets",
            }),
        }
    }

    /// The sub-batch of rows `start..start + rows` (for block-wise processing).
    pub fn rows(&self, start: usize, rows: usize, outputs: usize) -> Self {
        match *self {
            Targets::Values(values) => {
                Targets::Values(&values[start * outputs..(start + rows) * outputs])
            }
            Targets::Classes(classes) => Targets::Classes(&classes[start..start + rows]),
        }
    }
}

/// Parses a loss's [`name`](Loss::name) (and the aliases of [`Loss::from_name`]); the
/// error names what was given and the valid names.
///
/// ```
/// use pcnet_core::Loss;
/// assert_eq!("cross_entropy".parse::<Loss>(), Ok(Loss::CrossEntropy));
/// assert_eq!(
///     "hinge".parse::<Loss>().unwrap_err().to_string(),
///     "`hinge` is not a loss name; the names are mse, mse_sum, cross_entropy"
/// );
/// ```
impl core::str::FromStr for Loss {
    type Err = ParseNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Loss::lookup(name).ok_or_else(|| ParseNameError::new("loss", Loss::NAMES, name))
    }
}

impl Loss {
    /// A short lowercase name: `"mse"`, `"mse_sum"` or `"cross_entropy"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::MseSum => "mse_sum",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// Looks a loss up by name: the [`FromStr`](core::str::FromStr) parse
    /// (`"mse".parse::<Loss>()`) as an `Option`, for callers that report a miss their own
    /// way. Accepts [`name`](Self::name)'s names and `mse-sum`, `cross-entropy`, `ce`.
    ///
    /// ```
    /// use pcnet_core::Loss;
    /// assert_eq!(Loss::from_name("ce"), Some(Loss::CrossEntropy));
    /// assert_eq!(Loss::from_name("hinge"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Loss> {
        name.parse().ok()
    }

    /// The names [`Loss::from_str`](core::str::FromStr::from_str) accepts, as its error
    /// lists them.
    const NAMES: &'static str = "mse, mse_sum, cross_entropy";

    fn lookup(name: &str) -> Option<Loss> {
        Some(match name {
            "mse" => Loss::Mse,
            "mse_sum" | "mse-sum" => Loss::MseSum,
            "cross_entropy" | "cross-entropy" | "ce" => Loss::CrossEntropy,
            _ => return None,
        })
    }

    /// Computes the loss of `output` (rows x `outputs`, row-major) and writes dLoss/dy into
    /// `grad`.
    ///
    /// `batch_rows` is the number of rows the mean runs over: the length of the whole
    /// batch, which is larger than `output`'s row count when a batch is processed in
    /// blocks. The returned value is this block's share of the batch loss, so the block
    /// values add up to the batch loss.
    pub fn value_and_gradient<T: Scalar>(
        &self,
        output: &[T],
        outputs: usize,
        targets: Targets<'_, T>,
        batch_rows: usize,
        grad: &mut [T],
    ) -> Result<T, PcError> {
        if outputs == 0 || output.len() % outputs != 0 {
            return Err(PcError::LengthMismatch {
                what: "network output",
                expected: outputs.max(1) * (output.len() / outputs.max(1)),
                given: output.len(),
            });
        }
        let rows = output.len() / outputs;
        if rows == 0 || batch_rows < rows {
            return Err(PcError::EmptyBatch);
        }
        check_len("loss gradient", output.len(), grad.len())?;
        targets.check(*self, rows, outputs)?;
        Ok(
            self.value_and_gradient_unchecked::<T, true>(
                output, outputs, targets, batch_rows, grad,
            ),
        )
    }

    /// Why a network in this build of pcnet-core cannot use this loss (its cargo feature is
    /// off), if it cannot.
    pub(crate) const fn missing_feature(&self) -> Option<&'static str> {
        match self {
            Loss::CrossEntropy if !cfg!(feature = "cross-entropy") => {
                Some("cross-entropy needs pcnet-core's `cross-entropy` feature")
            }
            _ => None,
        }
    }

    /// As [`value_and_gradient`](Self::value_and_gradient) with every check already done.
    /// With `ALL` false (a network's loss, which
    /// [`NetworkSpec::validate`](crate::NetworkSpec::validate) has checked) the losses whose
    /// feature is off are not compiled in.
    pub(crate) fn value_and_gradient_unchecked<T: Scalar, const ALL: bool>(
        &self,
        output: &[T],
        outputs: usize,
        targets: Targets<'_, T>,
        batch_rows: usize,
        grad: &mut [T],
    ) -> T {
        let two = T::one() + T::one();
        match (*self, targets) {
            (Loss::Mse | Loss::MseSum, Targets::Values(values)) => {
                let scale = if *self == Loss::Mse {
                    T::one() / T::from_usize(batch_rows * outputs)
                } else {
                    T::one()
                };
                let mut total = T::zero();
                for ((g, &y), &t) in grad.iter_mut().zip(output).zip(values) {
                    let diff = y - t;
                    total = total + diff * diff;
                    *g = two * diff * scale;
                }
                total * scale
            }
            (Loss::CrossEntropy, Targets::Classes(classes))
                if ALL || cfg!(feature = "cross-entropy") =>
            {
                let scale = T::one() / T::from_usize(batch_rows);
                let mut total = T::zero();
                for ((row, grad_row), &class) in output
                    .chunks_exact(outputs)
                    .zip(grad.chunks_exact_mut(outputs))
                    .zip(classes)
                {
                    let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
                    let mut sum = T::zero();
                    for (g, &v) in grad_row.iter_mut().zip(row) {
                        let e = (v - max).exp_libm();
                        *g = e;
                        sum = sum + e;
                    }
                    let log_sum_exp = max + sum.ln_libm();
                    total = total + (log_sum_exp - row[class]);
                    let inv = scale / sum;
                    for g in grad_row.iter_mut() {
                        *g = *g * inv;
                    }
                    grad_row[class] = grad_row[class] - scale;
                }
                total * scale
            }
            // Mismatched pairs are rejected by `Targets::check`, losses a build lacks by
            // `NetworkSpec::validate`.
            _ => T::nan(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_error_lists_them() {
        for loss in [Loss::Mse, Loss::MseSum, Loss::CrossEntropy] {
            assert_eq!(loss.name().parse::<Loss>(), Ok(loss));
            assert!(Loss::NAMES.split(", ").any(|name| name == loss.name()));
        }
        for name in Loss::NAMES.split(", ") {
            assert_eq!(name.parse::<Loss>().map(|loss| loss.name()), Ok(name));
        }
        let err = "hinge".parse::<Loss>().unwrap_err();
        assert_eq!(
            (err.kind(), err.given(), err.valid_names()),
            ("loss", "hinge", Loss::NAMES)
        );
    }

    /// Central differences (h = 1e-6): truncation O(h^2) and rounding O(u |f| / h) are both
    /// far below the 1e-8 absolute tolerance for these smooth functions of O(1) inputs.
    fn numeric_gradient(loss: Loss, output: &[f64], outputs: usize, targets: Targets<'_, f64>) {
        let rows = output.len() / outputs;
        let mut grad = std::vec![0.0; output.len()];
        loss.value_and_gradient(output, outputs, targets, rows, &mut grad)
            .unwrap();
        let h = 1e-6;
        let mut scratch = std::vec![0.0; output.len()];
        for i in 0..output.len() {
            let mut plus = output.to_vec();
            let mut minus = output.to_vec();
            plus[i] += h;
            minus[i] -= h;
            let fp = loss
                .value_and_gradient(&plus, outputs, targets, rows, &mut scratch)
                .unwrap();
            let fm = loss
                .value_and_gradient(&minus, outputs, targets, rows, &mut scratch)
                .unwrap();
            let numeric = (fp - fm) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-8,
                "{loss:?}[{i}]: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn gradients_match_central_differences() {
        let output = [0.3, -1.2, 2.0, 0.1, 0.7, -0.4];
        let values = [1.0, 0.0, 0.5, -0.3, 0.2, 0.9];
        numeric_gradient(Loss::Mse, &output, 3, Targets::Values(&values));
        numeric_gradient(Loss::MseSum, &output, 3, Targets::Values(&values));
        numeric_gradient(Loss::CrossEntropy, &output, 3, Targets::Classes(&[2, 0]));
    }

    #[test]
    fn cross_entropy_is_stable_for_huge_logits() {
        let output = [1000.0_f64, 0.0, -1000.0];
        let mut grad = [0.0; 3];
        let loss = Loss::CrossEntropy
            .value_and_gradient(&output, 3, Targets::Classes(&[1]), 1, &mut grad)
            .unwrap();
        // log-sum-exp = 1000 + ln(1 + e^-1000 + e^-2000) = 1000 exactly in f64.
        assert_eq!(loss, 1000.0);
        assert_eq!(grad, [1.0, -1.0, 0.0]);
    }

    #[test]
    fn cross_entropy_matches_closed_form() {
        let output = [0.2_f64, -0.1];
        let mut grad = [0.0; 2];
        let loss = Loss::CrossEntropy
            .value_and_gradient(&output, 2, Targets::Classes(&[0]), 1, &mut grad)
            .unwrap();
        let expected = -(0.2_f64.exp() / (0.2_f64.exp() + (-0.1_f64).exp())).ln();
        assert!((loss - expected).abs() < 1e-15);
    }

    #[test]
    fn bad_targets_are_errors() {
        let output = [0.0_f64; 4];
        let mut grad = [0.0; 4];
        assert_eq!(
            Loss::CrossEntropy.value_and_gradient(
                &output,
                2,
                Targets::Classes(&[0, 2]),
                2,
                &mut grad
            ),
            Err(PcError::ClassOutOfRange {
                row: 1,
                class: 2,
                classes: 2
            })
        );
        assert!(matches!(
            Loss::Mse.value_and_gradient(&output, 2, Targets::Values(&[0.0; 3]), 2, &mut grad),
            Err(PcError::LengthMismatch {
                what: "targets",
                expected: 4,
                given: 3
            })
        ));
        assert!(matches!(
            Loss::Mse.value_and_gradient(
                &output,
                2,
                Targets::Values(&[0.0, f64::NAN, 0.0, 0.0]),
                2,
                &mut grad
            ),
            Err(PcError::NonFinite {
                what: "targets",
                index: 1
            })
        ));
        assert!(Loss::Mse
            .value_and_gradient(&output, 2, Targets::Classes(&[0, 1]), 2, &mut grad)
            .is_err());
    }
}
