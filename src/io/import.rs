//! Quantizing a checkpoint into a qlinear file: choose the 2-D float tensors (by name
//! pattern), pair each with its bias, quantize them one after another on all the device's
//! threads, measure each one's error, and write the file crash-safely at the end.
//!
//! Streaming: a tensor is read from its shard when its turn comes and dropped once quantized,
//! so memory holds the quantized output plus about two f32 copies of the largest tensor,
//! never the checkpoint.

use std::path::Path;
use std::time::Instant;

use super::checkpoint::{Checkpoint, TensorInfo};
use super::LayerData;
use crate::backend::pool::Executor;
use crate::error::{Error, Result};
use crate::quant::quantize::quantize_weights;
use crate::quant::{Granularity, QuantizedTensor};
use crate::rng::SplitMix64;
use crate::{CpuDevice, QuantConfig};

/// What to import and how to quantize it.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub config: QuantConfig,
    /// Glob patterns (`*` matches any run of characters, everything else literally) over
    /// tensor names; a tensor is taken when any pattern matches. Empty: every 2-D float
    /// tensor.
    pub include: Vec<String>,
    /// Skip a bad tensor (non-finite values, a dtype other than f32/f16/bf16, not 2-D, when
    /// an include pattern named it) with a report instead of failing the whole import.
    pub skip_bad: bool,
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

/// The bias name of a weight: its last `weight` replaced by `bias`.
fn bias_name(weight: &str) -> Option<String> {
    let i = weight.rfind("weight")?;
    Some(format!("{}bias{}", &weight[..i], &weight[i + 6..]))
}

/// One tensor the import will take, or would refuse.
#[derive(Debug, Clone)]
pub enum Planned {
    Layer {
        /// The layer's name: the weight's without a trailing `.weight`.
        name: String,
        weight: TensorInfo,
        bias: Option<TensorInfo>,
        /// Bytes of the quantized weight (codes, scales, zero points).
        quantized_bytes: usize,
    },
    /// A tensor an include pattern named that cannot become a layer.
    Bad { name: String, reason: String },
}

/// Bytes `config` stores for a `[n, k]` weight (as `QuantizedTensor::size_in_bytes`).
fn quantized_size(config: &QuantConfig, n: usize, k: usize) -> usize {
    let row = if config.bits() == 8 { k } else { k.div_ceil(2) };
    let scales = match config.granularity {
        Granularity::PerTensor => 1,
        Granularity::PerChannel => n,
        Granularity::Group(g) => n * k.div_ceil(g),
    };
    let zeros = if config.symmetric { 0 } else { scales };
    n * row + scales * config.scale_dtype.size_in_bytes() + zeros
}

/// What importing `ckpt` with `options` does, in checkpoint order, without reading any data.
pub fn plan(ckpt: &Checkpoint, options: &ImportOptions) -> Result<Vec<Planned>> {
    options.config.validate()?;
    let named = |n: &str| options.include.iter().any(|p| glob_match(p, n));
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for t in ckpt.tensors() {
        let wanted = t.shape.len() == 2 && t.dtype.is_float();
        if !(if options.include.is_empty() {
            wanted
        } else {
            named(&t.name)
        }) {
            continue;
        }
        if !wanted {
            // Biases of taken weights match broad patterns too: they are not bad.
            let is_bias_of_a_weight = t.shape.len() == 1
                && ckpt.tensors().iter().any(|w| {
                    w.shape.len() == 2 && bias_name(&w.name).as_deref() == Some(t.name.as_str())
                });
            if !is_bias_of_a_weight {
                let reason = if t.dtype.is_float() {
                    format!("{}-D, not a 2-D weight", t.shape.len())
                } else {
                    format!("dtype {}, not f32/f16/bf16", t.dtype.name())
                };
                out.push(Planned::Bad {
                    name: t.name.clone(),
                    reason,
                });
            }
            continue;
        }
        let (n, k) = (t.shape[0], t.shape[1]);
        let bias = bias_name(&t.name)
            .filter(|b| *b != t.name)
            .and_then(|b| ckpt.get(&b))
            .filter(|b| b.shape == [n] && b.dtype.is_float())
            .cloned();
        let name = t
            .name
            .strip_suffix(".weight")
            .unwrap_or(&t.name)
            .to_string();
        if !names.insert(name.clone()) {
            return Err(Error::invalid(format!(
                "two tensors map to layer name {name:?}"
            )));
        }
        out.push(Planned::Layer {
            name,
            weight: t.clone(),
            bias,
            quantized_bytes: quantized_size(&options.config, n, k),
        });
    }
    if !out.iter().any(|p| matches!(p, Planned::Layer { .. })) && !options.skip_bad {
        return Err(Error::invalid(
            "no 2-D f32/f16/bf16 tensor matches the include patterns",
        ));
    }
    Ok(out)
}

