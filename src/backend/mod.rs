//! The `Backend` trait: what a compute backend provides to the layers.
//!
//! A backend owns two things the layers cannot do portably: turning weights into the
//! layout its kernels read ("packing"), and running those kernels. Layers are generic over
//! the backend, so a GPU backend is one more implementation of this trait. Tensors keep
//! their elements in host memory in this version.

mod activations;
pub mod alloc;
pub mod cpu;
pub mod pool;
pub mod workers;

use std::fmt::Debug;

use crate::error::Result;
use crate::quant::{ActivationMode, QuantConfig, QuantizedTensor};

pub use cpu::{Cpu, CpuDevice, CpuDeviceBuilder};

/// A compute backend: its device type, its packed weight types and its kernels.
pub trait Backend: Copy + Clone + Debug + Default + Send + Sync + 'static {
    /// Where computations run (for the CPU: ISA choice, threads, allocator).
    type Device: Clone + Debug + Send + Sync;
    /// f32 weights `[out, in]` in the layout the dense kernel reads.
    type DenseWeights: Debug + Send + Sync;
    /// Quantized weights in the layout the quantized kernels read.
    type QuantWeights: Debug + Send + Sync;

    /// A short name ("cpu").
    fn name() -> &'static str;

    /// Packs row-major f32 weights `w` of shape `[n, k]`.
    fn pack_dense(
        device: &Self::Device,
        w: &[f32],
        n: usize,
        k: usize,
    ) -> Result<Self::DenseWeights>;

    /// `y[m, n] = x[m, k] · Wᵀ (+ bias)`. Slices are exactly `m*k`, `n`, `m*n` long.
    fn dense_forward(
        device: &Self::Device,
        w: &Self::DenseWeights,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<()>;

    /// Quantizes row-major weights `[n, k]` with `config` (the CPU backend splits rows over
    /// the device's threads).
    fn quantize(
        _device: &Self::Device,
        w: &[f32],
        n: usize,
        k: usize,
        config: &QuantConfig,
    ) -> Result<QuantizedTensor> {
        crate::quant::quantize::quantize_weights(w, n, k, config, &pool::Executor::Inline)
    }

    /// Packs a quantized weight for activations handled in `mode`.
    fn pack_quant(
        device: &Self::Device,
        q: &QuantizedTensor,
        mode: ActivationMode,
    ) -> Result<Self::QuantWeights>;

    /// Rebuilds the documented logical form from packed weights (exact inverse of packing).
    fn unpack_quant(w: &Self::QuantWeights) -> QuantizedTensor;

    /// Bytes the packed weights occupy.
    fn quant_packed_bytes(w: &Self::QuantWeights) -> usize;

    /// `y[m, n] = x[m, k] · dequant(W)ᵀ (+ bias)`, as [`Backend::dense_forward`].
    fn quant_forward(
        device: &Self::Device,
        w: &Self::QuantWeights,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<()>;
}
