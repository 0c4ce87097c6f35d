//! `qlinear_model_*`: saving layers to a qlinear file (`docs/FORMAT.md`) and loading named
//! layers from a file or a memory buffer.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

use super::handle::{publish, qlinear_device, qlinear_model, qlinear_quantized_linear, release};
use super::macros::{deref, ffi_boundary, out_ptr, slice};
use super::status::{qlinear_status, FfiError};
use crate::{Error, QuantizedModel};

/// A caller's NUL-terminated path.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
unsafe fn path_arg(p: *const c_char) -> Result<PathBuf, FfiError> {
    // SAFETY: non-NULL checked by `deref`; NUL-termination is the caller's contract.
    let s = unsafe { CStr::from_ptr(deref(p, "path")?) };
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        s.to_str()
            .map(PathBuf::from)
            .map_err(|_| FfiError::invalid("path is not UTF-8"))
    }
}

/// Publishes a model through `out` (checked non-NULL by the caller).
fn finish(inner: QuantizedModel, out: *mut *mut qlinear_model) -> Result<(), FfiError> {
    let names = (0..inner.len())
        .map(|i| CString::new(inner.name(i).unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| FfiError::from(Error::Internal("layer name with NUL".into())))?;
    // SAFETY: every caller checked `out` with `out_ptr` first; writable per its contract.
    unsafe { publish(qlinear_model { inner, names }, out) }
}

/// Loads a qlinear file: validates every header field and checksum, then packs each layer
/// for `device`. A missing or unreadable file fails with QLINEAR_ERR_IO, a malformed one
/// with QLINEAR_ERR_CORRUPT. Free the model with `qlinear_model_free`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `device` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_load_file(
    path: *const c_char,
    device: *const qlinear_device,
    out: *mut *mut qlinear_model,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_load_file", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract.
        let (path, dev) = unsafe { (path_arg(path)?, deref(device, "device")?) };
        finish(QuantizedModel::load(path, &dev.inner)?, out)
    })
}

/// Loads a qlinear file held in memory (`data`, `len` bytes), as `qlinear_model_load_file`.
/// The buffer is only read during the call: the model keeps no pointer into it. `len` 0
/// fails with QLINEAR_ERR_CORRUPT (an empty file is truncated).
///
/// Thread safety: any thread.
///
/// # Safety
/// `data` is NULL or valid for `len` bytes; `device` is NULL or live; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_load_memory(
    data: *const u8,
    len: usize,
    device: *const qlinear_device,
    out: *mut *mut qlinear_model,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_load_memory", {
        let out = out_ptr(out, "out")?;
        // SAFETY: forwarded contract.
        let dev = unsafe { deref(device, "device")? };
        if data.is_null() {
            return Err(FfiError::null("data"));
        }
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: forwarded contract.
            unsafe { slice(data, len, "data")? }
        };
        finish(QuantizedModel::from_bytes(bytes, &dev.inner)?, out)
    })
}

/// The `(name, layer)` pairs of the C arrays `layers` and `names` (`count` entries each).
///
/// # Safety
/// As `qlinear_model_save_file`'s `layers` and `names`.
unsafe fn named_layers<'a>(
    layers: *const *const qlinear_quantized_linear,
    names: *const *const c_char,
    count: usize,
) -> Result<Vec<(&'a str, &'a crate::QuantizedLinear<crate::Cpu>)>, FfiError> {
    // SAFETY: forwarded contract.
    let (ls, ns) = unsafe {
        (
            slice(layers, count, "layers")?,
            slice(names, count, "names")?,
        )
    };
    let mut named = Vec::with_capacity(count);
    for (i, (&l, &n)) in ls.iter().zip(ns).enumerate() {
        // SAFETY: forwarded contract: each entry is NULL or a live handle / string.
        let (l, n) = unsafe { (deref(l, "layers[i]")?, deref(n, "names[i]")?) };
        // SAFETY: non-NULL, NUL-terminated by the caller's contract.
        let n = unsafe { CStr::from_ptr(n) }
            .to_str()
            .map_err(|_| FfiError::invalid(format!("names[{i}] is not UTF-8")))?;
        named.push((n, &*l.inner));
    }
    Ok(named)
}

