//! Importing f32/f16/bf16 weights from a `.safetensors` file: pick 2-D tensors by name
//! pattern, find each one's bias, quantize, and write a qlinear file.

use std::path::Path;
use std::time::Instant;

use safetensors::{Dtype, SafeTensors};

use crate::backend::{Backend, Cpu};
use crate::error::{Error, Result};
use crate::{CpuDevice, QuantConfig, QuantizedLinear, Tensor};

/// What to import and how to quantize it.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub config: QuantConfig,
    /// Glob patterns (`*` matches any run of characters, everything else literally) over
    /// tensor names; a tensor is taken when any pattern matches. Empty: every 2-D tensor.
    pub include: Vec<String>,
}

/// One imported layer and what quantizing it did.
#[derive(Debug)]
pub struct ImportedLayer {
    /// The weight's name with a trailing `.weight` removed.
    pub name: String,
    pub weight_name: String,
    pub bias_name: Option<String>,
    pub layer: QuantizedLinear<Cpu>,
    /// Bytes of the source weight and bias.
    pub source_bytes: usize,
    /// `‖W − dequant(Q)‖ / ‖W‖` (Frobenius norms; 0 for an all-zero weight).
    pub relative_error: f64,
    pub seconds: f64,
}

/// `*`-glob match: `*` matches any (possibly empty) run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// The bias name of a weight: its last `weight` replaced by `bias`.
fn bias_name(weight: &str) -> Option<String> {
    let i = weight.rfind("weight")?;
    Some(format!("{}bias{}", &weight[..i], &weight[i + 6..]))
}

/// Which 2-D float tensors of `bytes` would be imported, in file order, with their shapes.
pub fn select(bytes: &[u8], include: &[String]) -> Result<Vec<(String, [usize; 2])>> {
    let st = parse(bytes)?;
    let mut chosen: Vec<(usize, String, [usize; 2])> = st
        .iter()
        .filter(|(_, t)| t.shape().len() == 2 && is_float(t.dtype()))
        .filter(|(n, _)| include.is_empty() || include.iter().any(|p| glob_match(p, n)))
        .map(|(n, t)| {
            (
                t.data().as_ptr() as usize,
                n.to_string(),
                [t.shape()[0], t.shape()[1]],
            )
        })
        .collect();
    // File (data offset) order, not the header's hash order.
    chosen.sort();
    Ok(chosen.into_iter().map(|(_, n, s)| (n, s)).collect())
}

fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    SafeTensors::deserialize(bytes).map_err(|e| Error::Corrupt(format!("safetensors: {e}")))
}

/// Quantizes the selected tensors of a safetensors file held in `bytes`, calling `progress`
/// after each layer with its index (from 0), the total and the layer.
pub fn import(
    bytes: &[u8],
    options: &ImportOptions,
    device: &CpuDevice,
    mut progress: impl FnMut(usize, usize, &ImportedLayer),
) -> Result<Vec<ImportedLayer>> {
    options.config.validate()?;
    let chosen = select(bytes, &options.include)?;
    if chosen.is_empty() {
        return Err(Error::invalid(
            "no 2-D f32/f16/bf16 tensor matches the include patterns",
        ));
    }
    let st = parse(bytes)?;
    let mut out = Vec::with_capacity(chosen.len());
    let total = chosen.len();
    for (i, (weight_name, [n, k])) in chosen.into_iter().enumerate() {
        let start = Instant::now();
        let t = st
            .tensor(&weight_name)
            .map_err(|e| Error::Corrupt(format!("safetensors: {e}")))?;
        let w = to_f32(t.dtype(), t.data()).expect("selected tensors are float");
        let mut source_bytes = t.data().len();
        let bias = bias_name(&weight_name)
            .filter(|b| *b != weight_name)
            .and_then(|b| st.tensor(&b).ok().map(|t| (b, t)))
            .filter(|(_, t)| t.shape() == [n] && is_float(t.dtype()));
        let (bias_name, bias) = match bias {
            Some((name, t)) => {
                source_bytes += t.data().len();
                let b = to_f32(t.dtype(), t.data()).expect("float");
                (Some(name), Some(Tensor::from_f32(b, &[n], device)?))
            }
            None => (None, None),
        };
        let q = Cpu::quantize(device, &w, n, k, &options.config)
            .map_err(|e| Error::invalid(format!("{weight_name}: {e}")))?;
        let relative_error = relative_error(&w, &q.dequantize());
        let layer =
            QuantizedLinear::try_new_with_mode(q, bias, device.clone(), options.config.activations)
                .map_err(|e| Error::invalid(format!("{weight_name}: {e}")))?;
        let name = weight_name
            .strip_suffix(".weight")
            .unwrap_or(&weight_name)
            .to_string();
        let imported = ImportedLayer {
            name,
            weight_name,
            bias_name,
            layer,
            source_bytes,
            relative_error,
            seconds: start.elapsed().as_secs_f64(),
        };
        progress(i, total, &imported);
        out.push(imported);
    }
    // Stripping `.weight` must not merge two layers into one name.
    let mut names: Vec<&str> = out.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!(
            "two tensors map to layer name {:?}",
            w[0]
        )));
    }
    Ok(out)
}

/// `‖a − b‖ / ‖a‖` in f64; 0 when `a` is all zeros.
fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (x as f64).powi(2);
    }
    if den == 0.0 {
        0.0
    } else {
        (num / den).sqrt()
    }
}

/// Memory-maps `input` (checkpoints may be larger than RAM), imports it with [`import`] and writes the layers to `output`.
pub fn quantize_file(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    options: &ImportOptions,
    device: &CpuDevice,
    progress: impl FnMut(usize, usize, &ImportedLayer),
) -> Result<Vec<ImportedLayer>> {
    let input = input.as_ref();
    let ioerr = |e: std::io::Error| Error::Io(format!("{}: {e}", input.display()));
    let file = std::fs::File::open(input).map_err(ioerr)?;
    if !file.metadata().map_err(ioerr)?.is_file() {
        return Err(Error::Io(format!(
            "{}: not a regular file",
            input.display()
        )));
    }
    // SAFETY: a read-only mapping used only during this call; the safetensors parser
    // bounds-checks everything it reads. The file must not change while it is imported
    // (a concurrent truncation could raise SIGBUS), as with any memory-mapped input.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(ioerr)?;
    let layers = import(&bytes, options, device, progress)?;
    let named: Vec<(&str, &QuantizedLinear<Cpu>)> =
        layers.iter().map(|l| (l.name.as_str(), &l.layer)).collect();
    super::save(output, &named)?;
    Ok(layers)
}
