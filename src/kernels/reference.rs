//! Scalar reference kernels: the oracle every SIMD path is tested against, and what
//! `QLINEAR_ISA=scalar` runs. Written for clarity, not speed.

use std::ops::Range;

use super::{Dyn8Acts, ExactActs, Isa, KernelTable, OutPtr};
use crate::quant::pack::{PackedDense, PackedQuant, NR};
use crate::quant::DYN8_BLOCK;

pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Scalar,
    variant: "",
    dense: f32_dense_gemm_scalar,
    q_exact: f32_q_gemm_scalar,
    q_dyn8: q8_q_gemm_scalar,
    quantize_blocks: quantize_blocks_scalar,
};

/// Columns of tile `t` that exist (the last tile may be partial).
fn tile_cols(t: usize, n: usize) -> usize {
    (n - t * NR).min(NR)
}

/// `y = x · Wᵀ` for f32 weights.
pub(crate) unsafe fn f32_dense_gemm_scalar(
    w: &PackedDense,
    x: &[f32],
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for r in rows {
        let xr = &x[r * w.k..(r + 1) * w.k];
        for t in tiles.clone() {
            let tile = w.tile(t);
            let mut out = [0f32; NR];
            for (c, o) in out.iter_mut().enumerate() {
                *o = xr
                    .iter()
                    .enumerate()
                    .map(|(kk, &xv)| xv * tile[kk * NR + c])
                    .sum();
            }
            y.write(r, t * NR, &out[..tile_cols(t, w.n)]);
        }
    }
}

/// `y = x · dequant(W)ᵀ` with f32 activations: each weight is dequantized as
/// `scale · value` (`value` = `q − zero` or the level) and multiplied in f32.
pub(crate) unsafe fn f32_q_gemm_scalar(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for r in rows {
        let xr = &a.x[r * a.stride..];
        for t in tiles.clone() {
            let mut out = [0f32; NR];
            for (c, o) in out.iter_mut().enumerate().take(tile_cols(t, w.n)) {
                let mut acc = 0f32;
                for g in 0..w.groups {
                    let s = w.scale(t, g, c);
                    for kk in 0..w.group_len(g) {
                        let wv = s * w.value(t, g, kk, c) as f32;
                        acc += xr[g * w.kg + kk] * wv;
                    }
                }
                *o = acc;
            }
            y.write(r, t * NR, &out[..tile_cols(t, w.n)]);
        }
    }
}

/// The exact integer `Σ x_q · value` over inputs `k0..k1` of kernel group `g` (`k0`, `k1`
/// relative to the group), column `c` of tile `t`.
fn int_dot(w: &PackedQuant, xq: &[i8], t: usize, g: usize, c: usize, k0: usize, k1: usize) -> i32 {
    (k0..k1.min(w.group_len(g)))
        .map(|kk| xq[g * w.kg + kk] as i32 * w.value(t, g, kk, c))
        .sum()
}

/// The dyn8 result, in the order of operations every SIMD path follows, so they all give
/// the same bits. With `I` the exact integer dot product of a block (or, per row, of a
/// kernel group) and `fma` a fused multiply-add:
///
/// * block-wise: `acc = fma(I_b, sx_b · s_g, acc)` over the blocks in order; `y = acc`;
/// * per row: `acc = fma(I_g, s_g, acc)` over groups; `y = sx · acc`.
pub(crate) unsafe fn q8_q_gemm_scalar(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for r in rows {
        let xq = &a.q[r * a.stride..(r + 1) * a.stride];
        for t in tiles.clone() {
            let mut out = [0f32; NR];
            for (c, o) in out.iter_mut().enumerate().take(tile_cols(t, w.n)) {
                let mut acc = 0f32;
                for g in 0..w.groups {
                    let s = w.scale(t, g, c);
                    if a.per_row {
                        let dot = int_dot(w, xq, t, g, c, 0, w.kg);
                        acc = (dot as f32).mul_add(s, acc);
                        continue;
                    }
                    let first = g * w.kg / DYN8_BLOCK;
                    for b in 0..w.group_len(g).div_ceil(DYN8_BLOCK) {
                        let k0 = b * DYN8_BLOCK;
                        let dot = int_dot(w, xq, t, g, c, k0, k0 + DYN8_BLOCK) as f32;
                        let sx = a.scale[r * a.blocks + first + b];
                        acc = dot.mul_add(sx * s, acc);
                    }
                }
                *o = if a.per_row { a.scale[r] * acc } else { acc };
            }
            y.write(r, t * NR, &out[..tile_cols(t, w.n)]);
        }
    }
}

/// Quantizes one row to int8 blocks (see [`super::QuantizeBlocks`]).
pub(crate) unsafe fn quantize_blocks_scalar(
    x: &[f32],
    q: &mut [i8],
    scales: &mut [f32],
    sums: &mut [i32],
) {
    q.fill(0);
    for (b, block) in x.chunks(DYN8_BLOCK).enumerate() {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0;
        for (i, &v) in block.iter().enumerate() {
            let c = (v * inv).round_ties_even() as i32;
            q[b * DYN8_BLOCK + i] = c as i8;
            sum += c;
        }
        scales[b] = amax / 127.0;
        sums[b] = sum;
    }
    let used = x.len().div_ceil(DYN8_BLOCK);
    scales[used..].fill(0.0);
    sums[used..].fill(0);
}
