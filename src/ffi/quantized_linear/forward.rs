//! Running quantized layers: forward in f32, f16 or bf16 on caller buffers.

use std::cell::RefCell;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};

use super::Layer;
use crate::ffi::handle::qlinear_quantized_linear;
use crate::ffi::linear::forward_buffers;
use crate::ffi::macros::{deref, ffi_boundary};
use crate::ffi::status::{qlinear_status, FfiError};

/// Shared body of the three forwards: checks the buffers, then runs `body`.
///
/// # Safety
/// As the forward functions.
unsafe fn forward_with<X, Y>(
    layer: *const qlinear_quantized_linear,
    x: *const X,
    rows: usize,
    x_len: usize,
    y: *mut Y,
    y_len: usize,
    body: impl FnOnce(&Layer, &[X], &mut [Y]) -> Result<(), FfiError>,
) -> Result<(), FfiError> {
    // SAFETY: forwarded contract.
    let l = unsafe { deref(layer, "layer") }?;
    // SAFETY: forwarded contract.
    let (xs, ys) = unsafe {
        forward_buffers(
            x,
            rows,
            x_len,
            y,
            y_len,
            l.inner.in_features,
            l.inner.out_features,
        )
    }?;
    body(&l.inner, xs, ys)
}

/// `y = x·dequant(W)ᵀ + b` for `rows` rows: `x` is `[rows][in_features]` (`x_len` =
/// rows·in), `y` is `[rows][out_features]` (`y_len` = rows·out). `y` is written only on
/// success (one exception: a host job system that breaks its contract yields
/// QLINEAR_ERR_INTERNAL with `y` partly written). Results are bit-identical for every thread
/// count and executor. No allocation per call once a thread has run a call of that size.
///
/// Thread safety: many threads may call forward on the same layer at once.
///
/// # Safety
/// `layer` is NULL or live; `x`/`y` are NULL or valid for `x_len`/`y_len` floats and do not
/// overlap.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_forward(
    layer: *const qlinear_quantized_linear,
    x: *const f32,
    rows: usize,
    x_len: usize,
    y: *mut f32,
    y_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_forward", {
        // SAFETY: forwarded contract.
        unsafe {
            forward_with(layer, x, rows, x_len, y, y_len, |l, xs, ys| {
                Ok(l.forward_f32(xs, rows, ys)?)
            })
        }
    })
}

/// f32 staging buffers for the f16/bf16 forwards, reused across calls on a thread.
#[derive(Default)]
struct Staging {
    x: Vec<f32>,
    y: Vec<f32>,
}

thread_local! {
    static STAGING: RefCell<Staging> = RefCell::new(Staging::default());
}

/// Converts `x` to f32, runs the f32 forward, converts the result into `y` (only on
/// success). Conversion is all this does; the numerics are the core's.
fn forward_half(
    l: &Layer,
    rows: usize,
    xs: &[u16],
    ys: &mut [u16],
    to_f32: fn(&[u16], &mut [f32]),
    from_f32: fn(&[f32], &mut [u16]),
) -> Result<(), FfiError> {
    let mut run = |s: &mut Staging| -> Result<(), FfiError> {
        s.x.clear();
        s.x.resize(xs.len(), 0.0);
        s.y.clear();
        s.y.resize(ys.len(), 0.0);
        to_f32(xs, &mut s.x);
        l.forward_f32(&s.x, rows, &mut s.y)?;
        from_f32(&s.y, ys);
        Ok(())
    };
    STAGING.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => run(&mut s),
        // Re-entered on this thread (a host job system calling back in): use fresh buffers.
        Err(_) => run(&mut Staging::default()),
    })
}

/// As `qlinear_quantized_linear_forward`, with `x` and `y` as IEEE f16 bit patterns
/// (computed in f32, rounded to nearest even on output).
///
/// Thread safety: many threads may call forward on the same layer at once.
///
/// # Safety
/// As `qlinear_quantized_linear_forward`, with `uint16_t` elements.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_forward_f16(
    layer: *const qlinear_quantized_linear,
    x: *const u16,
    rows: usize,
    x_len: usize,
    y: *mut u16,
    y_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_forward_f16", {
        // SAFETY: forwarded contract.
        unsafe {
            forward_with(layer, x, rows, x_len, y, y_len, |l, xs, ys| {
                forward_half(
                    l,
                    rows,
                    xs,
                    ys,
                    |s, d| s.reinterpret_cast::<f16>().convert_to_f32_slice(d),
                    |s, d| d.reinterpret_cast_mut::<f16>().convert_from_f32_slice(s),
                )
            })
        }
    })
}

/// As `qlinear_quantized_linear_forward`, with `x` and `y` as bfloat16 bit patterns
/// (computed in f32, rounded to nearest even on output).
///
/// Thread safety: many threads may call forward on the same layer at once.
///
/// # Safety
/// As `qlinear_quantized_linear_forward`, with `uint16_t` elements.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_forward_bf16(
    layer: *const qlinear_quantized_linear,
    x: *const u16,
    rows: usize,
    x_len: usize,
    y: *mut u16,
    y_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_forward_bf16", {
        // SAFETY: forwarded contract.
        unsafe {
            forward_with(layer, x, rows, x_len, y, y_len, |l, xs, ys| {
                forward_half(
                    l,
                    rows,
                    xs,
                    ys,
                    |s, d| s.reinterpret_cast::<bf16>().convert_to_f32_slice(d),
                    |s, d| d.reinterpret_cast_mut::<bf16>().convert_from_f32_slice(s),
                )
            })
        }
    })
}
