//! f32 × f32 (`Linear`): 6 rows × 1 tile (12 accumulators) per register block, 1 row × 2
//! tiles for a GEMV.

// Register blocks index several parallel arrays (rows, tiles, halves) by the same counters.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::{store_tile, HALF};
use crate::kernels::blocking::for_each_block;
use crate::kernels::OutPtr;
use crate::quant::pack::{PackedDense, NR};

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dense_block<const MR: usize, const NT: usize>(
    w: &PackedDense,
    x: &[f32],
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let k = w.k;
    let mut acc = [[[_mm256_setzero_ps(); 2]; NT]; MR];
    let wp: [*const f32; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xp: [*const f32; MR] = std::array::from_fn(|i| x.as_ptr().add((r0 + i) * k));
    for kk in 0..k {
        // SAFETY: tile rows are `[k][16]` f32, so `kk·16 .. kk·16 + 16` is inside the tile.
        let mut wv = [[_mm256_setzero_ps(); 2]; NT];
        for j in 0..NT {
            let p = wp[j].add(kk * NR);
            wv[j] = [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(HALF))];
        }
        for i in 0..MR {
            let xb = _mm256_set1_ps(*xp[i].add(kk));
            for j in 0..NT {
                for h in 0..2 {
                    acc[i][j][h] = _mm256_fmadd_ps(xb, wv[j][h], acc[i][j][h]);
                }
            }
        }
    }
    for i in 0..MR {
        for j in 0..NT {
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            store_tile(dst, acc[i][j], t0 + j, w.n);
        }
    }
}

/// `y = x · Wᵀ` for f32 weights: 6 rows × 1 tile (12 accumulators) per register block,
/// 1 row × 2 tiles for a GEMV.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f32_dense_gemm_avx2(
    w: &PackedDense,
    x: &[f32],
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 6, 1, 2, |r, mr, t, nt| match nt {
        2 => dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => dense_block::<M, 2>(w, x, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => dense_block::<M, 1>(w, x, r, t, y)),
    });
}
