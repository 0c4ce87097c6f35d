//! f32 × f32 (`Linear`): 6 rows × 2 tiles (32 columns) per register block, 4 tiles for a
//! GEMV.

use std::arch::x86_64::*;
use std::ops::Range;

use super::col_mask;
use crate::kernels::blocking::for_each_block;
use crate::kernels::OutPtr;
use crate::quant::pack::{PackedDense, NR};

/// `MR × (16·NT)` outputs of `x · Wᵀ`: `w[j]` points at a `[k][16]` f32 panel, `x` at the
/// first of `MR` rows (stride `ldx`), `y` at the first output (stride `ld`).
#[target_feature(enable = "avx512f,fma")]
unsafe fn f32_block<const MR: usize, const NT: usize>(
    w: [*const f32; NT],
    k: usize,
    x: *const f32,
    ldx: usize,
    y: *mut f32,
    ld: usize,
    mask: [__mmask16; NT],
) {
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    for kk in 0..k {
        let wv: [__m512; NT] = std::array::from_fn(|j| _mm512_load_ps(w[j].add(kk * NR)));
        for (i, row) in acc.iter_mut().enumerate() {
            let xb = _mm512_set1_ps(*x.add(i * ldx + kk));
            for j in 0..NT {
                row[j] = _mm512_fmadd_ps(xb, wv[j], row[j]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for j in 0..NT {
            _mm512_mask_storeu_ps(y.add(i * ld + j * NR), mask[j], row[j]);
        }
    }
}

#[target_feature(enable = "avx512f,fma")]
unsafe fn dense_block<const MR: usize, const NT: usize>(
    w: &PackedDense,
    x: &[f32],
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    f32_block::<MR, NT>(
        std::array::from_fn(|j| w.tile(t0 + j).as_ptr()),
        w.k,
        x.as_ptr().add(r0 * w.k),
        w.k,
        y.ptr.add(r0 * y.ld + t0 * NR),
        y.ld,
        std::array::from_fn(|j| col_mask(t0 + j, w.n)),
    )
}

/// `y = x · Wᵀ` for f32 weights, 6 rows × 2 tiles (32 columns) per register block.
#[target_feature(enable = "avx512f,fma")]
pub(crate) unsafe fn f32_dense_gemm_avx512(
    w: &PackedDense,
    x: &[f32],
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 6, 2, 4, |r, mr, t, nt| match nt {
        4 => dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => dense_block::<M, 4>(w, x, r, t, y)),
        2 => dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => dense_block::<M, 2>(w, x, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => dense_block::<M, 1>(w, x, r, t, y)),
    });
}
