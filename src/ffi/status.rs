//! Status codes, the mapping from [`Error`], the thread-local last error message and the
//! library version.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use crate::error::Error;

/// What a `qlinear_*` call did. `QLINEAR_OK` is 0; every other value is a failure whose
/// details `qlinear_last_error_message()` gives.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum qlinear_status {
    /// Success.
    QLINEAR_OK = 0,
    /// A required pointer (handle, buffer, out-pointer) was NULL.
    QLINEAR_ERR_NULL_ARGUMENT = 1,
    /// An argument is out of range or inconsistent: zero or mismatched lengths, shape
    /// mismatch, size overflow, unsupported bits or group size, NaN/Inf values, a buffer
    /// too small for a copy-out.
    QLINEAR_ERR_INVALID_ARGUMENT = 2,
    /// Valid, but not supported here (e.g. an ISA this CPU lacks).
    QLINEAR_ERR_UNSUPPORTED = 3,
    /// An allocation failed (the global heap or the host allocator returned NULL).
    QLINEAR_ERR_OUT_OF_MEMORY = 4,
    /// An I/O operation failed.
    QLINEAR_ERR_IO = 5,
    /// Data from outside the library is inconsistent.
    QLINEAR_ERR_CORRUPT = 6,
    /// A bug inside the library (a caught panic, a broken host job system contract).
    QLINEAR_ERR_INTERNAL = 7,
}

/// A failure on its way to the C caller: a status and a message.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: qlinear_status,
    pub message: String,
}

impl FfiError {
    pub fn new(status: qlinear_status, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Self {
        FfiError::new(
            qlinear_status::QLINEAR_ERR_NULL_ARGUMENT,
            format!("{what} is NULL"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(qlinear_status::QLINEAR_ERR_INVALID_ARGUMENT, message)
    }
}

/// The status each core error maps to (exhaustive on purpose: a new variant must be mapped).
pub(crate) fn status_of(e: &Error) -> qlinear_status {
    use qlinear_status::*;
    match e {
        Error::ShapeMismatch { .. }
        | Error::InvalidArgument(_)
        | Error::NonFinite { .. }
        | Error::Overflow(_) => QLINEAR_ERR_INVALID_ARGUMENT,
        Error::Unsupported(_) => QLINEAR_ERR_UNSUPPORTED,
        Error::OutOfMemory { .. } => QLINEAR_ERR_OUT_OF_MEMORY,
        Error::Corrupt(_) => QLINEAR_ERR_CORRUPT,
        Error::Internal(_) => QLINEAR_ERR_INTERNAL,
        Error::Io(_) => QLINEAR_ERR_IO,
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        FfiError::new(status_of(&e), e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    // Interior NULs (from a caller's string echoed back) would truncate the C string.
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // try_with: during thread teardown the slot may be gone; then the message is dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = c);
}

/// The message of the last failed `qlinear_*` call on this thread, NUL-terminated; `""`
/// when none failed yet. Never NULL.
///
/// The pointer stays valid until the next failing call on the same thread. Successful calls
/// leave it unchanged.
///
/// Thread safety: any thread; each thread sees its own message.
#[no_mangle]
pub extern "C" fn qlinear_last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// The library version, `"MAJOR.MINOR.PATCH"`, as a static NUL-terminated string (never
/// freed). Matches the `QLINEAR_VERSION_*` macros of the header the program was built with
/// when the library and header agree.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn qlinear_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
