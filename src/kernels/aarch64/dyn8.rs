//! Dyn8: int8 activations × signed weight bytes (int8 with its offset removed, 4-bit codes
//! looked up as their values with `tbl`). Four products per i32 lane: `sdot` with the
//! dot-product extension, widening multiplies and pairwise accumulates without it; with the int8
//! matrix extension, pairs of rows take `smmla` (2 rows × 2 columns × 8 inputs per
//! instruction). Per block the i32 sum is scaled into f32 in the scalar oracle's order, so
//! every path gives its bits.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::aarch64::*;
use std::ops::Range;

use super::{
    load_scales, load_zeros, nibble_table, sdot, signed_step, smmla, store_tile, tile_cols,
};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{Dyn8Acts, OutPtr};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::DYN8_BLOCK;

/// How the 4-input products are formed.
const WIDEN: u8 = 0;
const SDOT: u8 = 1;

/// Four activation bytes at `p` in every 32-bit lane.
#[inline(always)]
unsafe fn broadcast4(p: *const i8) -> int8x16_t {
    vreinterpretq_s8_s32(vdupq_n_s32((p as *const i32).read_unaligned()))
}

/// The i32 block sums of one row and 16 columns. With `sdot`, register `c` holds columns
/// 4c..4c+4, one per lane. Without it, the products are formed 8 at a time in i16 by
/// `smull`/`smull2` and accumulated pairwise by `sadalp` (two products of at most 128·127
/// fit in i16): register 2c then holds columns 4c, 4c+1 and 2c+1 columns 4c+2, 4c+3, each
/// as two partial sums, and `fold` adds the pairs at the end of the block.
#[derive(Clone, Copy)]
struct BlockSums([int32x4_t; 8]);

impl BlockSums {
    #[inline(always)]
    unsafe fn zero() -> Self {
        BlockSums([vdupq_n_s32(0); 8])
    }

    /// Adds the 4-input products of the weight register for columns 4c..4c+4 with the
    /// activation bytes `x` (four inputs repeated in every lane).
    #[inline(always)]
    unsafe fn add<const HOW: u8>(&mut self, c: usize, w: int8x16_t, x: int8x16_t) {
        if HOW == SDOT {
            self.0[c] = sdot(self.0[c], w, x);
        } else {
            let lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
            let hi = vmull_high_s8(w, x);
            self.0[2 * c] = vpadalq_s16(self.0[2 * c], lo);
            self.0[2 * c + 1] = vpadalq_s16(self.0[2 * c + 1], hi);
        }
    }

    /// The block sums of columns 4c..4c+4, one per lane.
    #[inline(always)]
    unsafe fn fold<const HOW: u8>(&self, c: usize) -> int32x4_t {
        if HOW == SDOT {
            self.0[c]
        } else {
            vpaddq_s32(self.0[2 * c], self.0[2 * c + 1])
        }
    }
}

/// The kernel-group index of block `blk` of the activations' scale and sum arrays, and the
/// block's input range `[from, to)` within group `g`.
#[inline(always)]
fn block_at(w: &PackedQuant, a: &Dyn8Acts, g: usize, from: usize) -> (usize, usize) {
    let len = w.group_len_padded(g);
    if a.per_row {
        (g, len)
    } else {
        ((g * w.kg + from) / DYN8_BLOCK, (from + DYN8_BLOCK).min(len))
    }
}

