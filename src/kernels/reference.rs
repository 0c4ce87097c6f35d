//! Scalar reference kernels: the oracle every SIMD path is tested against, and what
//! `QLINEAR_ISA=scalar` runs. Written for clarity, not speed.

use std::ops::Range;

use super::{Dyn8Acts, ExactActs, Isa, KernelTable, OutPtr};
use crate::quant::pack::{PackedDense, PackedQuant, NR};

pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Scalar,
    dense: f32_dense_gemm_scalar,
    q_exact: f32_q_gemm_scalar,
    q_dyn8: q8_q_gemm_scalar,
    dyn8_unsigned: false,
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
/// `scale · (q − zero)` and multiplied in f32.
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
                    let (s, z) = (w.scale(t, g, c), w.zero(t, g, c) as i32);
                    for kk in 0..w.group_len(g) {
                        let wv = s * (w.code(t, g, kk, c) as i32 - z) as f32;
                        acc += xr[g * w.kg + kk] * wv;
                    }
                }
                *o = acc;
            }
            y.write(r, t * NR, &out[..tile_cols(t, w.n)]);
        }
    }
}

/// `y = sx · Σ_g scale_g · Σ_k xq·(q − zero)` with int8 activations (exact integer sums).
pub(crate) unsafe fn q8_q_gemm_scalar(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for r in rows {
        let xr = &a.q[r * a.stride..];
        for t in tiles.clone() {
            let mut out = [0f32; NR];
            for (c, o) in out.iter_mut().enumerate().take(tile_cols(t, w.n)) {
                let mut acc = 0f32;
                for g in 0..w.groups {
                    let z = w.zero(t, g, c) as i32;
                    let dot: i32 = (0..w.group_len(g))
                        .map(|kk| {
                            (xr[g * w.kg + kk] as i8 as i32) * (w.code(t, g, kk, c) as i32 - z)
                        })
                        .sum();
                    acc += w.scale(t, g, c) * dot as f32;
                }
                *o = a.scale[r] * acc;
            }
            y.write(r, t * NR, &out[..tile_cols(t, w.n)]);
        }
    }
}
