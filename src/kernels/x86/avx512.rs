//! AVX-512 kernels (F/BW/DQ/VL + VNNI + F16C): register-blocked `MR` rows × `NT` tiles of 16
//! columns. Exact mode dequantizes codes to f32 in registers (shift pairs expose one input
//! per dword lane) and uses FMAs; dyn8 feeds the codes straight to `vpdpbusd`.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::x86_64::*;
use std::ops::Range;

use super::for_each_block;
use crate::kernels::{Dyn8Acts, ExactActs, Isa, KernelTable, OutPtr};
use crate::quant::pack::{PackedDense, PackedQuant, NR};
use crate::quant::ScaleDType;

pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx512,
    dense: f32_dense_gemm_avx512,
    q_exact: f32_q_gemm_avx512,
    q_dyn8: q8_q_gemm_avx512vnni,
    dyn8_unsigned: true,
};

/// [`TABLE`] for CPUs that also have GFNI (Ice Lake, Zen 4 and later).
pub(crate) const TABLE_GFNI: KernelTable = KernelTable {
    q_dyn8: q8_q_gemm_avx512vnni_gfni,
    ..TABLE
};

/// Lanes of tile `t` that hold real columns, as a store mask.
#[inline(always)]
fn col_mask(t: usize, n: usize) -> __mmask16 {
    let cols = (n - t * NR).min(NR);
    ((1u32 << cols) - 1) as __mmask16
}

// ---------------------------------------------------------------------------------------
// f32 dense
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Shared pieces of the quantized kernels
// ---------------------------------------------------------------------------------------

/// The 16 scales of the tile at `base`, kernel group `g`, as f32.
#[inline(always)]
unsafe fn load_scales(w: &PackedQuant, base: *const u8, g: usize) -> __m512 {
    let p = base.add(w.scales_offset);
    match w.scale_dtype {
        ScaleDType::F16 => _mm512_cvtph_ps(_mm256_loadu_si256(p.add(g * NR * 2) as *const __m256i)),
        ScaleDType::F32 => _mm512_loadu_ps(p.add(g * NR * 4) as *const f32),
    }
}

/// `scale · zero` for the 16 columns of the tile at `base`, kernel group `g`.
#[inline(always)]
unsafe fn load_scaled_zeros(w: &PackedQuant, base: *const u8, g: usize, scales: __m512) -> __m512 {
    let z = _mm_loadu_si128(base.add(w.zeros_offset + g * NR) as *const __m128i);
    _mm512_mul_ps(scales, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(z)))
}

// ---------------------------------------------------------------------------------------
// Exact: f32 activations × dequantized codes
// ---------------------------------------------------------------------------------------

/// Zero points of the tile at `base`, kernel group `g`, as 16 f32 lanes.
#[inline(always)]
unsafe fn load_zeros(w: &PackedQuant, base: *const u8, g: usize) -> __m512 {
    let z = _mm_loadu_si128(base.add(w.zeros_offset + g * NR) as *const __m128i);
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(z))
}

/// The value of each int4 code, indexed by its offset-binary nibble (for `vpermps`).
#[inline(always)]
unsafe fn int4_values() -> __m512 {
    _mm512_setr_ps(
        -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
    )
}

