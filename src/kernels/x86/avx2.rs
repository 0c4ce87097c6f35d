//! AVX2 kernels (AVX2 + FMA + F16C): register-blocked `MR` rows × `NT` tiles of 16 columns,
//! each tile held as two 8-lane halves (columns 0..8 and 8..16). Exact mode dequantizes codes
//! to f32 in registers (shift pairs expose one input per dword lane) and uses FMAs; dyn8 has
//! no VNNI here, so it takes plain signed int8 activations (`dyn8_unsigned: false`) and forms
//! the 4-input dot products with the `vpsignb` + `vpmaddubsw` + `vpmaddwd` trick.
//!
//! Only 16 ymm registers: blocks are up to 6 (dense) or 4 (quantized) rows × 1 tile, and a
//! GEMV (single row) takes 2 tiles for more independent accumulator chains.

// Register blocks index several parallel arrays (rows, tiles, halves) by the same counters.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::for_each_block;
use crate::kernels::{Dyn8Acts, ExactActs, Isa, KernelTable, OutPtr};
use crate::quant::pack::{PackedDense, PackedQuant, NR};
use crate::quant::ScaleDType;

pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx2,
    dense: f32_dense_gemm_avx2,
    q_exact: f32_q_gemm_avx2,
    q_dyn8: q8_q_gemm_avx2,
    dyn8_unsigned: false,
};

/// Lanes per ymm register (f32 or i32), i.e. columns per half tile.
const HALF: usize = NR / 2;

/// Stores the two halves `v` of tile `t` to `dst` (the tile's first column in the output
/// row), writing only the columns that exist (`n` columns in all).
///
/// # Safety
/// `dst .. dst + (columns of tile t)` must be writable; lanes past the last real column are
/// never written (`vmaskmovps` does not touch, nor fault on, masked-off elements).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn store_tile(dst: *mut f32, v: [__m256; 2], t: usize, n: usize) {
    let cols = (n - t * NR).min(NR);
    for (h, &vh) in v.iter().enumerate() {
        let valid = cols.saturating_sub(h * HALF).min(HALF);
        if valid == HALF {
            _mm256_storeu_ps(dst.add(h * HALF), vh);
        } else if valid > 0 {
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(valid as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            _mm256_maskstore_ps(dst.add(h * HALF), mask, vh);
        }
    }
}

// ---------------------------------------------------------------------------------------
// f32 dense
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Shared pieces of the quantized kernels
// ---------------------------------------------------------------------------------------

/// The 16 scales of the tile at `base`, kernel group `g`, as two halves of f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_scales(w: &PackedQuant, base: *const u8, g: usize) -> [__m256; 2] {
    let p = base.add(w.scales_offset);
    match w.scale_dtype {
        ScaleDType::F16 => {
            let q = p.add(g * NR * 2) as *const __m128i;
            [
                _mm256_cvtph_ps(_mm_loadu_si128(q)),
                _mm256_cvtph_ps(_mm_loadu_si128(q.add(1))),
            ]
        }
        ScaleDType::F32 => {
            let f = p.add(g * NR * 4) as *const f32;
            [_mm256_loadu_ps(f), _mm256_loadu_ps(f.add(HALF))]
        }
    }
}

/// `scale · zero` for the 16 columns of the tile at `base`, kernel group `g`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_scaled_zeros(
    w: &PackedQuant,
    base: *const u8,
    g: usize,
    scales: [__m256; 2],
) -> [__m256; 2] {
    let p = base.add(w.zeros_offset + g * NR);
    // 8 zero points (bytes) per half, sign-extended to dwords.
    let z0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i));
    let z1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(HALF) as *const __m128i));
    [
        _mm256_mul_ps(scales[0], _mm256_cvtepi32_ps(z0)),
        _mm256_mul_ps(scales[1], _mm256_cvtepi32_ps(z1)),
    ]
}

/// One 64-byte step of the tile at `base` (16 column dwords) as two halves.
///
/// Call it (and the other `#[target_feature]` helpers) from plain loops, not from
/// `std::array::from_fn` closures: such closures were left out of line, returning the
/// vectors through memory in the hot loop.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_step(base: *const u8, offset: usize) -> [__m256i; 2] {
    let p = base.add(offset) as *const __m256i;
    [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))]
}

// ---------------------------------------------------------------------------------------
// Exact: f32 activations × dequantized codes
// ---------------------------------------------------------------------------------------

