//! `qlinear_linear_*`: the f32 dense layer (f32, f16 or bf16 weights), the starting point
//! for quantization and the baseline it is measured against.

use half::slice::HalfBitsSliceExt;
use half::{bf16, f16};

use super::handle::{publish, qlinear_device, qlinear_linear, release};
use super::macros::{deref, expect_len, ffi_boundary, mul, opt_slice, out_ptr, slice, slice_mut};
use super::status::{qlinear_status, FfiError};
use crate::backend::Cpu;
use crate::{CpuDevice, Linear, Tensor};

/// Makes a weight or bias tensor from a caller's buffer of element type `T`.
type MakeTensor<T> = fn(&[T], &[usize], &CpuDevice) -> crate::Result<Tensor<Cpu>>;

/// Shared body of the three create functions.
///
/// # Safety
/// Pointers follow the create functions' contracts.
#[allow(clippy::too_many_arguments)]
unsafe fn create<T>(
    device: *const qlinear_device,
    weights: *const T,
    weights_len: usize,
    out_features: usize,
    in_features: usize,
    bias: *const T,
    bias_len: usize,
    out: *mut *mut qlinear_linear,
    make: MakeTensor<T>,
) -> Result<(), FfiError> {
    let out = out_ptr(out, "out")?;
    // SAFETY: per the contract.
    let dev = unsafe { deref(device, "device") }?;
    // SAFETY: per the contract: `weights_len` readable elements.
    let w = unsafe { slice(weights, weights_len, "weights") }?;
    // SAFETY: per the contract: NULL or `bias_len` readable elements.
    let b = unsafe { opt_slice(bias, bias_len, "bias") }?;
    if out_features == 0 || in_features == 0 {
        return Err(FfiError::invalid(format!(
            "sizes must be non-zero, got out_features={out_features}, in_features={in_features}"
        )));
    }
    expect_len(
        weights_len,
        mul(out_features, in_features, "weights")?,
        "weights",
    )?;
    if let Some(b) = b {
        expect_len(b.len(), out_features, "bias")?;
    }
    let weight = make(w, &[out_features, in_features], &dev.inner)?;
    let bias = b
        .map(|b| make(b, &[out_features], &dev.inner))
        .transpose()?;
    let inner = Linear::from_tensors(weight, bias)?;
    // SAFETY: `out` checked non-NULL.
    unsafe { publish(qlinear_linear { inner }, out) }
}

fn f32_tensor(v: &[f32], shape: &[usize], d: &CpuDevice) -> crate::Result<Tensor<Cpu>> {
    Tensor::from_f32(v.to_vec(), shape, d)
}

fn f16_tensor(v: &[u16], shape: &[usize], d: &CpuDevice) -> crate::Result<Tensor<Cpu>> {
    Tensor::from_f16(v.reinterpret_cast::<f16>().to_vec(), shape, d)
}

fn bf16_tensor(v: &[u16], shape: &[usize], d: &CpuDevice) -> crate::Result<Tensor<Cpu>> {
    Tensor::from_bf16(v.reinterpret_cast::<bf16>().to_vec(), shape, d)
}

/// Creates a layer from f32 `weights` `[out_features][in_features]` (row-major,
/// `weights_len` = out·in) and an optional `bias` of `out_features` values (NULL = none; its
/// length is then ignored). Values are copied. NaN/Inf fails with INVALID_ARGUMENT.
///
/// Thread safety: any thread; the device may be in use by other threads.
///
/// # Safety
/// Pointers are NULL or valid for the stated lengths; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_create(
    device: *const qlinear_device,
    weights: *const f32,
    weights_len: usize,
    out_features: usize,
    in_features: usize,
    bias: *const f32,
    bias_len: usize,
    out: *mut *mut qlinear_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_linear_create", {
        // SAFETY: forwarded contract.
        unsafe {
            create(
                device,
                weights,
                weights_len,
                out_features,
                in_features,
                bias,
                bias_len,
                out,
                f32_tensor,
            )
        }
    })
}

