//! Every call into the operating system's file API that the library makes, in one place, so
//! a port (Windows) is this file: reading a whole file or part of one into owned memory, and
//! replacing a file so that a crash, a full disk or a kill never leaves a torn one; and the
//! one memory call, the huge-page advice for packed weights.
//!
//! Files are read, never memory-mapped: a mapped file that another process truncates raises
//! SIGBUS in the reader, while a read simply returns fewer bytes, which the parsers report
//! as a truncated (corrupt) file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

/// Opens `path` for reading; a directory or other non-regular file is an error.
pub fn open_regular(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(Error::Io(format!("{}: not a regular file", path.display())));
    }
    Ok(file)
}

/// The whole file at `path`, read into memory. A file that shrinks or grows while it is read
/// gives whatever bytes the reads returned.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    bytes
        .try_reserve(usize::try_from(hint).unwrap_or(0))
        .map_err(|_| Error::OutOfMemory {
            bytes: hint as usize,
        })?;
    file.read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok(bytes)
}

/// `len` bytes of `file` from byte `offset`, read into memory; a file shorter than that is an
/// [`Error::Corrupt`] naming `path`.
pub fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory { bytes: len })?;
    buf.resize(len, 0);
    read_into(file, path, offset, &mut buf)?;
    Ok(buf)
}

/// Fills `buf` with the bytes of `file` from `offset`; a file shorter than that is an
/// [`Error::Corrupt`] naming `path`.
pub fn read_into(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    read_exact_at(file, buf, offset).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Corrupt(format!(
            "{}: bytes {offset}+{} lie past the end of the file (truncated?)",
            path.display(),
            buf.len()
        )),
        _ => io_error(path, e),
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// A name for a temporary file next to `path`, unique within this process and, through the
/// process id, among processes.
fn temporary_beside(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::Io(format!("{}: not a file path", path.display())))?;
    let tmp = format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Ok(path.with_file_name(tmp))
}

/// Makes a rename inside `dir` durable (POSIX: fsync the directory). Nothing to do on
/// Windows, where the rename is flushed with the file system's metadata.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

/// Writes `path` so that it is always either the old file or the complete new one: `write`
/// fills a temporary file in the same directory, which is flushed and `fsync`ed, renamed over
/// `path` (atomic on POSIX file systems), and the directory is `fsync`ed. If `write` or any
/// step fails, the temporary is removed and `path` is untouched. An existing file's
/// permissions carry over. (A process killed mid-write can leave the temporary behind, named
/// `.<name>.tmp-<pid>-<n>`; never a torn `path`.)
pub fn replace_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let tmp = temporary_beside(path)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_error(path, e))?;
    let result = (|| {
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| io_error(path, e.into_error()))?;
        if let Ok(old) = std::fs::metadata(path) {
            file.set_permissions(old.permissions())
                .map_err(|e| io_error(path, e))?;
        }
        file.sync_all().map_err(|e| io_error(path, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync_dir(dir).map_err(|e| io_error(dir, e))
}

/// Asks Linux to back `len` bytes at `ptr` (2 MiB aligned, not yet touched) with transparent
/// huge pages. Advice only: where THP is off or absent the call fails and nothing changes.
#[cfg(target_os = "linux")]
pub fn advise_huge_pages(ptr: *mut u8, len: usize) {
    extern "C" {
        fn madvise(
            addr: *mut std::ffi::c_void,
            len: usize,
            advice: std::ffi::c_int,
        ) -> std::ffi::c_int;
    }
    const MADV_HUGEPAGE: std::ffi::c_int = 14;
    if len > 0 {
        // SAFETY: the range lies inside one live allocation; advice never changes its bytes.
        unsafe { madvise(ptr.cast(), len, MADV_HUGEPAGE) };
    }
}

/// Asks Linux (once per process) for the AMX tile data state, which it grants only on
/// request (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); whether it was granted.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn request_amx() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        extern "C" {
            fn syscall(number: std::ffi::c_long, ...) -> std::ffi::c_long;
        }
        const SYS_ARCH_PRCTL: std::ffi::c_long = 158;
        const ARCH_REQ_XCOMP_PERM: std::ffi::c_long = 0x1023;
        const XFEATURE_XTILEDATA: std::ffi::c_long = 18;
        // SAFETY: the call only changes which XSAVE features this process may use.
        unsafe { syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
    })
}

/// Other systems: AMX is not used.
#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
pub fn request_amx() -> bool {
    false
}

/// Elsewhere the OS decides page sizes by itself.
#[cfg(not(target_os = "linux"))]
pub fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qlinear-os-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn a_failing_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("fail");
        let path = dir.join("model.qlin");
        std::fs::write(&path, b"the old, good file").unwrap();
        let r = replace_file(&path, |w| {
            w.write_all(&[7u8; 100_000]).unwrap();
            Err(Error::Io("injected: disk full".into()))
        });
        assert!(matches!(r, Err(Error::Io(m)) if m.contains("injected")));
        assert_eq!(std::fs::read(&path).unwrap(), b"the old, good file");
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    }

    #[test]
    fn a_successful_write_replaces_the_file_and_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("ok");
        let path = dir.join("model.qlin");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, |w| Ok(w.write_all(b"new contents")?)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(leftovers(&dir).is_empty());
        // A new file in a missing directory fails cleanly.
        assert!(replace_file(&dir.join("no/such/x"), |_| Ok(())).is_err());
    }

    #[test]
    fn reads_past_the_end_are_corrupt_not_a_crash() {
        let dir = scratch("read");
        let path = dir.join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let f = open_regular(&path).unwrap();
        assert_eq!(read_at(&f, &path, 2, 3).unwrap(), b"234");
        assert!(matches!(read_at(&f, &path, 8, 3), Err(Error::Corrupt(_))));
        assert_eq!(read_file(&path).unwrap(), b"0123456789");
        assert!(matches!(open_regular(&dir), Err(Error::Io(_))));
    }
}
