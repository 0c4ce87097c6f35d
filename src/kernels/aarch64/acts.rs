//! Block-wise int8 quantization of one activation row: eight 4-lane vectors per block of 32.

use std::arch::aarch64::*;

use crate::quant::DYN8_BLOCK;

/// Quantizes one row to int8 blocks (see [`crate::kernels::QuantizeBlocks`]); the same bits
/// as the scalar version (`fcvtns` rounds half to even whatever the FPCR says).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_blocks_neon(
    x: &[f32],
    q: &mut [i8],
    scales: &mut [f32],
    sums: &mut [i32],
) {
    let k = x.len();
    let used = k.div_ceil(DYN8_BLOCK);
    for b in 0..used {
        let start = b * DYN8_BLOCK;
        let n = (k - start).min(DYN8_BLOCK);
        let mut buf = [0f32; DYN8_BLOCK];
        buf[..n].copy_from_slice(&x[start..start + n]);
        let v: [float32x4_t; 8] = std::array::from_fn(|i| vld1q_f32(buf.as_ptr().add(4 * i)));
        let mut m = vabsq_f32(v[0]);
        for &vi in &v[1..] {
            m = vmaxq_f32(m, vabsq_f32(vi));
        }
        let amax = vmaxvq_f32(m);
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        let mut total = vdupq_n_s32(0);
        let mut codes = [0i8; DYN8_BLOCK];
        for (i, &vi) in v.iter().enumerate() {
            let c = vcvtnq_s32_f32(vmulq_n_f32(vi, inv));
            total = vaddq_s32(total, c);
            let narrow = vmovn_s16(vcombine_s16(vmovn_s32(c), vdup_n_s16(0)));
            let mut lanes = [0i8; 8];
            vst1_s8(lanes.as_mut_ptr(), narrow);
            codes[4 * i..4 * i + 4].copy_from_slice(&lanes[..4]);
        }
        q[start..start + DYN8_BLOCK].copy_from_slice(&codes);
        scales[b] = amax / 127.0;
        sums[b] = vaddvq_s32(total);
    }
    q[used * DYN8_BLOCK..].fill(0);
    scales[used..].fill(0.0);
    sums[used..].fill(0);
}
