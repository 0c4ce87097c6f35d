//! Block-wise int8 quantization of one activation row: two 16-lane vectors per block of 32.

use std::arch::x86_64::*;

use crate::quant::DYN8_BLOCK;

/// Quantizes one row to int8 blocks (see [`crate::kernels::QuantizeBlocks`]); the same
/// bits as the scalar version (`max|x|` is exact, `127 / max` is one f32 division, and the
/// conversion rounds half to even whatever the MXCSR says).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
pub(crate) unsafe fn quantize_blocks_avx512(
    x: &[f32],
    q: &mut [i8],
    scales: &mut [f32],
    sums: &mut [i32],
) {
    let k = x.len();
    let used = k.div_ceil(DYN8_BLOCK);
    let abs_mask = _mm512_set1_epi32(0x7FFF_FFFF);
    for b in 0..used {
        let start = b * DYN8_BLOCK;
        let lanes = |h: usize| {
            let from = start + 16 * h;
            let n = k.saturating_sub(from).min(16);
            let mask = ((1u32 << n) - 1) as __mmask16;
            _mm512_maskz_loadu_ps(mask, x.as_ptr().add(from.min(k)))
        };
        let v = [lanes(0), lanes(1)];
        let abs =
            |v: __m512| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(abs(v[0]), abs(v[1])));
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        let inv_v = _mm512_set1_ps(inv);
        let mut total = _mm512_setzero_si512();
        for (h, &vh) in v.iter().enumerate() {
            let c = _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_mul_ps(vh, inv_v),
            );
            total = _mm512_add_epi32(total, c);
            let bytes = _mm512_cvtepi32_epi8(c);
            _mm_storeu_si128(q.as_mut_ptr().add(start + 16 * h) as *mut __m128i, bytes);
        }
        scales[b] = amax / 127.0;
        sums[b] = _mm512_reduce_add_epi32(total);
    }
    q[used * DYN8_BLOCK..].fill(0);
    scales[used..].fill(0.0);
    sums[used..].fill(0);
}
