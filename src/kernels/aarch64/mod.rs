//! aarch64 NEON kernels, one file per kernel family, chosen at run time from the CPU's
//! features: plain NEON (ARMv8-A), with the dot-product extension (`sdot`), and with the
//! int8 matrix extension (`smmla` on pairs of rows). A tile's 16 columns are four 128-bit
//! registers.
//!
//! Rust's `sdot` and `smmla` intrinsics are not stable yet, so those two instructions are
//! written as inline assembly (below); everything else uses `std::arch::aarch64`.

use std::arch::aarch64::*;

use crate::kernels::{Isa, KernelTable};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::ScaleDType;

mod acts;
mod dense;
mod dyn8;
mod exact;

/// Plain NEON: int8 products by widening multiplies.
pub(crate) const TABLE_NEON: KernelTable = KernelTable {
    isa: Isa::Neon,
    variant: "",
    dense: dense::f32_dense_gemm_neon,
    q_exact: exact::f32_q_gemm_neon,
    q_dyn8: dyn8::q8_q_gemm_neon,
    quantize_blocks: acts::quantize_blocks_neon,
};

/// NEON with `sdot`.
pub(crate) const TABLE_DOTPROD: KernelTable = KernelTable {
    isa: Isa::NeonDotprod,
    variant: "dotprod",
    q_dyn8: dyn8::q8_q_gemm_neon_dotprod,
    ..TABLE_NEON
};

/// NEON with `sdot`, and `smmla` for pairs of rows.
pub(crate) const TABLE_I8MM: KernelTable = KernelTable {
    isa: Isa::NeonI8mm,
    variant: "dotprod+i8mm",
    q_dyn8: dyn8::q8_q_gemm_neon_i8mm,
    ..TABLE_NEON
};

/// `acc[i] += Σ_{b<4} a[4i+b] · b[4i+b]` (signed bytes), four i32 lanes.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    std::arch::asm!(
        "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// `acc += a · bᵀ` for 2×8 signed-byte matrices `a` (rows in its halves) and `b`: the 2×2
/// i32 result in lanes `[a0·b0, a0·b1, a1·b0, a1·b1]`.
#[target_feature(enable = "neon,i8mm")]
#[inline]
unsafe fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    std::arch::asm!(
        "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// The 16 scales of the tile at `base`, kernel group `g`, as four f32 registers.
#[inline(always)]
unsafe fn load_scales(w: &PackedQuant, base: *const u8, g: usize) -> [float32x4_t; 4] {
    let p = base.add(w.scales_offset);
    let mut s = [0f32; NR];
    match w.scale_dtype {
        ScaleDType::F16 => {
            for (c, v) in s.iter_mut().enumerate() {
                let at = p.add((g * NR + c) * 2);
                *v = half::f16::from_le_bytes([*at, *at.add(1)]).to_f32();
            }
        }
        ScaleDType::F32 => {
            std::ptr::copy_nonoverlapping(p.add(g * NR * 4), s.as_mut_ptr() as *mut u8, NR * 4)
        }
    }
    std::array::from_fn(|t| vld1q_f32(s.as_ptr().add(4 * t)))
}

/// The 16 zero points of the tile at `base`, kernel group `g`, as four i32 registers (0 when
/// symmetric).
#[inline(always)]
unsafe fn load_zeros(w: &PackedQuant, base: *const u8, g: usize) -> [int32x4_t; 4] {
    if w.symmetric {
        return [vdupq_n_s32(0); 4];
    }
    let z = vld1q_s8(base.add(w.zeros_offset + g * NR) as *const i8);
    let (lo, hi) = (vmovl_s8(vget_low_s8(z)), vmovl_high_s8(z));
    [
        vmovl_s16(vget_low_s16(lo)),
        vmovl_high_s16(lo),
        vmovl_s16(vget_low_s16(hi)),
        vmovl_high_s16(hi),
    ]
}

/// One 64-byte step of the tile at `p` as signed bytes, four registers of 4 columns: int8
/// codes with their +128 offset removed, or for 4-bit codes the values (int4 `−8..=7`, cb4
/// levels) of the low-nibble inputs in `.0` and of the high-nibble inputs in `.1`.
#[inline(always)]
unsafe fn signed_step<const BITS: u8>(
    p: *const u8,
    table: int8x16_t,
) -> [(int8x16_t, int8x16_t); 4] {
    std::array::from_fn(|t| {
        let v = vld1q_u8(p.add(16 * t));
        if BITS == 8 {
            let s = vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80)));
            (s, s)
        } else {
            let lo = vandq_u8(v, vdupq_n_u8(0x0F));
            let hi = vshrq_n_u8::<4>(v);
            (vqtbl1q_s8(table, lo), vqtbl1q_s8(table, hi))
        }
    })
}

/// The 16 values a stored nibble stands for, as a `tbl` table.
#[inline(always)]
unsafe fn nibble_table(w: &PackedQuant) -> int8x16_t {
    vld1q_s8(w.nibble_values.as_ptr())
}

/// Writes the `cols` first of 16 floats in `v` to `dst`.
#[inline(always)]
unsafe fn store_tile(dst: *mut f32, v: [float32x4_t; 4], cols: usize) {
    if cols == NR {
        for (t, &r) in v.iter().enumerate() {
            vst1q_f32(dst.add(4 * t), r);
        }
    } else {
        let mut tmp = [0f32; NR];
        for (t, &r) in v.iter().enumerate() {
            vst1q_f32(tmp.as_mut_ptr().add(4 * t), r);
        }
        std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, cols);
    }
}

/// Columns of tile `t` that exist.
#[inline(always)]
fn tile_cols(t: usize, n: usize) -> usize {
    (n - t * NR).min(NR)
}