/// As `qlinear_linear_create`, with weights and bias as IEEE f16 bit patterns; the layer
/// stores them as f16.
///
/// Thread safety: any thread.
///
/// # Safety
/// As `qlinear_linear_create`.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_create_f16(
    device: *const qlinear_device,
    weights: *const u16,
    weights_len: usize,
    out_features: usize,
    in_features: usize,
    bias: *const u16,
    bias_len: usize,
    out: *mut *mut qlinear_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_linear_create_f16", {
        // SAFETY: forwarded contract.
        unsafe {
            create(
                device,
                weights,
                weights_len,
                out_features,
                in_features,
                bias,
                bias_len,
                out,
                f16_tensor,
            )
        }
    })
}

/// As `qlinear_linear_create`, with weights and bias as bfloat16 bit patterns; the layer
/// stores them as bf16.
///
/// Thread safety: any thread.
///
/// # Safety
/// As `qlinear_linear_create`.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_create_bf16(
    device: *const qlinear_device,
    weights: *const u16,
    weights_len: usize,
    out_features: usize,
    in_features: usize,
    bias: *const u16,
    bias_len: usize,
    out: *mut *mut qlinear_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_linear_create_bf16", {
        // SAFETY: forwarded contract.
        unsafe {
            create(
                device,
                weights,
                weights_len,
                out_features,
                in_features,
                bias,
                bias_len,
                out,
                bf16_tensor,
            )
        }
    })
}

/// Checks a forward call's buffers and returns them as slices: `x` must hold exactly
/// `rows·in_features` values and `y` `rows·out_features` (rows ≥ 1; products that overflow
/// `size_t` fail with INVALID_ARGUMENT before any buffer is touched).
///
/// # Safety
/// Pointers are NULL or valid for their stated lengths; `y` is not aliased.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn forward_buffers<'a, X, Y>(
    x: *const X,
    rows: usize,
    x_len: usize,
    y: *mut Y,
    y_len: usize,
    in_features: usize,
    out_features: usize,
) -> Result<(&'a [X], &'a mut [Y]), FfiError> {
    if x.is_null() {
        return Err(FfiError::null("x"));
    }
    if y.is_null() {
        return Err(FfiError::null("y"));
    }
    if rows == 0 {
        return Err(FfiError::invalid("rows is 0"));
    }
    expect_len(x_len, mul(rows, in_features, "rows × in_features")?, "x")?;
    expect_len(y_len, mul(rows, out_features, "rows × out_features")?, "y")?;
    // SAFETY: non-NULL; lengths are the caller's, now known to match the shape.
    let xs = unsafe { slice(x, x_len, "x") }?;
    // SAFETY: as above, and `y` is exclusively ours for the call.
    let ys = unsafe { slice_mut(y, y_len, "y") }?;
    Ok((xs, ys))
}

/// `y = x·Wᵀ + b` for `rows` rows: `x` is `[rows][in_features]` (`x_len` = rows·in), `y` is
/// `[rows][out_features]` (`y_len` = rows·out). `y` is written only on success.
///
/// Thread safety: many threads may call forward on the same layer at once.
///
/// # Safety
/// `layer` is NULL or live; `x`/`y` are NULL or valid for `x_len`/`y_len` floats and do not
/// overlap.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_forward(
    layer: *const qlinear_linear,
    x: *const f32,
    rows: usize,
    x_len: usize,
    y: *mut f32,
    y_len: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_linear_forward", {
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
        l.inner.forward_f32(xs, rows, ys)?;
        Ok(())
    })
}

/// Writes the layer's `out_features` and `in_features`.
///
/// Thread safety: any thread, concurrently with forward.
///
/// # Safety
/// `layer` is NULL or live; the out-pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_shape(
    layer: *const qlinear_linear,
    out_features: *mut usize,
    in_features: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_linear_shape", {
        // SAFETY: forwarded contract.
        let l = unsafe { deref(layer, "layer") }?;
        let o = out_ptr(out_features, "out_features")?;
        let i = out_ptr(in_features, "in_features")?;
        // SAFETY: both checked non-NULL, writable per the contract.
        unsafe {
            o.write(l.inner.out_features);
            i.write(l.inner.in_features);
        }
        Ok(())
    })
}

/// Frees a layer; NULL is a no-op. Quantized layers made from it stay valid.
///
/// Thread safety: needs exclusive access (no forward may be running on it).
///
/// # Safety
/// `layer` is NULL or a live layer, freed once.
#[no_mangle]
pub unsafe extern "C" fn qlinear_linear_free(layer: *mut qlinear_linear) {
    // SAFETY: forwarded contract.
    unsafe { release(layer) }
}
