//! The C ABI (see `include/qlinear.h`, generated from this module by cbindgen).
//!
//! Conventions (ARCHITECTURE.md §4): every export goes through [`macros::boundary`], which
//! catches panics, maps errors to a [`qlinear_status`] and records a thread-local message.
//! Handles are boxed Rust values behind opaque pointers. Rust names equal the C names so the
//! header and the source can be grepped for the same identifier.
//!
//! No numerics live here: every computation is a call into the core.

#![allow(non_camel_case_types)]

pub mod config;
pub mod device;
pub mod handle;
pub mod linear;
pub(crate) mod macros;
pub mod model;
pub mod quantized_linear;
pub mod status;

pub use config::*;
pub use device::*;
pub use handle::*;
pub use linear::*;
pub use model::*;
pub use quantized_linear::*;
pub use status::*;
