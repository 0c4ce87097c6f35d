//! AVX-512 kernels (F/BW/DQ/VL + VNNI + F16C), one file per kernel family: register-blocked
//! `MR` rows × `NT` tiles of 16 columns. Exact mode decodes codes to f32 in registers and
//! uses FMAs; dyn8 feeds unsigned weight bytes and int8 activations to `vpdpbusd`.

use std::arch::x86_64::*;

use crate::kernels::{Isa, KernelTable};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::ScaleDType;

mod acts;
mod dense;
mod dyn8;
mod dyn8_amx;
mod exact;

/// Plain AVX-512 + VNNI (Cascade Lake class): nibbles unpacked with shifts, the codebook
/// looked up with `vpshufb`.
pub(crate) const TABLE: KernelTable = KernelTable {
    isa: Isa::Avx512,
    variant: "vnni",
    dense: dense::f32_dense_gemm_avx512,
    q_exact: exact::f32_q_gemm_avx512,
    q_dyn8: dyn8::q8_q_gemm_avx512vnni,
    quantize_blocks: acts::quantize_blocks_avx512,
};

/// [`TABLE`] for CPUs that also have GFNI and VBMI (Ice Lake, Zen 4 and later): int4 nibbles
/// move with one `vgf2p8affineqb`, codebook levels come from one `vpermb`.
pub(crate) const TABLE_ICELAKE: KernelTable = KernelTable {
    variant: "vnni+gfni+vbmi",
    q_dyn8: dyn8::q8_q_gemm_avx512vnni_icelake,
    ..TABLE
};

/// [`TABLE_ICELAKE`] for CPUs with AMX-INT8 (Sapphire Rapids and later): per-row dyn8 on
/// int8 weights with groups of 64 and more takes its dot products from tile multiplies
/// (every other case runs [`TABLE_ICELAKE`]'s kernel).
pub(crate) const TABLE_AMX: KernelTable = KernelTable {
    variant: "vnni+gfni+vbmi+amx",
    q_dyn8: dyn8_amx::q8_q_gemm_amx,
    ..TABLE_ICELAKE
};

/// Whether [`TABLE_AMX`] can run here: the CPU has AMX-TILE and AMX-INT8 (CPUID leaf 7,
/// EDX bits 24 and 25) and Linux lets this process use them.
pub(crate) fn has_amx() -> bool {
    has_icelake_extras()
        && __cpuid_count(7, 0).edx & (3 << 24) == 3 << 24
        && crate::os::request_amx()
}

/// Whether [`TABLE_ICELAKE`] can run here.
pub(crate) fn has_icelake_extras() -> bool {
    Isa::Avx512.is_available()
        && is_x86_feature_detected!("gfni")
        && is_x86_feature_detected!("avx512vbmi")
}

/// Lanes of tile `t` that hold real columns, as a store mask.
#[inline(always)]
fn col_mask(t: usize, n: usize) -> __mmask16 {
    let cols = (n - t * NR).min(NR);
    ((1u32 << cols) - 1) as __mmask16
}

/// The 16 scales of the tile at `base`, kernel group `g`, as f32.
#[inline(always)]
unsafe fn load_scales(w: &PackedQuant, base: *const u8, g: usize) -> __m512 {
    let p = base.add(w.scales_offset);
    match w.scale_dtype {
        ScaleDType::F16 => _mm512_cvtph_ps(_mm256_loadu_si256(p.add(g * NR * 2) as *const __m256i)),
        ScaleDType::F32 => _mm512_loadu_ps(p.add(g * NR * 4) as *const f32),
    }
}

/// Zero points of the tile at `base`, kernel group `g`, as 16 i32 lanes.
#[inline(always)]
unsafe fn load_zeros(w: &PackedQuant, base: *const u8, g: usize) -> __m512i {
    let z = _mm_loadu_si128(base.add(w.zeros_offset + g * NR) as *const __m128i);
    _mm512_cvtepi8_epi32(z)
}
