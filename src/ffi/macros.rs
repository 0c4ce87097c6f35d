//! The boundary every export goes through, and the checked pointer conversions exports use
//! before touching caller memory.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::status::{qlinear_status, set_last_error, FfiError};

/// Runs an export's body: catches panics (nothing unwinds into C), turns an error into its
/// status and records its message, prefixed with the function's name, as the thread's last
/// error. Successful calls leave the last error untouched.
pub(crate) fn boundary(
    name: &'static str,
    body: impl FnOnce() -> Result<(), FfiError>,
) -> qlinear_status {
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return qlinear_status::QLINEAR_OK,
        Ok(Err(e)) => (e.status, e.message),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (
                qlinear_status::QLINEAR_ERR_INTERNAL,
                format!("panic: {what}"),
            )
        }
    };
    set_last_error(&format!("{name}: {message}"));
    status
}

/// Wraps an export's body in [`boundary`], naming the export after the enclosing function.
macro_rules! ffi_boundary {
    ($name:literal, $body:block) => {
        $crate::ffi::macros::boundary($name, || -> Result<(), $crate::ffi::status::FfiError> {
            $body
        })
    };
}
pub(crate) use ffi_boundary;

/// `&*p`, or a NULL_ARGUMENT error naming `what`.
///
/// # Safety
/// `p` is NULL or points to a live `T` that outlives the call.
pub(crate) unsafe fn deref<'a, T>(p: *const T, what: &str) -> Result<&'a T, FfiError> {
    // SAFETY: non-NULL by the check; validity is the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// `&mut *p`, or a NULL_ARGUMENT error naming `what`.
///
/// # Safety
/// `p` is NULL or points to a live `T` nobody else uses during the call.
pub(crate) unsafe fn deref_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, FfiError> {
    // SAFETY: non-NULL by the check; exclusivity is the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::null(what))
}

/// Checks an out-pointer before any work is done, so a NULL one fails early.
pub(crate) fn out_ptr<T>(p: *mut T, what: &str) -> Result<*mut T, FfiError> {
    if p.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(p)
    }
}

fn check_len<T>(len: usize, what: &str) -> Result<(), FfiError> {
    if len == 0 {
        return Err(FfiError::invalid(format!("{what}: length is 0")));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(FfiError::invalid(format!(
            "{what}: length {len} is too large"
        )));
    }
    Ok(())
}

/// A caller's input buffer as a slice: NULL fails with NULL_ARGUMENT, a zero or absurd
/// length with INVALID_ARGUMENT.
///
/// # Safety
/// `p` is NULL or points to `len` readable, initialised `T`s alive for the call.
pub(crate) unsafe fn slice<'a, T>(
    p: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], FfiError> {
    if p.is_null() {
        return Err(FfiError::null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: non-NULL, length checked against isize::MAX; readability is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An optional input buffer: NULL means "none" (its length is then ignored).
///
/// # Safety
/// As [`slice`] when `p` is not NULL.
pub(crate) unsafe fn opt_slice<'a, T>(
    p: *const T,
    len: usize,
    what: &str,
) -> Result<Option<&'a [T]>, FfiError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { slice(p, len, what) }.map(Some)
    }
}

/// A caller's output buffer as a mutable slice (same checks as [`slice`]).
///
/// # Safety
/// `p` is NULL or points to `len` writable `T`s that nothing else accesses during the call.
pub(crate) unsafe fn slice_mut<'a, T>(
    p: *mut T,
    len: usize,
    what: &str,
) -> Result<&'a mut [T], FfiError> {
    if p.is_null() {
        return Err(FfiError::null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: as in `slice`, plus exclusivity from the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// `a * b`, or an INVALID_ARGUMENT error when it overflows `size_t`.
pub(crate) fn mul(a: usize, b: usize, what: &str) -> Result<usize, FfiError> {
    a.checked_mul(b)
        .ok_or_else(|| FfiError::invalid(format!("{what}: {a} × {b} overflows size_t")))
}

/// Checks that a caller's buffer length is exactly `want`.
pub(crate) fn expect_len(got: usize, want: usize, what: &str) -> Result<(), FfiError> {
    if got != want {
        return Err(FfiError::invalid(format!(
            "{what}: expected {want} elements, got {got}"
        )));
    }
    Ok(())
}
