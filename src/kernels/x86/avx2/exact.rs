//! Exact mode: f32 activations × codes decoded to f32 in registers. Codes are brought back
//! to signed bytes or nibbles (int8 and int4: one XOR of their offset; cb4: two `vpshufb`
//! lookups of its levels), then a shift pair moves one input per dword to a lane.

// Register blocks index several parallel arrays (rows, tiles, halves) by the same counters.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::{load_scales, load_step, load_zeros, nibble_bytes, nibble_table, store_tile};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{ExactActs, OutPtr};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::WeightFormat;

/// Weight formats, as const parameters.
const INT8: u8 = 0;
const INT4: u8 = 1;
const CB4: u8 = 2;

/// One 32-byte half step made signed: int8 and int4 in `.0` (offset removed), cb4's level
/// bytes for the low-nibble inputs in `.0` and the high-nibble ones in `.1`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn signed_step<const FMT: u8>(v: __m256i, table: __m256i) -> (__m256i, __m256i) {
    match FMT {
        INT8 => (_mm256_xor_si256(v, _mm256_set1_epi8(0x80u8 as i8)), v),
        INT4 => (_mm256_xor_si256(v, _mm256_set1_epi8(0x88u8 as i8)), v),
        _ => nibble_bytes(v, table),
    }
}

/// Signed byte `B` of each dword of `v` as an i32 lane.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn byte_lane<const B: u32>(v: __m256i) -> __m256i {
    let top = match B {
        0 => _mm256_slli_epi32::<24>(v),
        1 => _mm256_slli_epi32::<16>(v),
        2 => _mm256_slli_epi32::<8>(v),
        _ => v,
    };
    _mm256_srai_epi32::<24>(top)
}

/// Input `J` of a step (4 inputs for int8, 8 for 4-bit codes) as the f32 value `q − zero`
/// (or the level) in 8 lanes, one per column; the zero point is subtracted in integers, so
/// exact mode never cancels a separate `zero · Σx` term.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn code_as_f32<const FMT: u8, const J: u32>(s: (__m256i, __m256i), zero: __m256i) -> __m256 {
    let q = match FMT {
        INT8 => byte_lane::<J>(s.0),
        INT4 => {
            // Inputs 0..3 are the low nibbles of bytes 0..3, inputs 4..7 the high nibbles.
            let top = match J {
                0 => _mm256_slli_epi32::<28>(s.0),
                1 => _mm256_slli_epi32::<20>(s.0),
                2 => _mm256_slli_epi32::<12>(s.0),
                3 => _mm256_slli_epi32::<4>(s.0),
                4 => _mm256_slli_epi32::<24>(s.0),
                5 => _mm256_slli_epi32::<16>(s.0),
                6 => _mm256_slli_epi32::<8>(s.0),
                _ => s.0,
            };
            _mm256_srai_epi32::<28>(top)
        }
        _ => match J {
            0 => byte_lane::<0>(s.0),
            1 => byte_lane::<1>(s.0),
            2 => byte_lane::<2>(s.0),
            3 => byte_lane::<3>(s.0),
            4 => byte_lane::<0>(s.1),
            5 => byte_lane::<1>(s.1),
            6 => byte_lane::<2>(s.1),
            _ => byte_lane::<3>(s.1),
        },
    };
    _mm256_cvtepi32_ps(_mm256_sub_epi32(q, zero))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exact_block<const FMT: u8, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &ExactActs,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if FMT == INT8 { 4 } else { 8 };
    let table = nibble_table(w);
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xrow: [*const f32; MR] = std::array::from_fn(|i| a.x.as_ptr().add((r0 + i) * a.stride));
    let mut acc = [[[_mm256_setzero_ps(); 2]; NT]; MR];
    for g in 0..w.groups {
        let mut gacc = [[[_mm256_setzero_ps(); 2]; NT]; MR];
        let mut zero = [[_mm256_setzero_si256(); 2]; NT];
        for j in 0..NT {
            zero[j] = load_zeros(w, base[j], g);
        }
        let steps = w.group_len_padded(g) / step;
        for s in 0..steps {
            // SAFETY: the group's codes are `steps` 64-byte steps inside the tile, and the
            // activation rows are padded with zeros to `k_padded ≥ k0 + step`.
            let mut v = [[(_mm256_setzero_si256(), _mm256_setzero_si256()); 2]; NT];
            for j in 0..NT {
                let raw = load_step(base[j], g * w.group_bytes + s * 64);
                for h in 0..2 {
                    v[j][h] = signed_step::<FMT>(raw[h], table);
                }
            }
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let mut wf = [[_mm256_setzero_ps(); 2]; NT];
                    for j in 0..NT {
                        for h in 0..2 {
                            wf[j][h] = code_as_f32::<FMT, $j>(v[j][h], zero[j][h]);
                        }
                    }
                    for i in 0..MR {
                        let xb = _mm256_set1_ps(*xrow[i].add(k0 + $j));
                        for j in 0..NT {
                            for h in 0..2 {
                                gacc[i][j][h] = _mm256_fmadd_ps(xb, wf[j][h], gacc[i][j][h]);
                            }
                        }
                    }
                }};
            }
            each_input!(if FMT == INT8 { 8 } else { 4 }, input);
        }
        for j in 0..NT {
            let sc = load_scales(w, base[j], g);
            for i in 0..MR {
                for h in 0..2 {
                    acc[i][j][h] = _mm256_fmadd_ps(gacc[i][j][h], sc[h], acc[i][j][h]);
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

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exact_gemm<const FMT: u8>(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 4, 1, 2, |r, mr, t, nt| match nt {
        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<FMT, M, 2>(w, a, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<FMT, M, 1>(w, a, r, t, y)),
    });
}

/// `y = x · dequant(W)ᵀ` with f32 activations, for every weight format.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f32_q_gemm_avx2(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    match w.format {
        WeightFormat::Int8 => exact_gemm::<INT8>(w, a, rows, tiles, y),
        WeightFormat::Int4 => exact_gemm::<INT4>(w, a, rows, tiles, y),
        WeightFormat::Cb4 => exact_gemm::<CB4>(w, a, rows, tiles, y),
    }
}
