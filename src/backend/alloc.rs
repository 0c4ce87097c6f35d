//! 64-byte aligned buffers for packed weights, from the global allocator or from a host's.

use std::alloc::Layout;
use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Alignment of every packed buffer: one cache line, one AVX-512 register.
pub const ALIGN: usize = 64;

/// Buffers of at least this size from the global heap start on a 2 MiB boundary and are
/// offered to the OS for transparent huge pages ([`crate::os::advise_huge_pages`]): a
/// batch-1 forward streams every weight byte once, and on 4 KiB pages that is a TLB miss
/// per 4 KiB. `QLINEAR_HUGE_PAGES=0` turns this off (to measure the difference).
pub const HUGE_PAGE: usize = 2 << 20;

/// Whether big buffers ask for huge pages: unless `QLINEAR_HUGE_PAGES` is `0`.
fn huge_pages_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| std::env::var("QLINEAR_HUGE_PAGES").map_or(true, |v| v.trim() != "0"))
}

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
    /// Alignment of the global-heap allocation ([`ALIGN`] or [`HUGE_PAGE`]).
    align: usize,
    host: Option<Arc<HostAllocator>>,
}

// SAFETY: AlignedBuf uniquely owns its bytes, like a Vec<u8>.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes (at least one cache line) from `host` or the global heap.
    pub fn zeroed(len: usize, host: Option<&Arc<HostAllocator>>) -> Result<Self> {
        let size = len.max(ALIGN);
        let huge = host.is_none() && size >= HUGE_PAGE && huge_pages_wanted();
        let align = if huge { HUGE_PAGE } else { ALIGN };
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
                let layout = Layout::from_size_align(size, align)
                    .map_err(|_| Error::Overflow(format!("buffer of {len} bytes")))?;
                if huge {
                    // The advice must come before the first touch, so the zeroing is ours.
                    // SAFETY: layout has non-zero size.
                    let p = unsafe { std::alloc::alloc(layout) };
                    if !p.is_null() {
                        crate::os::advise_huge_pages(p, size - size % HUGE_PAGE);
                        // SAFETY: p points to `size` writable bytes.
                        unsafe { std::ptr::write_bytes(p, 0, size) };
                    }
                    p
                } else {
                    // SAFETY: layout has non-zero size.
                    unsafe { std::alloc::alloc_zeroed(layout) }
                }
            }
        };
        let ptr = NonNull::new(ptr).ok_or(Error::OutOfMemory { bytes: size })?;
        Ok(AlignedBuf {
            ptr,
            len,
            align,
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
                    Layout::from_size_align_unchecked(size, self.align),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Kilobytes of transparent huge pages in the mapping that holds `addr`, from smaps.
    #[cfg(target_os = "linux")]
    fn huge_kib_at(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = head.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = (lo..hi).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("AnonHugePages:") {
                    return v.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    fn big_buffers_are_zeroed_huge_page_aligned_and_backed_by_huge_pages() {
        let len = 3 * HUGE_PAGE + 100;
        let mut buf = AlignedBuf::zeroed(len, None).unwrap();
        assert_eq!(buf.len(), len);
        assert!(buf.as_slice().iter().all(|&b| b == 0));
        assert_eq!(buf.as_ptr() as usize % HUGE_PAGE, 0);
        buf.as_mut_slice().fill(7);
        assert!(buf.as_slice().iter().all(|&b| b == 7));
        // Where the kernel offers THP to advised memory, the advice must have taken.
        #[cfg(target_os = "linux")]
        {
            let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
            if mode.is_ok_and(|m| m.contains("[madvise]") || m.contains("[always]")) {
                let kib = huge_kib_at(buf.as_ptr() as usize).expect("mapping in smaps");
                assert!(
                    kib >= 2048,
                    "no huge page behind a {len}-byte buffer ({kib} kB)"
                );
            }
        }
        // Small buffers keep the cache-line alignment and need no huge page.
        let small = AlignedBuf::zeroed(1000, None).unwrap();
        assert_eq!(small.as_ptr() as usize % ALIGN, 0);
        assert!(small.as_slice().iter().all(|&b| b == 0));
    }
}
