//! Exact mode: f32 activations × codes decoded to f32 in registers. Each 64-byte step is made
//! signed bytes (int8: one XOR of the offset; 4-bit codes: two `tbl` lookups of their
//! values), then a shift pair moves one input per column to an i32 lane for `scvtf`.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::aarch64::*;
use std::ops::Range;

use super::{load_scales, load_zeros, nibble_table, signed_step, store_tile, tile_cols};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{ExactActs, OutPtr};
use crate::quant::pack::{PackedQuant, NR};

/// Signed byte `B` of each 32-bit lane of `v`.
#[inline(always)]
unsafe fn byte_lane<const B: i32>(v: int8x16_t) -> int32x4_t {
    let v = vreinterpretq_s32_s8(v);
    match B {
        0 => vshrq_n_s32::<24>(vshlq_n_s32::<24>(v)),
        1 => vshrq_n_s32::<24>(vshlq_n_s32::<16>(v)),
        2 => vshrq_n_s32::<24>(vshlq_n_s32::<8>(v)),
        _ => vshrq_n_s32::<24>(v),
    }
}

/// Input `J` of a step as the f32 value `q − zero` (or the level) for 4 columns.
#[inline(always)]
unsafe fn value<const BITS: u8, const J: i32>(
    s: (int8x16_t, int8x16_t),
    zero: int32x4_t,
) -> float32x4_t {
    let q = match J {
        0 => byte_lane::<0>(s.0),
        1 => byte_lane::<1>(s.0),
        2 => byte_lane::<2>(s.0),
        3 => byte_lane::<3>(s.0),
        4 => byte_lane::<0>(s.1),
        5 => byte_lane::<1>(s.1),
        6 => byte_lane::<2>(s.1),
        _ => byte_lane::<3>(s.1),
    };
    vcvtq_f32_s32(vsubq_s32(q, zero))
}

/// `MR × 16` outputs: per group `acc += s_g · Σ_k x_k · value_k` (as the scalar oracle).
#[target_feature(enable = "neon")]
unsafe fn exact_block<const BITS: u8, const MR: usize>(
    w: &PackedQuant,
    a: &ExactActs,
    r0: usize,
    t: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let table = nibble_table(w);
    let base = w.tile(t).as_ptr();
    let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
    for g in 0..w.groups {
        let zero = load_zeros(w, base, g);
        let mut gacc = [[vdupq_n_f32(0.0); 4]; MR];
        for s in 0..w.group_len_padded(g) / step {
            let v = signed_step::<BITS>(base.add(g * w.group_bytes + s * 64), table);
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let f: [float32x4_t; 4] =
                        std::array::from_fn(|c| value::<BITS, $j>(v[c], zero[c]));
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
        if w.bits == 8 {
            dispatch_rows!(mr; 1; 2; M => exact_block::<8, M>(w, a, r, t, y))
        } else {
            dispatch_rows!(mr; 1; 2; M => exact_block::<4, M>(w, a, r, t, y))
        }
    });
}
