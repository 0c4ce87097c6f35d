//! `Tensor<B>`: an n-dimensional array of f32, f16 or bf16 on a backend's device.
//!
//! Storage is host memory shared by reference counting (cloning a tensor is cheap);
//! tensors are immutable once built.

use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::dtype::{bf16, f16, DType};
use crate::error::{checked_product, Error, Result};

/// Element storage of a tensor.
#[derive(Clone, PartialEq)]
pub(crate) enum Storage {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

impl Storage {
    fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
        }
    }

    /// Converts `values` to the element type `dtype` (rounding to nearest even).
    fn from_f32(values: &[f32], dtype: DType) -> Storage {
        match dtype {
            DType::F32 => Storage::F32(values.to_vec()),
            DType::F16 => Storage::F16(values.iter().map(|&v| f16::from_f32(v)).collect()),
            DType::BF16 => Storage::BF16(values.iter().map(|&v| bf16::from_f32(v)).collect()),
        }
    }
}

/// An immutable n-dimensional tensor on the device of backend `B`.
///
/// `is_variable` marks a trainable parameter (see [`crate::Module::frozen_parameters`]).
pub struct Tensor<B: Backend> {
    storage: Arc<Storage>,
    shape: Vec<usize>,
    is_variable: bool,
    device: B::Device,
}

impl<B: Backend> Clone for Tensor<B> {
    fn clone(&self) -> Self {
        Tensor {
            storage: Arc::clone(&self.storage),
            shape: self.shape.clone(),
            is_variable: self.is_variable,
            device: self.device.clone(),
        }
    }
}

impl<B: Backend> fmt::Debug for Tensor<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype())
            .field("is_variable", &self.is_variable)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Tensor<B> {
    fn from_storage(storage: Storage, shape: &[usize], device: &B::Device) -> Result<Self> {
        let expected = checked_product(shape, "tensor shape")?;
        if expected != storage.len() {
            return Err(Error::shape(
                "Tensor::new",
                format!("{expected} elements for shape {shape:?}"),
                format!("{} elements", storage.len()),
            ));
        }
        Ok(Tensor {
            storage: Arc::new(storage),
            shape: shape.to_vec(),
            is_variable: false,
            device: device.clone(),
        })
    }

    /// A tensor of f32 `data` with `shape` (row-major).
    pub fn from_f32(data: Vec<f32>, shape: &[usize], device: &B::Device) -> Result<Self> {
        Self::from_storage(Storage::F32(data), shape, device)
    }

    /// A tensor of f16 `data` with `shape` (row-major).
    pub fn from_f16(data: Vec<f16>, shape: &[usize], device: &B::Device) -> Result<Self> {
        Self::from_storage(Storage::F16(data), shape, device)
    }

    /// A tensor of bf16 `data` with `shape` (row-major).
    pub fn from_bf16(data: Vec<bf16>, shape: &[usize], device: &B::Device) -> Result<Self> {
        Self::from_storage(Storage::BF16(data), shape, device)
    }

    /// A tensor of `dtype` holding `values` rounded to that type.
    pub fn from_f32_as(
        values: &[f32],
        shape: &[usize],
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self> {
        Self::from_storage(Storage::from_f32(values, dtype), shape, device)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType, device: &B::Device) -> Result<Self> {
        let n = checked_product(shape, "tensor shape")?;
        Self::from_f32_as(&vec![0.0; n], shape, dtype, device)
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The size of the last dimension (1 for a scalar).
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.storage.len()
    }

    /// The device the tensor lives on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Whether this tensor is a trainable parameter.
    pub fn is_variable(&self) -> bool {
        self.is_variable
    }

    /// The same data, marked trainable (`true`) or frozen (`false`).
    pub fn with_variable(&self, is_variable: bool) -> Self {
        Tensor {
            is_variable,
            ..self.clone()
        }
    }

    /// The f32 data without copying, when the tensor holds f32.
    pub fn as_f32_slice(&self) -> Option<&[f32]> {
        match &*self.storage {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements converted to f32 (exact for every dtype).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &*self.storage {
            Storage::F32(v) => v.clone(),
            Storage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Storage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
        }
    }

    /// A copy converted to `dtype` (rounding to nearest even when narrowing).
    pub fn to_dtype(&self, dtype: DType) -> Self {
        if dtype == self.dtype() {
            return self.clone();
        }
        let storage = Storage::from_f32(&self.to_f32_vec(), dtype);
        Tensor {
            storage: Arc::new(storage),
            ..self.clone()
        }
    }

    /// The same elements viewed with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let n = checked_product(shape, "reshape")?;
        if n != self.elem_count() {
            return Err(Error::shape(
                "Tensor::reshape",
                format!("a shape of {} elements", self.elem_count()),
                format!("{shape:?} ({n} elements)"),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }
}
