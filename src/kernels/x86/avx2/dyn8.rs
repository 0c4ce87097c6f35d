//! Dyn8 on ymm: signed int8 activations × weight bytes, four products per dword.
//!
//! Without VNNI, `vpmaddubsw` + `vpmaddwd` form them. int8 (offset removed) and cb4 levels
//! (looked up with `vpshufb`) reach ±127, so their sign moves onto the activations with
//! `vpsignb` first. With AVX-VNNI one `vpdpbusd` does it, and the weights enter as unsigned
//! bytes as on AVX-512: int8 as stored (`q + 128`), cb4 as `level + 128`, and each block's
//! sum starts from `−128·Σx`. int4 enters as its stored nibble on both, its block sum
//! starting from `−8·Σx`. Either way the offset comes back out exactly, and per block the
//! i32 sum is scaled into f32 in the scalar oracle's order, so the result has its bits.

// Register blocks index several parallel arrays (rows, tiles, halves) by the same counters.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::{
    load_scales, load_step, load_zeros, nibble_bytes, nibble_codes, nibble_table, store_tile,
};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{Dyn8Acts, OutPtr};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::{WeightFormat, DYN8_BLOCK};

/// Weight formats, as const parameters.
const INT8: u8 = 0;
const INT4: u8 = 1;
const CB4: u8 = 2;

/// Per dword lane: `Σ_{b<4} x_b · q_b` as two i16 pair sums (not yet widened), given the
/// signed weight bytes `q` and activation bytes `x`.
///
/// `vpmaddubsw` multiplies u8 × i8, so the sign of `q` moves onto `x`: `|q| · (x·sgn q)`.
/// It cannot saturate: `|q| ≤ 128` (`vpabsb(-128)` is 0x80, which is 128 as u8) and
/// `|x| ≤ 127` (activations are clamped to ±127, so negating them never wraps), so a pair
/// sum is at most 2 · 128 · 127 = 32512 < 2^15.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn dot_pairs(q: __m256i, x: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q))
}

/// The i32 dot products of one step (4 or 8 inputs) of one half tile with row `x0` (and
/// `x1` for the second 4 inputs of a 4-bit step).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn step_dot<const FMT: u8>(q: (__m256i, __m256i), x0: __m256i, x1: __m256i) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    match FMT {
        INT8 => _mm256_madd_epi16(dot_pairs(q.0, x0), ones),
        // Stored nibbles n ≤ 15 go in unsigned as they are, no sign moves: the pair sums
        // of both halves fit an i16 together (≤ 2 · 2 · 15 · 127 = 7620).
        INT4 => _mm256_madd_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(q.0, x0), _mm256_maddubs_epi16(q.1, x1)),
            ones,
        ),
        // Levels reach ±127: widen each half on its own.
        _ => _mm256_add_epi32(
            _mm256_madd_epi16(dot_pairs(q.0, x0), ones),
            _mm256_madd_epi16(dot_pairs(q.1, x1), ones),
        ),
    }
}

/// `acc + Σ_{b<4} q_b · x_b` per dword lane for unsigned weight bytes `q` (two vectors for
/// a 4-bit step), with AVX-VNNI.
#[inline(always)]
unsafe fn step_dot_vnni<const FMT: u8>(
    acc: __m256i,
    q: (__m256i, __m256i),
    x0: __m256i,
    x1: __m256i,
) -> __m256i {
    let acc = _mm256_dpbusd_avx_epi32(acc, q.0, x0);
    if FMT == INT8 {
        acc
    } else {
        _mm256_dpbusd_avx_epi32(acc, q.1, x1)
    }
}

