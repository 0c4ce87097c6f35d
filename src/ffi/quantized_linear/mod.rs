//! `qlinear_quantized_linear_*`: quantized layers. One file per job: making them
//! (`build`: quantizing a layer or raw weights, or taking raw quantized data), running them
//! (`forward`: f32, f16, bf16) and describing them (`query`: format queries and copy-out of
//! the documented logical layout). Freeing is here.

use std::sync::Arc;

use super::handle::{publish, qlinear_quantized_linear, release};
use super::status::FfiError;
use crate::backend::Cpu;
use crate::QuantizedLinear;

pub mod build;
pub mod forward;
pub mod query;

pub use build::*;
pub use forward::*;
pub use query::*;

type Layer = QuantizedLinear<Cpu>;

/// Publishes a layer through `out` (checked non-NULL by the caller).
pub(crate) fn finish(
    inner: Layer,
    out: *mut *mut qlinear_quantized_linear,
) -> Result<(), FfiError> {
    // SAFETY: every caller checked `out` with `out_ptr` first; writable per its contract.
    unsafe {
        publish(
            qlinear_quantized_linear {
                inner: Arc::new(inner),
            },
            out,
        )
    }
}

/// Frees a quantized layer; NULL is a no-op.
///
/// Thread safety: needs exclusive access (no forward may be running on it).
///
/// # Safety
/// `layer` is NULL or a live layer, freed once.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_free(layer: *mut qlinear_quantized_linear) {
    // SAFETY: forwarded contract.
    unsafe { release(layer) }
}
