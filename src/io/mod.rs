//! Saving and loading quantized layers: the qlinear file format (`docs/FORMAT.md`), a
//! [`QuantizedModel`] of named layers, and importing f32/f16/bf16 weights from safetensors.
//!
//! ```
//! use qlinear::io::{self, QuantizedModel};
//! use qlinear::{CpuDevice, DType, Linear, QuantConfig, QuantizedLinear};
//! # fn main() -> qlinear::Result<()> {
//! let dev = CpuDevice::with_threads(1)?;
//! let linear = Linear::new(64, 16, true, DType::F32, &dev)?;
//! let layer = QuantizedLinear::from_linear(&linear, &QuantConfig::int4())?;
//! let mut bytes = Vec::new();
//! io::write_model(&mut bytes, &[("proj", &layer)])?;
//! let model = QuantizedModel::from_bytes(&bytes, &dev)?;
//! assert_eq!(model.get("proj").unwrap().out_features, 16);
//! # Ok(())
//! # }
//! ```

pub mod checkpoint;
pub mod checksum;
pub mod format;
pub mod import;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use self::format::{
    LayerMeta, LayerOut, ACT_DYN8, ACT_DYN8_PER_ROW, ACT_EXACT, CODES_CODEBOOK, CODES_INTEGER,
    GRAN_CHANNEL, GRAN_GROUP, GRAN_TENSOR,
};
use crate::backend::Cpu;
use crate::error::{Error, Result};
use crate::quant::{ActivationMode, Granularity, QuantizedParts, QuantizedTensor, ScaleDType};
use crate::{CpuDevice, QuantizedLinear, Tensor};

/// Named quantized layers loaded from a file: lookup by name, iteration in file order.
///
/// Layers are held in `Arc`s so a C handle (or another owner) can share one without
/// repacking it.
#[derive(Debug, Default)]
pub struct QuantizedModel {
    layers: Vec<(String, Arc<QuantizedLinear<Cpu>>)>,
    index: HashMap<String, usize>,
}

impl QuantizedModel {
    /// Parses and validates `bytes` as a qlinear file, then packs each layer for `device`
    /// (each layer's checksums are checked before it is packed; any bad layer fails the
    /// whole load). Never trusts the input: any inconsistency is an [`Error::Corrupt`].
    pub fn from_bytes(bytes: &[u8], device: &CpuDevice) -> Result<Self> {
        Self::from_source(bytes, device)
    }

    fn from_source<S: format::Source + ?Sized>(src: &S, device: &CpuDevice) -> Result<Self> {
        let records = format::parse_header(src)?;
        let mut model = QuantizedModel::default();
        for rec in records {
            let sections = format::read_sections(src, &rec)?;
            let layer = decode(&rec.name, &rec.meta, sections, device)?;
            model.index.insert(rec.name.clone(), model.layers.len());
            model.layers.push((rec.name, Arc::new(layer)));
        }
        Ok(model)
    }

    /// Loads a file: reads its header, then each layer's sections straight into the buffers
    /// the layer keeps, one layer at a time (peak memory: the packed model plus one layer).
    /// The file is read, never mapped, so one truncated or rewritten by another process
    /// while it loads gives an error, not a SIGBUS. OS errors are [`Error::Io`].
    pub fn load(path: impl AsRef<Path>, device: &CpuDevice) -> Result<Self> {
        let path = path.as_ref();
        let file = crate::os::open_regular(path)?;
        let total = file
            .metadata()
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?
            .len();
        let src = FileSource { file, path, total };
        Self::from_source(&src, device).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layer called `name`.
    pub fn get(&self, name: &str) -> Option<&QuantizedLinear<Cpu>> {
        self.index.get(name).map(|&i| &*self.layers[i].1)
    }

    /// The layer called `name`, shared.
    pub fn get_shared(&self, name: &str) -> Option<Arc<QuantizedLinear<Cpu>>> {
        self.index.get(name).map(|&i| self.layers[i].1.clone())
    }

    /// Name of the `i`-th layer in file order.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.layers.get(i).map(|(n, _)| n.as_str())
    }