/// `MR × 16` outputs, one row at a time through the 4-product instruction `HOW`.
#[inline(always)]
unsafe fn dyn8_rows<const BITS: u8, const HOW: u8, const MR: usize>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    t: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let table = nibble_table(w);
    let base = w.tile(t).as_ptr();
    let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
    for g in 0..w.groups {
        let sc = load_scales(w, base, g);
        let zero = load_zeros(w, base, g);
        let mut from = 0;
        while from < w.group_len_padded(g) {
            let (blk, to) = block_at(w, a, g, from);
            let mut iacc = [BlockSums::zero(); MR];
            for s in from / step..to / step {
                let v = signed_step::<BITS>(base.add(g * w.group_bytes + s * 64), table);
                let k0 = g * w.kg + s * step;
                for i in 0..MR {
                    let xr = a.q.as_ptr().add((r0 + i) * a.stride + k0);
                    let x0 = broadcast4(xr);
                    let x1 = if BITS == 8 { x0 } else { broadcast4(xr.add(4)) };
                    for c in 0..4 {
                        iacc[i].add::<HOW>(c, v[c].0, x0);
                        if BITS == 4 {
                            iacc[i].add::<HOW>(c, v[c].1, x1);
                        }
                    }
                }
            }
            for i in 0..MR {
                let sx = *a.scale.get_unchecked((r0 + i) * a.blocks + blk);
                // Asymmetric: Σ x·(q − zero) = Σ x·q − zero·Σx (exact in i32).
                let sum = *a.sums.get_unchecked((r0 + i) * a.blocks + blk);
                for c in 0..4 {
                    let mut isum = iacc[i].fold::<HOW>(c);
                    if !w.symmetric {
                        isum = vmlsq_n_s32(isum, zero[c], sum);
                    }
                    let m = if a.per_row {
                        sc[c]
                    } else {
                        vmulq_n_f32(sc[c], sx)
                    };
                    acc[i][c] = vfmaq_f32(acc[i][c], vcvtq_f32_s32(isum), m);
                }
            }
            from = to;
        }
    }
    for i in 0..MR {
        let out = if a.per_row {
            let sx = a.scale[r0 + i];
            std::array::from_fn(|c| vmulq_n_f32(acc[i][c], sx))
        } else {
            acc[i]
        };
        store_tile(y.ptr.add((r0 + i) * y.ld + t * NR), out, tile_cols(t, w.n));
    }
}

/// `[v0, v1, v0, v1]` and `[v2, v3, v2, v3]` of a 4-lane register: a column pair's values
/// for both rows of an `smmla` result.
#[inline(always)]
unsafe fn pairs_f32(v: float32x4_t) -> [float32x4_t; 2] {
    [
        vcombine_f32(vget_low_f32(v), vget_low_f32(v)),
        vcombine_f32(vget_high_f32(v), vget_high_f32(v)),
    ]
}

#[inline(always)]
unsafe fn pairs_s32(v: int32x4_t) -> [int32x4_t; 2] {
    [
        vcombine_s32(vget_low_s32(v), vget_low_s32(v)),
        vcombine_s32(vget_high_s32(v), vget_high_s32(v)),
    ]
}

/// `[a, a, b, b]`: one value per row of an `smmla` result.
#[inline(always)]
unsafe fn rows_f32(a: f32, b: f32) -> float32x4_t {
    vcombine_f32(vdup_n_f32(a), vdup_n_f32(b))
}

