//! Emulations of ggml's Q8_0 and Q4_0 block formats, the yardsticks the defaults are
//! measured against (tests and `examples/quickstart.rs`).
//!
//! Both cut each row into blocks of [`BLOCK`] = 32 weights (the last block of a row may be
//! shorter) with one f16 scale `d` per block, as in ggml's `quantize_row_q8_0_ref` and
//! `quantize_row_q4_0_ref` (ggml/src/ggml-quants.c):
//!
//! * Q8_0: `d = max|w| / 127`, codes `round(w / d)` (8.5 bits per weight).
//! * Q4_0: `d = m / −8` where `m` is the weight of largest magnitude (with its sign), codes
//!   `clamp(round(w / d), −8, 7)` (4.5 bits per weight).
//!
//! `d` is rounded to f16 before the codes are computed, so the codes match the stored scale.

use half::f16;

/// Weights per block.
pub const BLOCK: usize = 32;
/// Storage bits per weight of Q8_0: 8-bit codes plus an f16 scale per 32 weights.
pub const Q8_0_BITS_PER_WEIGHT: f64 = 8.5;
/// Storage bits per weight of Q4_0: 4-bit codes plus an f16 scale per 32 weights.
pub const Q4_0_BITS_PER_WEIGHT: f64 = 4.5;

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

/// Quantizes rows of `k` weights to Q8_0 and dequantizes them again.
pub fn q8_0_dequant(w: &[f32], k: usize) -> Vec<f32> {
    blockwise(w, k, |b, out| {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = f16::from_f32(amax / 127.0).to_f32();
        for &v in b {
            let q = if d == 0.0 {
                0.0
            } else {
                (v / d).round().clamp(-128.0, 127.0)
            };
            out.push(d * q);
        }
    })
}

/// Quantizes rows of `k` weights to Q4_0 and dequantizes them again.
pub fn q4_0_dequant(w: &[f32], k: usize) -> Vec<f32> {
    blockwise(w, k, |b, out| {
        let max = b
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = f16::from_f32(max / -8.0).to_f32();
        for &v in b {
            let q = if d == 0.0 {
                0.0
            } else {
                (v / d).round().clamp(-8.0, 7.0)
            };
            out.push(d * q);
        }
    })
}
