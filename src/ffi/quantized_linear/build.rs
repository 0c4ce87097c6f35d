//! Making quantized layers: from an f32 layer, from raw f32 weights, or from raw quantized
//! data in the documented logical layout (integer codes or a codebook).

use super::{finish, Layer};
use crate::backend::{Backend, Cpu};
use crate::ffi::config::{activation_from, granularity_from, scale_dtype_from};
use crate::ffi::handle::{
    qlinear_device, qlinear_linear, qlinear_quant_config, qlinear_quantized_linear,
};
use crate::ffi::macros::{deref, expect_len, ffi_boundary, mul, opt_slice, out_ptr, slice};
use crate::ffi::status::{qlinear_status, FfiError};
use crate::{QuantizedParts, QuantizedTensor, Tensor};

/// Quantizes `linear` with `config` (weights, bias and device are taken from the layer; the
/// activation mode from the config). The new layer is independent of `linear`.
///
/// Thread safety: any thread; `linear` may be running forward on other threads.
///
/// # Safety
/// Handles are NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_from_linear(
    linear: *const qlinear_linear,
    config: *const qlinear_quant_config,
    out: *mut *mut qlinear_quantized_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_from_linear", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract.
        let l = unsafe { deref(linear, "linear") }?;
        // SAFETY: forwarded contract.
        let c = unsafe { deref(config, "config") }?;
        finish(Layer::from_linear(&l.inner, &c.inner)?, out)
    })
}

/// Quantizes f32 `weights` `[out_features][in_features]` (`weights_len` = out·in) with
/// `config`, with an optional f32 `bias` of `out_features` values (NULL = none), without
/// building an f32 layer first. NaN/Inf fails with INVALID_ARGUMENT.
///
/// Thread safety: any thread.
///
/// # Safety
/// Pointers are NULL or valid for their stated lengths; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_quantize(
    device: *const qlinear_device,
    weights: *const f32,
    weights_len: usize,
    out_features: usize,
    in_features: usize,
    bias: *const f32,
    bias_len: usize,
    config: *const qlinear_quant_config,
    out: *mut *mut qlinear_quantized_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_quantize", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract (all four).
        let (dev, c, w, b) = unsafe {
            (
                deref(device, "device")?,
                deref(config, "config")?,
                slice(weights, weights_len, "weights")?,
                opt_slice(bias, bias_len, "bias")?,
            )
        };
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
        let bias = b
            .map(|b| Tensor::from_f32(b.to_vec(), &[b.len()], &dev.inner))
            .transpose()?;
        let q = Cpu::quantize(&dev.inner, w, out_features, in_features, &c.inner)?;
        let layer = Layer::try_new_with_mode(q, bias, dev.inner.clone(), c.inner.activations)?;
        finish(layer, out)
    })
}

/// Builds a layer from raw quantized data in the documented logical layout:
///
/// * `codes`: row-major, each row starting on a byte boundary. 8 bits: one `int8` per
///   weight (`in_features` bytes per row). 4 bits: two weights per byte (`ceil(in/2)` bytes
///   per row), weight `k` in byte `k/2`, the low nibble holding even `k`; nibbles are signed
///   two's complement in [-8, 7]; the unused high nibble of an odd row's last byte is 0.
/// * `scales`: f32, one per group, row-major `[out][groups per row]` (per-tensor: 1;
///   per-channel: 1 per row; group size g: `ceil(in/g)` per row, the last group may be
///   shorter). With `QLINEAR_SCALE_F16` every scale must be exactly representable in f16.
/// * `zero_points`: `int8`, one per scale, same indexing; NULL for symmetric.
/// * `bias`: `out_features` f32 values, or NULL.
///
/// A weight dequantizes as `scale·(q − zero)`. `granularity`, `scale_dtype` and
/// `activation_mode` are `qlinear_granularity`, `qlinear_scale_dtype` and
/// `qlinear_activation_mode` values; `group_size` is used only for groups. Data is copied.
/// `qlinear_quantized_layout_lengths` gives the lengths expected.
///
/// Thread safety: any thread.
///
/// # Safety
/// Pointers are NULL or valid for their stated lengths; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_from_parts(
    device: *const qlinear_device,
    out_features: usize,
    in_features: usize,
    bits: u32,
    granularity: u32,
    group_size: usize,
    scale_dtype: u32,
    codes: *const u8,
    codes_len: usize,
    scales: *const f32,
    scales_len: usize,
    zero_points: *const i8,
    zero_points_len: usize,
    bias: *const f32,
    bias_len: usize,
    activation_mode: u32,
    out: *mut *mut qlinear_quantized_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_from_parts", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract (all five).
        let (dev, codes, scales, zeros, b) = unsafe {
            (
                deref(device, "device")?,
                slice(codes, codes_len, "codes")?,
                slice(scales, scales_len, "scales")?,
                opt_slice(zero_points, zero_points_len, "zero_points")?,
                opt_slice(bias, bias_len, "bias")?,
            )
        };
        let bits = u8::try_from(bits)
            .map_err(|_| FfiError::invalid(format!("bits must be 4 or 8, got {bits}")))?;
        let parts = QuantizedParts {
            out_features,
            in_features,
            bits,
            granularity: granularity_from(granularity, group_size)?,
            scale_dtype: scale_dtype_from(scale_dtype)?,
            data: codes.to_vec(),
            scales: scales.to_vec(),
            zero_points: zeros.map(<[i8]>::to_vec).unwrap_or_default(),
            codebook: None,
        };
        let mode = activation_from(activation_mode)?;
        let q = QuantizedTensor::from_parts(parts)?;
        let bias = b
            .map(|b| Tensor::from_f32(b.to_vec(), &[b.len()], &dev.inner))
            .transpose()?;
        finish(
            Layer::try_new_with_mode(q, bias, dev.inner.clone(), mode)?,
            out,
        )
    })
}

