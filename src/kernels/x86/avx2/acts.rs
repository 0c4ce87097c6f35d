//! Block-wise int8 quantization of one activation row: four 8-lane vectors per block of 32.

use std::arch::x86_64::*;

use crate::quant::DYN8_BLOCK;

/// Horizontal maximum of 8 f32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn reduce_max(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    _mm_cvtss_f32(m)
}

/// Horizontal sum of 8 i32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn reduce_add(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Quantizes one row to int8 blocks (see [`crate::kernels::QuantizeBlocks`]); the same
/// bits as the scalar version (the rounding is explicit, not the MXCSR's).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_blocks_avx2(
    x: &[f32],
    q: &mut [i8],
    scales: &mut [f32],
    sums: &mut [i32],
) {
    let k = x.len();
    let used = k.div_ceil(DYN8_BLOCK);
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
    let lane_ids = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for b in 0..used {
        let start = b * DYN8_BLOCK;
        let v: [__m256; 4] = std::array::from_fn(|i| {
            let from = start + 8 * i;
            let n = k.saturating_sub(from).min(8) as i32;
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane_ids);
            _mm256_maskload_ps(x.as_ptr().add(from.min(k)), mask)
        });
        let m01 = _mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask));
        let m23 = _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask));
        let amax = reduce_max(_mm256_max_ps(m01, m23));
        let inv = _mm256_set1_ps(if amax > 0.0 { 127.0 / amax } else { 0.0 });
        let c: [__m256i; 4] = std::array::from_fn(|i| {
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(v[i], inv),
            );
            _mm256_cvttps_epi32(r)
        });
        // Saturating packs interleave the 128-bit lanes; one permute restores the order.
        let words01 = _mm256_packs_epi32(c[0], c[1]);
        let words23 = _mm256_packs_epi32(c[2], c[3]);
        let bytes = _mm256_packs_epi16(words01, words23);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let bytes = _mm256_permutevar8x32_epi32(bytes, order);
        _mm256_storeu_si256(q.as_mut_ptr().add(start) as *mut __m256i, bytes);
        scales[b] = amax / 127.0;
        let total = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
        sums[b] = reduce_add(total);
    }
    q[used * DYN8_BLOCK..].fill(0);
    scales[used..].fill(0.0);
    sums[used..].fill(0);
}
