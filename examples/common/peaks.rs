//! Compute peaks of this machine (shared by `examples/peak.rs` and `examples/bench.rs`):
//! AVX-512 f32 FMA FLOP/s and `vpdpbusd` int8 OP/s on a number of threads.
//!
//! Twelve *independent* accumulator chains with distinct start values: a probe whose chains
//! start equal lets the compiler merge them into one (as `../shared/tools/compute_peak.c`
//! does, so it prints ten times one latency-bound chain).

use std::time::Instant;

const ITERS: u64 = 20_000_000;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains() -> f32 {
    use std::arch::x86_64::*;
    let mut a: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(0.01 * i as f32));
    let (b, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..ITERS {
        for v in a.iter_mut() {
            *v = _mm512_fmadd_ps(*v, b, c);
        }
    }
    a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni_chains() -> i32 {
    use std::arch::x86_64::*;
    let mut a: [__m512i; 12] = std::array::from_fn(|i| _mm512_set1_epi32(i as i32));
    let (b, c) = (_mm512_set1_epi8(3), _mm512_set1_epi8(5));
    for _ in 0..ITERS {
        for v in a.iter_mut() {
            *v = _mm512_dpbusd_epi32(*v, b, c);
        }
    }
    a.iter()
        .map(|v| _mm512_reduce_add_epi32(*v))
        .fold(0, i32::wrapping_add)
}

/// What block-wise dyn8 adds to the dot products, with the dot products alone as the
/// reference: every chain takes 8 `vpdpbusd` (one 32-input block of int8), then its i32 sum
/// is converted and accumulated into f32 with `fma(sum, scale, acc)`, the scale being the
/// activation block's (per-channel weights, `MUL = false`) or its product with the weight
/// group's, formed by a `vmulps` (group-wise weights, `MUL = true`). The ratio to the plain
/// `vpdpbusd` rate is the ceiling that this arithmetic sets for a dyn8 kernel on this core.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni_block_scaled<const MUL: bool>() -> f32 {
    use std::arch::x86_64::*;
    let scales: [f32; 64] = std::array::from_fn(|i| 1e-3 * (i + 1) as f32);
    let mut f: [__m512; 12] = [_mm512_setzero_ps(); 12];
    let (b, c) = (_mm512_set1_epi8(3), _mm512_set1_epi8(5));
    for it in 0..ITERS / 8 {
        let s = it as usize % 64;
        let sx = _mm512_set1_ps(scales[s]);
        let sw = _mm512_loadu_ps(scales.as_ptr().add(s.min(48)));
        // Fresh block sums that depend on the iteration, so nothing is hoisted.
        let mut a: [__m512i; 12] =
            std::array::from_fn(|i| _mm512_set1_epi32((it as i32) ^ i as i32));
        for _ in 0..8 {
            for v in a.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, b, c);
            }
        }
        for (acc, v) in f.iter_mut().zip(a) {
            let m = if MUL { _mm512_mul_ps(sx, sw) } else { sx };
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), m, *acc);
        }
    }
    f.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
}

/// `vpdpbusd` GOP/s with block-wise dyn8's scaling on `threads` threads: `(per-channel
/// weights, group-wise weights)`, or `None` without AVX-512 F and VNNI.
pub fn block_scaled_vnni(threads: usize) -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
        let ops = 12.0 * (ITERS / 8 * 8) as f64 * 128.0;
        // SAFETY: the features were checked above.
        let c = rate(threads, ops, || unsafe { vnni_block_scaled::<false>() }
            as f64);
        let g = rate(threads, ops, || unsafe { vnni_block_scaled::<true>() }
            as f64);
        return Some((c / 1e9, g / 1e9));
    }
    let _ = threads;
    None
}

/// Runs `f` on `threads` threads at once; returns total ops/s given `ops` per call.
fn rate(threads: usize, ops: f64, f: fn() -> f64) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|_| s.spawn(f)).collect();
        hs.into_iter()
            .map(|h| std::hint::black_box(h.join().unwrap()))
            .sum::<f64>()
    });
    threads as f64 * ops / t.elapsed().as_secs_f64()
}

/// `(f32 FMA GFLOP/s, int8 vpdpbusd GOP/s)` on `threads` threads, or `None` without
/// AVX-512 F and VNNI.
pub fn peaks(threads: usize) -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
        let chains = 12.0 * ITERS as f64;
        // SAFETY: the features were checked above.
        let f = rate(threads, chains * 32.0, || unsafe { fma_chains() } as f64);
        let v = rate(threads, chains * 128.0, || unsafe { vnni_chains() } as f64);
        return Some((f / 1e9, v / 1e9));
    }
    let _ = threads;
    None
}
