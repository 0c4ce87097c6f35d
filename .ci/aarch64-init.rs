//! `/init` of the aarch64 test VM (.ci/aarch64.sh): runs every program in /tests, in name
//! order, with the arguments given after `--` on the kernel command line, prints each one's
//! exit status, then exits (the kernel then panics and qemu, run with -no-reboot, stops).
//! Programs named in `qlinear_vm_skip` (a kernel command-line word `qlinear_vm_skip=a,b`,
//! which the kernel hands to /init as an environment variable) are not run.
//! It mounts devtmpfs first: `Stdio::null()` (in `Command::output`) opens /dev/null.
use std::ffi::{c_char, c_int, c_ulong, c_void};
use std::process::Command;

extern "C" {
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
}

fn main() {
    let dev = c"devtmpfs";
    // SAFETY: NUL-terminated literals; no data argument.
    if unsafe { mount(dev.as_ptr(), c"/dev".as_ptr(), dev.as_ptr(), 0, std::ptr::null()) } != 0 {
        println!("QLINEAR-VM could not mount /dev: {}", std::io::Error::last_os_error());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut tests: Vec<_> = std::fs::read_dir("/tests")
        .expect("/tests")
        .map(|e| e.expect("entry").path())
        .collect();
    tests.sort();
    let skip = std::env::var("qlinear_vm_skip").unwrap_or_default();
    for t in tests {
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        if skip.split(',').any(|s| s == name) {
            println!("QLINEAR-VM skip {name}");
            continue;
        }
        println!("QLINEAR-VM start {name}");
        let code = match Command::new(&t)
            .args(&args)
            .current_dir("/tmp")
            .env("PATH", "/bin")
            .status() {
            Ok(s) => s.code().unwrap_or(-1),
            Err(e) => {
                println!("QLINEAR-VM could not run {name}: {e}");
                -1
            }
        };
        println!("QLINEAR-VM exit {name} {code}");
    }
    println!("QLINEAR-VM done");
}
