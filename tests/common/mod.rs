//! Helpers shared by the tests that build and run programs against the C ABI.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the libqlinear.so that this `cargo test` built: target/<profile>/deps,
/// where the test binary lives too. Cargo copies the cdylib up to target/<profile> only when
/// the library itself is built (`cargo build`), so target/<profile>/libqlinear.so may be
/// missing or stale while the one in deps is always this build's.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

pub fn cdylib() -> PathBuf {
    let lib = lib_dir().join("libqlinear.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// A fresh scratch directory for one test (tests run in parallel).
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A directory (inside `dir`) where `libqlinear.so.0`, the SONAME programs record, is this
/// build's library: put it on a program's rpath.
pub fn soname_dir(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).expect("lib dir");
    std::os::unix::fs::symlink(cdylib(), lib.join("libqlinear.so.0")).expect("symlink");
    lib
}

pub fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "{cmd:?} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, panicking with its full output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(out.status.success(), "{}", describe(cmd, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with `install` unless `tool --version` (`go version`) runs.
pub fn require_tool(tool: &str, install: &str) {
    let ok = Command::new(tool)
        .arg(if tool == "go" { "version" } else { "--version" })
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "`{tool}` not found: {install}");
}

/// A `qlinear.pc` in `dir` describing this build in place (headers in `include/`, the library
/// in target/<profile>/deps, `libqlinear.so.0` on the rpath), for programs that find qlinear
/// with pkg-config as they would an installed one. Returns the directory for
/// `PKG_CONFIG_PATH`.
pub fn build_tree_pc(dir: &Path) -> PathBuf {
    let so_dir = soname_dir(dir);
    let pc_dir = dir.join("pkgconfig");
    std::fs::create_dir_all(&pc_dir).expect("pkgconfig dir");
    let pc = format!(
        "Name: qlinear\nDescription: qlinear (build tree)\nVersion: {}\n\
         Cflags: -I{}\nLibs: -L{} -Wl,-rpath,{} -lqlinear\n",
        env!("CARGO_PKG_VERSION"),
        crate_dir().join("include").display(),
        lib_dir().display(),
        so_dir.display()
    );
    std::fs::write(pc_dir.join("qlinear.pc"), pc).expect("qlinear.pc");
    pc_dir
}
