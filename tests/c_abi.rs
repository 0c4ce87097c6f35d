//! The C ABI seen from outside: the committed header is what cbindgen makes now and compiles
//! as C99 and C++17; the cdylib exports only `qlinear_*` and has its SONAME; the C harness
//! and the quickstart example build against it and pass.
//!
//! Needs gcc, g++, nm and readelf (Linux). The cdylib is built by `cargo test` as one of the
//! library's crate types.

mod common;
mod sweep_gen;

use std::process::Command;

use common::{cdylib, crate_dir, run, scratch, soname_dir};

/// build.rs, for its `generate_header` (its `main` is unused here).
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

/// Compiles a C program against the built library and runs it. The library's SONAME is
/// `libqlinear.so.0`, so that name is made to point at the build output, in a directory the
/// program finds through its rpath.
fn build_and_run_c(name: &str, source: &str) -> String {
    let dir = scratch("c_abi", name);
    let libs = soname_dir(&dir);
    let exe = dir.join(name);
    let root = crate_dir();
    run(Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .arg("-o")
        .arg(&exe)
        .arg(cdylib())
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .args(["-lpthread", "-lm"]));
    run(&mut Command::new(&exe))
}

#[test]
fn committed_header_matches_cbindgen() {
    let version = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    let fresh = build_script::generate_header(&crate_dir(), version).expect("cbindgen");
    let committed =
        std::fs::read_to_string(crate_dir().join("include/qlinear.h")).expect("include/qlinear.h");
    assert!(
        fresh == committed,
        "include/qlinear.h is stale: run `cargo build` and commit the regenerated header"
    );
    assert!(committed.contains(&format!(
        "#define QLINEAR_VERSION_MAJOR {}",
        env!("CARGO_PKG_VERSION_MAJOR")
    )));
}

#[test]
fn header_compiles_as_c99_and_cpp17() {
    let dir = scratch("c_abi", "header");
    let include = crate_dir().join("include");
    for (file, compiler, std) in [("h.c", "gcc", "-std=c99"), ("h.cpp", "g++", "-std=c++17")] {
        let src = dir.join(file);
        std::fs::write(
            &src,
            "#include \"qlinear.h\"\n#include \"qlinear.h\"\nint main(void) { return QLINEAR_OK; }\n",
        )
        .unwrap();
        run(Command::new(compiler)
            .args([
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
            ])
            .arg("-I")
            .arg(&include)
            .arg(&src));
    }
}

#[test]
fn exports_only_qlinear_symbols_and_has_soname() {
    let lib = cdylib();
    let syms = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let names: Vec<&str> = syms
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(
        names.contains(&"qlinear_quantized_linear_forward"),
        "{syms}"
    );
    let foreign: Vec<&&str> = names
        .iter()
        .filter(|n| !n.starts_with("qlinear_"))
        .collect();
    assert!(foreign.is_empty(), "symbols outside qlinear_*: {foreign:?}");

    // Every function the header declares is exported, and the other way round.
    let header = std::fs::read_to_string(crate_dir().join("include/qlinear.h")).unwrap();
    let declared: Vec<&str> = header
        .lines()
        .filter(|l| l.contains('(') && !l.starts_with([' ', '#', '*', '/', '}']))
        .filter(|l| !l.starts_with("typedef"))
        .filter_map(|l| l.split('(').next()?.split_whitespace().last())
        .map(|n| n.trim_start_matches('*'))
        .filter(|n| n.starts_with("qlinear_"))
        .collect();
    let mut exported = names.clone();
    let mut in_header = declared.clone();
    exported.sort_unstable();
    in_header.sort_unstable();
    assert_eq!(
        exported, in_header,
        "exported symbols and header declarations differ"
    );

    let dynamic = run(Command::new("readelf").arg("-d").arg(&lib));
    assert!(
        dynamic.contains("Library soname: [libqlinear.so.0]"),
        "no SONAME libqlinear.so.0:\n{dynamic}"
    );
}

#[test]
fn c_harness_passes() {
    let out = build_and_run_c("test_qlinear", "bindings/c/test_qlinear.c");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed"),
        "unexpected summary {summary:?}:\n{out}"
    );
}

#[test]
fn quickstart_runs() {
    let out = build_and_run_c("quickstart", "bindings/c/examples/quickstart.c");
    assert!(out.contains("saved"), "{out}");
}

/// Every exported `qlinear_*` function of the built library.
fn exported_functions() -> Vec<String> {
    let out = run(Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(cdylib()));
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == "T" && f[2].starts_with("qlinear_")).then(|| f[2].to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn bad_input_sweep_of_every_c_function() {
    let header = std::fs::read_to_string(crate_dir().join("include/qlinear.h")).unwrap();
    let protos = sweep_gen::parse_header(&header);
    // The sweep covers the header, and the header every exported function.
    let mut swept: Vec<String> = protos.iter().map(|p| p.name.clone()).collect();
    swept.sort();
    assert_eq!(swept, exported_functions(), "header functions vs exports");
    assert!(protos.len() >= 60, "{} functions parsed", protos.len());
    let dir = scratch("c_abi", "sweep");
    let src = dir.join("sweep.c");
    std::fs::write(&src, sweep_gen::generate(&protos)).unwrap();
    let libs = soname_dir(&dir);
    let exe = dir.join("sweep");
    run(Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(cdylib())
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .args(["-lpthread", "-lm"]));
    // QLINEAR_VALGRIND=1 (as .ci/run sets) runs it under valgrind memcheck, failing on any
    // error or leak.
    let out = if std::env::var("QLINEAR_VALGRIND").as_deref() == Ok("1") {
        run(Command::new("valgrind")
            .args(["--quiet", "--leak-check=full", "--show-leak-kinds=all"])
            .args(["--errors-for-leak-kinds=all", "--error-exitcode=1"])
            .arg(&exe)
            .current_dir(&dir))
    } else {
        run(Command::new(&exe).current_dir(&dir))
    };
    assert!(out.contains(", 0 failures"), "{out}");
    let calls: usize = out
        .split("sweep: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(calls > 400, "{out}");
    eprintln!("{}", out.trim());
}