/// Two rows × 16 outputs with `smmla`: eight registers, each a 2×2 block (rows r0, r0+1 ×
/// a column pair) in lanes `[r0·c, r0·c+1, r1·c, r1·c+1]`; each instruction takes 8 inputs.
#[target_feature(enable = "neon,dotprod,i8mm")]
unsafe fn dyn8_pair<const BITS: u8>(w: &PackedQuant, a: &Dyn8Acts, r0: usize, t: usize, y: OutPtr) {
    let table = nibble_table(w);
    let base = w.tile(t).as_ptr();
    let row = |i: usize, k: usize| a.q.as_ptr().add((r0 + i) * a.stride + k);
    let mut acc = [vdupq_n_f32(0.0); 8];
    for g in 0..w.groups {
        let sc = load_scales(w, base, g);
        let zero = load_zeros(w, base, g);
        let mut from = 0;
        while from < w.group_len_padded(g) {
            let (blk, to) = block_at(w, a, g, from);
            let mut iacc = [vdupq_n_s32(0); 8];
            if !w.symmetric {
                let s0 = *a.sums.get_unchecked(r0 * a.blocks + blk);
                let s1 = *a.sums.get_unchecked((r0 + 1) * a.blocks + blk);
                let sums = vcombine_s32(vdup_n_s32(s0), vdup_n_s32(s1));
                for c in 0..4 {
                    let [z0, z1] = pairs_s32(zero[c]);
                    iacc[2 * c] = vnegq_s32(vmulq_s32(z0, sums));
                    iacc[2 * c + 1] = vnegq_s32(vmulq_s32(z1, sums));
                }
            }
            // 8 inputs per unit: two int8 steps, or one 4-bit step.
            let mut k = from;
            while k < to {
                let k0 = g * w.kg + k;
                let b: [(int8x16_t, int8x16_t); 4] = if BITS == 8 {
                    let s0 = signed_step::<8>(base.add(g * w.group_bytes + k / 4 * 64), table);
                    let s1 =
                        signed_step::<8>(base.add(g * w.group_bytes + (k / 4 + 1) * 64), table);
                    std::array::from_fn(|c| (s0[c].0, s1[c].0))
                } else {
                    signed_step::<4>(base.add(g * w.group_bytes + k / 8 * 64), table)
                };
                let x = vcombine_s8(vld1_s8(row(0, k0)), vld1_s8(row(1, k0)));
                for c in 0..4 {
                    // Columns (4c, 4c+1) and (4c+2, 4c+3), each with inputs k0..k0+8.
                    let (lo, hi) = (vreinterpretq_s32_s8(b[c].0), vreinterpretq_s32_s8(b[c].1));
                    let p0 = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));
                    let p1 = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));
                    iacc[2 * c] = smmla(iacc[2 * c], x, p0);
                    iacc[2 * c + 1] = smmla(iacc[2 * c + 1], x, p1);
                }
                k += 8;
            }
            let sx = rows_f32(
                *a.scale.get_unchecked(r0 * a.blocks + blk),
                *a.scale.get_unchecked((r0 + 1) * a.blocks + blk),
            );
            for c in 0..4 {
                let sp = pairs_f32(sc[c]);
                for h in 0..2 {
                    let m = if a.per_row {
                        sp[h]
                    } else {
                        vmulq_f32(sp[h], sx)
                    };
                    let f = vcvtq_f32_s32(iacc[2 * c + h]);
                    acc[2 * c + h] = vfmaq_f32(acc[2 * c + h], f, m);
                }
            }
            from = to;
        }
    }
    // Back to one row per register: row r0 in the low halves, r0+1 in the high ones.
    let scale = if a.per_row {
        rows_f32(a.scale[r0], a.scale[r0 + 1])
    } else {
        vdupq_n_f32(1.0)
    };
    let mut rows = [[vdupq_n_f32(0.0); 4]; 2];
    for c in 0..4 {
        let (p, q) = if a.per_row {
            (
                vmulq_f32(acc[2 * c], scale),
                vmulq_f32(acc[2 * c + 1], scale),
            )
        } else {
            (acc[2 * c], acc[2 * c + 1])
        };
        rows[0][c] = vcombine_f32(vget_low_f32(p), vget_low_f32(q));
        rows[1][c] = vcombine_f32(vget_high_f32(p), vget_high_f32(q));
    }
    for (i, r) in rows.iter().enumerate() {
        store_tile(y.ptr.add((r0 + i) * y.ld + t * NR), *r, tile_cols(t, w.n));
    }
}

/// Defines a dyn8 entry point over [`dyn8_rows`] with dot-product flavour `$dot`. A macro
/// because the block closure must be defined inside the function that carries the target
/// features, or its intrinsics would not inline.
macro_rules! dyn8_rows_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, $dot:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(
            w: &PackedQuant,
            a: &Dyn8Acts,
            rows: Range<usize>,
            tiles: Range<usize>,
            y: OutPtr,
        ) {
            for_each_block(rows, tiles, 2, 1, 1, |r, mr, t, _| {
                if w.bits == 8 {
                    dispatch_rows!(mr; 1; 2; M => dyn8_rows::<8, $dot, M>(w, a, r, t, y))
                } else {
                    dispatch_rows!(mr; 1; 2; M => dyn8_rows::<4, $dot, M>(w, a, r, t, y))
                }
            });
        }
    };
}

dyn8_rows_entry!(
    /// Dyn8 with plain NEON.
    q8_q_gemm_neon,
    "neon",
    WIDEN
);
dyn8_rows_entry!(
    /// Dyn8 with `sdot`.
    q8_q_gemm_neon_dotprod,
    "neon,dotprod",
    SDOT
);

/// Dyn8 with `smmla` for row pairs (and `sdot` for a last single row).
#[target_feature(enable = "neon,dotprod,i8mm")]
pub(crate) unsafe fn q8_q_gemm_neon_i8mm(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 2, 1, 1, |r, mr, t, _| match (mr, w.bits) {
        (2, 8) => dyn8_pair::<8>(w, a, r, t, y),
        (2, _) => dyn8_pair::<4>(w, a, r, t, y),
        (_, 8) => dyn8_rows::<8, SDOT, 1>(w, a, r, t, y),
        _ => dyn8_rows::<4, SDOT, 1>(w, a, r, t, y),
    });
}
