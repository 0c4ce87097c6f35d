//! Describing quantized layers: shape and format queries, and copy-out of the documented
//! logical layout.

use super::Layer;
use crate::ffi::config::{activation_to, format_to, granularity_to, scale_dtype_to};
use crate::ffi::handle::qlinear_quantized_linear;
use crate::ffi::macros::{deref, ffi_boundary, out_ptr, slice_mut};
use crate::ffi::status::{qlinear_status, FfiError};

/// Writes `get(layer)` to `out`.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
unsafe fn query<T>(
    layer: *const qlinear_quantized_linear,
    out: *mut T,
    get: impl FnOnce(&Layer) -> T,
) -> Result<(), FfiError> {
    // SAFETY: forwarded contract.
    let l = unsafe { deref(layer, "layer") }?;
    let out = out_ptr(out, "out")?;
    // SAFETY: checked non-NULL, writable per the contract.
    unsafe { out.write(get(&l.inner)) };
    Ok(())
}

// Queries are written out one by one (not by a macro) because cbindgen does not expand
// macros.

/// Input features (columns of W).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_in_features(
    layer: *const qlinear_quantized_linear,
    out: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_in_features", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| l.in_features) }
    })
}

/// Output features (rows of W).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_out_features(
    layer: *const qlinear_quantized_linear,
    out: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_out_features", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| l.out_features) }
    })
}

/// Code width: 4 or 8.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_bits(
    layer: *const qlinear_quantized_linear,
    out: *mut u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_bits", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| u32::from(l.bits())) }
    })
}

/// The `qlinear_weight_format` value.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_format(
    layer: *const qlinear_quantized_linear,
    out: *mut u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_format", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| format_to(l.format())) }
    })
}

/// The `qlinear_granularity` value.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_granularity(
    layer: *const qlinear_quantized_linear,
    out: *mut u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_granularity", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| granularity_to(l.granularity()).0) }
    })
}

/// Inputs per group for group-wise scales; 0 for per-channel and per-tensor (as
/// `qlinear_quant_config_set_group_size` takes it).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_group_size(
    layer: *const qlinear_quantized_linear,
    out: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_group_size", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| granularity_to(l.granularity()).1) }
    })
}

/// Whether the weights are symmetric (no zero points).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_symmetric(
    layer: *const qlinear_quantized_linear,
    out: *mut bool,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_symmetric", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| l.is_symmetric()) }
    })
}

/// The `qlinear_scale_dtype` value.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_scale_dtype(
    layer: *const qlinear_quantized_linear,
    out: *mut u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_scale_dtype", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| scale_dtype_to(l.scale_dtype())) }
    })
}

/// The `qlinear_activation_mode` value.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_activation_mode(
    layer: *const qlinear_quantized_linear,
    out: *mut u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_activation_mode", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| activation_to(l.activation_mode())) }
    })
}

/// Bytes of the quantized weight: codes, scales at their storage width, zero points.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_weight_bytes(
    layer: *const qlinear_quantized_linear,
    out: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_weight_bytes", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| l.weight_bytes()) }
    })
}

/// Bytes saved versus f32 weights: `4·in·out − weight_bytes` (0 if negative).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_memory_savings_bytes(
    layer: *const qlinear_quantized_linear,
    out: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_memory_savings_bytes", {
        // SAFETY: forwarded contract.
        unsafe { query(layer, out, |l| l.memory_savings_bytes()) }
    })
}

/// Lengths of the logical layout: `codes_len` bytes, `scales_len` f32 scales and
/// `zero_points_len` int8 zero points (0 when symmetric), i.e. the buffer sizes the copy
/// functions need. The first call rebuilds the logical form from the kernel layout and keeps
/// it with the layer.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; the out-pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_layout(
    layer: *const qlinear_quantized_linear,
    codes_len: *mut usize,
    scales_len: *mut usize,
    zero_points_len: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_layout", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        let (c, s, z) = (
            out_ptr(codes_len, "codes_len")?,
            out_ptr(scales_len, "scales_len")?,
            out_ptr(zero_points_len, "zero_points_len")?,
        );
        let q = l.inner.weight_quantized();
        // SAFETY: all checked non-NULL, writable per the contract.
        unsafe {
            c.write(q.data().len());
            s.write(q.scales().len());
            z.write(q.zero_points().len());
        }
        Ok(())
    })
}

/// Copies `src` into the caller's buffer `(dst, dst_len)`; a buffer shorter than `src` fails
/// with INVALID_ARGUMENT and is left untouched. An empty `src` accepts any buffer, NULL too.
///
/// # Safety
/// `dst` is NULL or valid for `dst_len` writes.
unsafe fn copy_out<T: Copy>(
    src: &[T],
    dst: *mut T,
    dst_len: usize,
    what: &str,
) -> Result<(), FfiError> {
    if src.is_empty() {
        return Ok(());
    }
    if dst_len < src.len() {
        if dst.is_null() {
            return Err(FfiError::null(what));
        }
        return Err(FfiError::invalid(format!(
            "{what}: buffer of {dst_len} elements, {} needed",
            src.len()
        )));
    }
    // SAFETY: forwarded contract.
    let d = unsafe { slice_mut(dst, dst_len, what) }?;
    d[..src.len()].copy_from_slice(src);
    Ok(())
}

/// Copies the codes (layout as in `qlinear_quantized_linear_from_parts`) into `dst`, which
/// must hold at least `codes_len` bytes (see `qlinear_quantized_linear_layout`).
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `dst` is NULL or valid for `dst_len` writes.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_copy_codes(
    layer: *const qlinear_quantized_linear,
    dst: *mut u8,
    dst_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_copy_codes", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(l.inner.weight_quantized().data(), dst, dst_len, "dst") }
    })
}

/// Copies the scales (f32, row-major `[out][groups]`) into `dst`, which must hold at least
/// `scales_len` values.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `dst` is NULL or valid for `dst_len` writes.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_copy_scales(
    layer: *const qlinear_quantized_linear,
    dst: *mut f32,
    dst_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_copy_scales", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(l.inner.weight_quantized().scales(), dst, dst_len, "dst") }
    })
}

/// Copies the zero points (int8, one per scale) into `dst`, which must hold at least
/// `zero_points_len` values. Symmetric layers have none: any buffer (NULL too) succeeds and
/// nothing is written.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `dst` is NULL or valid for `dst_len` writes.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_copy_zero_points(
    layer: *const qlinear_quantized_linear,
    dst: *mut i8,
    dst_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_copy_zero_points", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        // SAFETY: forwarded contract.
        unsafe {
            copy_out(
                l.inner.weight_quantized().zero_points(),
                dst,
                dst_len,
                "dst",
            )
        }
    })
}

/// Copies the 16 levels of a `QLINEAR_FORMAT_CB4` layer into `dst` (`dst_len` ≥ 16); a layer
/// with integer codes fails with INVALID_ARGUMENT.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; `dst` is NULL or valid for `dst_len` writes.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_copy_codebook(
    layer: *const qlinear_quantized_linear,
    dst: *mut i8,
    dst_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_copy_codebook", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        let levels = *l
            .inner
            .weight_quantized()
            .codebook()
            .ok_or_else(|| FfiError::invalid("the layer has integer codes, not a codebook"))?;
        // SAFETY: forwarded contract.
        unsafe { copy_out(&levels, dst, dst_len, "codebook") }
    })
}
