//! Quantization: the recipe (`config`), the interchange tensor (`tensor`), choosing scales
//! and codes (`quantize`), and the private kernel layout (`pack`).

pub mod codebook;
pub mod config;
pub(crate) mod pack;
pub mod quantize;
pub mod reference_formats;
pub mod tensor;

pub use config::{
    ActivationMode, Granularity, QuantConfig, QuantConfigBuilder, ScaleDType, WeightFormat,
    DYN8_BLOCK,
};
pub use tensor::{QuantizedParts, QuantizedTensor};