    /// `(name, layer)` in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &QuantizedLinear<Cpu>)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), &**l))
    }

    /// Saves every layer, in order, to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let layers: Vec<(&str, &QuantizedLinear<Cpu>)> = self.iter().collect();
        save(path, &layers)
    }
}

/// What a file stores of one layer: its quantized weights, bias and activation mode.
#[derive(Debug, Clone, Copy)]
pub struct LayerData<'a> {
    pub name: &'a str,
    pub weights: &'a QuantizedTensor,
    pub bias: Option<&'a [f32]>,
    pub mode: ActivationMode,
}

/// A file read piece by piece into owned buffers.
struct FileSource<'a> {
    file: std::fs::File,
    path: &'a Path,
    total: u64,
}

impl format::Source for FileSource<'_> {
    fn total_len(&self) -> u64 {
        self.total
    }
    fn read(&self, offset: u64, len: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        crate::os::read_at(&self.file, self.path, offset, len).map(std::borrow::Cow::Owned)
    }
}

/// The record fields and section bytes (scales, zero points and bias encoded) of a layer.
fn encode(layer: &LayerData<'_>) -> (LayerMeta, [Vec<u8>; 3]) {
    let q = layer.weights;
    let (granularity, group_size) = match q.granularity() {
        Granularity::PerTensor => (GRAN_TENSOR, 0),
        Granularity::PerChannel => (GRAN_CHANNEL, 0),
        // Validated to be 32..=1024 at construction.
        Granularity::Group(g) => (GRAN_GROUP, g as u32),
    };
    let scales: Vec<u8> = match q.scale_dtype() {
        ScaleDType::F32 => q.scales().iter().flat_map(|s| s.to_le_bytes()).collect(),
        ScaleDType::F16 => q
            .scales()
            .iter()
            .flat_map(|&s| half::f16::from_f32(s).to_le_bytes())
            .collect(),
    };
    // The zero-point section holds the levels of a codebook layer (which has no zeros).
    let params: Vec<u8> = match q.codebook() {
        Some(levels) => levels.iter().map(|&l| l as u8).collect(),
        None => q.zero_points().iter().map(|&z| z as u8).collect(),
    };
    let bias: Vec<u8> = layer
        .bias
        .map(|b| b.iter().flat_map(|v| v.to_le_bytes()).collect())
        .unwrap_or_default();
    let meta = LayerMeta {
        bits: q.bits(),
        code_format: if q.codebook().is_some() {
            CODES_CODEBOOK
        } else {
            CODES_INTEGER
        },
        granularity,
        symmetric: q.is_symmetric(),
        scale_dtype: match q.scale_dtype() {
            ScaleDType::F32 => 0,
            ScaleDType::F16 => 1,
        },
        activation: match layer.mode {
            ActivationMode::Exact => ACT_EXACT,
            ActivationMode::Dyn8 => ACT_DYN8,
            ActivationMode::Dyn8PerRow => ACT_DYN8_PER_ROW,
        },
        has_bias: layer.bias.is_some(),
        group_size,
        out_features: q.out_features() as u64,
        in_features: q.in_features() as u64,
    };
    (meta, [scales, params, bias])
}

