//! Quantization: choosing scales (and zero points) and rounding weights to codes.
//!
//! With `search` on, each group's scale is chosen to minimise the squared error of that
//! group among a grid of candidates (both scale signs, so the extra negative code level can
//! land on either extreme, as ggml's Q4_0 does), each refined once by least squares
//! (`s = Σ w·q / Σ q²`). The plain `max|w| / qmax` scale is always a candidate, so the search
//! is never worse than it on any group. Candidates are rounded to the scale's storage type
//! before they are scored, so the error reported is the error stored.
//!
//! Error bound: a weight inside the representable range `[s·(qmin−z) − s/2, s·(qmax−z) + s/2]`
//! dequantizes within `|s|/2` of its value; one outside it (clipped by the search) maps to
//! the nearest end code. `cb4` groups take the scale search of `codebook.rs` and each weight
//! the nearest of the 16 levels.

use crate::backend::pool::Executor;
use crate::error::{check_finite, Error, Result};
use crate::quant::codebook::{self, Codebook};
use crate::quant::config::{Granularity, QuantConfig, ScaleDType, WeightFormat};
use crate::quant::tensor::{QuantizedParts, QuantizedTensor};

/// Scale, zero point and codes chosen for one group.
struct GroupChoice {
    scale: f32,
    zero: i8,
    sse: f64,
}

/// The range of codes for `bits`: `[-2^(b-1), 2^(b-1) - 1]`.
fn code_range(bits: u8) -> (i32, i32) {
    let half = 1i32 << (bits - 1);
    (-half, half - 1)
}

/// Rounds a scale to what its storage type can hold.
pub(crate) fn store_scale(s: f32, dtype: ScaleDType) -> f32 {
    match dtype {
        ScaleDType::F32 => s,
        ScaleDType::F16 => half::f16::from_f32(s).to_f32(),
    }
}

/// The code of `w` under `(scale, zero)`, clamped to the code range.
#[inline]
fn code_of(w: f32, scale: f32, zero: i32, (lo, hi): (i32, i32)) -> i32 {
    if scale == 0.0 {
        return zero.clamp(lo, hi);
    }
    // Clamping first keeps the rounding trick in range and the cast exact.
    (round_half_even((w / scale).clamp(-512.0, 512.0)) as i32 + zero).clamp(lo, hi)
}

/// Rounds to nearest, ties to even, for `|x| < 2^22`. Unlike `f32::round` this is plain
/// arithmetic, so the search loops vectorize on any x86-64 (no SSE4.1 `roundps` needed).
#[inline(always)]
fn round_half_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (x + MAGIC) - MAGIC
}

/// Squared error of quantizing `vals` with `(scale, zero)`.
fn sse(vals: &[f32], scale: f32, zero: i32, range: (i32, i32)) -> f64 {
    vals.iter()
        .map(|&w| {
            let dq = scale * (code_of(w, scale, zero, range) - zero) as f32;
            let d = (w - dq) as f64;
            d * d
        })
        .sum()
}

/// Least-squares refit of a symmetric scale for the codes `s` gives.
fn refit_symmetric(vals: &[f32], s: f32, range: (i32, i32)) -> f32 {
    let (mut wq, mut qq) = (0.0f64, 0.0f64);
    for &w in vals {
        let q = code_of(w, s, 0, range) as f64;
        wq += w as f64 * q;
        qq += q * q;
    }
    if qq > 0.0 {
        (wq / qq) as f32
    } else {
        s
    }
}

