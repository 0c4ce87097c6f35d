//! Compute peaks of this machine (shared by `examples/peak.rs` and `examples/bench.rs`):
//! f32 FMA FLOP/s and int8 dot-product OP/s on a number of threads, for each x86 path's own
//! instructions: AVX-512 (`vfmadd` on zmm, `vpdpbusd`), AVX2 (`vfmadd` on ymm, and the
//! `vpmaddubsw` + `vpmaddwd` + `vpaddd` triple that is AVX2's int8 dot product) and AVX-VNNI
//! (`vpdpbusd` on ymm), and AMX-INT8's tile product `tdpbsud`.
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn avx_vnni_chains() -> i32 {
    use std::arch::x86_64::*;
    let mut a: [__m256i; 12] = std::array::from_fn(|i| _mm256_set1_epi32(i as i32));
    let (b, c) = (_mm256_set1_epi8(3), _mm256_set1_epi8(5));
    for _ in 0..ITERS {
        for v in a.iter_mut() {
            *v = _mm256_dpbusd_avx_epi32(*v, b, c);
        }
    }
    let mut out = [0i32; 8];
    let sum = a
        .iter()
        .fold(_mm256_setzero_si256(), |s, v| _mm256_add_epi32(s, *v));
    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, sum);
    out.iter().fold(0, |s, &v| s.wrapping_add(v))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2() -> f32 {
    use std::arch::x86_64::*;
    let mut a: [__m256; 12] = std::array::from_fn(|i| _mm256_set1_ps(0.01 * i as f32));
    let (b, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..ITERS {
        for v in a.iter_mut() {
            *v = _mm256_fmadd_ps(*v, b, c);
        }
    }
    let mut out = [0f32; 8];
    let sum = a
        .iter()
        .fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
    _mm256_storeu_ps(out.as_mut_ptr(), sum);
    out.iter().sum()
}

/// Eight chains of AVX2's int8 dot product (32 multiply-adds per triple). The products of
/// constant operands would be hoisted out of an intrinsics loop, so the triples are asm.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn maddubs_chains() -> i32 {
    use std::arch::asm;
    use std::arch::x86_64::*;
    let mut a: [__m256i; 8] = std::array::from_fn(|i| _mm256_set1_epi32(i as i32));
    let (b, c, ones) = (
        _mm256_set1_epi8(3),
        _mm256_set1_epi8(5),
        _mm256_set1_epi16(1),
    );
    for _ in 0..ITERS {
        asm!(
            "vpmaddubsw {t0}, {b}, {c}", "vpmaddwd {t0}, {t0}, {o}", "vpaddd {a0}, {a0}, {t0}",
            "vpmaddubsw {t1}, {b}, {c}", "vpmaddwd {t1}, {t1}, {o}", "vpaddd {a1}, {a1}, {t1}",
            "vpmaddubsw {t2}, {b}, {c}", "vpmaddwd {t2}, {t2}, {o}", "vpaddd {a2}, {a2}, {t2}",
            "vpmaddubsw {t3}, {b}, {c}", "vpmaddwd {t3}, {t3}, {o}", "vpaddd {a3}, {a3}, {t3}",
            "vpmaddubsw {t0}, {b}, {c}", "vpmaddwd {t0}, {t0}, {o}", "vpaddd {a4}, {a4}, {t0}",
            "vpmaddubsw {t1}, {b}, {c}", "vpmaddwd {t1}, {t1}, {o}", "vpaddd {a5}, {a5}, {t1}",
            "vpmaddubsw {t2}, {b}, {c}", "vpmaddwd {t2}, {t2}, {o}", "vpaddd {a6}, {a6}, {t2}",
            "vpmaddubsw {t3}, {b}, {c}", "vpmaddwd {t3}, {t3}, {o}", "vpaddd {a7}, {a7}, {t3}",
            a0 = inout(ymm_reg) a[0], a1 = inout(ymm_reg) a[1],
            a2 = inout(ymm_reg) a[2], a3 = inout(ymm_reg) a[3],
            a4 = inout(ymm_reg) a[4], a5 = inout(ymm_reg) a[5],
            a6 = inout(ymm_reg) a[6], a7 = inout(ymm_reg) a[7],
            t0 = out(ymm_reg) _, t1 = out(ymm_reg) _, t2 = out(ymm_reg) _, t3 = out(ymm_reg) _,
            b = in(ymm_reg) b, c = in(ymm_reg) c, o = in(ymm_reg) ones,
            options(pure, nomem, nostack),
        );
    }
    let mut out = [0i32; 8];
    let sum = a
        .iter()
        .fold(_mm256_setzero_si256(), |s, v| _mm256_add_epi32(s, *v));
    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, sum);
    out.iter().fold(0, |s, v| s.wrapping_add(*v))
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

