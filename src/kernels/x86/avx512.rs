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
    let q = if BITS == 8 {
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

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")]
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
    let low_nibbles = _mm512_set1_epi8(0x0F);
    let high_nibbles = _mm512_set1_epi8(0xF0u8 as i8);
    let mut acc = [[_mm512_setzero_ps(); NT]; MR];
    for g in 0..w.groups {
        let mut iacc = [[_mm512_setzero_si512(); NT]; MR];
        if BITS == 4 {
            // Offset-binary nibbles are q + 8: start from −8·Σx so the sum is Σ q·x.
            for i in 0..MR {
                let offset = _mm512_set1_epi32(-8 * a.group_sums[(r0 + i) * w.groups + g]);
                iacc[i] = [offset; NT];
            }
        }
        // In the GEMV, int4 high nibbles are fed in place (16·(q + 8), still an unsigned
        // byte) to a second accumulator divided by 16 once per group: one AND per 64 codes
        // instead of a shift and an AND. Row blocks have no registers to spare for it. The
        // integer sums are equal either way.
        let split_hi = MR == 1;
        let mut iacc_hi = [[_mm512_setzero_si512(); NT]; MR];
        let steps = w.group_len_padded(g) / step;
        for s in 0..steps {
            let k0 = g * w.kg + s * step;
            if BITS == 8 {
                let v: [__m512i; NT] = std::array::from_fn(|j| {
                    _mm512_load_si512(base[j].add(g * w.group_bytes + s * 64) as *const __m512i)
                });
                for i in 0..MR {
                    let xb = _mm512_set1_epi32((xrow[i].add(k0) as *const i32).read_unaligned());
                    for j in 0..NT {
                        iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], xb, v[j]);
                    }
                }
            } else {
                let mut lo = [_mm512_setzero_si512(); NT];
                let mut hi = [_mm512_setzero_si512(); NT];
                for j in 0..NT {
                    let v = _mm512_load_si512(
                        base[j].add(g * w.group_bytes + s * 64) as *const __m512i
                    );
                    lo[j] = _mm512_and_si512(v, low_nibbles);
                    hi[j] = if split_hi {
                        _mm512_and_si512(v, high_nibbles)
                    } else {
                        _mm512_and_si512(_mm512_srli_epi16::<4>(v), low_nibbles)
                    };
                }
                for i in 0..MR {
                    let x0 = _mm512_set1_epi32((xrow[i].add(k0) as *const i32).read_unaligned());
                    let x1 =
                        _mm512_set1_epi32((xrow[i].add(k0 + 4) as *const i32).read_unaligned());
                    for j in 0..NT {
                        iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], lo[j], x0);
                        if split_hi {
                            iacc_hi[i][j] = _mm512_dpbusd_epi32(iacc_hi[i][j], hi[j], x1);
                        } else {
                            iacc[i][j] = _mm512_dpbusd_epi32(iacc[i][j], hi[j], x1);
                        }
                    }
                }
            }
        }
        if BITS == 4 && split_hi {
            // Every high-nibble product is a multiple of 16, so the shift is exact.
            for i in 0..MR {
                for j in 0..NT {
                    iacc[i][j] =
                        _mm512_add_epi32(iacc[i][j], _mm512_srai_epi32::<4>(iacc_hi[i][j]));
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
                    let sum = _mm512_set1_ps(a.group_sums[(r0 + i) * w.groups + g] as f32);
                    acc[i][j] = _mm512_fnmadd_ps(sz, sum, acc[i][j]);
                }
            }
        }
    }
    for j in 0..NT {
        // Undo the +128 offset of int8 activations: 128 · Σ_g s_g · Σ q (0 for int4).
        let corr = _mm512_loadu_ps(w.offset_correction.as_ptr().add((t0 + j) * NR));
        for i in 0..MR {
            let v = _mm512_mul_ps(
                _mm512_set1_ps(a.scale[r0 + i]),
                _mm512_sub_ps(acc[i][j], corr),
            );
            let dst = y.ptr.add((r0 + i) * y.ld + (t0 + j) * NR);
            _mm512_mask_storeu_ps(dst, col_mask(t0 + j, w.n), v);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")]
unsafe fn dyn8_gemm<const BITS: u8>(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    for_each_block(rows, tiles, 4, 2, 4, |r, mr, t, nt| match nt {
        4 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<BITS, M, 4>(w, a, r, t, y)),
        2 => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<BITS, M, 2>(w, a, r, t, y)),
        _ => dispatch_rows!(mr; 1, 2, 3; 4; M => dyn8_block::<BITS, M, 1>(w, a, r, t, y)),
    });
}

/// `y = sx · (Σ_g s_g · Σ xq·q − zero terms)` with per-row int8 activations.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")]
pub(crate) unsafe fn q8_q_gemm_avx512vnni(
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