/// Builds (and packs) a layer from validated sections. Anything the core rejects (NaN
/// scales, a set high nibble...) is reported as corruption of that layer.
fn decode(
    name: &str,
    m: &LayerMeta,
    sections: [std::borrow::Cow<'_, [u8]>; 4],
    device: &CpuDevice,
) -> Result<QuantizedLinear<Cpu>> {
    let bad = |e: Error| match e {
        Error::OutOfMemory { .. } => e,
        e => Error::Corrupt(format!("layer {name:?}: {e}")),
    };
    let [codes, scales_bytes, params, bias_bytes] = sections;
    let scales: Vec<f32> = if m.scale_dtype == 0 {
        scales_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        scales_bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()
    };
    let parts = QuantizedParts {
        // Lengths were checked against these sizes, so they fit in usize.
        out_features: m.out_features as usize,
        in_features: m.in_features as usize,
        bits: m.bits,
        granularity: match m.granularity {
            GRAN_TENSOR => Granularity::PerTensor,
            GRAN_CHANNEL => Granularity::PerChannel,
            _ => Granularity::Group(m.group_size as usize),
        },
        scale_dtype: if m.scale_dtype == 0 {
            ScaleDType::F32
        } else {
            ScaleDType::F16
        },
        // An owned section (read from a file) becomes the tensor's buffer without a copy.
        data: codes.into_owned(),
        scales,
        zero_points: if m.code_format == CODES_INTEGER {
            params.iter().map(|&z| z as i8).collect()
        } else {
            Vec::new()
        },
        codebook: (m.code_format == CODES_CODEBOOK)
            .then(|| std::array::from_fn(|i| params[i] as i8)),
    };
    let q = QuantizedTensor::from_parts(parts).map_err(bad)?;
    let bias = if m.has_bias {
        let b: Vec<f32> = bias_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let len = b.len();
        Some(Tensor::from_f32(b, &[len], device).map_err(bad)?)
    } else {
        None
    };
    let mode = match m.activation {
        ACT_EXACT => ActivationMode::Exact,
        ACT_DYN8 => ActivationMode::Dyn8,
        _ => ActivationMode::Dyn8PerRow,
    };
    QuantizedLinear::try_new_with_mode(q, bias, device.clone(), mode).map_err(bad)
}

/// Writes `layers` (name, layer), in order, as a qlinear file to `w`. Names must be unique,
/// at most 4096 bytes and free of NUL. Builds each layer's logical weights if not cached yet.
pub fn write_model<W: Write + ?Sized>(
    w: &mut W,
    layers: &[(&str, &QuantizedLinear<Cpu>)],
) -> Result<()> {
    let biases: Vec<Option<Vec<f32>>> = layers
        .iter()
        .map(|(_, l)| l.bias().map(|b| b.to_f32_vec()))
        .collect();
    let data: Vec<LayerData<'_>> = layers
        .iter()
        .zip(&biases)
        .map(|((name, l), bias)| LayerData {
            name,
            weights: l.weight_quantized(),
            bias: bias.as_deref(),
            mode: l.activation_mode(),
        })
        .collect();
    write_layers(w, &data)
}

/// Writes layers given as [`LayerData`] (no packed layer needed), in order, to `w`.
pub fn write_layers<W: Write + ?Sized>(w: &mut W, layers: &[LayerData<'_>]) -> Result<()> {
    let encoded: Vec<_> = layers.iter().map(encode).collect();
    let out: Vec<LayerOut<'_>> = layers
        .iter()
        .zip(&encoded)
        .map(|(l, (meta, [scales, params, bias]))| LayerOut {
            name: l.name,
            meta: *meta,
            sections: [l.weights.data(), scales, params, bias],
        })
        .collect();
    format::write_file(w, &out)
}

/// Saves `layers` to `path` crash-safely: the file at `path` is always either what was there
/// before or the complete new file, never a torn one (see [`crate::os::replace_file`]).
pub fn save(path: impl AsRef<Path>, layers: &[(&str, &QuantizedLinear<Cpu>)]) -> Result<()> {
    crate::os::replace_file(path.as_ref(), |w| write_model(w, layers))
}

/// The bytes of a qlinear file holding `layers` (what [`save`] writes).
pub fn to_bytes(layers: &[(&str, &QuantizedLinear<Cpu>)]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    write_model(&mut bytes, layers)?;
    Ok(bytes)
}

/// Saves one layer under the name `"layer"`.
pub fn save_layer(path: impl AsRef<Path>, layer: &QuantizedLinear<Cpu>) -> Result<()> {
    save(path, &[("layer", layer)])
}
