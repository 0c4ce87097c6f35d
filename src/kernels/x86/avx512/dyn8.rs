//! Dyn8: int8 activations × weights with `vpdpbusd`. Weights enter as unsigned bytes — int8
//! stored as `q + 128`, int4 nibbles as `16·(q + 8)`, cb4 levels as `level + 128` from one
//! table lookup — and every block's integer sum starts from `−128·Σx`, which takes the
//! offset back out exactly (int4's sums come out 16× too large, and its activation scales
//! are divided by 16, also exactly). The f32 operations are those of the scalar oracle, in
//! its order, so every path gives its bits.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::x86_64::*;
use std::ops::Range;

use super::{col_mask, load_scales, load_zeros};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{Dyn8Acts, OutPtr};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::{WeightFormat, DYN8_BLOCK};

/// Weight formats, as const parameters.
const INT8: u8 = 0;
const INT4: u8 = 1;
const CB4: u8 = 2;

/// Matrix for `vgf2p8affineqb` that shifts each byte left by 4 (row `7 − i` of the bit
/// matrix is byte `i` of the qword): the low nibble lands in the high nibble, the rest is 0.
const GF2_SHL4: i64 = 0x0000_0000_0102_0408;

/// The unsigned weight bytes of one 64-byte step at `p`: for int8 the step itself; for
/// 4-bit codes the low-nibble inputs and the high-nibble inputs as two vectors. `table`
/// holds `level + 128` for cb4 in each 16-byte lane.
#[inline(always)]
unsafe fn weight_bytes<const FMT: u8, const ICELAKE: bool>(
    p: *const u8,
    table: __m512i,
) -> (__m512i, __m512i) {
    let v = _mm512_load_si512(p as *const __m512i);
    match FMT {
        INT8 => (v, v),
        INT4 => {
            // Both nibbles as 16·(q + 8): the high one in place, the low one moved up.
            let high = _mm512_set1_epi8(0xF0u8 as i8);
            let lo = if ICELAKE {
                _mm512_gf2p8affine_epi64_epi8::<0>(v, _mm512_set1_epi64(GF2_SHL4))
            } else {
                _mm512_and_si512(_mm512_slli_epi16::<4>(v), high)
            };
            (lo, _mm512_and_si512(v, high))
        }
        _ => {
            // vpermb reads the low 6 bits of each index and the table repeats every 16
            // bytes, so bits 4..5 do not matter: no mask. vpshufb needs the nibble masked.
            let hi_idx = _mm512_srli_epi16::<4>(v);
            if ICELAKE {
                (
                    _mm512_permutexvar_epi8(v, table),
                    _mm512_permutexvar_epi8(hi_idx, table),
                )
            } else {
                let m = _mm512_set1_epi8(0x0F);
                (
                    _mm512_shuffle_epi8(table, _mm512_and_si512(v, m)),
                    _mm512_shuffle_epi8(table, _mm512_and_si512(hi_idx, m)),
                )
            }
        }
    }
}

/// Four activation bytes at `p` in every dword.
#[inline(always)]
unsafe fn broadcast4(p: *const i8) -> __m512i {
    _mm512_set1_epi32((p as *const i32).read_unaligned())
}

/// `steps` 64-byte steps of dot products from input `k0` (weights at byte `off` of each
/// tile), accumulated into `iacc`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_steps<const FMT: u8, const ICELAKE: bool, const MR: usize, const NT: usize>(
    iacc: &mut [[__m512i; NT]; MR],
    base: [*const u8; NT],
    xrow: [*const i8; MR],
    k0: usize,
    off: usize,
    steps: usize,
    table: __m512i,
) {
    let step = if FMT == INT8 { 4 } else { 8 };
    let mut wb = [(_mm512_setzero_si512(), _mm512_setzero_si512()); NT];
    for s in 0..steps {
        let k = k0 + s * step;
        for j in 0..NT {
            wb[j] = weight_bytes::<FMT, ICELAKE>(base[j].add(off + s * 64), table);
        }
        for i in 0..MR {
            let x0 = broadcast4(xrow[i].add(k));
            if FMT == INT8 {
                for j in 0..NT {
                    iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], wb[j].0, x0);
                }
            } else {
                let x1 = broadcast4(xrow[i].add(k + 4));
                for j in 0..NT {
                    iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], wb[j].0, x0);
                    iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], wb[j].1, x1);
                }
            }
        }
    }
}

