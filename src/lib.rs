//! # qlinear — quantized linear layers
//!
//! `QuantizedLinear` stores weights as INT8, INT4 or 4-bit codebook (`cb4`) codes
//! (per-tensor, per-channel or group-wise scales, symmetric or with zero points) and
//! dequantizes them on the fly inside
//! multithreaded SIMD kernels chosen at run time. The same library is usable from C, C++ and
//! Go through its C ABI (`include/qlinear.h`).
//!
//! ```
//! use qlinear::{CpuDevice, CpuTensor, DType, Linear, Module, QuantConfig, QuantizedLinear};
//! # fn main() -> qlinear::Result<()> {
//! let dev = CpuDevice::new()?;
//! let input = CpuTensor::from_f32(vec![0.5; 2 * 256], &[2, 256], &dev)?;
//!
//! let linear = Linear::new(256, 10, true, DType::F32, &dev)?;
//! let qlinear = QuantizedLinear::from_linear(&linear, &QuantConfig::int8())?;
//! let output = qlinear.forward(&input)?;
//!
//! assert_eq!(output.shape(), &[2, 10]);
//! println!("saved {} bytes", qlinear.memory_savings_bytes());
//! # Ok(())
//! # }
//! ```
//!
//! Forward results are bit-identical for every thread count and executor: work is split
//! over output rows and columns only, never over the reduction.

/// The README's Rust snippets, compiled and run as doctests (its C, C++ and Go snippets are
/// compiled by `tests/bindings.rs`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod backend;
pub mod dtype;
pub mod error;
pub mod ffi;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod os;
pub mod quant;
pub mod rng;
pub mod tensor;

pub use backend::alloc::HostAllocator;
pub use backend::pool::HostJobSystem;
pub use backend::{Backend, Cpu, CpuDevice, CpuDeviceBuilder};
pub use dtype::{bf16, f16, DType};
pub use error::{Error, Result};
pub use io::QuantizedModel;
pub use kernels::Isa;
pub use nn::{Linear, Module, QuantizedLinear};
pub use quant::{
    ActivationMode, Granularity, QuantConfig, QuantConfigBuilder, QuantizedParts, QuantizedTensor,
    ScaleDType, WeightFormat,
};

/// The CPU `Tensor`, the common case.
pub type CpuTensor = Tensor<Cpu>;
pub use tensor::Tensor;

// A layer must be shareable across threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<QuantizedLinear<Cpu>>();
    assert_send_sync::<Linear<Cpu>>();
    assert_send_sync::<CpuDevice>();
    assert_send_sync::<Tensor<Cpu>>();
};
