//! The C++ and Go bindings, built and tested against the library `cargo test` just built:
//! the C++ GoogleTest suite under AddressSanitizer and UBSan, the CMake example, and
//! `go vet` plus `go test -race` for the Go package.
//!
//! Needs g++ with GoogleTest (libgtest-dev), cmake and Go >= 1.21; a missing tool fails the
//! test with what to install (nothing is skipped). Everything links against the
//! libqlinear.so built for this test binary's profile (target/<profile>/deps).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

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
    let so_dir = soname_dir(&scratch("bindings", "cpp"));
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
    let build = scratch("bindings", "cmake");
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
    let so_dir = soname_dir(&scratch("bindings", "go"));
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
