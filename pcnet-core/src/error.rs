//! The one error type of the library.

use core::fmt;
use core::ops::Bound;

/// Everything that can go wrong in pcnet-core, with the data a caller needs to act on it.
///
/// No public function of pcnet-core panics on bad input: it returns one of these instead,
/// and a function that returns an error has written nothing into the caller's parameters
/// or optimizer state.
///
/// # Example
/// ```
/// use pcnet_core::{Activation, Layer, NetworkSpec, PcError};
/// let layers = [Layer::dense(3, 2, Activation::Tanh)];
/// let spec = NetworkSpec::new(&layers, pcnet_core::Loss::Mse);
/// let too_short = [0.0_f64; 5];
/// let err = spec.check_parameters(&too_short).unwrap_err();
/// assert_eq!(err, PcError::LengthMismatch { what: "parameters", expected: 8, given: 5 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum PcError {
    /// A slice has the wrong length.
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The length the network and batch size require.
        expected: usize,
        /// The length given.
        given: usize,
    },
    /// A caller-provided buffer is shorter than needed.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// The length needed.
        needed: usize,
        /// The length given.
        given: usize,
    },
    /// Two consecutive operations of a network do not fit together.
    ShapeMismatch {
        /// Layer index, 1-based as in the paper (layer 1 reads the input).
        layer: usize,
        /// Operation index within the layer, 0-based.
        op: usize,
        /// Number of features per sample the operation expects.
        expected: usize,
        /// Number of features per sample it is given.
        given: usize,
    },
    /// The network description is unusable (no layers, a zero-width layer, an empty op chain, ...).
    InvalidNetwork {
        /// Layer index (1-based), or 0 when the network as a whole is at fault.
        layer: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An operation's own description is unusable (a zero stride, a kernel larger than
    /// its padded input, ...).
    InvalidOp {
        /// Layer index, 1-based.
        layer: usize,
        /// Operation index within the layer, 0-based.
        op: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A batch with no rows.
    EmptyBatch,
    /// A class index of a cross-entropy target is not below the number of outputs.
    ClassOutOfRange {
        /// Row of the batch.
        row: usize,
        /// The class index given.
        class: usize,
        /// The number of classes (network outputs).
        classes: usize,
    },
    /// A non-finite value (NaN or infinity) where finite values are required.
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// Index of the first non-finite element.
        index: usize,
    },
    /// A hyperparameter outside its valid range (or not finite).
    ///
    /// The range is `min..max` in the sense of [`core::ops::RangeBounds`]: each end is
    /// [`Bound::Included`], [`Bound::Excluded`] or [`Bound::Unbounded`], and the message
    /// prints it as a user writes it: "in (0, 2)", "at least 0", "finite".
    ///
    /// # Example
    /// ```
    /// use core::ops::Bound;
    /// use pcnet_core::PcError;
    /// let err = PcError::InvalidHyperparameter {
    ///     name: "step size",
    ///     value: 3.0,
    ///     min: Bound::Excluded(0.0),
    ///     max: Bound::Excluded(2.0),
    /// };
    /// assert_eq!(err.to_string(), "step size must be in (0, 2), given 3");
    /// ```
    InvalidHyperparameter {
        /// Which hyperparameter.
        name: &'static str,
        /// The value given (converted to `f64`).
        value: f64,
        /// The lower end of the valid range.
        min: Bound<f64>,
        /// The upper end of the valid range.
        max: Bound<f64>,
    },
    /// A relaxation produced non-finite values or its energy grew past the divergence limit.
    Diverged {
        /// The 1-based iteration at which divergence was detected.
        iteration: usize,
    },
    /// Settings that do not fit together (for example initial beliefs for an algorithm
    /// that does not use them).
    InvalidSettings {
        /// What is wrong.
        reason: &'static str,
    },
    /// Model bytes are malformed.
    CorruptModel {
        /// What check failed.
        reason: &'static str,
    },
}

impl fmt::Display for PcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PcError::LengthMismatch {
                what,
                expected,
                given,
            } => {
                write!(f, "{what}: expected length {expected}, given {given}")
            }
            PcError::BufferTooSmall {
                what,
                needed,
                given,
            } => {
                write!(
                    f,
                    "{what}: buffer of length {given} is too small, {needed} needed"
                )
            }
            PcError::ShapeMismatch {
                layer,
                op,
                expected,
                given,
            } => write!(
                f,
                "layer {layer}, op {op}: expects {expected} features per sample, given {given}"
            ),
            PcError::InvalidNetwork { layer, reason } => {
                if layer == 0 {
                    write!(f, "invalid network: {reason}")
                } else {
                    write!(f, "invalid network, layer {layer}: {reason}")
                }
            }
            PcError::InvalidOp { layer, op, reason } => {
                write!(f, "invalid network, layer {layer}, op {op}: {reason}")
            }
            PcError::EmptyBatch => write!(f, "the batch has no rows"),
            PcError::ClassOutOfRange {
                row,
                class,
                classes,
            } => write!(
                f,
                "row {row}: class index {class} is out of range for {classes} classes"
            ),
            PcError::NonFinite { what, index } => {
                write!(f, "{what}: non-finite value at index {index}")
            }
            PcError::InvalidHyperparameter {
                name,
                value,
                min,
                max,
            } => {
                write!(f, "{name} must be ")?;
                write_range(f, min, max)?;
                write!(f, ", given {value}")
            }
            PcError::Diverged { iteration } => {
                write!(f, "relaxation diverged at iteration {iteration}")
            }
            PcError::InvalidSettings { reason } => write!(f, "invalid settings: {reason}"),
            PcError::CorruptModel { reason } => write!(f, "corrupt model bytes: {reason}"),
        }
    }
}

/// Writes the range `min..max` as a user writes it: "in [a, b)", "at least a",
/// "less than b", "finite" (no bound at either end; the value was NaN or infinite).
fn write_range(f: &mut fmt::Formatter<'_>, min: Bound<f64>, max: Bound<f64>) -> fmt::Result {
    match (min, max) {
        (Bound::Unbounded, Bound::Unbounded) => write!(f, "finite"),
        (Bound::Included(low), Bound::Unbounded) => write!(f, "at least {low}"),
        (Bound::Excluded(low), Bound::Unbounded) => write!(f, "greater than {low}"),
        (Bound::Unbounded, Bound::Included(high)) => write!(f, "at most {high}"),
        (Bound::Unbounded, Bound::Excluded(high)) => write!(f, "less than {high}"),
        (Bound::Included(low), Bound::Included(high)) => write!(f, "in [{low}, {high}]"),
        (Bound::Included(low), Bound::Excluded(high)) => write!(f, "in [{low}, {high})"),
        (Bound::Excluded(low), Bound::Included(high)) => write!(f, "in ({low}, {high}]"),
        (Bound::Excluded(low), Bound::Excluded(high)) => write!(f, "in ({low}, {high})"),
    }
}

impl core::error::Error for PcError {}

/// Returns `Ok(())` when `given == expected`, else a [`PcError::LengthMismatch`].
pub(crate) fn check_len(what: &'static str, expected: usize, given: usize) -> Result<(), PcError> {
    if expected == given {
        Ok(())
    } else {
        Err(PcError::LengthMismatch {
            what,
            expected,
            given,
        })
    }
}

/// Returns an error naming the first non-finite element of `values`.
pub(crate) fn check_finite<T: crate::Scalar>(
    what: &'static str,
    values: &[T],
) -> Result<(), PcError> {
    match crate::scalar::first_non_finite(values) {
        None => Ok(()),
        Some(index) => Err(PcError::NonFinite { what, index }),
    }
}
