//! f32 × f32 (`Linear`): up to 4 rows × one 16-column tile per register block.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::aarch64::*;
use std::ops::Range;

use super::{store_tile, tile_cols};
use crate::kernels::blocking::for_each_block;
use crate::kernels::OutPtr;
use crate::quant::pack::{PackedDense, NR};

#[target_feature(enable = "neon")]
unsafe fn dense_block<const MR: usize>(w: &PackedDense, x: &[f32], r0: usize, t: usize, y: OutPtr) {
    let k = w.k;
    let tile = w.tile(t).as_ptr();
    let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
    for kk in 0..k {
        let wv: [float32x4_t; 4] = [
            vld1q_f32(tile.add(kk * NR)),
            vld1q_f32(tile.add(kk * NR + 4)),
            vld1q_f32(tile.add(kk * NR + 8)),
            vld1q_f32(tile.add(kk * NR + 12)),
        ];
        for i in 0..MR {
            let xv = *x.get_unchecked((r0 + i) * k + kk);
            for j in 0..4 {
                acc[i][j] = vfmaq_n_f32(acc[i][j], wv[j], xv);
            }
        }
    }
    for i in 0..MR {
        store_tile(
            y.ptr.add((r0 + i) * y.ld + t * NR),
            acc[i],
            tile_cols(t, w.n),
        );
    }
}

/// `y = x · Wᵀ` for f32 weights.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f32_dense_gemm_neon(
    w: &PackedDense,
    x: &[f32],
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(
        rows,
        tiles,
        4,
        1,
        1,
        |r, mr, t, _| dispatch_rows!(mr; 1, 2, 3; 4; M => dense_block::<M>(w, x, r, t, y)),
    );
}