/// One `MR × 16·NT` block; `VNNI` picks `vpdpbusd` over the `vpmaddubsw` triple. Inlined
/// into entry points that carry the target features (see [`dyn8_entry`]).
#[inline(always)]
unsafe fn dyn8_block<const FMT: u8, const VNNI: bool, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if FMT == INT8 { 4 } else { 8 };
    // VNNI multiplies unsigned bytes: cb4's levels are looked up as `level + 128`.
    let table = if VNNI {
        _mm256_xor_si256(nibble_table(w), _mm256_set1_epi8(0x80u8 as i8))
    } else {
        nibble_table(w)
    };
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xrow: [*const i8; MR] = std::array::from_fn(|i| a.q.as_ptr().add((r0 + i) * a.stride));
    let mut acc = [[[_mm256_setzero_ps(); 2]; NT]; MR];
    for g in 0..w.groups {
        let len = w.group_len_padded(g);
        let block_len = if a.per_row { len } else { DYN8_BLOCK };
        let mut sc = [[_mm256_setzero_ps(); 2]; NT];
        let mut neg_zero = [[_mm256_setzero_si256(); 2]; NT];
        for j in 0..NT {
            sc[j] = load_scales(w, base[j], g);
            let z = load_zeros(w, base[j], g);
            // int4 multiplies the stored nibble n = value + 8 + zero, VNNI the other formats'
            // bytes + 128: take that offset out with the zero.
            let offset = match FMT {
                INT4 => -8,
                _ if VNNI => -128,
                _ => 0,
            };
            let offset = _mm256_set1_epi32(offset);
            for h in 0..2 {
                neg_zero[j][h] = _mm256_sub_epi32(offset, z[h]);
            }
        }
        let mut k_in_group = 0;
        while k_in_group < len {
            let block_end = (k_in_group + block_len).min(len);
            let blk = if a.per_row {
                g
            } else {
                (g * w.kg + k_in_group) / DYN8_BLOCK
            };
            // Start from −(offset + zero) · Σx, so the block sums Σ x·(q − zero): the offset
            // is 8 for int4's stored nibble, 128 for VNNI's unsigned int8 and cb4 bytes.
            let mut iacc = [[[_mm256_setzero_si256(); 2]; NT]; MR];
            if !w.symmetric || FMT == INT4 || VNNI {
                for i in 0..MR {
                    let sum = _mm256_set1_epi32(*a.sums.get_unchecked((r0 + i) * a.blocks + blk));
                    for j in 0..NT {
                        for h in 0..2 {
                            iacc[i][j][h] = _mm256_mullo_epi32(neg_zero[j][h], sum);
                        }
                    }
                }
            }
            let mut kk = k_in_group;
            while kk < block_end {
                let k0 = g * w.kg + kk;
                // SAFETY (loads): the codes are inside the tile; the activation rows are
                // padded with zero codes to the stride, so the 4-byte reads stay in the row.
                let mut q = [[(_mm256_setzero_si256(), _mm256_setzero_si256()); 2]; NT];
                for j in 0..NT {
                    let raw = load_step(base[j], g * w.group_bytes + kk / step * 64);
                    for h in 0..2 {
                        q[j][h] = match FMT {
                            INT8 if VNNI => (raw[h], raw[h]),
                            INT8 => {
                                let s = _mm256_xor_si256(raw[h], _mm256_set1_epi8(0x80u8 as i8));
                                (s, s)
                            }
                            INT4 => nibble_codes(raw[h]),
                            _ => nibble_bytes(raw[h], table),
                        };
                    }
                }
                for i in 0..MR {
                    let x4 = |k: usize| {
                        _mm256_set1_epi32((xrow[i].add(k) as *const i32).read_unaligned())
                    };
                    let x0 = x4(k0);
                    let x1 = if FMT == INT8 { x0 } else { x4(k0 + 4) };
                    for j in 0..NT {
                        for h in 0..2 {
                            iacc[i][j][h] = if VNNI {
                                step_dot_vnni::<FMT>(iacc[i][j][h], q[j][h], x0, x1)
                            } else {
                                _mm256_add_epi32(iacc[i][j][h], step_dot::<FMT>(q[j][h], x0, x1))
                            };
                        }
                    }
                }
                kk += step;
            }
            for i in 0..MR {
                let sx = if a.per_row {
                    None
                } else {
                    Some(_mm256_set1_ps(
                        *a.scale.get_unchecked((r0 + i) * a.blocks + blk),
                    ))
                };
                for j in 0..NT {
                    for h in 0..2 {
                        let f = _mm256_cvtepi32_ps(iacc[i][j][h]);
                        let m = match sx {
                            Some(sx) => _mm256_mul_ps(sx, sc[j][h]),
                            None => sc[j][h],
                        };
                        acc[i][j][h] = _mm256_fmadd_ps(f, m, acc[i][j][h]);
                    }
                }
            }
            k_in_group = block_end;
        }
    }
    for i in 0..MR {
        for j in 0..NT {
            let v = if a.per_row {
                let sx = _mm256_set1_ps(a.scale[r0 + i]);
                [
                    _mm256_mul_ps(sx, acc[i][j][0]),
                    _mm256_mul_ps(sx, acc[i][j][1]),
                ]
            } else {
                acc[i][j]
            };
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            store_tile(dst, v, t0 + j, w.n);
        }
    }
}

/// Defines a dyn8 entry point. A macro because the block closure must be defined inside
/// the function that carries the target features, or its intrinsics would not inline.
macro_rules! dyn8_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, vnni: $vnni:literal) => {
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
                    for_each_block(rows, tiles, 4, 1, 2, |r, mr, t, nt| match nt {
                        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<{ $fmt }, $vnni, M, 2>(w, a, r, t, y)),
                        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<{ $fmt }, $vnni, M, 1>(w, a, r, t, y)),
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
    /// Dyn8 with signed int8 activations, for every weight format.
    q8_q_gemm_avx2,
    "avx2,fma,f16c",
    vnni: false
);
dyn8_entry!(
    /// [`q8_q_gemm_avx2`] with AVX-VNNI's `vpdpbusd` on ymm.
    q8_q_gemm_avx_vnni,
    "avx2,fma,f16c,avxvnni",
    vnni: true
);
