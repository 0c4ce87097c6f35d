//! The C++ and Go bindings, built and tested against the library `cargo test` just built:
//! the C++ GoogleTest suite under AddressSanitizer and UBSan, the CMake example, and
//! `go vet` plus `go test -race` for the Go package.
//!
//! Needs g++ with GoogleTest (libgtest-dev), cmake and Go >= 1.21; a missing tool fails the
//! test with what to install (nothing is skipped). Everything links against the
//! libqlinear.so built for this test binary's profile (target/<profile>/deps).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the libqlinear.so that this `cargo test` built: target/<profile>/deps,
/// where the test binary lives too. Cargo copies the cdylib up to target/<profile> only when
/// the library itself is built (`cargo build`), so target/<profile>/libqlinear.so may be
/// missing or stale while the one in deps is always this build's.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

fn cdylib() -> PathBuf {
    let lib = lib_dir().join("libqlinear.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// A fresh scratch directory for one test (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bindings")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A directory where `libqlinear.so.0` (the SONAME programs record) is this profile's
/// library, for the run-time search path.
fn soname_dir(name: &str) -> PathBuf {
    let dir = scratch(name).join("lib");
    std::fs::create_dir_all(&dir).expect("lib dir");
    std::os::unix::fs::symlink(cdylib(), dir.join("libqlinear.so.0")).expect("symlink");
    dir
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "{cmd:?} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, panicking with its full output when it fails; returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(out.status.success(), "{}", describe(cmd, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with `install` unless `tool --version` runs.
fn require_tool(tool: &str, install: &str) {
    let ok = Command::new(tool)
        .arg(if tool == "go" { "version" } else { "--version" })
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "`{tool}` not found: {install}");
}

#[test]
fn cpp_tests_pass_under_sanitizers() {
    require_tool(
        "g++",
        "install a C++17 compiler (Debian/Ubuntu: apt-get install g++)",
    );
    let gtest = [
        "/usr/include/gtest/gtest.h",
        "/usr/local/include/gtest/gtest.h",
    ];
    assert!(
        gtest.iter().any(|p| Path::new(p).exists()),
        "GoogleTest not found: install it (Debian/Ubuntu: apt-get install libgtest-dev)"
    );
    let root = crate_dir();
    let so_dir = soname_dir("cpp");
    let exe = so_dir.parent().unwrap().join("test_qlinear_cpp");
    run(Command::new("g++")
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])
        .arg("-fno-sanitize-recover=all")
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("bindings/cpp"))
        .arg(root.join("bindings/cpp/tests/test_qlinear.cpp"))
        .arg("-o")
        .arg(&exe)
        .arg(cdylib())
        .arg(format!("-Wl,-rpath,{}", so_dir.display()))
        .args(["-lgtest", "-lgtest_main", "-pthread"]));
    let out = run(Command::new(&exe)
        .env("ASAN_OPTIONS", "abort_on_error=0:halt_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"));
    assert!(out.contains("[  PASSED  ]"), "{out}");
    assert!(!out.contains("[  FAILED  ]"), "{out}");
}

#[test]
fn cmake_example_builds_and_runs() {
    require_tool(
        "cmake",
        "install CMake >= 3.16 (Debian/Ubuntu: apt-get install cmake)",
    );
    require_tool(
        "g++",
        "install a C++17 compiler (Debian/Ubuntu: apt-get install g++)",
    );
    let root = crate_dir();
    let build = scratch("cmake");
    run(Command::new("cmake")
        .arg("-S")
        .arg(root.join("bindings/cpp/examples"))
        .arg("-B")
        .arg(&build)
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg(format!("-DQLINEAR_LIB_DIR={}", lib_dir().display()))
        .arg(format!(
            "-DQLINEAR_INCLUDE_DIR={}",
            root.join("include").display()
        )));
    run(Command::new("cmake").arg("--build").arg(&build));
    let out = run(&mut Command::new(build.join("qlinear_example")));
    assert!(out.contains("memory saved"), "{out}");
}

#[test]
fn go_vet_and_race_tests_pass() {
    require_tool(
        "go",
        "install Go >= 1.21 (https://go.dev/dl/) and put `go` on PATH",
    );
    let pkg = crate_dir().join("bindings/go");
    let so_dir = soname_dir("go");
    // cgo puts CGO_LDFLAGS before the package's #cgo LDFLAGS: -lqlinear resolves here first
    // (not to a possibly stale target/release), and the rpath entry for libqlinear.so.0 comes
    // first too.
    let ldflags = format!("-L{} -Wl,-rpath,{}", lib_dir().display(), so_dir.display());
    let go = |args: &[&str]| {
        let mut cmd = Command::new("go");
        cmd.args(args)
            .current_dir(&pkg)
            .env("CGO_ENABLED", "1")
            .env("CGO_LDFLAGS", &ldflags)
            .env("GOTOOLCHAIN", "local");
        run(&mut cmd)
    };
    go(&["vet", "./..."]);
    let out = go(&["test", "-race", "-count=1", "-v", "./..."]);
    assert!(out.contains("--- PASS: Example"), "{out}");
    assert!(!out.contains("--- FAIL"), "{out}");
}
