//! `qlinear_quant_config_*`: quantization recipes. Setters validate at once and leave the
//! config unchanged on failure.

use super::handle::{publish, qlinear_quant_config, release};
use super::macros::{deref_mut, ffi_boundary, out_ptr};
use super::status::{qlinear_status, FfiError};
use crate::{ActivationMode, Granularity, QuantConfig, ScaleDType, WeightFormat};

/// What a weight code means. Passed as `uint32_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum qlinear_weight_format {
    /// 8-bit integer codes: `w = scale · (q − zero)`.
    QLINEAR_FORMAT_INT8 = 0,
    /// 4-bit integer codes on the uniform grid −8..7: `w = scale · (q − zero)`.
    QLINEAR_FORMAT_INT4 = 1,
    /// 4-bit codes indexing 16 non-uniform levels (the `cb4` codebook): `w = scale ·
    /// level[q]`; symmetric only. The default of `qlinear_quant_config_create_int4`.
    QLINEAR_FORMAT_CB4 = 2,
}

/// Which weights share one scale (and zero point). Passed as `uint32_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum qlinear_granularity {
    /// One scale for the whole matrix.
    QLINEAR_GRANULARITY_PER_TENSOR = 0,
    /// One scale per output feature.
    QLINEAR_GRANULARITY_PER_CHANNEL = 1,
    /// One scale per group of `group_size` consecutive inputs of a row.
    QLINEAR_GRANULARITY_GROUP = 2,
}

/// How scales are stored. Passed as `uint32_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum qlinear_scale_dtype {
    QLINEAR_SCALE_F32 = 0,
    QLINEAR_SCALE_F16 = 1,
}

/// What `forward` does with activations. Passed as `uint32_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum qlinear_activation_mode {
    /// Activations stay f32: `x·dequant(W)ᵀ` up to f32 rounding.
    QLINEAR_ACTIVATION_EXACT = 0,
    /// Each block of 32 inputs of a row of `x` is quantized to int8 at run time with its own
    /// scale (`max|x_block|/127`); faster, and adds at most `Σ_blocks scale_x/2 · Σ|w|` to
    /// each output.
    QLINEAR_ACTIVATION_DYN8 = 1,
    /// As DYN8 with one scale per row (`max|x_row|/127`): less accurate when a row has
    /// outlier channels, slightly faster with per-channel weights.
    QLINEAR_ACTIVATION_DYN8_PER_ROW = 2,
}

/// Enums cross the ABI as `uint32_t`: a C enum variable may hold any integer, a Rust enum
/// may not, so values are checked here.
pub(crate) fn granularity_from(kind: u32, group_size: usize) -> Result<Granularity, FfiError> {
    let g = match kind {
        0 => Granularity::PerTensor,
        1 => Granularity::PerChannel,
        2 => Granularity::Group(group_size),
        _ => {
            return Err(FfiError::invalid(format!(
                "granularity: unknown value {kind}"
            )))
        }
    };
    g.validate()?;
    Ok(g)
}

pub(crate) fn granularity_to(g: Granularity) -> (u32, usize) {
    match g {
        Granularity::PerTensor => (
            qlinear_granularity::QLINEAR_GRANULARITY_PER_TENSOR as u32,
            0,
        ),
        Granularity::PerChannel => (
            qlinear_granularity::QLINEAR_GRANULARITY_PER_CHANNEL as u32,
            0,
        ),
        Granularity::Group(g) => (qlinear_granularity::QLINEAR_GRANULARITY_GROUP as u32, g),
    }
}

pub(crate) fn scale_dtype_from(v: u32) -> Result<ScaleDType, FfiError> {
    match v {
        0 => Ok(ScaleDType::F32),
        1 => Ok(ScaleDType::F16),
        _ => Err(FfiError::invalid(format!("scale dtype: unknown value {v}"))),
    }
}

pub(crate) fn scale_dtype_to(d: ScaleDType) -> u32 {
    match d {
        ScaleDType::F32 => qlinear_scale_dtype::QLINEAR_SCALE_F32 as u32,
        ScaleDType::F16 => qlinear_scale_dtype::QLINEAR_SCALE_F16 as u32,
    }
}

pub(crate) fn activation_from(v: u32) -> Result<ActivationMode, FfiError> {
    match v {
        0 => Ok(ActivationMode::Exact),
        1 => Ok(ActivationMode::Dyn8),
        2 => Ok(ActivationMode::Dyn8PerRow),
        _ => Err(FfiError::invalid(format!(
            "activation mode: unknown value {v}"
        ))),
    }
}

pub(crate) fn activation_to(m: ActivationMode) -> u32 {
    use qlinear_activation_mode::*;
    (match m {
        ActivationMode::Exact => QLINEAR_ACTIVATION_EXACT,
        ActivationMode::Dyn8 => QLINEAR_ACTIVATION_DYN8,
        ActivationMode::Dyn8PerRow => QLINEAR_ACTIVATION_DYN8_PER_ROW,
    }) as u32
}

pub(crate) fn format_from(v: u32) -> Result<WeightFormat, FfiError> {
    match v {
        0 => Ok(WeightFormat::Int8),
        1 => Ok(WeightFormat::Int4),
        2 => Ok(WeightFormat::Cb4),
        _ => Err(FfiError::invalid(format!(
            "weight format: unknown value {v}"
        ))),
    }
}

pub(crate) fn format_to(f: WeightFormat) -> u32 {
    use qlinear_weight_format::*;
    (match f {
        WeightFormat::Int8 => QLINEAR_FORMAT_INT8,
        WeightFormat::Int4 => QLINEAR_FORMAT_INT4,
        WeightFormat::Cb4 => QLINEAR_FORMAT_CB4,
    }) as u32
}

