//! Exact mode: f32 activations × codes decoded to f32 in registers. Each 64-byte step is made
//! signed bytes (int8: one XOR of the offset; 4-bit codes: two `tbl` lookups of their
//! values), then per input one `tbl` moves that input's byte of 4 columns to the top of 4
//! i32 lanes and a fixed-point `scvtf` makes them f32.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::aarch64::*;
use std::ops::Range;

use super::{load_scales, load_zeros, nibble_table, signed_step, store_tile, tile_cols};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{ExactActs, OutPtr};
use crate::quant::pack::{PackedQuant, NR};

/// `tbl` indices that move byte `j` of each 32-bit lane to the lane's top byte and clear the
/// rest: the lane is then `q · 2²⁴`, which `scvtf` with 24 fraction bits turns into `q`
/// exactly (a shift pair and a plain `scvtf` would take one more instruction).
#[inline(always)]
unsafe fn top_byte_indices() -> [uint8x16_t; 4] {
    std::array::from_fn(|j| {
        let lane = u32::from_le_bytes([0xFF, 0xFF, 0xFF, j as u8]);
        let v = [
            lane,
            lane + 0x0400_0000,
            lane + 0x0800_0000,
            lane + 0x0C00_0000,
        ];
        vreinterpretq_u8_u32(vld1q_u32(v.as_ptr()))
    })
}

/// Input `J` of a step as the f32 value `q − zero` (or the level) for 4 columns.
#[inline(always)]
unsafe fn value<const J: usize, const SYM: bool>(
    s: (int8x16_t, int8x16_t),
    idx: &[uint8x16_t; 4],
    zero: float32x4_t,
) -> float32x4_t {
    let src = vreinterpretq_u8_s8(if J < 4 { s.0 } else { s.1 });
    let top = vreinterpretq_s32_u8(vqtbl1q_u8(src, idx[J % 4]));
    let q = vcvtq_n_f32_s32::<24>(top);
    if SYM {
        q
    } else {
        vsubq_f32(q, zero)
    }
}

/// `MR × 16` outputs: per group `acc += s_g · Σ_k x_k · value_k` (as the scalar oracle).
#[target_feature(enable = "neon")]
unsafe fn exact_block<const BITS: u8, const SYM: bool, const MR: usize>(
    w: &PackedQuant,
    a: &ExactActs,
    r0: usize,
    t: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let table = nibble_table(w);
    let idx = top_byte_indices();
    let base = w.tile(t).as_ptr();
    let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
    for g in 0..w.groups {
        let zero = load_zeros(w, base, g).map(|z| vcvtq_f32_s32(z));
        let mut gacc = [[vdupq_n_f32(0.0); 4]; MR];
        for s in 0..w.group_len_padded(g) / step {
            let v = signed_step::<BITS>(base.add(g * w.group_bytes + s * 64), table);
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let f: [float32x4_t; 4] =
                        std::array::from_fn(|c| value::<$j, SYM>(v[c], &idx, zero[c]));
                    for i in 0..MR {
                        let xv = *a.x.get_unchecked((r0 + i) * a.stride + k0 + $j);
                        for c in 0..4 {
                            gacc[i][c] = vfmaq_n_f32(gacc[i][c], f[c], xv);
                        }
                    }
                }};
            }
            each_input!(BITS, input);
        }
        let sc = load_scales(w, base, g);
        for i in 0..MR {
            for c in 0..4 {
                acc[i][c] = vfmaq_f32(acc[i][c], gacc[i][c], sc[c]);
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

/// `y = x · dequant(W)ᵀ` with f32 activations, for every weight format.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f32_q_gemm_neon(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 2, 1, 1, |r, mr, t, _| {
        match (w.bits, w.symmetric) {
            (8, true) => dispatch_rows!(mr; 1; 2; M => exact_block::<8, true, M>(w, a, r, t, y)),
            (8, false) => dispatch_rows!(mr; 1; 2; M => exact_block::<8, false, M>(w, a, r, t, y)),
            (_, true) => dispatch_rows!(mr; 1; 2; M => exact_block::<4, true, M>(w, a, r, t, y)),
            _ => dispatch_rows!(mr; 1; 2; M => exact_block::<4, false, M>(w, a, r, t, y)),
        }
    });
}
