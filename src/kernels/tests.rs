//! Every available SIMD path against the scalar oracle, on awkward shapes, both activation
//! modes, every format, and several thread counts.

use crate::backend::{Backend, Cpu, CpuDevice};
use crate::kernels::Isa;
use crate::quant::quantize::quantize_weights;
use crate::quant::{ActivationMode, Granularity, QuantConfig, QuantizedTensor, ScaleDType};
use crate::rng::SplitMix64;

/// `(M, K, N, granularity)`: K not a multiple of the group or vector width, N below and
/// just above the 16-column tile, M across the row blocking.
const CASES: &[(usize, usize, usize, Granularity)] = &[
    (1, 1, 1, Granularity::PerChannel),
    (3, 7, 5, Granularity::PerTensor),
    (17, 31, 17, Granularity::Group(32)),
    (2, 33, 33, Granularity::Group(32)),
    (5, 127, 16, Granularity::Group(64)),
    (1, 127, 31, Granularity::Group(128)),
    (9, 129, 48, Granularity::Group(128)),
    (1, 4097, 19, Granularity::Group(32)),
    (4, 4097, 3, Granularity::PerChannel),
    (7, 300, 65, Granularity::Group(64)),
    (13, 64, 70, Granularity::Group(32)),
    (16, 2100, 37, Granularity::PerChannel),
];

fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.normal()).collect()
}

fn devices() -> Vec<CpuDevice> {
    Isa::ALL
        .into_iter()
        .filter(|i| i.is_available())
        .map(|i| CpuDevice::builder().isa(i).threads(1).build().unwrap())
        .collect()
}

fn forward(
    dev: &CpuDevice,
    q: &QuantizedTensor,
    mode: ActivationMode,
    x: &[f32],
    m: usize,
) -> Vec<f32> {
    let w = Cpu::pack_quant(dev, q, mode).unwrap();
    let mut y = vec![f32::NAN; m * q.out_features()];
    Cpu::quant_forward(dev, &w, x, m, None, &mut y).unwrap();
    y
}

/// Σ_k |x_k · w_k| for every output: the scale of f32 rounding error.
fn magnitude(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * n);
    for r in 0..m {
        for c in 0..n {
            out.push((0..k).map(|i| (x[r * k + i] * w[c * k + i]).abs()).sum());
        }
    }
    out
}

fn configs(g: Granularity) -> Vec<QuantConfig> {
    let mut v = Vec::new();
    for bits in [4u8, 8] {
        for symmetric in [true, false] {
            for scale_dtype in [ScaleDType::F16, ScaleDType::F32] {
                v.push(QuantConfig {
                    bits,
                    granularity: g,
                    symmetric,
                    scale_dtype,
                    search: false,
                    activations: ActivationMode::Exact,
                });
            }
        }
    }
    v
}

#[test]
fn simd_paths_match_the_scalar_oracle_on_awkward_shapes() {
    let scalar = CpuDevice::builder()
        .isa(Isa::Scalar)
        .threads(1)
        .build()
        .unwrap();
    let exec = crate::backend::pool::Executor::Inline;
    for (case, &(m, k, n, g)) in CASES.iter().enumerate() {
        let w = data(n * k, 1 + case as u64);
        let x = data(m * k, 100 + case as u64);
        for cfg in configs(g) {
            let q = quantize_weights(&w, n, k, &cfg, &exec).unwrap();
            let wd = q.dequantize();
            let mag = magnitude(&x, &wd, m, k, n);
            let amax: Vec<f32> = (0..m)
                .map(|r| {
                    x[r * k..(r + 1) * k]
                        .iter()
                        .fold(0f32, |a, v| a.max(v.abs()))
                })
                .collect();
            let abs_w: Vec<f32> = (0..n)
                .map(|c| wd[c * k..(c + 1) * k].iter().map(|v| v.abs()).sum())
                .collect();
            let want_exact = forward(&scalar, &q, ActivationMode::Exact, &x, m);
            let want_dyn8 = forward(&scalar, &q, ActivationMode::Dyn8, &x, m);
            for dev in devices() {
                let got = forward(&dev, &q, ActivationMode::Exact, &x, m);
                let got8 = forward(&dev, &q, ActivationMode::Dyn8, &x, m);
                for i in 0..m * n {
                    let (r, c) = (i / n, i % n);
                    let what = format!(
                        "{} {} case {case} ({m},{k},{n}) out {i}",
                        dev.isa(),
                        cfg.label()
                    );
                    let tol = 2e-5 * mag[i] + 1e-6;
                    assert!(
                        (got[i] - want_exact[i]).abs() <= tol,
                        "exact {what}: {} vs {}",
                        got[i],
                        want_exact[i]
                    );
                    // dyn8 sums are exact integers; only the f32 combination of groups (and
                    // the unsigned-offset correction) rounds differently.
                    let sx = amax[r] / 127.0;
                    let tol8 = 1e-5 * sx * 256.0 * abs_w[c] + 1e-6;
                    assert!(
                        (got8[i] - want_dyn8[i]).abs() <= tol8,
                        "dyn8 {what}: {} vs {}",
                        got8[i],
                        want_dyn8[i]
                    );
                    // dyn8's documented extra error: at most sx/2 · Σ|w| per output.
                    let bound = sx / 2.0 * abs_w[c] + tol + tol8;
                    assert!(
                        (got8[i] - want_exact[i]).abs() <= bound,
                        "dyn8 bound {what}"
                    );
                }
            }
        }
    }
}

