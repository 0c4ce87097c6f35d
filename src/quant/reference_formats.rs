//! Emulations of ggml's block formats, the yardsticks qlinear's formats are measured against
//! (tests, `examples/accuracy.rs`).
//!
//! Each cuts a row into blocks of [`BLOCK`] = 32 weights (the last block of a row may be
//! shorter) and follows ggml's reference quantizers (`quantize_row_*_ref`,
//! ggml/src/ggml-quants.c): the scale `d` is computed in f32, the codes from `1/d` in f32,
//! and `d` is stored as f16, which is what dequantization uses.
//!
//! * Q8_0: `d = max|w| / 127`, `q = round(w / d)` (8.5 bits per weight). Also ggml's
//!   activation format for integer dot products ([`q8_0_quantize`]).
//! * Q4_0: `d = m / −8` (`m` the weight of largest magnitude, with its sign),
//!   `q = min(15, ⌊w/d + 8.5⌋)`, `w = d·(q − 8)` (4.5 bits per weight).
//! * Q4_1: `d = (max − min) / 15`, `q = min(15, ⌊(w − min)/d + 0.5⌋)`, `w = d·q + min` with
//!   `min` stored as f16 too (5 bits per weight).
//! * IQ4_NL levels: ggml's 16 non-uniform levels (no zero level) with qlinear's scale search
//!   ([`crate::quant::codebook::choose_scale`]), not ggml's own search: it isolates what the
//!   level set does.

use half::f16;

use crate::quant::codebook::{choose_scale, Codebook};
use crate::quant::config::ScaleDType;

/// Weights per block.
pub const BLOCK: usize = 32;
/// Storage bits per weight of Q8_0: 8-bit codes plus an f16 scale per 32 weights.
pub const Q8_0_BITS_PER_WEIGHT: f64 = 8.5;
/// Storage bits per weight of Q4_0: 4-bit codes plus an f16 scale per 32 weights.
pub const Q4_0_BITS_PER_WEIGHT: f64 = 4.5;
/// Storage bits per weight of Q4_1: 4-bit codes plus an f16 scale and an f16 minimum.
pub const Q4_1_BITS_PER_WEIGHT: f64 = 5.0;
/// ggml's `kvalues_iq4nl`.
pub const IQ4_NL_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

fn blockwise(w: &[f32], k: usize, mut block: impl FnMut(&[f32], &mut Vec<f32>)) -> Vec<f32> {
    assert!(
        k > 0 && w.len().is_multiple_of(k),
        "{} weights are not rows of {k}",
        w.len()
    );
    let mut out = Vec::with_capacity(w.len());
    for row in w.chunks(k) {
        for b in row.chunks(BLOCK) {
            block(b, &mut out);
        }
    }
    out
}

/// Q8_0 codes and the stored (f16) scale of one block.
fn q8_0_block(b: &[f32]) -> (Vec<i8>, f32) {
    let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    (
        b.iter().map(|&v| (v * id).round() as i8).collect(),
        f16_round(d),
    )
}

/// Quantizes rows of `k` weights to Q8_0 and dequantizes them again.
pub fn q8_0_dequant(w: &[f32], k: usize) -> Vec<f32> {
    blockwise(w, k, |b, out| {
        let (q, d) = q8_0_block(b);
        out.extend(q.iter().map(|&q| d * q as f32));
    })
}

/// Q8_0 of rows of `k` values: the codes (rows padded to whole blocks with 0) and one
/// stored scale per block, as ggml quantizes activations for its integer dot products.
pub fn q8_0_quantize(x: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    let (mut codes, mut scales) = (Vec::new(), Vec::new());
    for row in x.chunks(k) {
        for b in row.chunks(BLOCK) {
            let (q, d) = q8_0_block(b);
            codes.extend(&q);
            codes.resize(codes.len() + BLOCK - q.len(), 0);
            scales.push(d);
        }
    }
    (codes, scales)
}

/// Quantizes rows of `k` weights to Q4_0 and dequantizes them again.
pub fn q4_0_dequant(w: &[f32], k: usize) -> Vec<f32> {
    blockwise(w, k, |b, out| {
        let max = b
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let stored = f16_round(d);
        for &v in b {
            let q = ((v * id + 8.5) as i32).clamp(0, 15);
            out.push(stored * (q - 8) as f32);
        }
    })
}

/// Quantizes rows of `k` weights to Q4_1 and dequantizes them again.
pub fn q4_1_dequant(w: &[f32], k: usize) -> Vec<f32> {
    blockwise(w, k, |b, out| {
        let min = b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let max = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let (sd, sm) = (f16_round(d), f16_round(min));
        for &v in b {
            let q = (((v - min) * id + 0.5) as i32).clamp(0, 15);
            out.push(sd * q as f32 + sm);
        }
    })
}

/// Rows of `k` weights in blocks of 32 on ggml's IQ4_NL levels (f16 scales, qlinear's scale
/// search), dequantized.
pub fn iq4_nl_levels_dequant(w: &[f32], k: usize) -> Vec<f32> {
    let cb = Codebook::new(IQ4_NL_LEVELS).expect("IQ4_NL levels ascend");
    blockwise(w, k, |b, out| {
        let (d, _) = choose_scale(b, &cb, ScaleDType::F16, true).expect("finite weights");
        let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(b.iter().map(|&v| d * cb.levels()[cb.index(v, inv)] as f32));
    })
}
