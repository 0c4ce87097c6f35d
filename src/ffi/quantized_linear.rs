//! `qlinear_quantized_linear_*`: INT8/INT4 layers, made by quantizing a layer or raw
//! weights, or from raw quantized data; forward in f32, f16 or bf16; queries and copy-out
//! of the documented logical layout.

use std::cell::RefCell;
use std::sync::Arc;

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};

use super::config::{
    activation_from, activation_to, granularity_from, granularity_to, scale_dtype_from,
    scale_dtype_to,
};
use super::handle::{
    publish, qlinear_device, qlinear_linear, qlinear_quant_config, qlinear_quantized_linear,
    release,
};
use super::linear::forward_buffers;
use super::macros::{deref, expect_len, ffi_boundary, mul, opt_slice, out_ptr, slice, slice_mut};
use super::status::{qlinear_status, FfiError};
use crate::backend::{Backend, Cpu};
use crate::{QuantizedLinear, QuantizedParts, QuantizedTensor, Tensor};

type Layer = QuantizedLinear<Cpu>;

/// Publishes a layer through `out` (checked non-NULL by the caller).
fn finish(inner: Layer, out: *mut *mut qlinear_quantized_linear) -> Result<(), FfiError> {
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
