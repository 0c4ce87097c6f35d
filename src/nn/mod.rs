//! Layers: the `Module` trait, the f32 `Linear` and the `QuantizedLinear`.

pub mod linear;
pub mod quantized_linear;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

pub use linear::Linear;
pub use quantized_linear::QuantizedLinear;

/// A layer: a computation plus its parameters.
pub trait Module<B: Backend>: Send + Sync + std::fmt::Debug {
    /// The layer's computation.
    fn forward(&self, x: &Tensor<B>) -> Result<Tensor<B>>;

    /// All trainable parameters (copies sharing storage).
    fn parameters(&self) -> Vec<Tensor<B>>;

    /// Switches training / evaluation mode (interior mutability: `&self`).
    fn set_training(&self, training: bool);

    /// Whether the module is in training mode. Modules start in training mode.
    fn is_training(&self) -> bool {
        true
    }

    /// Total scalar parameters of the module.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Tensor::elem_count).sum()
    }

    /// Scalars in variable (trainable) tensors.
    fn trainable_params_count(&self) -> usize {
        self.parameters()
            .iter()
            .filter(|t| t.is_variable())
            .map(Tensor::elem_count)
            .sum()
    }

    /// The parameters as new tensors marked frozen (`is_variable = false`).
    fn frozen_parameters(&self) -> Vec<Tensor<B>> {
        self.parameters()
            .iter()
            .map(|t| t.with_variable(false))
            .collect()
    }
}

/// Runs `y = x · Wᵀ + b` over the last axis of `x` with `matmul(x_f32, rows, y_f32)`,
/// keeping the leading dims and returning `x`'s dtype.
pub(crate) fn forward_last_axis<B: Backend>(
    op: &'static str,
    x: &Tensor<B>,
    in_features: usize,
    out_features: usize,
    matmul: impl FnOnce(&[f32], usize, &mut [f32]) -> Result<()>,
) -> Result<Tensor<B>> {
    let shape = x.shape();
    if shape.is_empty() || x.last_dim() != in_features {
        return Err(Error::shape(
            op,
            format!("input with last dimension {in_features}"),
            format!("shape {shape:?}"),
        ));
    }
    let rows = x.elem_count() / in_features;
    if rows == 0 {
        return Err(Error::invalid(format!(
            "{op}: input shape {shape:?} has no rows"
        )));
    }
    let converted;
    let xs = match x.as_f32_slice() {
        Some(s) => s,
        None => {
            converted = x.to_f32_vec();
            &converted
        }
    };
    let mut y = vec![0f32; rows * out_features];
    matmul(xs, rows, &mut y)?;
    let mut out_shape = shape.to_vec();
    *out_shape.last_mut().expect("rank checked above") = out_features;
    let out = Tensor::from_f32(y, &out_shape, x.device())?;
    Ok(out.to_dtype(x.dtype()))
}

/// Checks a bias tensor against `out_features` and returns its values as f32.
pub(crate) fn bias_values<B: Backend>(
    op: &'static str,
    bias: Option<&Tensor<B>>,
    out_features: usize,
) -> Result<Option<Vec<f32>>> {
    let Some(b) = bias else { return Ok(None) };
    if b.shape() != [out_features] {
        return Err(Error::shape(
            op,
            format!("bias of shape [{out_features}]"),
            format!("{:?}", b.shape()),
        ));
    }
    let v = b.to_f32_vec();
    crate::error::check_finite(&v, "bias")?;
    Ok(Some(v))
}
