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

pub mod checksum;
pub mod format;
pub mod safetensors;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use self::format::{
    LayerIn, LayerMeta, LayerOut, ACT_DYN8, ACT_DYN8_PER_ROW, ACT_EXACT, BIAS, CODES,
    CODES_CODEBOOK, CODES_INTEGER, GRAN_CHANNEL, GRAN_GROUP, GRAN_TENSOR, SCALES, ZEROS,
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
    /// Parses and validates `bytes` as a qlinear file (every checksum is checked before
    /// anything is packed), then packs each layer for `device`. Never trusts the input:
    /// any inconsistency is an [`Error::Corrupt`].
    pub fn from_bytes(bytes: &[u8], device: &CpuDevice) -> Result<Self> {
        let parsed = format::parse(bytes)?;
        let mut model = QuantizedModel::default();
        for l in parsed {
            let layer = decode(&l, device)?;
            model.index.insert(l.name.to_string(), model.layers.len());
            model.layers.push((l.name.to_string(), Arc::new(layer)));
        }
        Ok(model)
    }

    /// Loads a file by memory-mapping it (no copy of the whole file is made; the layers are
    /// packed from the mapping, which is dropped before returning). OS errors are
    /// [`Error::Io`].
    pub fn load(path: impl AsRef<Path>, device: &CpuDevice) -> Result<Self> {
        let path = path.as_ref();
        let ioerr = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
        let file = File::open(path).map_err(ioerr)?;
        let meta = file.metadata().map_err(ioerr)?;
        if !meta.is_file() {
            return Err(Error::Io(format!("{}: not a regular file", path.display())));
        }
        if meta.len() == 0 {
            // Mapping an empty file fails on some systems; it is simply truncated.
            return Self::from_bytes(&[], device);
        }
        // SAFETY: the mapping is read-only and private to this call. Another process
        // truncating or rewriting the file while we read it could change the bytes under us
        // (or raise SIGBUS); the parser checks every byte it uses, so changed bytes can only
        // produce an error, and files are expected not to change while being loaded.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(ioerr)?;
        Self::from_bytes(&map, device).map_err(|e| match e {
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

/// The record fields and section bytes (scales, zero points and bias encoded) of a layer.
fn encode(layer: &QuantizedLinear<Cpu>) -> (LayerMeta, [Vec<u8>; 3]) {
    let q = layer.weight_quantized();
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
        .bias()
        .map(|b| {
            b.to_f32_vec()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        })
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
        activation: match layer.activation_mode() {
            ActivationMode::Exact => ACT_EXACT,
            ActivationMode::Dyn8 => ACT_DYN8,
            ActivationMode::Dyn8PerRow => ACT_DYN8_PER_ROW,
        },
        has_bias: layer.bias().is_some(),
        group_size,
        out_features: layer.out_features as u64,
        in_features: layer.in_features as u64,
    };
    (meta, [scales, params, bias])
}

/// Builds (and packs) a layer from validated sections. Anything the core rejects (NaN
/// scales, a set high nibble...) is reported as corruption of that layer.
fn decode(l: &LayerIn<'_>, device: &CpuDevice) -> Result<QuantizedLinear<Cpu>> {
    let m = &l.meta;
    let bad = |e: Error| match e {
        Error::OutOfMemory { .. } => e,
        e => Error::Corrupt(format!("layer {:?}: {e}", l.name)),
    };
    let scales: Vec<f32> = if m.scale_dtype == 0 {
        l.sections[SCALES]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        l.sections[SCALES]
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
        data: l.sections[CODES].to_vec(),
        scales,
        zero_points: if m.code_format == CODES_INTEGER {
            l.sections[ZEROS].iter().map(|&z| z as i8).collect()
        } else {
            Vec::new()
        },
        codebook: (m.code_format == CODES_CODEBOOK)
            .then(|| std::array::from_fn(|i| l.sections[ZEROS][i] as i8)),
    };
    let q = QuantizedTensor::from_parts(parts).map_err(bad)?;
    let bias = if m.has_bias {
        let b: Vec<f32> = l.sections[BIAS]
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
pub fn write_model<W: Write>(w: &mut W, layers: &[(&str, &QuantizedLinear<Cpu>)]) -> Result<()> {
    let encoded: Vec<_> = layers.iter().map(|(_, l)| encode(l)).collect();
    let out: Vec<LayerOut<'_>> = layers
        .iter()
        .zip(&encoded)
        .map(|((name, l), (meta, [scales, params, bias]))| LayerOut {
            name,
            meta: *meta,
            sections: [l.weight_quantized().data(), scales, params, bias],
        })
        .collect();
    format::write_file(w, &out)
}

/// Saves `layers` to `path` (created or truncated).
pub fn save(path: impl AsRef<Path>, layers: &[(&str, &QuantizedLinear<Cpu>)]) -> Result<()> {
    let path = path.as_ref();
    let ioerr = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let mut w = BufWriter::new(File::create(path).map_err(ioerr)?);
    write_model(&mut w, layers)?;
    w.into_inner()
        .map_err(|e| ioerr(e.into_error()))?
        .sync_all()
        .map_err(ioerr)
}

/// Saves one layer under the name `"layer"`.
pub fn save_layer(path: impl AsRef<Path>, layer: &QuantizedLinear<Cpu>) -> Result<()> {
    save(path, &[("layer", layer)])
}