/// Zero points of the tile at `base`, kernel group `g`, as two halves of 8 i32 lanes (0 when
/// symmetric).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load_zeros(w: &PackedQuant, base: *const u8, g: usize) -> [__m256i; 2] {
    if w.symmetric {
        return [_mm256_setzero_si256(); 2];
    }
    let p = base.add(w.zeros_offset + g * NR);
    [
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)),
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(HALF) as *const __m128i)),
    ]
}

/// Input `J` of a step (4 inputs for int8, 8 for int4) as `q − zero` in 8 f32 lanes, one
/// per column (the zero point is subtracted in integers: no cancellation in exact mode).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn code_as_f32<const BITS: u8, const J: u32>(v: __m256i, zero: __m256i) -> __m256 {
    if BITS == 8 {
        // Byte J of each dword: shift it to the top, then arithmetic-shift back down.
        let top = match J {
            0 => _mm256_slli_epi32::<24>(v),
            1 => _mm256_slli_epi32::<16>(v),
            2 => _mm256_slli_epi32::<8>(v),
            _ => v,
        };
        _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srai_epi32::<24>(top), zero))
    } else {
        // Inputs 0..3 are the low nibbles of bytes 0..3, inputs 4..7 the high nibbles.
        let top = match J {
            0 => _mm256_slli_epi32::<28>(v),
            1 => _mm256_slli_epi32::<20>(v),
            2 => _mm256_slli_epi32::<12>(v),
            3 => _mm256_slli_epi32::<4>(v),
            4 => _mm256_slli_epi32::<24>(v),
            5 => _mm256_slli_epi32::<16>(v),
            6 => _mm256_slli_epi32::<8>(v),
            _ => v,
        };
        _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srai_epi32::<28>(top), zero))
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exact_block<const BITS: u8, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &ExactActs,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
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
            let mut v = [[_mm256_setzero_si256(); 2]; NT];
            for j in 0..NT {
                v[j] = load_step(base[j], g * w.group_bytes + s * 64);
                if BITS == 4 {
                    // Offset-binary nibbles back to two's complement for the shift pairs.
                    let flip = _mm256_set1_epi8(0x88u8 as i8);
                    v[j] = [
                        _mm256_xor_si256(v[j][0], flip),
                        _mm256_xor_si256(v[j][1], flip),
                    ];
                }
            }
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let mut wf = [[_mm256_setzero_ps(); 2]; NT];
                    for j in 0..NT {
                        for h in 0..2 {
                            wf[j][h] = code_as_f32::<BITS, $j>(v[j][h], zero[j][h]);
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
            each_input!(BITS, input);
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
unsafe fn exact_gemm<const BITS: u8>(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 4, 1, 2, |r, mr, t, nt| match nt {
        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<BITS, M, 2>(w, a, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<BITS, M, 1>(w, a, r, t, y)),
    });
}

/// `y = x · dequant(W)ᵀ` with f32 activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f32_q_gemm_avx2(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    if w.bits == 8 {
        exact_gemm::<8>(w, a, rows, tiles, y)
    } else {
        exact_gemm::<4>(w, a, rows, tiles, y)
    }
}

// ---------------------------------------------------------------------------------------
// Dyn8: signed int8 activations × codes with vpsignb + vpmaddubsw + vpmaddwd
// ---------------------------------------------------------------------------------------