/// `MR × 16·NT` outputs. Per block `b` of a group (block-wise: 32 inputs; per row: the
/// whole group), `I = Σ x·value` in i32 (×16 for int4), then `acc = fma(I, sx_b·s_g, acc)`
/// (per row: `acc = fma(I, s_g, acc)` and `y = sx·acc` at the end).
///
/// Block-wise this costs one conversion, one multiply and one FMA per row, tile and block
/// on top of the dot products; accumulating `Σ_b sx_b·I_b` per group first would save the
/// multiply for groups of 64 and more but keep another `MR × NT` registers live.
#[inline(always)]
unsafe fn dyn8_block<const FMT: u8, const ICELAKE: bool, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if FMT == INT8 { 4 } else { 8 };
    let unit = if FMT == INT4 { 16 } else { 1 };
    let inv_unit = _mm512_set1_ps(1.0 / unit as f32);
    let mut base = [std::ptr::null::<u8>(); NT];
    for j in 0..NT {
        base[j] = w.tile(t0 + j).as_ptr();
    }
    let mut xrow = [std::ptr::null::<i8>(); MR];
    for i in 0..MR {
        xrow[i] = a.q.as_ptr().add((r0 + i) * a.stride);
    }
    let levels = _mm_loadu_si128(w.nibble_values.as_ptr() as *const __m128i);
    let table = _mm512_broadcast_i32x4(_mm_xor_si128(levels, _mm_set1_epi8(0x80u8 as i8)));
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    // Plain loops below, not `array::from_fn` closures: closures do not inherit the target
    // features, and their intrinsics were left as out-of-line calls.
    // Scales and zero points are loaded where they are used, so they hold no registers
    // through the dot-product loop.
    for g in 0..w.groups {
        let len = w.group_len_padded(g);
        let block_len = if a.per_row { len } else { DYN8_BLOCK };
        let mut k_in_group = 0;
        while k_in_group < len {
            let block_end = (k_in_group + block_len).min(len);
            let blk = if a.per_row {
                g
            } else {
                (g * w.kg + k_in_group) / DYN8_BLOCK
            };
            let mut iacc = [[_mm512_setzero_si512(); NT]; MR];
            if w.symmetric {
                for i in 0..MR {
                    let sum = *a.sums.get_unchecked((r0 + i) * a.blocks + blk);
                    iacc[i] = [_mm512_set1_epi32(-128 * sum); NT];
                }
            } else {
                // Asymmetric: each block starts from −(128 + unit·zero)·Σx per column.
                for j in 0..NT {
                    let z = _mm512_mullo_epi32(load_zeros(w, base[j], g), _mm512_set1_epi32(unit));
                    let zoff = _mm512_sub_epi32(_mm512_set1_epi32(-128), z);
                    for i in 0..MR {
                        let sum = *a.sums.get_unchecked((r0 + i) * a.blocks + blk);
                        iacc[i][j] = _mm512_mullo_epi32(zoff, _mm512_set1_epi32(sum));
                    }
                }
            }
            // A full block has a constant trip count, which the compiler unrolls.
            let k0 = g * w.kg + k_in_group;
            let off = g * w.group_bytes + k_in_group / step * 64;
            let steps = (block_end - k_in_group) / step;
            dot_steps::<FMT, ICELAKE, MR, NT>(&mut iacc, base, xrow, k0, off, steps, table);
            let mut sx = [inv_unit; MR];
            if !a.per_row {
                for i in 0..MR {
                    let s = *a.scale.get_unchecked((r0 + i) * a.blocks + blk);
                    sx[i] = if FMT == INT4 {
                        _mm512_mul_ps(_mm512_set1_ps(s), inv_unit)
                    } else {
                        _mm512_set1_ps(s)
                    };
                }
            }
            for j in 0..NT {
                let sc = load_scales(w, base[j], g);
                for i in 0..MR {
                    let f = _mm512_cvtepi32_ps(iacc[i][j]);
                    let m = if a.per_row {
                        sc
                    } else {
                        _mm512_mul_ps(sx[i], sc)
                    };
                    acc[i][j] = _mm512_fmadd_ps(f, m, acc[i][j]);
                }
            }
            k_in_group = block_end;
        }
    }
    for i in 0..MR {
        let row_scale = if a.per_row {
            _mm512_mul_ps(_mm512_set1_ps(a.scale[r0 + i]), inv_unit)
        } else {
            _mm512_set1_ps(1.0)
        };
        for j in 0..NT {
            let v = if a.per_row {
                _mm512_mul_ps(row_scale, acc[i][j])
            } else {
                acc[i][j]
            };
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            _mm512_mask_storeu_ps(dst, col_mask(t0 + j, w.n), v);
        }
    }
}

/// Defines a dyn8 entry point. A macro because the block closure must be defined inside
/// the function that carries the target features, or its intrinsics would not inline.
macro_rules! dyn8_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, icelake: $icl:literal) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(
            w: &PackedQuant,
            a: &Dyn8Acts,
            rows: Range<usize>,
            tiles: Range<usize>,
            y: OutPtr,
        ) {
            macro_rules! run {
                ($fmt:expr) => {
                    for_each_block(rows, tiles, 4, 2, 4, |r, mr, t, nt| match nt {
                        4 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<{ $fmt }, $icl, M, 4>(w, a, r, t, y)),
                        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<{ $fmt }, $icl, M, 2>(w, a, r, t, y)),
                        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<{ $fmt }, $icl, M, 1>(w, a, r, t, y)),
                    })
                };
            }
            match w.format {
                WeightFormat::Int8 => run!(INT8),
                WeightFormat::Int4 => run!(INT4),
                WeightFormat::Cb4 => run!(CB4),
            }
        }
    };
}

dyn8_entry!(
    /// Dyn8 with AVX-512 VNNI.
    q8_q_gemm_avx512vnni,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c",
    icelake: false
);
dyn8_entry!(
    /// Dyn8 with AVX-512 VNNI, GFNI (int4 nibbles) and VBMI (cb4 lookups).
    q8_q_gemm_avx512vnni_icelake,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,gfni,fma,f16c",
    icelake: true
);