/// One quantized layer and what quantizing it did.
#[derive(Debug, Clone)]
pub struct ImportedLayer {
    pub name: String,
    pub weight_name: String,
    pub bias_name: Option<String>,
    /// `[out, in]`.
    pub shape: [usize; 2],
    /// Bytes of the source weight and bias, and of the quantized weight.
    pub source_bytes: usize,
    pub quantized_bytes: usize,
    /// `‖W − Ŵ‖ / ‖W‖` (Frobenius; 0 for an all-zero weight).
    pub weight_error: f64,
    /// `‖x·Ŵᵀ − x·Wᵀ‖ / ‖x·Wᵀ‖` on [`PROBE_ROWS`] random inputs with outlier channels (exact
    /// activations; dyn8 adds its activation rounding on top).
    pub output_error: f64,
    pub seconds: f64,
}

/// Rows of random input each layer's output error is measured on.
pub const PROBE_ROWS: usize = 4;

/// Progress of [`quantize_checkpoint`].
#[derive(Debug)]
pub enum Event<'a> {
    /// Layer `index` of `total` is being read and quantized (`weights_done` of
    /// `weights_total` weights are done).
    Started {
        index: usize,
        total: usize,
        name: &'a str,
        weights_done: usize,
        weights_total: usize,
    },
    Done {
        index: usize,
        total: usize,
        layer: &'a ImportedLayer,
    },
    Skipped {
        name: &'a str,
        reason: &'a str,
    },
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub layers: Vec<ImportedLayer>,
    /// Tensors left out, with why.
    pub skipped: Vec<(String, String)>,
    pub weights: usize,
    pub seconds: f64,
}

/// A layer kept for writing: its quantized weight and bias.
struct Kept {
    name: String,
    weights: QuantizedTensor,
    bias: Option<Vec<f32>>,
}

