//! `qlinear_device_*`: creating CPU devices (owned threads, forced ISA, host job system,
//! host allocator) and querying them.

use std::ffi::{c_char, c_void, CStr};

use super::handle::{publish, qlinear_device, release};
use super::macros::{deref, ffi_boundary, out_ptr};
use super::status::{qlinear_status, FfiError};
use crate::{CpuDevice, CpuDeviceBuilder, HostAllocator, HostJobSystem, Isa};

/// One task of a kernel call: `task(task_ctx, index)`.
pub type qlinear_task_fn = unsafe extern "C" fn(task_ctx: *mut c_void, index: usize);

/// A host job system: `run(ctx, n_tasks, task, task_ctx)` must call `task(task_ctx, i)`
/// exactly once for every `i` in `[0, n_tasks)`, on any threads, and return only after all
/// those calls have returned. It may be called from any thread, concurrently.
pub type qlinear_job_run_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        n_tasks: usize,
        task: qlinear_task_fn,
        task_ctx: *mut c_void,
    ),
>;

/// Host allocation: at least `size` bytes aligned to `align` (a power of two), or NULL.
/// Called from any thread.
pub type qlinear_alloc_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize, align: usize) -> *mut c_void>;

/// Host deallocation of a block from the matching `qlinear_alloc_fn`, with the same size and
/// alignment. Called from any thread.
pub type qlinear_free_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize, align: usize)>;

/// Parses an ISA name: `"scalar"`, `"avx2"`, `"avx512"` or `"auto"` (the best available).
///
/// # Safety
/// `name` is a valid NUL-terminated string.
unsafe fn parse_isa(name: *const c_char) -> Result<Isa, FfiError> {
    // SAFETY: checked non-NULL; NUL termination is the caller's contract.
    let s = unsafe { CStr::from_ptr(super::macros::deref(name, "isa")?) };
    let s = s
        .to_str()
        .map_err(|_| FfiError::invalid("isa: name is not UTF-8"))?;
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(Isa::best());
    }
    Ok(Isa::parse(s)?)
}

fn with_threads(b: CpuDeviceBuilder, threads: usize) -> CpuDeviceBuilder {
    // 0 = every core, the builder's default.
    if threads == 0 {
        b
    } else {
        b.threads(threads)
    }
}

/// Builds the device and publishes it through `out`.
///
/// # Safety
/// `out` was checked non-NULL and is writable.
unsafe fn finish(b: CpuDeviceBuilder, out: *mut *mut qlinear_device) -> Result<(), FfiError> {
    let inner: CpuDevice = b.build()?;
    // SAFETY: forwarded contract on `out`.
    unsafe { publish(qlinear_device { inner }, out) }
}

/// Creates a device that runs each call on `threads` threads: the calling thread plus
/// `threads - 1` workers it owns (0 = one per core, 1 = only the caller's thread), and the ISA from the `QLINEAR_ISA` environment variable, or the best
/// available. Free it with `qlinear_device_free`.
///
/// Idle workers spin for `QLINEAR_SPIN_US` microseconds (default 1000) after a call, so the
/// next call does not wait for threads to wake, then park.
///
/// Thread safety: any thread.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_create(
    threads: usize,
    out: *mut *mut qlinear_device,
) -> qlinear_status {
    ffi_boundary!("qlinear_device_create", {
        let out = out_ptr(out, "out")?;
        // SAFETY: `out` checked.
        unsafe { finish(with_threads(CpuDevice::builder(), threads), out) }
    })
}

/// As `qlinear_device_create`, forcing the ISA path `isa`: `"scalar"`, `"avx2"`, `"avx512"`
/// or `"auto"` (the best available). An unknown name fails with INVALID_ARGUMENT; a path this
/// CPU lacks fails with UNSUPPORTED (never a silent fallback).
///
/// Thread safety: any thread.
///
/// # Safety
/// `isa` is NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_create_with_isa(
    threads: usize,
    isa: *const c_char,
    out: *mut *mut qlinear_device,
) -> qlinear_status {
    ffi_boundary!("qlinear_device_create_with_isa", {
        let out = out_ptr(out, "out")?;
        // SAFETY: `isa` per the contract above.
        let isa = unsafe { parse_isa(isa) }?;
        let b = with_threads(CpuDevice::builder(), threads).isa(isa);
        // SAFETY: `out` checked.
        unsafe { finish(b, out) }
    })
}

