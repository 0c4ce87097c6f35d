//! `QuantizedLinear`: a linear layer whose weights are INT8, INT4 or 4-bit codebook codes,
//! dequantized on the fly inside the kernels.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::{bias_values, forward_last_axis, Linear, Module};
use crate::backend::Backend;
use crate::error::Result;
use crate::quant::{
    ActivationMode, Granularity, QuantConfig, QuantizedTensor, ScaleDType, WeightFormat,
};
use crate::tensor::Tensor;

/// What a layer remembers about its quantized weight without keeping the logical copy.
#[derive(Debug, Clone, Copy)]
struct WeightInfo {
    format: WeightFormat,
    granularity: Granularity,
    scale_dtype: ScaleDType,
    symmetric: bool,
    bytes: usize,
}

/// A linear layer with quantized weights. `forward` takes `&self`; one layer may serve
/// many threads at once.
///
/// Only the kernel layout of the weights is kept; [`QuantizedLinear::weight_quantized`]
/// rebuilds the documented logical form on first use and caches it.
pub struct QuantizedLinear<B: Backend> {
    pub in_features: usize,
    pub out_features: usize,
    weights: B::QuantWeights,
    info: WeightInfo,
    mode: ActivationMode,
    logical: OnceLock<QuantizedTensor>,
    bias: Option<Tensor<B>>,
    bias_f32: Option<Vec<f32>>,
    device: B::Device,
    training: AtomicBool,
}

impl<B: Backend> fmt::Debug for QuantizedLinear<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuantizedLinear")
            .field("in_features", &self.in_features)
            .field("out_features", &self.out_features)
            .field("format", &self.info.format)
            .field("granularity", &self.info.granularity)
            .field("symmetric", &self.info.symmetric)
            .field("activations", &self.mode)
            .field("weight_bytes", &self.info.bytes)
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

impl<B: Backend> QuantizedLinear<B> {
    /// Create a QuantizedLinear from a trained Linear layer.
    pub fn from_linear(linear: &Linear<B>, config: &QuantConfig) -> Result<Self> {
        Self::from_linear_on(linear, config, linear.device())
    }

    /// As [`QuantizedLinear::from_linear`], quantizing with `device`'s threads and running there.
    pub fn from_linear_on(
        linear: &Linear<B>,
        config: &QuantConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let w = linear.weight().to_f32_vec();
        let q = B::quantize(device, &w, linear.out_features, linear.in_features, config)?;
        Self::try_new_with_mode(
            q,
            linear.bias().cloned(),
            device.clone(),
            config.activations,
        )
    }

    /// Create from raw quantized data and optional bias tensor.
    ///
    /// # Panics
    /// When the bias does not match the weight's output features or contains NaN/Inf, or
    /// packing fails (out of memory). Use [`QuantizedLinear::try_new`] to get an error instead.
    pub fn new(weight_q: QuantizedTensor, bias: Option<Tensor<B>>, device: B::Device) -> Self {
        match Self::try_new(weight_q, bias, device) {
            Ok(layer) => layer,
            Err(e) => panic!("QuantizedLinear::new: {e}"),
        }
    }

    /// As [`QuantizedLinear::new`], returning an error on inconsistent input. Activations
    /// stay f32 ([`ActivationMode::Exact`]).
    pub fn try_new(
        weight_q: QuantizedTensor,
        bias: Option<Tensor<B>>,
        device: B::Device,
    ) -> Result<Self> {
        Self::try_new_with_mode(weight_q, bias, device, ActivationMode::Exact)
    }

    /// As [`QuantizedLinear::try_new`], with the activation mode chosen.
    pub fn try_new_with_mode(
        weight_q: QuantizedTensor,
        bias: Option<Tensor<B>>,
        device: B::Device,
        mode: ActivationMode,
    ) -> Result<Self> {
        let [out_features, in_features] = weight_q.shape();
        let bias_f32 = bias_values("QuantizedLinear::new", bias.as_ref(), out_features)?;
        let weights = B::pack_quant(&device, &weight_q, mode)?;
        let info = WeightInfo {
            format: weight_q.format(),
            granularity: weight_q.granularity(),
            scale_dtype: weight_q.scale_dtype(),
            symmetric: weight_q.is_symmetric(),
            bytes: weight_q.size_in_bytes(),
        };
        Ok(QuantizedLinear {
            in_features,
            out_features,
            weights,
            info,
            mode,
            logical: OnceLock::new(),
            bias: bias.map(|b| b.with_variable(true)),
            bias_f32,
            device,
            training: AtomicBool::new(true),
        })
    }

    /// Get the quantized weight data (rebuilt from the kernel layout on first call).
    pub fn weight_quantized(&self) -> &QuantizedTensor {
        self.logical.get_or_init(|| B::unpack_quant(&self.weights))
    }

    /// Memory saved compared to FP32 weight storage: `4·in·out` minus every byte the
    /// quantized weight keeps (codes, scales, zero points); 0 if that would be negative.
    pub fn memory_savings_bytes(&self) -> usize {
        (4 * self.in_features * self.out_features).saturating_sub(self.info.bytes)
    }

    /// Bytes of the quantized weight (codes, scales, zero points).
    pub fn weight_bytes(&self) -> usize {
        self.info.bytes
    }

    /// Bytes the kernel layout actually occupies in memory (with tile padding).
    pub fn packed_bytes(&self) -> usize {
        B::quant_packed_bytes(&self.weights)
    }

    /// Bits per code: 8 or 4.
    pub fn bits(&self) -> u8 {
        self.info.format.bits()
    }
    pub fn format(&self) -> WeightFormat {
        self.info.format
    }
    pub fn granularity(&self) -> Granularity {
        self.info.granularity
    }
    pub fn scale_dtype(&self) -> ScaleDType {
        self.info.scale_dtype
    }
    pub fn is_symmetric(&self) -> bool {
        self.info.symmetric
    }
    pub fn activation_mode(&self) -> ActivationMode {
        self.mode
    }
    pub fn bias(&self) -> Option<&Tensor<B>> {
        self.bias.as_ref()
    }
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// `y = x · dequant(W)ᵀ + b` on f32 row-major buffers: `x` is `rows × in`, `y` is
    /// `rows × out`.
    pub fn forward_f32(&self, x: &[f32], rows: usize, y: &mut [f32]) -> Result<()> {
        B::quant_forward(
            &self.device,
            &self.weights,
            x,
            rows,
            self.bias_f32.as_deref(),
            y,
        )
    }
}

impl<B: Backend> Module<B> for QuantizedLinear<B> {
    fn forward(&self, x: &Tensor<B>) -> Result<Tensor<B>> {
        forward_last_axis(
            "QuantizedLinear::forward",
            x,
            self.in_features,
            self.out_features,
            |x, m, y| self.forward_f32(x, m, y),
        )
    }

    /// The bias only: quantized weights are frozen.
    fn parameters(&self) -> Vec<Tensor<B>> {
        self.bias.iter().cloned().collect()
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// The frozen weights (`in·out`) plus the bias.
    fn num_parameters(&self) -> usize {
        self.in_features * self.out_features + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}
