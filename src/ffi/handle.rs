//! The opaque handles and their ownership rules.
//!
//! A handle is a `Box` leaked to C by a create function and reclaimed by its `_free`
//! function; `_free(NULL)` is a no-op. Handles own Rust values only: the library keeps no
//! caller pointer after a call returns (host callbacks and their contexts excepted, see the
//! device functions).

use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::status::FfiError;
use crate::backend::Cpu;
use crate::{CpuDevice, Linear, QuantConfig, QuantizedLinear, QuantizedModel};

/// A CPU device: ISA path, threads (owned pool, inline or the host's job system) and
/// allocator. Layers keep their own reference to it, so it may be freed before them.
pub struct qlinear_device {
    pub(crate) inner: CpuDevice,
}

/// A quantization recipe: bits, scale granularity, symmetric or not, scale storage type,
/// activation mode. Only read by the calls it is passed to.
pub struct qlinear_quant_config {
    pub(crate) inner: QuantConfig,
}

/// An f32 linear layer `y = x·Wᵀ + b`.
pub struct qlinear_linear {
    pub(crate) inner: Linear<Cpu>,
}

/// A linear layer with INT8 or INT4 weights. Held through an `Arc` so a handle taken from a
/// model shares the model's packed weights and may outlive the model.
pub struct qlinear_quantized_linear {
    pub(crate) inner: Arc<QuantizedLinear<Cpu>>,
}

/// Named quantized layers loaded from a qlinear file.
pub struct qlinear_model {
    pub(crate) inner: QuantizedModel,
    /// The layer names as C strings, in file order (names never contain NUL).
    pub(crate) names: Vec<CString>,
}

/// Boxes `value` and writes the handle to `out` (checked non-NULL by the caller).
///
/// # Safety
/// `out` is a valid, writable pointer.
pub(crate) unsafe fn publish<T>(value: T, out: *mut *mut T) -> Result<(), FfiError> {
    let p = Box::into_raw(Box::new(value));
    // SAFETY: `out` is valid for writes by the caller's contract.
    unsafe { out.write(p) };
    Ok(())
}

/// Drops a handle made by [`publish`]; NULL is a no-op. A panic in a destructor is
/// swallowed (there is no status to report it through).
///
/// # Safety
/// `p` is NULL or a handle from [`publish`] not freed yet and not in use by another thread.
pub(crate) unsafe fn release<T>(p: *mut T) {
    if p.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `p` came from Box::into_raw and is freed exactly once (caller's contract).
        drop(unsafe { Box::from_raw(p) })
    }));
}
