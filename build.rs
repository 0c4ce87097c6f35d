//! Generates `include/qlinear.h` with cbindgen and gives the cdylib its SONAME and export
//! list. `tests/c_abi.rs` reuses [`generate_header`] to check the committed header.

use std::path::{Path, PathBuf};

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for p in ["build.rs", "cbindgen.toml", "src/ffi"] {
        println!("cargo:rerun-if-changed={p}");
    }

    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        // rustc's own version script already exports only the #[no_mangle] functions (all
        // qlinear_*, checked by tests/c_abi.rs); a second script would clash with it.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libqlinear.so.0");
    }

    let version = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    match generate_header(&dir, version) {
        Ok(header) => {
            let path = dir.join("include/qlinear.h");
            // Written only when it changed: an unchanged file keeps its mtime, so nothing
            // that depends on it rebuilds.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(header.as_str()) {
                let written = std::fs::create_dir_all(dir.join("include"))
                    .and_then(|()| std::fs::write(&path, &header));
                if let Err(e) = written {
                    println!("cargo:warning=could not write {}: {e}", path.display());
                }
            }
        }
        // A broken header must not break the Rust build; tests/c_abi.rs fails instead.
        Err(e) => println!("cargo:warning=cbindgen failed, include/qlinear.h not updated: {e}"),
    }
}

/// The header cbindgen makes from `src/` with `cbindgen.toml`, plus version macros.
/// Deterministic: same sources and version, same bytes.
pub fn generate_header(crate_dir: &Path, version: (&str, &str, &str)) -> Result<String, String> {
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let (major, minor, patch) = version;
    config.after_includes = Some(format!(
        "\n#define QLINEAR_VERSION_MAJOR {major}\n\
         #define QLINEAR_VERSION_MINOR {minor}\n\
         #define QLINEAR_VERSION_PATCH {patch}\n\
         #define QLINEAR_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        // Only the C ABI module: core items never leak into the header.
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .generate()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| e.to_string())
}
