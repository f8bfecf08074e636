//! The error type of pcnet-std: pcnet-core's [`PcError`], file-system errors with the path, and
//! malformed files or model bytes with a message that says where and what.

use pcnet_core::PcError;
use std::{fmt, path::PathBuf};

/// Everything that can go wrong in pcnet-std.
///
/// Convention for the error chain (one of the two the Rust API guidelines allow): the
/// message printed with `{}` is complete on its own, the inner error's text included
/// (`"model.bin: No such file or directory (os error 2)"`), so
/// [`source`](std::error::Error::source) returns `None` and a reporter that walks the chain
/// never prints the same text twice. The inner error stays reachable by matching
/// [`Error::Pc`] or [`Error::Io`]. [`crate::train::Stopped`] follows the same convention.
///
/// # Example
/// ```
/// use pcnet_std::{data::read_idx, Error};
/// let err = read_idx(&b"not an idx file"[..], "bytes").unwrap_err();
/// assert!(matches!(err, Error::Format { .. }));
/// assert!(err.to_string().contains("bytes"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An error of the pcnet-core engine (shapes, non-finite values, hyperparameters, ...).
    Pc(PcError),
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A layer index outside `1..=depth` (layers are numbered from 1, as in the paper and
    /// in every [`PcError`]).
    NoSuchLayer {
        /// The index given.
        layer: usize,
        /// The network's number of layers.
        depth: usize,
    },
    /// The layer exists but has no op with a weight and a bias (linear or convolution).
    NoWeight {
        /// The layer (1-based).
        layer: usize,
    },
    /// A weight matrix of the wrong shape for its layer.
    WeightShape {
        /// The layer (1-based).
        layer: usize,
        /// The layer's weight shape, `(out, in)` (`in * kh * kw` for a convolution).
        expected: (usize, usize),
        /// The shape given.
        given: (usize, usize),
    },
    /// A data file or model's bytes are malformed.
    Format {
        /// Which input (a path or a name such as `digits.csv.gz`).
        input: String,
        /// What is wrong, and where.
        message: String,
    },
    /// `PC_ISA` (or a name parsed as a [`crate::fast::Isa`]) names no kernel family.
    UnknownIsa {
        /// The value given.
        value: String,
    },
    /// A kernel family this processor (or this build) cannot run was asked for.
    UnavailableIsa {
        /// The family asked for.
        isa: crate::fast::Isa,
        /// The families this processor runs.
        available: &'static [crate::fast::Isa],
    },
}

impl Error {
    /// A [`Error::Format`] for `input` with `message`.
    pub fn format(input: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Format {
            input: input.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pc(error) => write!(f, "{error}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::NoSuchLayer { layer, depth: 0 } => {
                write!(f, "there is no layer {layer}: the network has no layers")
            }
            Error::NoSuchLayer { layer, depth: 1 } => write!(
                f,
                "there is no layer {layer}: this network's only layer is layer 1"
            ),
            Error::NoSuchLayer { layer, depth } => write!(
                f,
                "there is no layer {layer}: this network's layers are numbered 1 to {depth}"
            ),
            Error::NoWeight { layer } => write!(
                f,
                "layer {layer} has no linear or convolution op, so no weight or bias"
            ),
            Error::WeightShape {
                layer,
                expected: (rows, columns),
                given: (given_rows, given_columns),
            } => write!(
                f,
                "layer {layer}'s weight is {rows} x {columns} (out x in), given {given_rows} x {given_columns}"
            ),
            Error::Format { input, message } => write!(f, "{input}: {message}"),
            Error::UnknownIsa { value } => write!(
                f,
                "{value:?} is not a kernel family (PC_ISA takes portable, avx2 or avx512)"
            ),
            Error::UnavailableIsa { isa, available } => {
                write!(
                    f,
                    "the {isa} kernels do not run here: this processor or this build lacks \
                     them (available:"
                )?;
                for (index, family) in available.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(f, "{separator}{family}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// `source()` is `None`: the message already includes the inner error's text (see
/// [`Error`]).
impl std::error::Error for Error {}

impl From<PcError> for Error {
    fn from(error: PcError) -> Self {
        Error::Pc(error)
    }
}
