//! Exact mode: f32 activations × codes decoded to f32 in registers. int8 bytes become floats
//! through their mantissa; 4-bit codes (int4 and cb4 alike) through a 16-entry `vpermps`
//! table of the values they stand for. Batches of [`PANEL_MIN_ROWS`] or more decode each
//! tile once into a cache-resident panel and run an f32 micro-kernel on it.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::x86_64::*;
use std::ops::Range;

use super::{col_mask, load_scales, load_zeros};
use crate::kernels::blocking::for_each_block;
use crate::kernels::{ExactActs, OutPtr};
use crate::quant::pack::{PackedQuant, NR};

/// What decoding one tile's codes of one kernel group needs besides the codes.
#[derive(Clone, Copy)]
struct Decoder {
    /// 4-bit codes: the value of each stored nibble (int4 `−8..=7`, cb4 its level).
    table: __m512,
    /// Subtracted after the mantissa trick: `2^23 + 128 + zero` (bytes 0, 2) and
    /// `2^15 + 128 + zero` (bytes 1, 3) for int8; the zero point for asymmetric int4.
    off: [__m512; 2],
}

/// The decoder of the tile at `base`, kernel group `g`.
#[inline(always)]
unsafe fn decoder<const BITS: u8, const ASYM: bool>(
    w: &PackedQuant,
    base: *const u8,
    g: usize,
) -> Decoder {
    let zero = if ASYM {
        _mm512_cvtepi32_ps(load_zeros(w, base, g))
    } else {
        _mm512_setzero_ps()
    };
    let values = _mm_loadu_si128(w.nibble_values.as_ptr() as *const __m128i);
    let table = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(values));
    let off = if BITS == 8 {
        [
            _mm512_add_ps(_mm512_set1_ps(8_388_736.0), zero), // 2^23 + 128
            _mm512_add_ps(_mm512_set1_ps(32_896.0), zero),    // 2^15 + 128
        ]
    } else {
        [zero; 2]
    };
    Decoder { table, off }
}

/// Input `J` of a step (4 inputs for int8, 8 for 4-bit codes) as the f32 value `q − zero`
/// (or the level) in 16 lanes, one per column. The value is exact in f32, so exact mode
/// never cancels a separate `zero · Σx` term.
#[inline(always)]
unsafe fn code_as_f32<const BITS: u8, const J: u32, const ASYM: bool>(
    v: __m512i,
    d: &Decoder,
) -> __m512 {
    if BITS == 8 {
        // Stored byte `q + 128` placed in the mantissa of 2^23 (bits 0..7) or of 2^15 (bits
        // 8..15) makes the float 2^23 + q + 128 (or 2^15 + ...) exactly: one AND-OR and one
        // subtraction per input. Bytes 2 and 3 take the same path after one shared shift.
        let src = if J < 2 { v } else { _mm512_srli_epi32::<16>(v) };
        let (mask, exponent, off) = if J.is_multiple_of(2) {
            (0xFF, (127 + 23) << 23, d.off[0])
        } else {
            (0xFF00, (127 + 15) << 23, d.off[1])
        };
        let biased = _mm512_ternarylogic_epi32::<0xEA>(
            src,
            _mm512_set1_epi32(mask),
            _mm512_set1_epi32(exponent),
        ); // (src & mask) | exponent
        return _mm512_sub_ps(_mm512_castsi512_ps(biased), off);
    }
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
    let q = _mm512_permutexvar_ps(idx, d.table);
    if ASYM {
        _mm512_sub_ps(q, d.off[0])
    } else {
        q
    }
}

/// `MR × 16·NT` outputs with codes decoded in registers. Each group is summed unscaled, then
/// scaled once: `acc += s_g · Σ_{k∈g} x_k · value_k` — the same operations, in the same
/// order, as the panel path, so a row's result does not depend on its batch.
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
        let mut gacc = [[_mm512_setzero_ps(); NT]; MR];
        let dec: [Decoder; NT] = std::array::from_fn(|j| decoder::<BITS, ASYM>(w, base[j], g));
        let steps = w.group_len_padded(g) / step;
        for s in 0..steps {
            let v: [__m512i; NT] = std::array::from_fn(|j| {
                _mm512_load_si512(base[j].add(g * w.group_bytes + s * 64) as *const __m512i)
            });
            let k0 = g * w.kg + s * step;
            macro_rules! input {
                ($j:literal) => {{
                    let wf: [__m512; NT] =
                        std::array::from_fn(|j| code_as_f32::<BITS, $j, ASYM>(v[j], &dec[j]));
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

/// Decodes tile `t` (all `k_padded` inputs) into `panel` as `[k][16]` f32 values
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
        let dec = decoder::<BITS, ASYM>(w, base, g);
        for s in 0..w.group_len_padded(g) / step {
            let v = _mm512_load_si512(base.add(g * w.group_bytes + s * 64) as *const __m512i);
            let out = panel.add((g * w.kg + s * step) * NR);
            macro_rules! input {
                ($j:literal) => {{
                    let q = code_as_f32::<BITS, $j, ASYM>(v, &dec);
                    _mm512_store_ps(out.add($j * NR), q);
                }};
            }
            each_input!(BITS, input);
        }
    }
}

/// `MR × 16·NT` outputs from decoded panels `p[j]` (`[k][16]` values) of tiles
/// `t0..t0+NT`: per group, `acc += s_g · Σ x·value`, as [`exact_block`] computes it.
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

/// `y = x · dequant(W)ᵀ` with f32 activations, for every weight format.
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
