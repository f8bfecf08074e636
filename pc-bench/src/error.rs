//! The error type of the program's commands.
//!
//! Each variant's message is complete on its own (it names what was being done and
//! includes the inner error's text), so `source()` is `None` and nothing prints twice:
//! the convention of `pcnet_std::Error`, here written with `thiserror` instead of a
//! hand-written `Display`. The binary prints the message and picks the exit status.
//!
//! ```
//! use pcnet_bench::Error;
//! let error = Error::Pc { context: "fig2".into(), error: pcnet_core::PcError::EmptyBatch };
//! assert!(error.to_string().starts_with("fig2: "));
//! ```

use pcnet_core::PcError;
use std::path::PathBuf;

/// What can stop a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// pcnet-core refused or failed a computation.
    #[error("{context}: {error}")]
    Pc {
        /// What was being done (`"fig2"`, `"speed"`).
        context: String,
        /// The engine's error.
        error: PcError,
    },
    /// pcnet-std refused or failed (data, a network).
    #[error("{context}: {error}")]
    Std {
        /// What was being done.
        context: String,
        /// The library's error.
        error: pcnet_std::Error,
    },
    /// A training run stopped early.
    #[error("{context}: {error}")]
    Training {
        /// Which run.
        context: String,
        /// Where and why it stopped (boxed: it carries the history so far).
        error: Box<pcnet_std::train::Stopped>,
    },
    /// Reading or writing a file or directory failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// Writing a CSV file failed.
    #[error("{}: {error}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV writer said.
        error: csv::Error,
    },
    /// Drawing a figure failed.
    #[error("figure {stem}: {message}")]
    Plot {
        /// The figure's file stem.
        stem: String,
        /// What the plotting library said.
        message: String,
    },
    /// A report template and the values given for it do not match (a bug of this crate,
    /// reported rather than printed half-filled).
    #[error("report template {template}: {message}")]
    Template {
        /// The template's name.
        template: &'static str,
        /// The placeholder that is missing or unused.
        message: String,
    },
    /// The inputs do not fit the command (e.g. `--model paper-mnist-cnn` on non-square
    /// images).
    #[error("{0}")]
    Usage(String),
    /// The depth study (`pc-bench depth`) failed: a network it builds or a relaxation it
    /// runs was refused (the message names the depth and the schedule).
    #[error("{0}")]
    Depth(String),
}

impl Error {
    /// An [`Error::Pc`] in `context`.
    pub fn pc(context: impl Into<String>) -> impl FnOnce(PcError) -> Error {
        let context = context.into();
        move |error| Error::Pc { context, error }
    }

    /// An [`Error::Std`] in `context`.
    pub fn std(context: impl Into<String>) -> impl FnOnce(pcnet_std::Error) -> Error {
        let context = context.into();
        move |error| Error::Std { context, error }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }
}