/// Per dword lane: `Σ_{b<4} x_b · q_b` (i16 pair sums, not yet widened), given the codes
/// `q`, their magnitudes `q_abs = |q|` (as u8) and the activation bytes `x`.
///
/// `vpmaddubsw` multiplies u8 × i8, so the sign of `q` moves onto `x`: `|q| · (x·sgn q)`.
/// It cannot saturate: `|q| ≤ 128` (`vpsignb(-128, -128)` wraps to 0x80, which is 128 as
/// u8) and `|x| ≤ 127` (activations are clamped to ±127, so negating them never wraps), so a
/// pair sum is at most 2 · 128 · 127 = 32512 < 2^15.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn dot_pairs(q_abs: __m256i, q: __m256i, x: __m256i) -> __m256i {
    _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(x, q))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dyn8_block<const BITS: u8, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xrow: [*const u8; MR] = std::array::from_fn(|i| a.q.as_ptr().add((r0 + i) * a.stride));
    let ones = _mm256_set1_epi16(1);
    let nibble_mask = _mm256_set1_epi8(0x0F);
    // Signed value of each offset-binary nibble 0..15, for vpshufb (which looks up within
    // each 128-bit lane, hence the broadcast).
    let decode = _mm256_broadcastsi128_si256(_mm_setr_epi8(
        -8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7,
    ));
    let mut acc = [[[_mm256_setzero_ps(); 2]; NT]; MR];
    for g in 0..w.groups {
        let mut iacc = [[[_mm256_setzero_si256(); 2]; NT]; MR];
        let steps = w.group_len_padded(g) / step;
        for s in 0..steps {
            let k0 = g * w.kg + s * step;
            // SAFETY (loads): as in `exact_block`; the activation rows are padded with zero
            // codes to `k_padded ≥ k0 + step`, so the 4-byte reads below stay in the row.
            if BITS == 8 {
                let mut v = [[_mm256_setzero_si256(); 2]; NT];
                let mut va = [[_mm256_setzero_si256(); 2]; NT];
                for j in 0..NT {
                    v[j] = load_step(base[j], g * w.group_bytes + s * 64);
                    for h in 0..2 {
                        va[j][h] = _mm256_sign_epi8(v[j][h], v[j][h]);
                    }
                }
                for i in 0..MR {
                    // The 4 activation bytes of this step's inputs, in every dword.
                    let xb = _mm256_set1_epi32((xrow[i].add(k0) as *const i32).read_unaligned());
                    for j in 0..NT {
                        for h in 0..2 {
                            let p = _mm256_madd_epi16(dot_pairs(va[j][h], v[j][h], xb), ones);
                            iacc[i][j][h] = _mm256_add_epi32(iacc[i][j][h], p);
                        }
                    }
                }
            } else {
                let mut lo = [[_mm256_setzero_si256(); 2]; NT];
                let mut hi = [[_mm256_setzero_si256(); 2]; NT];
                for j in 0..NT {
                    let v = load_step(base[j], g * w.group_bytes + s * 64);
                    for h in 0..2 {
                        lo[j][h] = _mm256_shuffle_epi8(decode, _mm256_and_si256(v[h], nibble_mask));
                        hi[j][h] = _mm256_shuffle_epi8(
                            decode,
                            _mm256_and_si256(_mm256_srli_epi16::<4>(v[h]), nibble_mask),
                        );
                    }
                }
                for i in 0..MR {
                    let x0 = _mm256_set1_epi32((xrow[i].add(k0) as *const i32).read_unaligned());
                    let x1 =
                        _mm256_set1_epi32((xrow[i].add(k0 + 4) as *const i32).read_unaligned());
                    for j in 0..NT {
                        for h in 0..2 {
                            // |q| ≤ 8, so each i16 pair sum is at most 2032 in magnitude and
                            // the low- and high-nibble sums can be added before widening.
                            let plo = dot_pairs(_mm256_abs_epi8(lo[j][h]), lo[j][h], x0);
                            let phi = dot_pairs(_mm256_abs_epi8(hi[j][h]), hi[j][h], x1);
                            let p = _mm256_madd_epi16(_mm256_add_epi16(plo, phi), ones);
                            iacc[i][j][h] = _mm256_add_epi32(iacc[i][j][h], p);
                        }
                    }
                }
            }
        }
        for j in 0..NT {
            let sc = load_scales(w, base[j], g);
            for i in 0..MR {
                for h in 0..2 {
                    acc[i][j][h] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[i][j][h]), sc[h], acc[i][j][h]);
                }
            }
            if !w.symmetric {
                let sz = load_scaled_zeros(w, base[j], g, sc);
                for i in 0..MR {
                    let sum = _mm256_set1_ps(a.group_sums[(r0 + i) * w.groups + g] as f32);
                    for h in 0..2 {
                        acc[i][j][h] = _mm256_fnmadd_ps(sz[h], sum, acc[i][j][h]);
                    }
                }
            }
        }
    }
    // Plain signed activations (`dyn8_unsigned: false`): no +128 offset to undo.
    for i in 0..MR {
        let sx = _mm256_set1_ps(a.scale[r0 + i]);
        for j in 0..NT {
            let v = [
                _mm256_mul_ps(sx, acc[i][j][0]),
                _mm256_mul_ps(sx, acc[i][j][1]),
            ];
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            store_tile(dst, v, t0 + j, w.n);
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dyn8_gemm<const BITS: u8>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 4, 1, 2, |r, mr, t, nt| match nt {
        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<BITS, M, 2>(w, a, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<BITS, M, 1>(w, a, r, t, y)),
    });
}

/// `y = sx · (Σ_g s_g · Σ xq·q − zero terms)` with per-row signed int8 activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q8_q_gemm_avx2(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    if w.bits == 8 {
        dyn8_gemm::<8>(w, a, rows, tiles, y)
    } else {
        dyn8_gemm::<4>(w, a, rows, tiles, y)
    }
}