/// Input `J` of a step (4 inputs for int8, 8 for int4) as `q − zero` in 16 f32 lanes, one
/// per column. `q − zero` is exact in f32, so exact mode never cancels a separate
/// `zero · Σx` term.
#[inline(always)]
unsafe fn code_as_f32<const BITS: u8, const J: u32, const ASYM: bool>(
    v: __m512i,
    int4: __m512,
    zero: __m512,
) -> __m512 {
    let q = if BITS == 8 && !ASYM && J < 2 {
        // Byte J ≤ 1 (bits 8J..8J+7, inside the 23 mantissa bits) with its sign bit flipped
        // is q + 128; as the mantissa of 2^(23−8J) it makes the float 2^(23−8J) + q + 128
        // exactly. One AND-XOR and one subtraction, where the shifts below need two shifts
        // and a conversion.
        let p = 8 * J as i32;
        let mask = _mm512_set1_epi32(0xFF << p);
        let flip_and_exponent = _mm512_set1_epi32((0x80 << p) | ((127 + 23 - p) << 23));
        let biased = _mm512_ternarylogic_epi32::<0x6A>(v, mask, flip_and_exponent); // (v & m) ^ c
        let offset = _mm512_set1_ps((1u32 << (23 - p)) as f32 + 128.0);
        return _mm512_sub_ps(_mm512_castsi512_ps(biased), offset);
    } else if BITS == 8 {
        // Byte J of each dword: shift it to the top, then arithmetic-shift back down.
        let top = match J {
            0 => _mm512_slli_epi32::<24>(v),
            1 => _mm512_slli_epi32::<16>(v),
            2 => _mm512_slli_epi32::<8>(v),
            _ => v,
        };
        _mm512_cvtepi32_ps(_mm512_srai_epi32::<24>(top))
    } else {
        // Inputs 0..3 are the low nibbles of bytes 0..3, inputs 4..7 the high nibbles;
        // vpermps reads only the low 4 bits of each lane, so one shift exposes a nibble.
        let idx = match J {
            0 => v,
            1 => _mm512_srli_epi32::<8>(v),
            2 => _mm512_srli_epi32::<16>(v),
            3 => _mm512_srli_epi32::<24>(v),
            4 => _mm512_srli_epi32::<4>(v),
            5 => _mm512_srli_epi32::<12>(v),
            6 => _mm512_srli_epi32::<20>(v),
            _ => _mm512_srli_epi32::<28>(v),
        };
        _mm512_permutexvar_ps(idx, int4)
    };
    if ASYM {
        _mm512_sub_ps(q, zero)
    } else {
        q
    }
}

/// `MR × 16·NT` outputs with codes decoded to `q − zero` in registers. Each group is summed
/// unscaled, then scaled once: `acc += s_g · Σ_{k∈g} x_k (q_k − z_g)` — the same operations,
/// in the same order, as the panel path, so a row's result does not depend on its batch.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")]
unsafe fn exact_block<const BITS: u8, const ASYM: bool, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &ExactActs,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xrow: [*const f32; MR] = std::array::from_fn(|i| a.x.as_ptr().add((r0 + i) * a.stride));
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    for g in 0..w.groups {
        let int4 = int4_values();
        let mut gacc = [[_mm512_setzero_ps(); NT]; MR];
        let mut zero = [_mm512_setzero_ps(); NT];
        if ASYM {
            for j in 0..NT {
                zero[j] = load_zeros(w, base[j], g);
            }
        }
        let steps = w.group_len_padded(g) / step;
        for s in 0..steps {
            let v: [__m512i; NT] = std::array::from_fn(|j| {
                _mm512_load_si512(base[j].add(g * w.group_bytes + s * 64) as *const __m512i)
            });
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let wf: [__m512; NT] =
                        std::array::from_fn(|j| code_as_f32::<BITS, $j, ASYM>(v[j], int4, zero[j]));
                    for i in 0..MR {
                        let xb = _mm512_set1_ps(*xrow[i].add(k0 + $j));
                        for j in 0..NT {
                            gacc[i][j] = _mm512_fmadd_ps(xb, wf[j], gacc[i][j]);
                        }
                    }
                }};
            }
            each_input!(BITS, input);
        }
        for j in 0..NT {
            let sc = load_scales(w, base[j], g);
            for i in 0..MR {
                acc[i][j] = _mm512_fmadd_ps(gacc[i][j], sc, acc[i][j]);
            }
        }
    }
    for i in 0..MR {
        for j in 0..NT {
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            _mm512_mask_storeu_ps(dst, col_mask(t0 + j, w.n), acc[i][j]);
        }
    }
}