fn choose_symmetric(vals: &[f32], cfg: &QuantConfig) -> Result<GroupChoice> {
    let range = code_range(cfg.bits());
    let amax = vals.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let qmax = cfg.qmax() as f32;
    let mut best = GroupChoice {
        scale: 0.0,
        zero: 0,
        sse: f64::INFINITY,
    };
    let mut consider = |s: f32| -> Result<()> {
        let s = store_scale(s, cfg.scale_dtype);
        if !s.is_finite() {
            return Err(Error::invalid(format!(
                "weights up to {amax} need a scale ({s}) beyond {:?}; use f32 scales",
                cfg.scale_dtype
            )));
        }
        let e = sse(vals, s, 0, range);
        if e < best.sse {
            best = GroupChoice {
                scale: s,
                zero: 0,
                sse: e,
            };
        }
        Ok(())
    };
    // Rounding max|w|/qmax to f16 can shrink it enough to clip max|w| (or even to 0) when
    // it falls among f16 subnormals; then the next f16 up keeps the plain scale clip-free.
    let mut plain = store_scale(amax / qmax, cfg.scale_dtype);
    if cfg.scale_dtype == ScaleDType::F16 && plain * (qmax + 0.5) < amax {
        plain = half::f16::from_bits(half::f16::from_f32(plain).to_bits() + 1).to_f32();
    }
    consider(plain)?;
    if amax == 0.0 || !cfg.search {
        return Ok(best);
    }
    // Divisors around qmax+1 (int8 needs a narrow window, int4 gains from clipping).
    let (lo_f, hi_f, steps) = if cfg.bits() == 8 {
        (0.97f32, 1.06f32, 6)
    } else {
        (0.75f32, 1.35f32, 16)
    };
    for i in 0..=steps {
        let d = (qmax + 1.0) * (lo_f + (hi_f - lo_f) * i as f32 / steps as f32);
        for sign in [1.0f32, -1.0] {
            let s = sign * amax / d;
            consider(s)?;
            consider(refit_symmetric(
                vals,
                store_scale(s, cfg.scale_dtype),
                range,
            ))?;
        }
    }
    Ok(best)
}

fn choose_asymmetric(vals: &[f32], cfg: &QuantConfig) -> Result<GroupChoice> {
    let range = code_range(cfg.bits());
    let levels = (range.1 - range.0) as f32;
    let lo = vals.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let hi = vals.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut best = GroupChoice {
        scale: 0.0,
        zero: 0,
        sse: f64::INFINITY,
    };
    let mut consider = |lo: f32, hi: f32| -> Result<()> {
        let s = store_scale((hi - lo) / levels, cfg.scale_dtype);
        if !s.is_finite() {
            return Err(Error::invalid(format!(
                "weight range [{lo}, {hi}] needs a scale beyond {:?}; use f32 scales",
                cfg.scale_dtype
            )));
        }
        let z = if s == 0.0 {
            0.0
        } else {
            range.0 as f32 - (lo / s).round()
        };
        // The zero point must fit an i8; a range far from 0 is widened to include 0. So is
        // an empty range (a constant group: s = 0 would dequantize every weight to 0).
        let (s, z) = if s != 0.0 && (-128.0..=127.0).contains(&z) {
            (s, z as i32)
        } else {
            let (lo0, hi0) = (lo.min(0.0), hi.max(0.0));
            let s = store_scale((hi0 - lo0) / levels, cfg.scale_dtype);
            let z = if s == 0.0 {
                0.0
            } else {
                range.0 as f32 - (lo0 / s).round()
            };
            (s, (z as i32).clamp(-128, 127))
        };
        let e = sse(vals, s, z, range);
        if e < best.sse {
            best = GroupChoice {
                scale: s,
                zero: z as i8,
                sse: e,
            };
        }
        Ok(())
    };
    consider(lo, hi)?;
    if cfg.search && hi > lo {
        const SHRINK: [f32; 7] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7];
        for a in SHRINK {
            for b in SHRINK {
                consider(lo * a, hi * b)?;
            }
        }
    }
    Ok(best)
}

/// Writes the codes of `vals` into positions `start..` of a row of codes.
fn write_codes(row: &mut [u8], start: usize, vals: &[f32], g: &GroupChoice, format: WeightFormat) {
    let bits = format.bits();
    let range = code_range(bits);
    let cb = Codebook::cb4();
    let inv = 1.0 / g.scale;
    for (i, &w) in vals.iter().enumerate() {
        let q = match format {
            WeightFormat::Cb4 if g.scale == 0.0 => cb.zero_index() as u8,
            WeightFormat::Cb4 => cb.index(w, inv) as u8,
            _ => code_of(w, g.scale, g.zero as i32, range) as i8 as u8,
        };
        let col = start + i;
        if bits == 8 {
            row[col] = q;
        } else if col.is_multiple_of(2) {
            row[col / 2] = (row[col / 2] & 0xF0) | (q & 0x0F);
        } else {
            row[col / 2] = (row[col / 2] & 0x0F) | (q << 4);
        }
    }
}

