//! Every available kernel path of the selection table against the scalar oracle, on awkward
//! shapes, every activation mode, every format, and several thread counts. Dyn8 paths must
//! give the oracle's bits; exact paths stay within f32 rounding of it.

use crate::backend::{Backend, Cpu, CpuDevice};
use crate::kernels::{Isa, PATHS};
use crate::quant::quantize::quantize_weights;
use crate::quant::{
    ActivationMode, Granularity, QuantConfig, QuantizedTensor, ScaleDType, WeightFormat, DYN8_BLOCK,
};
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
    // Two whole blocks of 16 rows and a rest, a short last input block (AMX).
    (40, 200, 24, Granularity::Group(64)),
    (32, 1030, 17, Granularity::PerChannel),
];

fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.normal()).collect()
}

/// One single-threaded device per kernel table this CPU can run (every row of the
/// selection table, not only the best one per ISA).
fn devices() -> Vec<CpuDevice> {
    PATHS
        .iter()
        .filter(|p| (p.available)())
        .map(|p| {
            CpuDevice::builder()
                .isa(p.table.isa)
                .kernels(p.table)
                .threads(1)
                .build()
                .unwrap()
        })
        .collect()
}

fn label(dev: &CpuDevice) -> String {
    format!("{}[{}]", dev.isa(), dev.isa_variant())
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

/// Every format × symmetry × scale type (cb4 is symmetric only).
fn configs(g: Granularity) -> Vec<QuantConfig> {
    let mut v = Vec::new();
    for format in [WeightFormat::Int4, WeightFormat::Int8, WeightFormat::Cb4] {
        for symmetric in [true, false] {
            if format == WeightFormat::Cb4 && !symmetric {
                continue;
            }
            for scale_dtype in [ScaleDType::F16, ScaleDType::F32] {
                v.push(QuantConfig {
                    format,
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

/// `Σ_blocks max|x_block|/254 · Σ_{k∈block} |w_k|` for every output (per row: one block):
/// the most dyn8's activation rounding can move an output.
fn dyn8_bound(x: &[f32], w: &[f32], m: usize, k: usize, n: usize, per_row: bool) -> Vec<f32> {
    let block = if per_row { k } else { DYN8_BLOCK };
    let mut out = Vec::with_capacity(m * n);
    for r in 0..m {
        for c in 0..n {
            let mut b = 0f32;
            for s in (0..k).step_by(block) {
                let e = (s + block).min(k);
                let amax = x[r * k + s..r * k + e]
                    .iter()
                    .fold(0f32, |a, v| a.max(v.abs()));
                let wsum: f32 = w[c * k + s..c * k + e].iter().map(|v| v.abs()).sum();
                b += amax / 254.0 * wsum;
            }
            out.push(b);
        }
    }
    out
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
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
            let want_exact = forward(&scalar, &q, ActivationMode::Exact, &x, m);
            for mode in [ActivationMode::Dyn8, ActivationMode::Dyn8PerRow] {
                let bound = dyn8_bound(&x, &wd, m, k, n, mode == ActivationMode::Dyn8PerRow);
                let want = forward(&scalar, &q, mode, &x, m);
                for i in 0..m * n {
                    // The oracle's dyn8 error stays within the documented bound.
                    let tol = bound[i] + 2e-5 * mag[i] + 1e-6;
                    assert!(
                        (want[i] - want_exact[i]).abs() <= tol,
                        "oracle {mode:?} bound {} case {case} out {i}",
                        cfg.label()
                    );
                }
                for dev in devices() {
                    let got = forward(&dev, &q, mode, &x, m);
                    assert!(
                        same_bits(&got, &want),
                        "{mode:?} {} {} case {case} ({m},{k},{n}): {:?} vs {:?}",
                        label(&dev),
                        cfg.label(),
                        &got[..got.len().min(4)],
                        &want[..want.len().min(4)]
                    );
                }
            }
            for dev in devices() {
                let got = forward(&dev, &q, ActivationMode::Exact, &x, m);
                for i in 0..m * n {
                    let tol = 2e-5 * mag[i] + 1e-6;
                    assert!(
                        (got[i] - want_exact[i]).abs() <= tol,
                        "exact {} {} case {case} ({m},{k},{n}) out {i}: {} vs {}",
                        label(&dev),
                        cfg.label(),
                        got[i],
                        want_exact[i]
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
        for cfg in [
            QuantConfig::int8(),
            QuantConfig::int4(),
            QuantConfig::int4_uniform(),
        ] {
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
            for mode in ActivationMode::ALL {
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
            for mode in ActivationMode::ALL {
                let batch = forward(&dev, &q, mode, &x, m);
                for r in [0, 7, m - 1] {
                    let alone = forward(&dev, &q, mode, &x[r * k..(r + 1) * k], 1);
                    let same = alone
                        .iter()
                        .zip(&batch[r * n..(r + 1) * n])
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{} {} {mode:?} row {r}", label(&dev), cfg.label());
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

#[test]
fn every_isa_quantizes_activations_to_the_same_bits() {
    let mut rng = SplitMix64::new(21);
    for len in [1, 5, 31, 32, 33, 64, 100, 4097] {
        let mut x: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
        x[len / 2] *= 40.0; // an outlier channel
        if len > 40 {
            x[3..35].fill(0.0); // an all-zero block
        }
        let stride = len.next_multiple_of(DYN8_BLOCK);
        let blocks = stride / DYN8_BLOCK;
        let run = |f: crate::kernels::QuantizeBlocks| {
            let (mut q, mut s, mut sums) = (vec![7i8; stride], vec![9f32; blocks], vec![9; blocks]);
            // SAFETY: only tables this CPU can run are used.
            unsafe { f(&x, &mut q, &mut s, &mut sums) };
            (q, s, sums)
        };
        let want = run(crate::kernels::reference::TABLE.quantize_blocks);
        for p in PATHS.iter().filter(|p| (p.available)()) {
            let got = run(p.table.quantize_blocks);
            assert_eq!(got.0, want.0, "{} codes, len {len}", p.table.isa);
            assert!(
                same_bits(&got.1, &want.1),
                "{} scales, len {len}",
                p.table.isa
            );
            assert_eq!(got.2, want.2, "{} sums, len {len}", p.table.isa);
        }
        // The oracle against its definition: nearest code of x / scale, sums of codes.
        for (b, chunk) in x.chunks(DYN8_BLOCK).enumerate() {
            let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_eq!(want.1[b], amax / 127.0);
            for (i, &v) in chunk.iter().enumerate() {
                let code = want.0[b * DYN8_BLOCK + i] as f64;
                let exact = if amax > 0.0 {
                    v as f64 * 127.0 / amax as f64
                } else {
                    0.0
                };
                assert!(
                    (code - exact).abs() <= 0.5 + 1e-4,
                    "len {len} block {b} input {i}"
                );
            }
            let sum: i32 = want.0[b * DYN8_BLOCK..(b + 1) * DYN8_BLOCK]
                .iter()
                .map(|&c| c as i32)
                .sum();
            assert_eq!(want.2[b], sum);
        }
        assert!(want.0[len..].iter().all(|&c| c == 0));
    }
}