/// Creates a device with every option.
///
/// * `threads`: worker threads it owns (0 = one per core, 1 = inline, at most 1024) when `run` is NULL;
///   the host's thread count (at least 1) when `run` is given.
/// * `isa`: as in `qlinear_device_create_with_isa`, or NULL for `QLINEAR_ISA` / the best.
/// * `run`, `run_ctx`: the host's job system (see `qlinear_job_run_fn`), or NULL to own
///   threads. Kernel calls hand their tasks to it; results are bit-identical to an owned
///   pool's.
/// * `alloc`, `free`, `alloc_ctx`: the host's allocator for packed weights (both or neither).
///
/// The callbacks and their contexts must stay valid until this device and every layer
/// created on it are freed.
///
/// Thread safety: any thread.
///
/// # Safety
/// `isa` is NULL or NUL-terminated; `out` is NULL or writable; the callbacks follow their
/// documented contracts.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_create_custom(
    threads: usize,
    isa: *const c_char,
    run: qlinear_job_run_fn,
    run_ctx: *mut c_void,
    alloc: qlinear_alloc_fn,
    free: qlinear_free_fn,
    alloc_ctx: *mut c_void,
    out: *mut *mut qlinear_device,
) -> qlinear_status {
    ffi_boundary!("qlinear_device_create_custom", {
        let out = out_ptr(out, "out")?;
        let mut b = CpuDevice::builder();
        if !isa.is_null() {
            // SAFETY: non-NULL and NUL-terminated per the contract.
            b = b.isa(unsafe { parse_isa(isa) }?);
        }
        b = match run {
            Some(run) => {
                if threads == 0 {
                    return Err(FfiError::invalid(
                        "threads: a host job system must report at least 1 thread",
                    ));
                }
                b.host_jobs(HostJobSystem {
                    run,
                    ctx: run_ctx,
                    threads,
                })
            }
            None => with_threads(b, threads),
        };
        b = match (alloc, free) {
            (Some(alloc), Some(free)) => b.allocator(HostAllocator {
                alloc,
                free,
                ctx: alloc_ctx,
            }),
            (None, None) => b,
            _ => {
                return Err(FfiError::new(
                    qlinear_status::QLINEAR_ERR_NULL_ARGUMENT,
                    "alloc and free must be given together",
                ))
            }
        };
        // SAFETY: `out` checked.
        unsafe { finish(b, out) }
    })
}

/// Whether this CPU can run the ISA path `isa` (`"scalar"`, `"avx2"`, `"avx512"`, `"auto"`).
/// Unknown names fail with INVALID_ARGUMENT.
///
/// Thread safety: any thread.
///
/// # Safety
/// `isa` is NULL or NUL-terminated; `available` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_isa_is_available(
    isa: *const c_char,
    available: *mut bool,
) -> qlinear_status {
    ffi_boundary!("qlinear_isa_is_available", {
        let available = out_ptr(available, "available")?;
        // SAFETY: per the contract above.
        let isa = unsafe { parse_isa(isa) }?;
        // SAFETY: checked non-NULL, writable per the contract.
        unsafe { available.write(isa.is_available()) };
        Ok(())
    })
}

/// Threads that may run one call's tasks at once (1 for an inline device).
///
/// Thread safety: any thread, concurrently with other calls on the device.
///
/// # Safety
/// `device` is NULL or a live device; `threads` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_threads(
    device: *const qlinear_device,
    threads: *mut usize,
) -> qlinear_status {
    ffi_boundary!("qlinear_device_threads", {
        // SAFETY: per the contract above.
        let d = unsafe { deref(device, "device") }?;
        let threads = out_ptr(threads, "threads")?;
        // SAFETY: checked non-NULL, writable per the contract.
        unsafe { threads.write(d.inner.threads()) };
        Ok(())
    })
}

/// The ISA path the device runs (`"scalar"`, `"avx2"` or `"avx512"`), as a static string.
///
/// Thread safety: any thread, concurrently with other calls on the device.
///
/// # Safety
/// `device` is NULL or a live device; `name` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_isa(
    device: *const qlinear_device,
    name: *mut *const c_char,
) -> qlinear_status {
    ffi_boundary!("qlinear_device_isa", {
        // SAFETY: per the contract above.
        let d = unsafe { deref(device, "device") }?;
        let name = out_ptr(name, "name")?;
        let s: &'static CStr = match d.inner.isa() {
            Isa::Scalar => c"scalar",
            Isa::Avx2 => c"avx2",
            Isa::Avx512 => c"avx512",
            Isa::Neon => c"neon",
            Isa::NeonDotprod => c"neon-dotprod",
            Isa::NeonI8mm => c"neon-i8mm",
        };
        // SAFETY: checked non-NULL, writable per the contract.
        unsafe { name.write(s.as_ptr()) };
        Ok(())
    })
}

/// Frees a device; NULL is a no-op. Layers created on it stay usable (they hold their own
/// reference); an owned thread pool stops when the last of them is freed.
///
/// Thread safety: needs exclusive access to the handle (no call may be using it).
///
/// # Safety
/// `device` is NULL or a live device from a `qlinear_device_create*` function, freed once.
#[no_mangle]
pub unsafe extern "C" fn qlinear_device_free(device: *mut qlinear_device) {
    // SAFETY: forwarded contract.
    unsafe { release(device) }
}