/// Rows from which exact mode dequantizes a panel once and runs the f32 GEMM block on it,
/// instead of dequantizing in registers for every row block.
const PANEL_MIN_ROWS: usize = 8;

thread_local! {
    static PANEL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes tile `t` (all `k_padded` inputs) into `panel` as `[k][16]` f32 values `q − zero`
/// (scales are applied per group by [`panel_block`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")]
unsafe fn dequantize_tile<const BITS: u8, const ASYM: bool>(
    w: &PackedQuant,
    t: usize,
    panel: *mut f32,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let base = w.tile(t).as_ptr();
    for g in 0..w.groups {
        let int4 = int4_values();
        let zero = if ASYM {
            load_zeros(w, base, g)
        } else {
            _mm512_setzero_ps()
        };
        for s in 0..w.group_len_padded(g) / step {
            let v = _mm512_load_si512(base.add(g * w.group_bytes + s * 64) as *const __m512i);
            let out = panel.add((g * w.kg + s * step) * NR);
            macro_rules! input {
                ($j:literal) => {{
                    let q = code_as_f32::<BITS, $j, ASYM>(v, int4, zero);
                    _mm512_store_ps(out.add($j * NR), q);
                }};
            }
            each_input!(BITS, input);
        }
    }
}

/// `MR × 16·NT` outputs from decoded panels `p[j]` (`[k][16]` of `q − zero`) of tiles
/// `t0..t0+NT`: per group, `acc += s_g · Σ x·(q − z)`, as [`exact_block`] computes it.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")]
unsafe fn panel_block<const MR: usize, const NT: usize>(
    w: &PackedQuant,
    p: [*const f32; NT],
    x: *const f32,
    ldx: usize,
    t0: usize,
    y: *mut f32,
    ld: usize,
) {
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    for g in 0..w.groups {
        let mut gacc = [[_mm512_setzero_ps(); NT]; MR];
        for kk in g * w.kg..g * w.kg + w.group_len_padded(g) {
            let wv: [__m512; NT] = std::array::from_fn(|j| _mm512_load_ps(p[j].add(kk * NR)));
            for (i, row) in gacc.iter_mut().enumerate() {
                let xb = _mm512_set1_ps(*x.add(i * ldx + kk));
                for j in 0..NT {
                    row[j] = _mm512_fmadd_ps(xb, wv[j], row[j]);
                }
            }
        }
        for j in 0..NT {
            let sc = load_scales(w, base[j], g);
            for i in 0..MR {
                acc[i][j] = _mm512_fmadd_ps(gacc[i][j], sc, acc[i][j]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for j in 0..NT {
            _mm512_mask_storeu_ps(y.add(i * ld + j * NR), col_mask(t0 + j, w.n), row[j]);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")]
unsafe fn exact_gemm<const BITS: u8, const ASYM: bool>(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    if rows.len() < PANEL_MIN_ROWS {
        for_each_block(rows, tiles, 4, 2, 4, |r, mr, t, nt| match nt {
            4 => {
                dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<BITS, ASYM, M, 4>(w, a, r, t, y))
            }
            2 => {
                dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<BITS, ASYM, M, 2>(w, a, r, t, y))
            }
            _ => {
                dispatch_rows!(mr; 1, 2, 3; 4; M => exact_block::<BITS, ASYM, M, 1>(w, a, r, t, y))
            }
        });
        return;
    }
    let kp = w.k_padded;
    PANEL.with(|cell| {
        let mut panel = cell.borrow_mut();
        // One 64-byte aligned [kp][16] panel per tile of a pair.
        let floats = 2 * kp * NR + 16;
        if panel.len() < floats {
            panel.resize(floats, 0.0);
        }
        let p0 = panel.as_mut_ptr();
        let p0 = p0.add(p0.align_offset(64));
        let p1 = p0.add(kp * NR);
        let mut t = tiles.start;
        while t < tiles.end {
            let nt = (tiles.end - t).min(2);
            dequantize_tile::<BITS, ASYM>(w, t, p0);
            if nt == 2 {
                dequantize_tile::<BITS, ASYM>(w, t + 1, p1);
            }
            let mut r = rows.start;
            while r < rows.end {
                let mr = (rows.end - r).min(6);
                let x = a.x.as_ptr().add(r * a.stride);
                let out = y.ptr.add(r * y.ld + t * NR);
                if nt == 2 {
                    dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => panel_block::<M, 2>(w, [p0, p1], x, a.stride, t, out, y.ld));
                } else {
                    dispatch_rows!(mr; 1, 2, 3, 4, 5; 6; M => panel_block::<M, 1>(w, [p0], x, a.stride, t, out, y.ld));
                }
                r += mr;
            }
            t += nt;
        }
    });
}

/// `y = x · dequant(W)ᵀ` with f32 activations.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")]
pub(crate) unsafe fn f32_q_gemm_avx512(
    w: &PackedQuant,
    a: &ExactActs,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    match (w.bits, w.symmetric) {
        (8, true) => exact_gemm::<8, false>(w, a, rows, tiles, y),
        (8, false) => exact_gemm::<8, true>(w, a, rows, tiles, y),
        (_, true) => exact_gemm::<4, false>(w, a, rows, tiles, y),
        (_, false) => exact_gemm::<4, true>(w, a, rows, tiles, y),
    }
}

// ---------------------------------------------------------------------------------------
// Dyn8: int8 activations (offset to u8) × codes with vpdpbusd
// ---------------------------------------------------------------------------------------

/// Matrix for `vgf2p8affineqb` that shifts each byte left by 4 (row `7 − i` of the bit
/// matrix is byte `i` of the qword): the low nibble lands in the high nibble, the rest is 0.
const GF2_SHL4: i64 = 0x0000_0000_0102_0408;

/// Both int4 nibbles of the 64 bytes at `p` as `16·(q + 8)` (unsigned bytes, multiples of
/// 16): low-nibble inputs first. With GFNI the low nibble moves up in one byte-wise
/// affine op; without, a 16-bit shift and an AND.
#[inline(always)]
unsafe fn int4_nibbles_x16<const GFNI: bool>(p: *const u8) -> (__m512i, __m512i) {
    let v = _mm512_load_si512(p as *const __m512i);
    let high = _mm512_set1_epi8(0xF0u8 as i8);
    let lo = if GFNI {
        _mm512_gf2p8affine_epi64_epi8::<0>(v, _mm512_set1_epi64(GF2_SHL4))
    } else {
        _mm512_and_si512(_mm512_slli_epi16::<4>(v), high)
    };
    (lo, _mm512_and_si512(v, high))
}

/// `MR × 16·NT` outputs with `vpdpbusd`. int4 codes are fed as `16·(q + 8)`, so every int4
/// integer sum is 16× the true one (`unit` = 16), and the row scale divides it back out
/// exactly: the result is bit-identical to feeding `q + 8`, with one op fewer per 64 codes.
#[inline(always)]
unsafe fn dyn8_block<const BITS: u8, const GFNI: bool, const MR: usize, const NT: usize>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    t0: usize,
    y: OutPtr,
) {
    let step = if BITS == 8 { 4 } else { 8 };
    let unit: i32 = if BITS == 8 { 1 } else { 16 };
    let base: [*const u8; NT] = std::array::from_fn(|j| w.tile(t0 + j).as_ptr());
    let xrow: [*const u8; MR] = std::array::from_fn(|i| a.q.as_ptr().add((r0 + i) * a.stride));
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    for g in 0..w.groups {
        let mut iacc = [[_mm512_setzero_si512(); NT]; MR];
        if BITS == 4 {
            // Offset-binary nibbles are q + 8: start from −8·Σx so the sum is Σ q·x.
            for i in 0..MR {
                let offset = _mm512_set1_epi32(-8 * unit * a.group_sums[(r0 + i) * w.groups + g]);
                iacc[i] = [offset; NT];
            }
        }
        for s in 0..w.group_len_padded(g) / step {
            let k0 = g * w.kg + s * step;
            let at = |j: usize| base[j].add(g * w.group_bytes + s * 64);
            let x4 = |i: usize, k: usize| {
                _mm512_set1_epi32((xrow[i].add(k) as *const i32).read_unaligned())
            };
            if BITS == 8 {
                let v: [__m512i; NT] =
                    std::array::from_fn(|j| _mm512_load_si512(at(j) as *const __m512i));
                for i in 0..MR {
                    let xb = x4(i, k0);
                    for j in 0..NT {
                        iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], xb, v[j]);
                    }
                }
            } else {
                let v: [(__m512i, __m512i); NT] =
                    std::array::from_fn(|j| int4_nibbles_x16::<GFNI>(at(j)));
                for i in 0..MR {
                    let (x0, x1) = (x4(i, k0), x4(i, k0 + 4));
                    for j in 0..NT {
                        iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], v[j].0, x0);
                        iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], v[j].1, x1);
                    }
                }
            }
        }
        for j in 0..NT {
            let sc = load_scales(w, base[j], g);
            for i in 0..MR {
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[i][j]), sc, acc[i][j]);
            }
            if !w.symmetric {
                let sz = load_scaled_zeros(w, base[j], g, sc);
                for i in 0..MR {
                    let sum = a.group_sums[(r0 + i) * w.groups + g] * unit;
                    acc[i][j] = _mm512_fnmadd_ps(sz, _mm512_set1_ps(sum as f32), acc[i][j]);
                }
            }
        }
    }
    for j in 0..NT {
        // Undo the +128 offset of int8 activations: 128 · Σ_g s_g · Σ q (0 for int4).
        let corr = _mm512_loadu_ps(w.offset_correction.as_ptr().add((t0 + j) * NR));
        for i in 0..MR {
            // Dividing by `unit` (a power of two) is exact.
            let row_scale = _mm512_set1_ps(a.scale[r0 + i] / unit as f32);
            let v = _mm512_mul_ps(row_scale, _mm512_sub_ps(acc[i][j], corr));
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            _mm512_mask_storeu_ps(dst, col_mask(t0 + j, w.n), v);
        }
    }
}