fn choose(vals: &[f32], cfg: &QuantConfig) -> Result<GroupChoice> {
    if cfg.format == WeightFormat::Cb4 {
        let (scale, sse) =
            codebook::choose_scale(vals, Codebook::cb4(), cfg.scale_dtype, cfg.search)?;
        Ok(GroupChoice {
            scale,
            zero: 0,
            sse,
        })
    } else if cfg.symmetric {
        choose_symmetric(vals, cfg)
    } else {
        choose_asymmetric(vals, cfg)
    }
}

/// Quantizes row-major weights `w` of shape `[n, k]` with `cfg`, splitting rows over `exec`.
pub fn quantize_weights(
    w: &[f32],
    n: usize,
    k: usize,
    cfg: &QuantConfig,
    exec: &Executor,
) -> Result<QuantizedTensor> {
    cfg.validate()?;
    if n == 0 || k == 0 {
        return Err(Error::invalid(format!(
            "weight shape must be non-empty, got [{n}, {k}]"
        )));
    }
    let len = crate::error::checked_product(&[n, k], "weight shape")?;
    if w.len() != len {
        return Err(Error::shape(
            "quantize",
            format!("{len} weights for [{n}, {k}]"),
            w.len(),
        ));
    }
    check_finite(w, "weights")?;
    let row_bytes = if cfg.bits() == 8 { k } else { k.div_ceil(2) };
    let group = match cfg.granularity {
        Granularity::Group(g) => g,
        _ => k,
    };
    let gpr = k.div_ceil(group);
    let mut data = vec![0u8; n * row_bytes];
    let mut scales = vec![0f32; n * gpr];
    let mut zeros = vec![0i8; n * gpr];

    if cfg.granularity == Granularity::PerTensor {
        let g = choose(w, cfg)?;
        for (r, row) in data.chunks_mut(row_bytes).enumerate() {
            write_codes(row, 0, &w[r * k..(r + 1) * k], &g, cfg.format);
        }
        scales.truncate(1);
        zeros.truncate(1);
        scales[0] = g.scale;
        zeros[0] = g.zero;
    } else {
        // Rows are independent: quantize blocks of rows as parallel tasks.
        const ROWS_PER_TASK: usize = 16;
        let tasks = n.div_ceil(ROWS_PER_TASK);
        let out = std::sync::Mutex::new((&mut data, &mut scales, &mut zeros));
        let first_error = std::sync::Mutex::new(None);
        exec.run(tasks, &|t| {
            let rows = t * ROWS_PER_TASK..((t + 1) * ROWS_PER_TASK).min(n);
            let mut codes = vec![0u8; rows.len() * row_bytes];
            let mut sc = Vec::with_capacity(rows.len() * gpr);
            for (i, r) in rows.clone().enumerate() {
                for gi in 0..gpr {
                    let start = gi * group;
                    let vals = &w[r * k + start..r * k + (start + group).min(k)];
                    match choose(vals, cfg) {
                        Ok(g) => {
                            write_codes(&mut codes[i * row_bytes..], start, vals, &g, cfg.format);
                            sc.push((g.scale, g.zero));
                        }
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                }
            }
            let mut guard = out.lock().unwrap();
            let (d, s, z) = &mut *guard;
            d[rows.start * row_bytes..rows.end * row_bytes].copy_from_slice(&codes);
            for (j, (scale, zero)) in sc.into_iter().enumerate() {
                s[rows.start * gpr + j] = scale;
                z[rows.start * gpr + j] = zero;
            }
        })?;
        if let Some(e) = first_error.into_inner().unwrap() {
            return Err(e);
        }
    }
    if cfg.symmetric {
        zeros.clear();
    }
    QuantizedTensor::from_parts(QuantizedParts {
        out_features: n,
        in_features: k,
        bits: cfg.bits(),
        granularity: cfg.granularity,
        scale_dtype: cfg.scale_dtype,
        data,
        scales,
        zero_points: zeros,
        codebook: (cfg.format == WeightFormat::Cb4).then_some(codebook::CB4_LEVELS),
    })
}