fn create(inner: QuantConfig, out: *mut *mut qlinear_quant_config) -> Result<(), FfiError> {
    let out = out_ptr(out, "out")?;
    // SAFETY: `out` checked non-NULL; writable per the caller's contract.
    unsafe { publish(qlinear_quant_config { inner }, out) }
}

/// Applies `change` to a copy of the config and stores it only if it validates.
///
/// # Safety
/// `config` is NULL or a live config used by no other thread.
unsafe fn update(
    config: *mut qlinear_quant_config,
    change: impl FnOnce(&mut QuantConfig) -> Result<(), FfiError>,
) -> Result<(), FfiError> {
    // SAFETY: forwarded contract.
    let c = unsafe { deref_mut(config, "config") }?;
    let mut next = c.inner;
    change(&mut next)?;
    next.validate()?;
    c.inner = next;
    Ok(())
}

/// Creates the INT8 default recipe: symmetric, groups of 32, f16 scales chosen by an error
/// search, exact activations. Free it with `qlinear_quant_config_free`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_create_int8(
    out: *mut *mut qlinear_quant_config,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_create_int8", {
        create(QuantConfig::int8(), out)
    })
}

/// Creates the 4-bit default recipe (the core's `QuantConfig::int4()`): the cb4 codebook,
/// groups of 32, f16 scales chosen by an error search with a least-squares refit, exact
/// activations.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_create_int4(
    out: *mut *mut qlinear_quant_config,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_create_int4", {
        create(QuantConfig::int4(), out)
    })
}

/// Creates the uniform 4-bit recipe (`QuantConfig::int4_uniform()`, the 4-bit default before
/// the codebook): integer codes −8..7, symmetric, groups of 32, f16 scales chosen by an error
/// search, exact activations.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_create_int4_uniform(
    out: *mut *mut qlinear_quant_config,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_create_int4_uniform", {
        create(QuantConfig::int4_uniform(), out)
    })
}

/// Sets the weight format: a `qlinear_weight_format` value. `QLINEAR_FORMAT_CB4` on an
/// asymmetric config fails with INVALID_ARGUMENT (the codebook has no zero points).
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_format(
    config: *mut qlinear_quant_config,
    format: u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_format", {
        let f = format_from(format)?;
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.format = f;
                Ok(())
            })
        }
    })
}

/// Sets the code width: 8 selects `QLINEAR_FORMAT_INT8`, 4 the uniform `QLINEAR_FORMAT_INT4`
/// (anything else fails with INVALID_ARGUMENT).
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_bits(
    config: *mut qlinear_quant_config,
    bits: u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_bits", {
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.format = match bits {
                    8 => WeightFormat::Int8,
                    4 => WeightFormat::Int4,
                    _ => {
                        return Err(FfiError::invalid(format!(
                            "bits must be 4 or 8, got {bits}"
                        )))
                    }
                };
                Ok(())
            })
        }
    })
}

/// Sets group-wise scales with `group_size` inputs per group (a power of two from 32 to
/// 1024), or per-channel scales when `group_size` is 0.
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_group_size(
    config: *mut qlinear_quant_config,
    group_size: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_group_size", {
        let g = if group_size == 0 {
            Granularity::PerChannel
        } else {
            Granularity::Group(group_size)
        };
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.granularity = g;
                Ok(())
            })
        }
    })
}

/// Sets the granularity: a `qlinear_granularity` value; `group_size` is used only for
/// `QLINEAR_GRANULARITY_GROUP`.
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_granularity(
    config: *mut qlinear_quant_config,
    granularity: u32,
    group_size: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_granularity", {
        let g = granularity_from(granularity, group_size)?;
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.granularity = g;
                Ok(())
            })
        }
    })
}

/// Symmetric (no zero points) or asymmetric (an int8 zero point per scale).
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_symmetric(
    config: *mut qlinear_quant_config,
    symmetric: bool,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_symmetric", {
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.symmetric = symmetric;
                Ok(())
            })
        }
    })
}

/// Sets the activation mode: a `qlinear_activation_mode` value.
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_activation_mode(
    config: *mut qlinear_quant_config,
    mode: u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_activation_mode", {
        let m = activation_from(mode)?;
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.activations = m;
                Ok(())
            })
        }
    })
}

/// Sets how scales are stored: a `qlinear_scale_dtype` value.
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_scale_dtype(
    config: *mut qlinear_quant_config,
    scale_dtype: u32,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_scale_dtype", {
        let d = scale_dtype_from(scale_dtype)?;
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.scale_dtype = d;
                Ok(())
            })
        }
    })
}

/// Turns the squared-error scale search on (default) or off (`max|w|/qmax` scales: faster
/// to quantize, less accurate).
///
/// Thread safety: needs exclusive access to `config`.
///
/// # Safety
/// `config` is NULL or a live config.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_set_search(
    config: *mut qlinear_quant_config,
    search: bool,
) -> qlinear_status {
    ffi_boundary!("qlinear_quant_config_set_search", {
        // SAFETY: forwarded contract.
        unsafe {
            update(config, |c| {
                c.search = search;
                Ok(())
            })
        }
    })
}

/// Frees a config; NULL is a no-op. Layers do not reference their config.
///
/// Thread safety: needs exclusive access to the handle.
///
/// # Safety
/// `config` is NULL or a live config, freed once.
#[no_mangle]
pub unsafe extern "C" fn qlinear_quant_config_free(config: *mut qlinear_quant_config) {
    // SAFETY: forwarded contract.
    unsafe { release(config) }
}