/// Defines a dyn8 entry point: `y = sx · (Σ_g s_g · Σ xq·q − zero terms)` with per-row int8
/// activations. A macro because the block closure must be defined inside the function
/// that carries the target features, or its intrinsics would not inline.
macro_rules! dyn8_entry {
    ($(#[$doc:meta])* $name:ident, $features:literal, int4_gfni: $gfni:literal) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn $name(
            w: &PackedQuant,
            a: &Dyn8Acts,
            rows: Range<usize>,
            tiles: Range<usize>,
            y: OutPtr,
        ) {
            for_each_block(rows, tiles, 4, 2, 4, |r, mr, t, nt| match (w.bits, nt) {
                (8, 4) => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<8, false, M, 4>(w, a, r, t, y)),
                (8, 2) => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<8, false, M, 2>(w, a, r, t, y)),
                (8, _) => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<8, false, M, 1>(w, a, r, t, y)),
                (_, 4) => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<4, $gfni, M, 4>(w, a, r, t, y)),
                (_, 2) => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<4, $gfni, M, 2>(w, a, r, t, y)),
                _ => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<4, $gfni, M, 1>(w, a, r, t, y)),
            });
        }
    };
}

dyn8_entry!(
    /// Dyn8 with AVX-512 VNNI.
    q8_q_gemm_avx512vnni,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c",
    int4_gfni: false
);
dyn8_entry!(
    /// Dyn8 with AVX-512 VNNI, unpacking int4 nibbles with GFNI.
    q8_q_gemm_avx512vnni_gfni,
    "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,gfni,fma,f16c",
    int4_gfni: true
);
