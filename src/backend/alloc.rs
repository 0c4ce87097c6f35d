//! 64-byte aligned buffers for packed weights, from the global allocator or from a host's.

use std::alloc::Layout;
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Alignment of every packed buffer: one cache line, one AVX-512 register.
pub const ALIGN: usize = 64;

/// Allocation callbacks supplied by a host (a game engine's memory manager).
///
/// `alloc(ctx, size, align)` returns memory of at least `size` bytes aligned to `align`,
/// or NULL; `free(ctx, ptr, size, align)` releases it. Both may be called from any thread.
#[derive(Clone, Copy)]
pub struct HostAllocator {
    pub alloc: unsafe extern "C" fn(ctx: *mut c_void, size: usize, align: usize) -> *mut c_void,
    pub free: unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize, align: usize),
    pub ctx: *mut c_void,
}

// SAFETY: the host promises (see the C header) that its callbacks and context may be used
// from any thread for as long as a device that holds them is alive.
unsafe impl Send for HostAllocator {}
unsafe impl Sync for HostAllocator {}

impl fmt::Debug for HostAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostAllocator")
    }
}

/// A zero-initialised, 64-byte aligned byte buffer.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    host: Option<Arc<HostAllocator>>,
}

// SAFETY: AlignedBuf uniquely owns its bytes, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes (at least one cache line) from `host` or the global heap.
    pub fn zeroed(len: usize, host: Option<&Arc<HostAllocator>>) -> Result<Self> {
        let size = len.max(ALIGN);
        let ptr = match host {
            Some(h) => {
                // SAFETY: calling the host's allocator as its contract describes.
                let p = unsafe { (h.alloc)(h.ctx, size, ALIGN) } as *mut u8;
                if p.is_null() || !(p as usize).is_multiple_of(ALIGN) {
                    if !p.is_null() {
                        // SAFETY: returning what the host gave us.
                        unsafe { (h.free)(h.ctx, p as *mut c_void, size, ALIGN) };
                    }
                    return Err(Error::OutOfMemory { bytes: size });
                }
                // SAFETY: p points to `size` writable bytes.
                unsafe { std::ptr::write_bytes(p, 0, size) };
                p
            }
            None => {
                let layout = Layout::from_size_align(size, ALIGN)
                    .map_err(|_| Error::Overflow(format!("buffer of {len} bytes")))?;
                // SAFETY: layout has non-zero size.
                unsafe { std::alloc::alloc_zeroed(layout) }
            }
        };
        let ptr = NonNull::new(ptr).ok_or(Error::OutOfMemory { bytes: size })?;
        Ok(AlignedBuf {
            ptr,
            len,
            host: host.cloned(),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr owns `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr uniquely owns `len` initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let size = self.len.max(ALIGN);
        match &self.host {
            // SAFETY: freeing with the allocator that produced the pointer, same size/align.
            Some(h) => unsafe { (h.free)(h.ctx, self.ptr.as_ptr() as *mut c_void, size, ALIGN) },
            None => unsafe {
                std::alloc::dealloc(
                    self.ptr.as_ptr(),
                    Layout::from_size_align_unchecked(size, ALIGN),
                )
            },
        }
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}
