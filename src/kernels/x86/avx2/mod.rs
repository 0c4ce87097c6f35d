//! AVX2 kernels (AVX2 + FMA + F16C), one file per kernel family: register-blocked `MR` rows
//! × `NT` tiles of 16 columns, each tile held as two 8-lane halves (columns 0..8 and 8..16).
//! Exact mode decodes codes to f32 in registers and uses FMAs; dyn8 forms 4-input dot
//! products with AVX-VNNI's ymm `vpdpbusd` where the CPU has it (Alder Lake and later
//! client cores, Sierra Forest), else with the `vpsignb` + `vpmaddubsw` + `vpmaddwd` trick.
//!
//! Only 16 ymm registers: blocks are up to 6 (dense) or 4 (quantized) rows × 1 tile, and a
//! GEMV (single row) takes 2 tiles for more independent accumulator chains.

use std::arch::x86_64::*;

use crate::kernels::{Isa, KernelTable};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::ScaleDType;

mod acts;
mod dense;
mod dyn8;
mod exact;

pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx2,
    variant: "",
    dense: dense::f32_dense_gemm_avx2,
    q_exact: exact::f32_q_gemm_avx2,
    q_dyn8: dyn8::q8_q_gemm_avx2,
    quantize_blocks: acts::quantize_blocks_avx2,
};

/// [`TABLE`] with AVX-VNNI: dyn8 multiplies with `vpdpbusd` on ymm.
pub(crate) const TABLE_VNNI: KernelTable = KernelTable {
    variant: "avx-vnni",
    q_dyn8: dyn8::q8_q_gemm_avx_vnni,
    ..TABLE
};

/// Whether [`TABLE_VNNI`] can run here.
pub(crate) fn has_avx_vnni() -> bool {
    Isa::Avx2.is_available() && is_x86_feature_detected!("avxvnni")
}

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

/// The 16 values a stored nibble stands for (int4 `−8..=7`, cb4 its levels), as signed
/// bytes in both 128-bit lanes (for `vpshufb`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn nibble_table(w: &PackedQuant) -> __m256i {
    _mm256_broadcastsi128_si256(_mm_loadu_si128(w.nibble_values.as_ptr() as *const __m128i))
}

/// The stored nibbles of one 32-byte half step as two vectors of bytes in `0..16`, laid out
/// as [`nibble_bytes`] lays out their values.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn nibble_codes(v: __m256i) -> (__m256i, __m256i) {
    let m = _mm256_set1_epi8(0x0F);
    (
        _mm256_and_si256(v, m),
        _mm256_and_si256(_mm256_srli_epi16::<4>(v), m),
    )
}

/// The 4-bit codes of one 32-byte half step as two vectors of signed bytes (their values):
/// byte `j` of each dword is input `8s+j` in the first, input `8s+4+j` in the second.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn nibble_bytes(v: __m256i, table: __m256i) -> (__m256i, __m256i) {
    let m = _mm256_set1_epi8(0x0F);
    (
        _mm256_shuffle_epi8(table, _mm256_and_si256(v, m)),
        _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16::<4>(v), m)),
    )
}
