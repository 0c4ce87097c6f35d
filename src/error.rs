//! The one error type of the library: every fallible call returns `Result<T, Error>`.

use thiserror::Error;

/// Everything that can go wrong in qlinear. Messages say what was expected and what was given.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A tensor had the wrong shape (or number of elements) for the operation.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    ShapeMismatch {
        op: &'static str,
        expected: String,
        got: String,
    },
    /// An argument is out of its allowed range (zero size, unsupported bits, bad group...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value that must be finite was NaN or infinite.
    #[error("non-finite value in {what}: element {index} is {value}")]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f32,
    },
    /// The operation is valid but not supported here (e.g. a forced ISA this CPU lacks).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A size computation overflowed `usize`.
    #[error("size overflow: {0}")]
    Overflow(String),
    /// An allocation failed.
    #[error("out of memory: could not allocate {bytes} bytes")]
    OutOfMemory { bytes: usize },
    /// Data read from outside (a buffer, a file) is inconsistent.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A bug or a broken contract inside the library (a caught panic, say).
    #[error("internal error: {0}")]
    Internal(String),
    /// An I/O operation failed.
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, expected: impl ToString, got: impl ToString) -> Self {
        Error::ShapeMismatch {
            op,
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

/// Multiplies sizes, reporting overflow as an error naming `what`.
pub(crate) fn checked_product(dims: &[usize], what: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Overflow(format!("{what}: product of {dims:?} exceeds usize")))
}

/// Returns the first non-finite value of `values`, as an error naming `what`.
pub(crate) fn check_finite(values: &[f32], what: &'static str) -> Result<()> {
    // Fast path: a branch-free scan over chunks vectorizes; locate the culprit only on failure.
    let all_finite = values
        .chunks(64)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()));
    if all_finite {
        return Ok(());
    }
    let index = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::NonFinite {
        what,
        index,
        value: values[index],
    })
}