#[test]
fn f32_dense_simd_paths_match_the_scalar_oracle() {
    let scalar = CpuDevice::builder()
        .isa(Isa::Scalar)
        .threads(1)
        .build()
        .unwrap();
    for (case, &(m, k, n, _)) in CASES.iter().enumerate() {
        let w = data(n * k, 7 + case as u64);
        let x = data(m * k, 70 + case as u64);
        let mag = magnitude(&x, &w, m, k, n);
        let run = |dev: &CpuDevice| {
            let p = Cpu::pack_dense(dev, &w, n, k).unwrap();
            let mut y = vec![f32::NAN; m * n];
            Cpu::dense_forward(dev, &p, &x, m, None, &mut y).unwrap();
            y
        };
        let want = run(&scalar);
        for dev in devices() {
            let got = run(&dev);
            for i in 0..m * n {
                assert!(
                    (got[i] - want[i]).abs() <= 2e-5 * mag[i] + 1e-6,
                    "{} case {case} out {i}",
                    dev.isa()
                );
            }
        }
    }
}

#[test]
fn every_thread_count_gives_bit_identical_output() {
    // Large enough that even one row is split into tasks (2M multiply-adds per task).
    let (k, n) = (2100, 2100);
    let w = data(n * k, 5);
    let exec = crate::backend::pool::Executor::Inline;
    for isa in Isa::ALL.into_iter().filter(|i| i.is_available()) {
        for cfg in [QuantConfig::int8(), QuantConfig::int4()] {
            let q = quantize_weights(
                &w,
                n,
                k,
                &QuantConfig {
                    search: false,
                    ..cfg
                },
                &exec,
            )
            .unwrap();
            for mode in [ActivationMode::Exact, ActivationMode::Dyn8] {
                for m in [1, 3, 9] {
                    let x = data(m * k, 9 + m as u64);
                    let one = CpuDevice::builder().isa(isa).threads(1).build().unwrap();
                    let want = forward(&one, &q, mode, &x, m);
                    for threads in [2, 3, 8] {
                        let dev = CpuDevice::builder()
                            .isa(isa)
                            .threads(threads)
                            .build()
                            .unwrap();
                        let got = forward(&dev, &q, mode, &x, m);
                        assert!(
                            got.iter()
                                .zip(&want)
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{isa} {} {mode:?} m={m} threads={threads}",
                            cfg.label()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_row_gives_the_same_bits_alone_or_in_a_batch() {
    let (k, n, m) = (300, 40, 19);
    let w = data(n * k, 11);
    let x = data(m * k, 12);
    let exec = crate::backend::pool::Executor::Inline;
    for dev in devices() {
        for cfg in configs(Granularity::Group(64)) {
            let q = quantize_weights(&w, n, k, &cfg, &exec).unwrap();
            for mode in [ActivationMode::Exact, ActivationMode::Dyn8] {
                let batch = forward(&dev, &q, mode, &x, m);
                for r in [0, 7, m - 1] {
                    let alone = forward(&dev, &q, mode, &x[r * k..(r + 1) * k], 1);
                    let same = alone
                        .iter()
                        .zip(&batch[r * n..(r + 1) * n])
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{} {} {mode:?} row {r}", dev.isa(), cfg.label());
                }
            }
        }
    }
}

#[test]
fn unknown_or_unavailable_isa_is_an_error() {
    assert!(Isa::parse("sse9").is_err());
    assert_eq!(Isa::parse("AVX2").unwrap(), Isa::Avx2);
    for isa in Isa::ALL {
        let built = CpuDevice::builder().isa(isa).build();
        assert_eq!(built.is_ok(), isa.is_available(), "{isa}");
    }
}

#[test]
fn packing_round_trips_to_the_logical_tensor() {
    let exec = crate::backend::pool::Executor::Inline;
    let dev = CpuDevice::builder().threads(1).build().unwrap();
    for &(_, k, n, g) in CASES {
        let w = data(n * k, 3);
        for cfg in configs(g) {
            let q = quantize_weights(&w, n, k, &cfg, &exec).unwrap();
            let packed = Cpu::pack_quant(&dev, &q, ActivationMode::Exact).unwrap();
            assert_eq!(Cpu::unpack_quant(&packed), q, "{} [{n},{k}]", cfg.label());
        }
    }
}

/// The AVX-512 dyn8 kernel unpacks int4 nibbles with GFNI where the CPU has it; the
/// fallback (a shift and an AND) must give the same bits, and only one of them runs
/// through the other tests on any one machine.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_dyn8_with_and_without_gfni_agree_bit_for_bit() {
    use crate::kernels::x86::avx512;
    if !Isa::Avx512.is_available() || !is_x86_feature_detected!("gfni") {
        return;
    }
    let device = |table| {
        CpuDevice::builder()
            .isa(Isa::Avx512)
            .kernels(table)
            .threads(1)
            .build()
            .unwrap()
    };
    let (plain, gfni) = (device(avx512::TABLE), device(avx512::TABLE_GFNI));
    let exec = crate::backend::pool::Executor::Inline;
    for (case, &(m, k, n, g)) in CASES.iter().enumerate() {
        let w = data(n * k, 7 + case as u64);
        let x = data(m * k, 70 + case as u64);
        for cfg in configs(g).into_iter().filter(|c| c.bits == 4) {
            let q = quantize_weights(&w, n, k, &cfg, &exec).unwrap();
            let a = forward(&plain, &q, ActivationMode::Dyn8, &x, m);
            let b = forward(&gfni, &q, ActivationMode::Dyn8, &x, m);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "case {case} {}", cfg.label());
        }
    }
}