/// Builds a `QLINEAR_FORMAT_CB4` layer from raw data: 4-bit `codes` laid out as in
/// `qlinear_quantized_linear_from_parts`, but each nibble an unsigned index 0..15 into
/// `levels` (`levels_len` = 16 strictly ascending `int8` values); `scales` as there;
/// no zero points. A weight dequantizes as `scale·levels[q]`. Data is copied.
///
/// Thread safety: any thread.
///
/// # Safety
/// Pointers are NULL or valid for their stated lengths; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_linear_from_codebook_parts(
    device: *const qlinear_device,
    out_features: usize,
    in_features: usize,
    granularity: u32,
    group_size: usize,
    scale_dtype: u32,
    codes: *const u8,
    codes_len: usize,
    scales: *const f32,
    scales_len: usize,
    levels: *const i8,
    levels_len: usize,
    bias: *const f32,
    bias_len: usize,
    activation_mode: u32,
    out: *mut *mut qlinear_quantized_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_linear_from_codebook_parts", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract (all five).
        let (dev, codes, scales, levels, b) = unsafe {
            (
                deref(device, "device")?,
                slice(codes, codes_len, "codes")?,
                slice(scales, scales_len, "scales")?,
                slice(levels, levels_len, "levels")?,
                opt_slice(bias, bias_len, "bias")?,
            )
        };
        let levels: [i8; 16] = levels.try_into().map_err(|_| {
            FfiError::invalid(format!("levels: expected 16 values, got {levels_len}"))
        })?;
        let parts = QuantizedParts {
            out_features,
            in_features,
            bits: 4,
            granularity: granularity_from(granularity, group_size)?,
            scale_dtype: scale_dtype_from(scale_dtype)?,
            data: codes.to_vec(),
            scales: scales.to_vec(),
            zero_points: Vec::new(),
            codebook: Some(levels),
        };
        let mode = activation_from(activation_mode)?;
        let q = QuantizedTensor::from_parts(parts)?;
        let bias = b
            .map(|b| Tensor::from_f32(b.to_vec(), &[b.len()], &dev.inner))
            .transpose()?;
        finish(
            Layer::try_new_with_mode(q, bias, dev.inner.clone(), mode)?,
            out,
        )
    })
}

/// The lengths `qlinear_quantized_linear_from_parts` expects for a shape and recipe:
/// `codes_len` bytes and `scales_len` scales (and as many zero points when asymmetric).
///
/// Thread safety: any thread.
///
/// # Safety
/// The out-pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quantized_layout_lengths(
    out_features: usize,
    in_features: usize,
    bits: u32,
    granularity: u32,
    group_size: usize,
    codes_len: *mut usize,
    scales_len: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quantized_layout_lengths", {
        let cl = out_ptr(codes_len, "codes_len")?;
        let sl = out_ptr(scales_len, "scales_len")?;
        if out_features == 0 || in_features == 0 {
            return Err(FfiError::invalid("sizes must be non-zero"));
        }
        let g = granularity_from(granularity, group_size)?;
        let row_bytes = match bits {
            8 => in_features,
            4 => in_features.div_ceil(2),
            _ => {
                return Err(FfiError::invalid(format!(
                    "bits must be 4 or 8, got {bits}"
                )))
            }
        };
        mul(out_features, in_features, "out_features × in_features")?;
        let scales = match g {
            crate::Granularity::PerTensor => 1,
            crate::Granularity::PerChannel => out_features,
            crate::Granularity::Group(g) => out_features * in_features.div_ceil(g),
        };
        // SAFETY: both checked non-NULL, writable per the contract.
        unsafe {
            cl.write(out_features * row_bytes);
            sl.write(scales);
        }
        Ok(())
    })
}
