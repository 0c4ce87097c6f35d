//! `Linear`: the f32 (or f16/bf16-stored) dense layer, and the baseline quantization is
//! measured against.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{bias_values, forward_last_axis, Module};
use crate::backend::Backend;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::tensor::Tensor;

/// `y = x · Wᵀ + b` with `W` of shape `[out_features, in_features]`.
pub struct Linear<B: Backend> {
    pub in_features: usize,
    pub out_features: usize,
    weight: Tensor<B>,
    bias: Option<Tensor<B>>,
    bias_f32: Option<Vec<f32>>,
    packed: B::DenseWeights,
    device: B::Device,
    training: AtomicBool,
}

impl<B: Backend> fmt::Debug for Linear<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Linear")
            .field("in_features", &self.in_features)
            .field("out_features", &self.out_features)
            .field("dtype", &self.weight.dtype())
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

/// Seeds handed out by [`Linear::new`]: a deterministic sequence per process.
static NEXT_SEED: AtomicU64 = AtomicU64::new(0x5EED);

impl<B: Backend> Linear<B> {
    /// A layer initialised like PyTorch: weights and bias uniform in `±1/√in_features`,
    /// stored as `dtype`. Seeds come from a per-process sequence; use
    /// [`Linear::new_seeded`] to choose one.
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self> {
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        Self::new_seeded(in_features, out_features, bias, dtype, device, seed)
    }

    /// As [`Linear::new`], with weights drawn from `seed`.
    pub fn new_seeded(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        device: &B::Device,
        seed: u64,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::invalid(format!(
                "Linear needs non-zero sizes, got in_features={in_features}, out_features={out_features}"
            )));
        }
        let count = crate::error::checked_product(&[in_features, out_features], "Linear weight")?;
        let bound = 1.0 / (in_features as f32).sqrt();
        let mut rng = SplitMix64::new(seed);
        let w = rng.uniform_vec(count, -bound, bound);
        let weight = Tensor::from_f32_as(&w, &[out_features, in_features], dtype, device)?;
        let bias = if bias {
            let b = rng.uniform_vec(out_features, -bound, bound);
            Some(Tensor::from_f32_as(&b, &[out_features], dtype, device)?)
        } else {
            None
        };
        Self::from_tensors(weight, bias)
    }

    /// A layer with the given weight `[out, in]` and optional bias `[out]`.
    pub fn from_tensors(weight: Tensor<B>, bias: Option<Tensor<B>>) -> Result<Self> {
        let &[out_features, in_features] = weight.shape() else {
            return Err(Error::shape(
                "Linear::from_tensors",
                "weight of shape [out_features, in_features]",
                format!("{:?}", weight.shape()),
            ));
        };
        if in_features == 0 || out_features == 0 {
            return Err(Error::invalid(format!(
                "Linear needs non-zero sizes, got weight shape {:?}",
                weight.shape()
            )));
        }
        let bias_f32 = bias_values("Linear::from_tensors", bias.as_ref(), out_features)?;
        let w = weight.to_f32_vec();
        crate::error::check_finite(&w, "weights")?;
        let device = weight.device().clone();
        let packed = B::pack_dense(&device, &w, out_features, in_features)?;
        Ok(Linear {
            in_features,
            out_features,
            weight: weight.with_variable(true),
            bias: bias.map(|b| b.with_variable(true)),
            bias_f32,
            packed,
            device,
            training: AtomicBool::new(true),
        })
    }

    /// The weight `[out_features, in_features]`.
    pub fn weight(&self) -> &Tensor<B> {
        &self.weight
    }

    /// The bias `[out_features]`, if any.
    pub fn bias(&self) -> Option<&Tensor<B>> {
        self.bias.as_ref()
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// `y = x · Wᵀ + b` on f32 row-major buffers: `x` is `rows × in`, `y` is `rows × out`.
    pub fn forward_f32(&self, x: &[f32], rows: usize, y: &mut [f32]) -> Result<()> {
        B::dense_forward(
            &self.device,
            &self.packed,
            x,
            rows,
            self.bias_f32.as_deref(),
            y,
        )
    }
}

impl<B: Backend> Module<B> for Linear<B> {
    fn forward(&self, x: &Tensor<B>) -> Result<Tensor<B>> {
        forward_last_axis(
            "Linear::forward",
            x,
            self.in_features,
            self.out_features,
            |x, m, y| self.forward_f32(x, m, y),
        )
    }

    fn parameters(&self) -> Vec<Tensor<B>> {
        std::iter::once(self.weight.clone())
            .chain(self.bias.clone())
            .collect()
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}