/// Weight and output error of `q` against `w` (`[n, k]`), rows split over `exec`.
fn errors(w: &[f32], q: &QuantizedTensor, exec: &Executor) -> Result<(f64, f64)> {
    let [n, k] = q.shape();
    let mut rng = SplitMix64::new(0x51_4c);
    let mut x: Vec<f32> = (0..PROBE_ROWS * k).map(|_| rng.normal()).collect();
    for _ in 0..k.div_ceil(256) {
        let c = (rng.next_u64() % k as u64) as usize;
        for r in 0..PROBE_ROWS {
            x[r * k + c] *= 30.0;
        }
    }
    // Per task: Σ(w − ŵ)², Σw², and per probe row Σ(y − ŷ)², Σy².
    const ROWS: usize = 64;
    let tasks = n.div_ceil(ROWS);
    let parts = std::sync::Mutex::new(vec![[0f64; 2 + 2 * PROBE_ROWS]; tasks]);
    exec.run(tasks, &|t| {
        let mut acc = [0f64; 2 + 2 * PROBE_ROWS];
        let mut row = vec![0f32; k];
        for r in t * ROWS..((t + 1) * ROWS).min(n) {
            q.dequantize_row(r, &mut row);
            let wr = &w[r * k..(r + 1) * k];
            for (a, b) in wr.iter().zip(&row) {
                acc[0] += ((a - b) as f64).powi(2);
                acc[1] += (*a as f64).powi(2);
            }
            for p in 0..PROBE_ROWS {
                let xr = &x[p * k..(p + 1) * k];
                let (y, yq) = (dot(xr, wr), dot(xr, &row));
                acc[2 + 2 * p] += (y - yq).powi(2);
                acc[3 + 2 * p] += y * y;
            }
        }
        parts.lock().unwrap()[t] = acc;
    })?;
    let mut total = [0f64; 2 + 2 * PROBE_ROWS];
    for p in parts.into_inner().unwrap() {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    let ratio = |num: f64, den: f64| if den > 0.0 { (num / den).sqrt() } else { 0.0 };
    let (num, den) = (1..=PROBE_ROWS).fold((0.0, 0.0), |(a, b), p| {
        (a + total[2 * p], b + total[2 * p + 1])
    });
    Ok((ratio(total[0], total[1]), ratio(num, den)))
}

/// `a · b` in eight f32 lanes (so it vectorizes), summed in f64.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// Quantizes the checkpoint at `input` (a `.safetensors` file, a sharded index, or a directory)
/// into the qlinear file `output`, calling `progress` as it goes. The output is written once,
/// at the end, crash-safely: an error or a kill leaves whatever was at `output` untouched.
pub fn quantize_checkpoint(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    options: &ImportOptions,
    device: &CpuDevice,
    mut progress: impl FnMut(&Event<'_>),
) -> Result<ImportReport> {
    let start = Instant::now();
    let ckpt = Checkpoint::open(input)?;
    let planned = plan(&ckpt, options)?;
    let total = planned
        .iter()
        .filter(|p| matches!(p, Planned::Layer { .. }))
        .count();
    let weights_total: usize = planned
        .iter()
        .map(|p| match p {
            Planned::Layer { weight, .. } => weight.elements(),
            _ => 0,
        })
        .sum();
    let mut report = ImportReport::default();
    let mut kept = Vec::with_capacity(total);
    // A bad tensor fails the import, or with `skip_bad` is reported and left out.
    let skip = |report: &mut ImportReport,
                progress: &mut dyn FnMut(&Event<'_>),
                name: &str,
                reason: String|
     -> Result<()> {
        if !options.skip_bad {
            return Err(Error::invalid(format!("{name}: {reason}")));
        }
        progress(&Event::Skipped {
            name,
            reason: &reason,
        });
        report.skipped.push((name.to_string(), reason));
        Ok(())
    };
    let mut index = 0;
    for p in &planned {
        let (name, weight, bias, quantized_bytes) = match p {
            Planned::Bad { name, reason } => {
                skip(&mut report, &mut progress, name, reason.clone())?;
                continue;
            }
            Planned::Layer {
                name,
                weight,
                bias,
                quantized_bytes,
            } => (name, weight, bias, *quantized_bytes),
        };
        let t = Instant::now();
        progress(&Event::Started {
            index,
            total,
            name,
            weights_done: report.weights,
            weights_total,
        });
        let (n, k) = (weight.shape[0], weight.shape[1]);
        let w = ckpt.read_f32(weight)?;
        let q = match quantize_weights(&w, n, k, &options.config, device.executor()) {
            Ok(q) => q,
            Err(e @ (Error::NonFinite { .. } | Error::InvalidArgument(_))) => {
                skip(&mut report, &mut progress, &weight.name, e.to_string())?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let b = match bias {
            Some(b) => {
                let v = ckpt.read_f32(b)?;
                if let Err(e) = crate::error::check_finite(&v, "bias") {
                    skip(&mut report, &mut progress, &b.name, e.to_string())?;
                    continue;
                }
                Some(v)
            }
            None => None,
        };
        let (weight_error, output_error) = errors(&w, &q, device.executor())?;
        drop(w);
        let layer = ImportedLayer {
            name: name.clone(),
            weight_name: weight.name.clone(),
            bias_name: bias.as_ref().map(|b| b.name.clone()),
            shape: [n, k],
            source_bytes: weight.len + bias.as_ref().map_or(0, |b| b.len),
            quantized_bytes,
            weight_error,
            output_error,
            seconds: t.elapsed().as_secs_f64(),
        };
        report.weights += n * k;
        progress(&Event::Done {
            index,
            total,
            layer: &layer,
        });
        report.layers.push(layer);
        kept.push(Kept {
            name: name.clone(),
            weights: q,
            bias: b,
        });
        index += 1;
    }
    if kept.is_empty() {
        return Err(Error::invalid("every selected tensor was skipped"));
    }
    let data: Vec<LayerData<'_>> = kept
        .iter()
        .map(|k| LayerData {
            name: &k.name,
            weights: &k.weights,
            bias: k.bias.as_deref(),
            mode: options.config.activations,
        })
        .collect();
    crate::os::replace_file(output.as_ref(), |w| super::write_layers(w, &data))?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
