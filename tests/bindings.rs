//! The C++ and Go bindings, built and tested against the library `cargo test` just built:
//! the C++ GoogleTest suite under AddressSanitizer and UBSan, the CMake example, and
//! `go vet` plus `go test -race` for the Go package; and the README's C, C++ and Go snippets,
//! each compiled (type-checked) against the real headers and package.
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
    require_tool(
        "pkg-config",
        "install pkg-config (Debian/Ubuntu: apt-get install pkg-config)",
    );
    let pkg = crate_dir().join("bindings/go");
    // The package finds qlinear with pkg-config; this .pc points at this build.
    let pc_dir = build_tree_pc(&scratch("bindings", "go"));
    let go = |args: &[&str]| {
        let mut cmd = Command::new("go");
        cmd.args(args)
            .current_dir(&pkg)
            .env("CGO_ENABLED", "1")
            .env("PKG_CONFIG_PATH", &pc_dir)
            .env("GOTOOLCHAIN", "local");
        run(&mut cmd)
    };
    go(&["vet", "./..."]);
    let out = go(&["test", "-race", "-count=1", "-v", "./..."]);
    assert!(out.contains("--- PASS: Example"), "{out}");
    assert!(!out.contains("--- FAIL"), "{out}");
}

/// The fenced code blocks of `lang` in the README.
fn readme_blocks(lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(crate_dir().join("README.md")).unwrap();
    let (mut blocks, mut current) = (Vec::new(), None::<String>);
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, l) if l == format!("```{lang}") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "README has no ```{lang} block");
    blocks
}

/// Each snippet becomes the body of its own function; `#include` lines move to the top and
/// the names a snippet takes from its surroundings are declared by `preamble`.
fn wrap_snippets(blocks: &[String], preamble: &str) -> String {
    let mut src = String::new();
    for b in blocks {
        for l in b.lines().filter(|l| l.starts_with("#include")) {
            src += l;
            src += "\n";
        }
    }
    src += preamble;
    for (i, b) in blocks.iter().enumerate() {
        let body: String = b
            .lines()
            .filter(|l| !l.starts_with("#include"))
            .map(|l| format!("    {l}\n"))
            .collect();
        src += &format!("void readme_snippet_{i}(void) {{\n{body}}}\n");
    }
    src
}

#[test]
fn readme_c_cpp_and_go_snippets_compile() {
    require_tool(
        "gcc",
        "install a C compiler (Debian/Ubuntu: apt-get install gcc)",
    );
    require_tool(
        "g++",
        "install a C++17 compiler (Debian/Ubuntu: apt-get install g++)",
    );
    require_tool(
        "go",
        "install Go >= 1.21 (https://go.dev/dl/) and put `go` on PATH",
    );
    require_tool(
        "pkg-config",
        "install pkg-config (Debian/Ubuntu: apt-get install pkg-config)",
    );
    let root = crate_dir();
    let dir = scratch("bindings", "readme");
    let pc_dir = build_tree_pc(&dir);
    let c = wrap_snippets(
        &readme_blocks("c"),
        "#include <stdio.h>\nextern const float *w, *bias, *x;\nextern float *y;\n\
         extern size_t out, in, rows;\nextern qlinear_device *dev;\n",
    );
    std::fs::write(dir.join("readme.c"), &c).unwrap();
    run(Command::new("gcc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(root.join("include"))
        .arg(dir.join("readme.c")));
    let cpp = wrap_snippets(
        &readme_blocks("cpp"),
        "#include <cstdio>\n#include <vector>\nextern std::vector<float> weights, bias, x;\n\
         extern std::size_t out, in, rows;\n",
    );
    std::fs::write(dir.join("readme.cpp"), &cpp).unwrap();
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-I",
        ])
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("bindings/cpp"))
        .arg(dir.join("readme.cpp")));
    // Go: a module of its own that imports the package from this checkout.
    let body: String = readme_blocks("go")
        .iter()
        .enumerate()
        .map(|(i, b)| format!("func snippet{i}() {{\n{b}}}\n"))
        .collect();
    let src = format!(
        "package main\n\nimport (\n\t\"errors\"\n\t\"fmt\"\n\n\tqlinear \"github.com/qlinear/qlinear-go\"\n)\n\n\
         var (\n\tweights, bias, x []float32\n\tin, out, rows int\n)\n\n{body}\n\
         func main() {{ snippet0() }}\n"
    );
    let dir = dir.join("go");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), src).unwrap();
    std::fs::write(
        dir.join("go.mod"),
        format!(
            "module readmecheck\n\ngo 1.21\n\nrequire github.com/qlinear/qlinear-go v0.0.0\n\n\
             replace github.com/qlinear/qlinear-go => {}\n",
            root.join("bindings/go").display()
        ),
    )
    .unwrap();
    run(Command::new("go")
        .args(["vet", "."])
        .current_dir(&dir)
        .env("CGO_ENABLED", "1")
        .env("PKG_CONFIG_PATH", &pc_dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local"));
}