/// Saves `count` layers to `path`: `layers[i]` under the name `names[i]` (UTF-8, unique, at
/// most 4096 bytes). The layers are only read. Crash-safe: the file is written beside
/// `path`, flushed to disk and renamed over it, so `path` always holds either its old
/// contents or the complete new file; on any error the old file is untouched.
///
/// Thread safety: any thread; the layers may be running forward on other threads.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `layers` and `names` are NULL or arrays of `count`
/// pointers to live handles and NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_save_file(
    path: *const c_char,
    layers: *const *const qlinear_quantized_linear,
    names: *const *const c_char,
    count: usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_save_file", {
        // SAFETY: forwarded contract.
        let (path, named) = unsafe { (path_arg(path)?, named_layers(layers, names, count)?) };
        Ok(crate::io::save(path, &named)?)
    })
}

/// Serialises `count` layers (as `qlinear_model_save_file` would write them) into a buffer
/// the library allocates: `*out` receives it and `*out_len` its length. Free it with
/// `qlinear_bytes_free(*out, *out_len)`. `qlinear_model_load_memory` reads it back bit for
/// bit. Outputs are written only on success.
///
/// Thread safety: any thread; the layers may be running forward on other threads.
///
/// # Safety
/// `layers` and `names` as in `qlinear_model_save_file`; `out` and `out_len` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_save_memory(
    layers: *const *const qlinear_quantized_linear,
    names: *const *const c_char,
    count: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_save_memory", {
        let out = out_ptr(out, "out")?;
        let out_len = out_ptr(out_len, "out_len")?;
        // SAFETY: forwarded contract.
        let named = unsafe { named_layers(layers, names, count)? };
        let bytes = crate::io::to_bytes(&named)?.into_boxed_slice();
        let len = bytes.len();
        let ptr = Box::into_raw(bytes) as *mut u8;
        // SAFETY: both checked non-NULL, writable per the contract.
        unsafe {
            out.write(ptr);
            out_len.write(len);
        }
        Ok(())
    })
}

/// Frees a buffer from `qlinear_model_save_memory`; `len` must be the length it returned.
/// NULL is a no-op.
///
/// Thread safety: any thread, once per buffer.
///
/// # Safety
/// `ptr` is NULL or a buffer from `qlinear_model_save_memory` of length `len`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn qlinear_bytes_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: by the contract, `ptr` came from `Box<[u8]>::into_raw` with this length.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Writes the number of layers of `model` to `count`.
///
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or live; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_layer_count(
    model: *const qlinear_model,
    count: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_layer_count", {
        let count = out_ptr(count, "count")?;
        // SAFETY: forwarded contract.
        let m = unsafe { deref(model, "model")? };
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { count.write(m.inner.len()) };
        Ok(())
    })
}

/// Writes the name of layer `index` (file order) to `name`: a NUL-terminated UTF-8 string
/// owned by the model, valid until `qlinear_model_free`. An index out of range fails with
/// INVALID_ARGUMENT.
///
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or live; `name` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_layer_name(
    model: *const qlinear_model,
    index: usize,
    name: *mut *const c_char,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_layer_name", {
        let name = out_ptr(name, "name")?;
        // SAFETY: forwarded contract.
        let m = unsafe { deref(model, "model")? };
        let s = m.names.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "index {index} out of range ({} layers)",
                m.names.len()
            ))
        })?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { name.write(s.as_ptr()) };
        Ok(())
    })
}

/// Writes a new layer handle for the layer called `name` to `layer`. The handle shares the
/// model's weights (no copy) and stays valid after `qlinear_model_free`; free it with
/// `qlinear_quantized_linear_free`. An unknown name fails with INVALID_ARGUMENT.
///
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or live; `name` is NULL or NUL-terminated; `layer` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_get_layer(
    model: *const qlinear_model,
    name: *const c_char,
    layer: *mut *mut qlinear_quantized_linear,
) -> qlinear_status {
    ffi_boundary!("qlinear_model_get_layer", {
        let layer = out_ptr(layer, "layer")?;
        // SAFETY: forwarded contract.
        let (m, n) = unsafe { (deref(model, "model")?, deref(name, "name")?) };
        // SAFETY: non-NULL, NUL-terminated by the caller's contract.
        let n = unsafe { CStr::from_ptr(n) };
        let inner = n
            .to_str()
            .ok()
            .and_then(|n| m.inner.get_shared(n))
            .ok_or_else(|| FfiError::invalid(format!("no layer named {n:?}")))?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { publish(qlinear_quantized_linear { inner }, layer) }
    })
}

/// Frees a model; NULL is a no-op. Layer handles taken from it stay valid.
///
/// Thread safety: not while another thread uses `model`.
///
/// # Safety
/// `model` is NULL or a live model not used by another thread, not freed before.
#[no_mangle]
pub unsafe extern "C" fn qlinear_model_free(model: *mut qlinear_model) {
    // SAFETY: forwarded contract.
    unsafe { release(model) }
}