/// Iterations of the AMX probe (4 tile products each).
const AMX_ITERS: u64 = 2_000_000;

/// Four independent chains of `tdpbsud` on 16 × `k` byte A tiles (`k` = 32, as the kernel
/// uses, or 64, the widest), after the thread's own `ldtilecfg`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_chains(k: u16) -> f64 {
    use std::arch::asm;
    #[repr(C, align(64))]
    struct Config([u8; 16], [u16; 16], [u8; 16]);
    let mut cfg = Config([0; 16], [0; 16], [0; 16]);
    cfg.0[0] = 1;
    for t in 0..8 {
        // tmm0..3 accumulate (16 × 16 i32), tmm4/5 are A (16 × k), tmm6/7 are B (k/4 × 64).
        let (rows, cols) = match t {
            0..=3 => (16, 64),
            4 | 5 => (16, k),
            _ => (k as u8 / 4, 64),
        };
        cfg.2[t] = rows;
        cfg.1[t] = cols;
    }
    let data = [1u8; 1024];
    // SAFETY: the caller checked AMX and got Linux's permission; the loads read `data`.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) &cfg);
        asm!(
            "tileloadd tmm4, [{p} + {s}*1]", "tileloadd tmm5, [{p} + {s}*1]",
            "tileloadd tmm6, [{p} + {s}*1]", "tileloadd tmm7, [{p} + {s}*1]",
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            p = in(reg) data.as_ptr(), s = in(reg) 64usize,
        );
        for _ in 0..AMX_ITERS {
            asm!(
                "tdpbsud tmm0, tmm4, tmm6",
                "tdpbsud tmm1, tmm4, tmm7",
                "tdpbsud tmm2, tmm5, tmm6",
                "tdpbsud tmm3, tmm5, tmm7",
                options(nostack, nomem),
            );
        }
        asm!("tilerelease");
    }
    0.0
}

/// AMX-INT8 `tdpbsud` GOP/s on `threads` threads with A tiles of 32 and of 64 bytes, or
/// `None` without AMX or Linux's permission to use it.
pub fn amx_peaks(threads: usize) -> Option<(f64, f64)> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        use std::arch::x86_64::__cpuid_count;
        extern "C" {
            fn syscall(number: std::ffi::c_long, ...) -> std::ffi::c_long;
        }
        let has = __cpuid_count(7, 0).edx & (3 << 24) == 3 << 24;
        // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
        if !has || unsafe { syscall(158, 0x1023, 18) } != 0 {
            return None;
        }
        let ops = |k: f64| 4.0 * AMX_ITERS as f64 * 16.0 * 16.0 * k * 2.0;
        let k32 = rate(threads, ops(32.0), || amx_chains(32));
        let k64 = rate(threads, ops(64.0), || amx_chains(64));
        Some((k32 / 1e9, k64 / 1e9))
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = threads;
        None
    }
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

/// `(f32 FMA GFLOP/s, int8 dot-product GOP/s)` of the AVX2 path on `threads` threads, or
/// `None` without AVX2 and FMA.
pub fn peaks_avx2(threads: usize) -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the features were checked above.
        let f = rate(
            threads,
            12.0 * ITERS as f64 * 16.0,
            || unsafe { fma_chains_avx2() } as f64,
        );
        let v = rate(
            threads,
            8.0 * ITERS as f64 * 64.0,
            || unsafe { maddubs_chains() } as f64,
        );
        return Some((f / 1e9, v / 1e9));
    }
    let _ = threads;
    None
}

/// `(f32 FMA GFLOP/s, int8 ymm vpdpbusd GOP/s)` of the AVX2 path with AVX-VNNI on `threads`
/// threads, or `None` without AVX2, FMA and AVX-VNNI.
pub fn peaks_avx_vnni(threads: usize) -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avxvnni") {
        let (f, _) = peaks_avx2(threads)?;
        // SAFETY: AVX-VNNI was checked above, AVX2 by `peaks_avx2`.
        let v = rate(
            threads,
            12.0 * ITERS as f64 * 64.0,
            || unsafe { avx_vnni_chains() } as f64,
        );
        return Some((f, v / 1e9));
    }
    let _ = threads;
    None
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
