//! Specification tests of the Rust core: `Linear`, `QuantizedLinear`, `QuantizedTensor`,
//! `QuantConfig`, `Module` semantics, errors, thread determinism and accuracy claims.
//!
//! Every numerical check compares against a reference computed here, in f64, from the
//! documented logical layout (never from the library's own kernels).

use std::sync::{Arc, OnceLock};

use qlinear::backend::Backend;
use qlinear::quant::reference_formats::{
    q4_0_dequant, q8_0_dequant, Q4_0_BITS_PER_WEIGHT, Q8_0_BITS_PER_WEIGHT,
};
use qlinear::rng::SplitMix64;
use qlinear::{
    bf16, f16, ActivationMode, Cpu, CpuDevice, DType, Error, Granularity, Isa, Linear, Module,
    QuantConfig, QuantizedLinear, QuantizedParts, QuantizedTensor, ScaleDType, Tensor,
    WeightFormat,
};

type T = Tensor<Cpu>;
type QL = QuantizedLinear<Cpu>;

// ---------------------------------------------------------------------------------------
// Helpers: devices, data, f64 references.
// ---------------------------------------------------------------------------------------

/// The forced scalar path and the default device (best ISA, all cores), built once.
fn devices() -> &'static [CpuDevice] {
    static DEVICES: OnceLock<Vec<CpuDevice>> = OnceLock::new();
    DEVICES.get_or_init(|| {
        vec![
            CpuDevice::builder()
                .isa(Isa::Scalar)
                .threads(1)
                .build()
                .unwrap(),
            CpuDevice::new().unwrap(),
        ]
    })
}

fn default_device() -> &'static CpuDevice {
    &devices()[1]
}

fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    SplitMix64::new(seed).uniform_vec(n, lo, hi)
}

fn gaussian(seed: u64, n: usize, std: f32) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| std * rng.normal()).collect()
}

/// Gaussian weights (std 0.02) with about 1 in 2000 replaced by ±(50..300)·0.02.
fn heavy_tailed(seed: u64, n: usize) -> Vec<f32> {
    SplitMix64::new(seed).heavy_tailed_vec(n, 0.02)
}

/// Weights of every kind a row can hold: Gaussian, shifted (all positive / all negative),
/// with outliers, constant, and all zero.
fn mixed_weights(seed: u64, n: usize, k: usize) -> Vec<f32> {
    let mut w = gaussian(seed, n * k, 0.05);
    for (r, row) in w.chunks_mut(k).enumerate() {
        match r % 6 {
            1 => row.iter_mut().for_each(|v| *v += 0.3),
            2 => row.iter_mut().for_each(|v| *v = -v.abs() - 0.1),
            3 => row[k / 2] = 2.5,
            4 => row.iter_mut().for_each(|v| *v = 0.125),
            5 => row.iter_mut().for_each(|v| *v = 0.0),
            _ => {}
        }
    }
    w
}

/// `y = x · Wᵀ + b` in f64 with `W` of shape `[n, k]`, and `Σ_k |x_k w_k|` per output.
fn matmul_f64(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f64],
    n: usize,
    b: Option<&[f32]>,
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(x.len(), m * k);
    assert_eq!(w.len(), n * k);
    let mut y = vec![0f64; m * n];
    let mut mag = vec![0f64; m * n];
    for r in 0..m {
        for c in 0..n {
            let (mut acc, mut abs) = (0f64, 0f64);
            for i in 0..k {
                let p = x[r * k + i] as f64 * w[c * k + i];
                acc += p;
                abs += p.abs();
            }
            y[r * n + c] = acc + b.map_or(0.0, |b| b[c] as f64);
            mag[r * n + c] = abs + b.map_or(0.0, |b| (b[c] as f64).abs());
        }
    }
    (y, mag)
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Asserts `|got − want| ≤ 1e-5 · Σ|x w| + 1e-6` element by element.
fn assert_matches_reference(got: &[f32], want: &[f64], mag: &[f64], ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: output length");
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = 1e-5 * m + 1e-6;
        assert!(
            (g as f64 - w).abs() <= tol,
            "{ctx}: element {i}: got {g}, want {w} (|diff| {} > tol {tol})",
            (g as f64 - w).abs()
        );
    }
}

/// Dequantizes straight from the documented byte layout (independently of
/// `QuantizedTensor::code`, `scale_and_zero` and `dequantize`).
fn dequant_from_layout(q: &QuantizedTensor) -> Vec<f64> {
    let [n, k] = q.shape();
    let bits = q.bits();
    let row_bytes = if bits == 8 { k } else { k.div_ceil(2) };
    assert_eq!(q.data().len(), n * row_bytes, "codes length");
    let (g, gpr) = match q.granularity() {
        Granularity::PerTensor => (k, 1),
        Granularity::PerChannel => (k, 1),
        Granularity::Group(g) => (g, k.div_ceil(g)),
    };
    let mut out = Vec::with_capacity(n * k);
    for r in 0..n {
        let row = &q.data()[r * row_bytes..(r + 1) * row_bytes];
        for c in 0..k {
            let code: i32 = if bits == 8 {
                row[c] as i8 as i32
            } else {
                let nib = if c % 2 == 0 {
                    row[c / 2] & 0xF
                } else {
                    row[c / 2] >> 4
                };
                match q.codebook() {
                    // A codebook nibble is an index: the weight is scale · level.
                    Some(levels) => levels[nib as usize] as i32,
                    None if nib >= 8 => nib as i32 - 16,
                    None => nib as i32,
                }
            };
            let si = match q.granularity() {
                Granularity::PerTensor => 0,
                _ => r * gpr + c / g,
            };
            let s = q.scales()[si];
            let z = if q.is_symmetric() {
                0
            } else {
                q.zero_points()[si] as i32
            };
            // The documented rule: `scale · (q − zero)` computed in f32.
            out.push((s * (code - z) as f32) as f64);
        }
    }
    out
}

fn cfg(bits: u8, gran: Granularity, symmetric: bool, scale: ScaleDType) -> QuantConfig {
    QuantConfig::builder()
        .bits(bits)
        .granularity(gran)
        .symmetric(symmetric)
        .scale_dtype(scale)
        .build()
        .unwrap()
}

/// Every (format, granularity, symmetry, scale type) the library supports for the sweeps.
fn all_formats() -> Vec<QuantConfig> {
    let mut v = Vec::new();
    for gran in [
        Granularity::PerTensor,
        Granularity::PerChannel,
        Granularity::Group(32),
        Granularity::Group(64),
        Granularity::Group(128),
    ] {
        for scale in [ScaleDType::F16, ScaleDType::F32] {
            v.push(QuantConfig {
                format: WeightFormat::Cb4,
                ..cfg(4, gran, true, scale)
            });
        }
    }
    for bits in [4u8, 8] {
        for gran in [
            Granularity::PerTensor,
            Granularity::PerChannel,
            Granularity::Group(32),
            Granularity::Group(64),
            Granularity::Group(128),
        ] {
            for symmetric in [true, false] {
                for scale in [ScaleDType::F16, ScaleDType::F32] {
                    v.push(cfg(bits, gran, symmetric, scale));
                }
            }
        }
    }
    v
}

fn linear_from(
    w: Vec<f32>,
    n: usize,
    k: usize,
    bias: Option<Vec<f32>>,
    dev: &CpuDevice,
) -> Linear<Cpu> {
    let wt = T::from_f32(w, &[n, k], dev).unwrap();
    let bt = bias.map(|b| T::from_f32(b, &[n], dev).unwrap());
    Linear::from_tensors(wt, bt).unwrap()
}

fn variant_name(e: &Error) -> &'static str {
    match e {
        Error::ShapeMismatch { .. } => "ShapeMismatch",
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::NonFinite { .. } => "NonFinite",
        Error::Unsupported(_) => "Unsupported",
        Error::Overflow(_) => "Overflow",
        Error::OutOfMemory { .. } => "OutOfMemory",
        Error::Corrupt(_) => "Corrupt",
        Error::Internal(_) => "Internal",
        Error::Io(_) => "Io",
    }
}

/// Asserts `r` failed with variant `want` and a message mentioning every string of `says`.
fn assert_err<V: std::fmt::Debug>(r: Result<V, Error>, want: &str, says: &[&str]) -> Error {
    let e = r.expect_err(&format!("expected a {want} error"));
    assert_eq!(variant_name(&e), want, "wrong variant: {e}");
    let msg = e.to_string();
    for s in says {
        assert!(msg.contains(s), "message {msg:?} does not mention {s:?}");
    }
    e
}

fn sym_i4_parts() -> QuantizedParts {
    // W = [[1, -2, 7], [-8, 0, 3]] as signed nibbles, low nibble first:
    // row 0: byte 0 = (-2 → 0xE) << 4 | 1 = 0xE1, byte 1 = 0x07 (unused high nibble 0)
    // row 1: byte 0 = 0 << 4 | (-8 → 0x8) = 0x08, byte 1 = 0x03
    QuantizedParts {
        out_features: 2,
        in_features: 3,
        bits: 4,
        granularity: Granularity::PerChannel,
        scale_dtype: ScaleDType::F16,
        data: vec![0xE1, 0x07, 0x08, 0x03],
        scales: vec![0.5, -0.25],
        zero_points: vec![1, -2],
        codebook: None,
    }
}

// ---------------------------------------------------------------------------------------
// QuantizedLinear forward against the f64 reference.
// ---------------------------------------------------------------------------------------

/// (M, K, N) cases: K = 1, 31, 33, 4097 (not multiples of any group or vector width),
/// N odd, M from 1 to 17.
const SHAPES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (2, 1, 17),
    (17, 31, 17),
    (16, 33, 33),
    (7, 33, 1),
    (5, 31, 33),
    (3, 4097, 17),
    (1, 4097, 33),
    (9, 64, 17),
    (4, 129, 33),
];

#[test]
fn quantized_forward_equals_x_times_dequantized_weight_plus_bias_for_every_format_shape_and_device()
{
    for (fi, cfg) in all_formats().into_iter().enumerate() {
        for (si, &(m, k, n)) in SHAPES.iter().enumerate() {
            let seed = (fi * 100 + si) as u64;
            let w = mixed_weights(seed, n, k);
            let b = uniform(seed + 1, n, -1.0, 1.0);
            let x = uniform(seed + 2, m * k, -1.0, 1.0);
            for dev in devices() {
                let ctx = format!("{} M={m} K={k} N={n} isa={}", cfg.label(), dev.isa());
                let linear = linear_from(w.clone(), n, k, Some(b.clone()), dev);
                let q = QL::from_linear(&linear, &cfg).unwrap();
                let wq = q.weight_quantized();
                let dq = to_f64(&wq.dequantize());
                assert_eq!(dq, dequant_from_layout(wq), "{ctx}: dequantize() vs layout");
                let (want, mag) = matmul_f64(&x, m, k, &dq, n, Some(&b));
                let y = q
                    .forward(&T::from_f32(x.clone(), &[m, k], dev).unwrap())
                    .unwrap();
                assert_eq!(y.shape(), &[m, n], "{ctx}");
                assert_eq!(y.dtype(), DType::F32, "{ctx}");
                assert_matches_reference(&y.to_f32_vec(), &want, &mag, &ctx);
            }
        }
    }
}

#[test]
fn quantized_forward_without_bias_equals_x_times_dequantized_weight() {
    let (m, k, n) = (3, 65, 17);
    for dev in devices() {
        for cfg in [QuantConfig::int8(), QuantConfig::int4()] {
            let linear = linear_from(mixed_weights(9, n, k), n, k, None, dev);
            let q = QL::from_linear(&linear, &cfg).unwrap();
            let x = uniform(10, m * k, -2.0, 2.0);
            let (want, mag) = matmul_f64(
                &x,
                m,
                k,
                &dequant_from_layout(q.weight_quantized()),
                n,
                None,
            );
            let y = q.forward(&T::from_f32(x, &[m, k], dev).unwrap()).unwrap();
            assert_matches_reference(&y.to_f32_vec(), &want, &mag, &cfg.label());
        }
    }
}

#[test]
fn quantized_forward_keeps_every_leading_dimension() {
    let (k, n) = (33, 17);
    for dev in devices() {
        let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, dev, 7).unwrap();
        let q = QL::from_linear(&linear, &QuantConfig::int4()).unwrap();
        let dq = dequant_from_layout(q.weight_quantized());
        let b = linear.bias().unwrap().to_f32_vec();
        for lead in [vec![2, 3], vec![1, 1, 1], vec![4], vec![2, 1, 3]] {
            let m: usize = lead.iter().product();
            let mut shape = lead.clone();
            shape.push(k);
            let x = uniform(m as u64, m * k, -1.0, 1.0);
            let y = q
                .forward(&T::from_f32(x.clone(), &shape, dev).unwrap())
                .unwrap();
            let mut want_shape = lead.clone();
            want_shape.push(n);
            assert_eq!(y.shape(), want_shape.as_slice());
            let (want, mag) = matmul_f64(&x, m, k, &dq, n, Some(&b));
            assert_matches_reference(&y.to_f32_vec(), &want, &mag, &format!("{shape:?}"));
        }
    }
}

#[test]
fn quantized_forward_accepts_a_one_dimensional_input_as_one_row() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(31, 5, true, DType::F32, dev, 3).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let x = uniform(4, 31, -1.0, 1.0);
    let y = q
        .forward(&T::from_f32(x.clone(), &[31], dev).unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[5]);
    let b = linear.bias().unwrap().to_f32_vec();
    let (want, mag) = matmul_f64(
        &x,
        1,
        31,
        &dequant_from_layout(q.weight_quantized()),
        5,
        Some(&b),
    );
    assert_matches_reference(&y.to_f32_vec(), &want, &mag, "1-D input");
}

/// The documented dyn8 activation codes of one row: per block of `block` inputs,
/// `q = round_half_even(x · (127 / max|x_b|))` in f32, and the block's scale `max|x_b| / 127`.
fn dyn8_codes(x: &[f32], block: usize) -> Vec<(f64, i32)> {
    let mut out = Vec::with_capacity(x.len());
    for b in x.chunks(block) {
        let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        for &v in b {
            out.push(((amax / 127.0) as f64, (v * inv).round_ties_even() as i32));
        }
    }
    out
}

#[test]
fn dyn8_equals_the_documented_scheme_computed_in_f64() {
    // y = Σ_k scale_x(k) · q_x(k) · w_k + b in f64, with the activation codes of the
    // documented rule and w dequantized from the documented layout: only the library's f32
    // combination of block sums may differ.
    let (m, k, n) = (5, 200, 21);
    for dev in devices() {
        for base in [
            QuantConfig::int8(),
            QuantConfig::int4_uniform(),
            QuantConfig::int4(),
            cfg(8, Granularity::PerChannel, false, ScaleDType::F32),
            cfg(4, Granularity::Group(64), false, ScaleDType::F16),
        ] {
            for (mode, block) in [(ActivationMode::Dyn8, 32), (ActivationMode::Dyn8PerRow, k)] {
                let c = QuantConfig {
                    activations: mode,
                    ..base
                };
                let b = uniform(3, n, -1.0, 1.0);
                let linear = linear_from(heavy_tailed(4, n * k), n, k, Some(b.clone()), dev);
                let q = QL::from_linear(&linear, &c).unwrap();
                let dq = dequant_from_layout(q.weight_quantized());
                let mut x = gaussian(5, m * k, 1.0);
                x[77] = 45.0;
                let y = q
                    .forward(&T::from_f32(x.clone(), &[m, k], dev).unwrap())
                    .unwrap()
                    .to_f32_vec();
                for r in 0..m {
                    let codes = dyn8_codes(&x[r * k..(r + 1) * k], block);
                    for col in 0..n {
                        let (mut want, mut mag) = (b[col] as f64, (b[col] as f64).abs());
                        for (i, &(sx, qx)) in codes.iter().enumerate() {
                            let t = sx * qx as f64 * dq[col * k + i];
                            want += t;
                            mag += t.abs();
                        }
                        let got = y[r * n + col] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * mag + 1e-6,
                            "{} {} {mode:?} ({r},{col}): {got} vs {want}",
                            dev.isa(),
                            c.label()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn dyn8_forward_error_is_within_half_an_activation_step_times_the_weight_mass() {
    // ActivationMode::Dyn8 documents |y − x·dequant(W)ᵀ| ≤ Σ_blocks scale_b/2 · Σ_{k∈b} |w_k|
    // with blocks of 32 inputs and scale_b = max|x_b| / 127; Dyn8PerRow the same with the
    // whole row as one block. The input has an outlier channel, as real activations do.
    let (m, k, n) = (6, 97, 33);
    for dev in devices() {
        for base in [
            QuantConfig::int8(),
            QuantConfig::int4_uniform(),
            QuantConfig::int4(),
        ] {
            for symmetric in [true, false] {
                if base.format == WeightFormat::Cb4 && !symmetric {
                    continue;
                }
                for (mode, block) in [(ActivationMode::Dyn8, 32), (ActivationMode::Dyn8PerRow, k)] {
                    let cfg = QuantConfig {
                        activations: mode,
                        symmetric,
                        ..base
                    };
                    let b = uniform(12, n, -1.0, 1.0);
                    let linear = linear_from(mixed_weights(11, n, k), n, k, Some(b.clone()), dev);
                    let q = QL::from_linear(&linear, &cfg).unwrap();
                    assert_eq!(q.activation_mode(), mode);
                    let dq = dequant_from_layout(q.weight_quantized());
                    let mut x = gaussian(13, m * k, 1.0);
                    for r in 0..m {
                        x[r * k + 40] *= 30.0;
                    }
                    let (want, mag) = matmul_f64(&x, m, k, &dq, n, Some(&b));
                    let y = q
                        .forward(&T::from_f32(x.clone(), &[m, k], dev).unwrap())
                        .unwrap()
                        .to_f32_vec();
                    for r in 0..m {
                        for c in 0..n {
                            let mut bound = 0f64;
                            for s in (0..k).step_by(block) {
                                let e = (s + block).min(k);
                                let sx = x[r * k + s..r * k + e]
                                    .iter()
                                    .fold(0f64, |a, v| a.max(v.abs() as f64))
                                    / 127.0;
                                let wmass: f64 =
                                    dq[c * k + s..c * k + e].iter().map(|v| v.abs()).sum();
                                bound += sx / 2.0 * wmass;
                            }
                            let tol = bound + 1e-5 * mag[r * n + c] + 1e-6;
                            let err = (y[r * n + c] as f64 - want[r * n + c]).abs();
                            assert!(
                                err <= tol,
                                "{} {mode:?} ({r},{c}): err {err} > {tol}",
                                cfg.label()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn f16_and_bf16_inputs_give_outputs_of_the_same_dtype_matching_the_f32_path() {
    let (m, k, n) = (5, 70, 33);
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, dev, 21).unwrap();
    let x = uniform(22, m * k, -1.0, 1.0);
    for cfg in [QuantConfig::int8(), QuantConfig::int4()] {
        let q = QL::from_linear(&linear, &cfg).unwrap();
        for (dtype, rel) in [(DType::F16, 2f64.powi(-11)), (DType::BF16, 2f64.powi(-8))] {
            let xh = match dtype {
                DType::F16 => {
                    T::from_f16(x.iter().map(|&v| f16::from_f32(v)).collect(), &[m, k], dev)
                }
                _ => T::from_bf16(x.iter().map(|&v| bf16::from_f32(v)).collect(), &[m, k], dev),
            }
            .unwrap();
            let y = q.forward(&xh).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_eq!(y.shape(), &[m, n]);
            // The f32 path on the same (rounded) input values.
            let y32 = q.forward(&xh.to_dtype(DType::F32)).unwrap().to_f32_vec();
            for (i, (&h, &f)) in y.to_f32_vec().iter().zip(&y32).enumerate() {
                // f16 outputs below its normal range round to a fixed step of 2^-24.
                let tol = rel * (f as f64).abs() + 2f64.powi(-25);
                assert!(
                    (h as f64 - f as f64).abs() <= tol,
                    "{dtype} {} element {i}: {h} vs f32 path {f}",
                    cfg.label()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Linear.
// ---------------------------------------------------------------------------------------

#[test]
fn linear_forward_equals_x_times_weight_transposed_plus_bias() {
    for dev in devices() {
        for &(m, k, n) in &SHAPES {
            for bias in [true, false] {
                let linear =
                    Linear::<Cpu>::new_seeded(k, n, bias, DType::F32, dev, (m * k + n) as u64)
                        .unwrap();
                let w = to_f64(&linear.weight().to_f32_vec());
                let b = linear.bias().map(|b| b.to_f32_vec());
                let x = uniform(5, m * k, -1.0, 1.0);
                let (want, mag) = matmul_f64(&x, m, k, &w, n, b.as_deref());
                let y = linear
                    .forward(&T::from_f32(x, &[m, k], dev).unwrap())
                    .unwrap();
                assert_eq!(y.shape(), &[m, n]);
                assert_matches_reference(
                    &y.to_f32_vec(),
                    &want,
                    &mag,
                    &format!("Linear {m}x{k}x{n}"),
                );
            }
        }
    }
}

#[test]
fn linear_new_initialises_weight_and_bias_uniformly_within_one_over_sqrt_in() {
    let dev = default_device();
    let (k, n) = (300, 40);
    let linear = Linear::<Cpu>::new(k, n, true, DType::F32, dev).unwrap();
    let bound = 1.0 / (k as f32).sqrt();
    let w = linear.weight().to_f32_vec();
    let b = linear.bias().unwrap().to_f32_vec();
    assert_eq!(linear.weight().shape(), &[n, k]);
    assert_eq!(linear.bias().unwrap().shape(), &[n]);
    for v in w.iter().chain(&b) {
        assert!(v.abs() <= bound, "{v} outside ±{bound}");
    }
    // Spread over the whole interval, not a corner of it.
    let max = w.iter().fold(f32::MIN, |a, &v| a.max(v));
    let min = w.iter().fold(f32::MAX, |a, &v| a.min(v));
    assert!(
        max > 0.95 * bound && min < -0.95 * bound,
        "range [{min}, {max}] vs ±{bound}"
    );
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
    assert!(mean.abs() < 0.05 * bound as f64, "mean {mean}");
}

#[test]
fn linear_new_seeded_is_reproducible_and_seed_dependent() {
    let dev = default_device();
    let a = Linear::<Cpu>::new_seeded(64, 16, true, DType::F32, dev, 42).unwrap();
    let b = Linear::<Cpu>::new_seeded(64, 16, true, DType::F32, dev, 42).unwrap();
    let c = Linear::<Cpu>::new_seeded(64, 16, true, DType::F32, dev, 43).unwrap();
    assert_eq!(a.weight().to_f32_vec(), b.weight().to_f32_vec());
    assert_eq!(
        a.bias().unwrap().to_f32_vec(),
        b.bias().unwrap().to_f32_vec()
    );
    assert_ne!(a.weight().to_f32_vec(), c.weight().to_f32_vec());
    assert_ne!(
        a.bias().unwrap().to_f32_vec(),
        c.bias().unwrap().to_f32_vec()
    );
}

#[test]
fn linear_new_gives_different_weights_on_each_call() {
    let dev = default_device();
    let a = Linear::<Cpu>::new(16, 8, false, DType::F32, dev).unwrap();
    let b = Linear::<Cpu>::new(16, 8, false, DType::F32, dev).unwrap();
    assert_ne!(a.weight().to_f32_vec(), b.weight().to_f32_vec());
}

#[test]
fn linear_from_tensors_keeps_the_given_weight_and_bias() {
    let dev = default_device();
    let w = uniform(1, 6 * 5, -3.0, 3.0);
    let b = uniform(2, 6, -3.0, 3.0);
    let linear = linear_from(w.clone(), 6, 5, Some(b.clone()), dev);
    assert_eq!((linear.in_features, linear.out_features), (5, 6));
    assert_eq!(linear.weight().to_f32_vec(), w);
    assert_eq!(linear.bias().unwrap().to_f32_vec(), b);
    // And a layer rebuilt from its own tensors computes the same function.
    let again = Linear::from_tensors(linear.weight().clone(), linear.bias().cloned()).unwrap();
    let x = T::from_f32(uniform(3, 4 * 5, -1.0, 1.0), &[4, 5], dev).unwrap();
    assert_eq!(
        linear.forward(&x).unwrap().to_f32_vec(),
        again.forward(&x).unwrap().to_f32_vec()
    );
}

#[test]
fn linear_with_half_precision_weights_computes_with_the_stored_values() {
    let dev = default_device();
    let (m, k, n) = (3, 40, 9);
    for dtype in [DType::F16, DType::BF16] {
        let linear = Linear::<Cpu>::new_seeded(k, n, true, dtype, dev, 77).unwrap();
        assert_eq!(linear.weight().dtype(), dtype);
        let w = to_f64(&linear.weight().to_f32_vec());
        let b = linear.bias().unwrap().to_f32_vec();
        let x = uniform(78, m * k, -1.0, 1.0);
        let (want, mag) = matmul_f64(&x, m, k, &w, n, Some(&b));
        let y = linear
            .forward(&T::from_f32(x, &[m, k], dev).unwrap())
            .unwrap();
        assert_matches_reference(&y.to_f32_vec(), &want, &mag, dtype.name());
    }
}

// ---------------------------------------------------------------------------------------
// Quantization error bound.
// ---------------------------------------------------------------------------------------

/// Checks the documented bound: every weight is within |s|/2 of its dequantized value,
/// unless it lies outside the representable range, in which case it maps to the nearest
/// end code. With `no_clipping`, the first case must hold everywhere.
fn check_error_bound(w: &[f32], q: &QuantizedTensor, no_clipping: bool, ctx: &str) {
    if let Some(levels) = q.codebook() {
        return check_nearest_level(w, q, levels, ctx);
    }
    let [n, k] = q.shape();
    let (lo, hi) = (-(1i32 << (q.bits() - 1)), (1i32 << (q.bits() - 1)) - 1);
    let dq = q.dequantize();
    for r in 0..n {
        for c in 0..k {
            let (s, z) = q.scale_and_zero(r, c);
            let (wv, d) = (w[r * k + c] as f64, dq[r * k + c] as f64);
            let err = (wv - d).abs();
            // f32 division and rounding may overshoot the half step by a few ulps.
            let half_step = (s.abs() as f64) * (0.5 + 1e-5) + 1e-30;
            if err <= half_step {
                continue;
            }
            let code = q.code(r, c) as i32;
            assert!(
                !no_clipping,
                "{ctx} ({r},{c}): w={wv} dequantized to {d}, error {err} > |s|/2 = {} (s={s}, z={z}, code {code})",
                s.abs() / 2.0
            );
            assert!(
                code == lo || code == hi,
                "{ctx} ({r},{c}): error {err} > |s|/2 = {} but code {code} is not an end code",
                s.abs() / 2.0
            );
            let ends = [s * (lo - z as i32) as f32, s * (hi - z as i32) as f32];
            let (emin, emax) = (ends[0].min(ends[1]) as f64, ends[0].max(ends[1]) as f64);
            assert!(
                (wv > emax && d == emax) || (wv < emin && d == emin),
                "{ctx} ({r},{c}): clipped w={wv} went to {d}, not the nearest end of [{emin}, {emax}]"
            );
        }
    }
}

/// A codebook's bound: every weight dequantizes to the level (times its group's scale)
/// nearest to it, so its error is at most half the gap to the neighbouring level, or it lies
/// beyond an end level and maps to that end.
fn check_nearest_level(w: &[f32], q: &QuantizedTensor, levels: &[i8; 16], ctx: &str) {
    let [n, k] = q.shape();
    let dq = q.dequantize();
    for r in 0..n {
        for c in 0..k {
            let s = q.scale_and_zero(r, c).0 as f64;
            let (wv, d) = (w[r * k + c] as f64, dq[r * k + c] as f64);
            let best = levels
                .iter()
                .map(|&l| (wv - s * l as f64).abs())
                .fold(f64::INFINITY, f64::min);
            // f32 rounding of w / s may pick a neighbour at an exact tie.
            assert!(
                (wv - d).abs() <= best + 1e-6 * (128.0 * s.abs() + wv.abs()) + 1e-30,
                "{ctx} ({r},{c}): w={wv} dequantized to {d}, the nearest level is {best} away"
            );
        }
    }
}

#[test]
fn every_dequantized_weight_is_within_half_a_scale_or_clipped_to_an_end_code() {
    let dev = default_device();
    let (n, k) = (36, 97);
    for (i, cfg) in all_formats().into_iter().enumerate() {
        for w in [
            mixed_weights(i as u64, n, k),
            heavy_tailed(i as u64 + 500, n * k),
        ] {
            let q = <Cpu as Backend>::quantize(dev, &w, n, k, &cfg).unwrap();
            check_error_bound(&w, &q, false, &cfg.label());
        }
    }
}

#[test]
fn without_search_symmetric_quantization_never_clips() {
    let dev = default_device();
    let (n, k) = (36, 97);
    for (i, base) in all_formats().into_iter().enumerate() {
        let cfg = QuantConfig {
            search: false,
            ..base
        };
        for w in [
            mixed_weights(i as u64, n, k),
            heavy_tailed(i as u64 + 500, n * k),
        ] {
            let q = <Cpu as Backend>::quantize(dev, &w, n, k, &cfg).unwrap();
            check_error_bound(&w, &q, cfg.symmetric, &format!("{} no search", cfg.label()));
        }
    }
}

#[test]
fn a_constant_group_keeps_its_value_in_every_format() {
    let dev = default_device();
    let (n, k) = (4, 64);
    let mut w = vec![0.0f32; n * k];
    for (r, row) in w.chunks_mut(k).enumerate() {
        row.fill([0.125, -0.3, 7.0, 0.0][r]);
    }
    for cfg in all_formats()
        .into_iter()
        .filter(|c| c.granularity != Granularity::PerTensor)
    {
        for search in [true, false] {
            let c = QuantConfig { search, ..cfg };
            let q = <Cpu as Backend>::quantize(dev, &w, n, k, &c).unwrap();
            for (i, (&d, &v)) in q.dequantize().iter().zip(&w).enumerate() {
                assert!(
                    (d - v).abs() <= 1e-3 * v.abs(),
                    "{} search={search} weight {i}: {v} → {d}",
                    c.label()
                );
            }
        }
    }
}

#[test]
fn tiny_weights_with_f16_scales_are_not_clipped_without_search() {
    // max|w|/qmax below f16's normal range: rounding it to the nearest f16 subnormal can
    // shrink it enough to clip max|w|.
    let dev = default_device();
    let (n, k) = (8, 64);
    for std in [1e-7f32, 1e-6, 1e-5] {
        let w = gaussian(55, n * k, std);
        for bits in [4u8, 8] {
            for gran in [Granularity::PerChannel, Granularity::Group(32)] {
                let c = QuantConfig {
                    search: false,
                    ..cfg(bits, gran, true, ScaleDType::F16)
                };
                let q = <Cpu as Backend>::quantize(dev, &w, n, k, &c).unwrap();
                check_error_bound(&w, &q, true, &format!("{} std {std}", c.label()));
            }
        }
    }
}

#[test]
fn quantization_is_the_same_on_every_device_and_thread_count() {
    let (n, k) = (70, 200);
    let w = mixed_weights(31, n, k);
    for cfg in [
        QuantConfig::int8(),
        QuantConfig::int4(),
        cfg(4, Granularity::Group(64), false, ScaleDType::F32),
    ] {
        let reference = <Cpu as Backend>::quantize(&devices()[0], &w, n, k, &cfg).unwrap();
        for threads in [2, 3, 8] {
            let dev = CpuDevice::with_threads(threads).unwrap();
            assert_eq!(
                <Cpu as Backend>::quantize(&dev, &w, n, k, &cfg).unwrap(),
                reference
            );
        }
    }
}

#[test]
fn f16_scales_are_exactly_representable_in_f16() {
    let dev = default_device();
    let (n, k) = (20, 100);
    for cfg in all_formats()
        .into_iter()
        .filter(|c| c.scale_dtype == ScaleDType::F16)
    {
        let q = <Cpu as Backend>::quantize(dev, &mixed_weights(4, n, k), n, k, &cfg).unwrap();
        for &s in q.scales() {
            assert_eq!(f16::from_f32(s).to_f32(), s, "{}", cfg.label());
        }
    }
}

// ---------------------------------------------------------------------------------------
// QuantizedTensor layout and the pack/unpack round trip.
// ---------------------------------------------------------------------------------------

#[test]
fn from_parts_decodes_hand_made_int4_nibbles_and_dequantizes_them() {
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    assert_eq!(q.shape(), [2, 3]);
    assert_eq!(q.row_bytes(), 2);
    let codes: Vec<i8> = (0..2)
        .flat_map(|r| (0..3).map(move |c| (r, c)))
        .map(|(r, c)| q.code(r, c))
        .collect();
    assert_eq!(codes, vec![1, -2, 7, -8, 0, 3]);
    assert_eq!(q.scale_and_zero(0, 2), (0.5, 1));
    assert_eq!(q.scale_and_zero(1, 0), (-0.25, -2));
    // 0.5·(q−1) for row 0, −0.25·(q+2) for row 1.
    assert_eq!(q.dequantize(), vec![0.0, -1.5, 3.0, 1.5, -0.5, -1.25]);
    // codes 3 bytes... counted: 4 code bytes + 2 f16 scales + 2 zero points.
    assert_eq!(q.size_in_bytes(), 4 + 2 * 2 + 2);
    assert_eq!(q.clone().into_parts().data, sym_i4_parts().data);
}

#[test]
fn from_parts_decodes_hand_made_int8_codes_with_groups() {
    // 1 × 40 int8, groups of 32: the second group holds 8 weights.
    let codes: Vec<i8> = (0..40).map(|i| (i as i8 - 20) * 3).collect();
    let q = QuantizedTensor::from_parts(QuantizedParts {
        out_features: 1,
        in_features: 40,
        bits: 8,
        granularity: Granularity::Group(32),
        scale_dtype: ScaleDType::F32,
        data: codes.iter().map(|&c| c as u8).collect(),
        scales: vec![0.1, 2.0],
        zero_points: vec![],
        codebook: None,
    })
    .unwrap();
    assert_eq!(q.groups_per_row(), 2);
    let want: Vec<f32> = codes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i < 32 {
                0.1 * c as f32
            } else {
                2.0 * c as f32
            }
        })
        .collect();
    assert_eq!(q.dequantize(), want);
}

#[test]
fn a_layer_built_with_try_new_gives_back_exactly_the_tensor_it_was_given() {
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    for dev in devices() {
        let layer = QL::try_new(q.clone(), None, dev.clone()).unwrap();
        assert_eq!(layer.weight_quantized(), &q);
        let x = vec![1.0f32, 2.0, 4.0];
        let y = layer
            .forward(&T::from_f32(x, &[1, 3], dev).unwrap())
            .unwrap();
        // Row 0: 0·1 − 1.5·2 + 3·4 = 9; row 1: 1.5·1 − 0.5·2 − 1.25·4 = −4.5.
        assert_eq!(y.to_f32_vec(), vec![9.0, -4.5]);
    }
}

#[test]
fn pack_and_unpack_round_trip_random_codes_in_every_format() {
    let dev = default_device();
    let mut rng = SplitMix64::new(99);
    for bits in [4u8, 8] {
        for gran in [
            Granularity::PerTensor,
            Granularity::PerChannel,
            Granularity::Group(32),
            Granularity::Group(128),
        ] {
            for symmetric in [true, false] {
                for scale_dtype in [ScaleDType::F16, ScaleDType::F32] {
                    for (n, k) in [(1usize, 1usize), (17, 33), (33, 31), (5, 2100)] {
                        let row_bytes = if bits == 8 { k } else { k.div_ceil(2) };
                        let mut data: Vec<u8> =
                            (0..n * row_bytes).map(|_| rng.next_u64() as u8).collect();
                        if bits == 4 && k % 2 == 1 {
                            for r in 0..n {
                                data[r * row_bytes + row_bytes - 1] &= 0x0F;
                            }
                        }
                        let ns = match gran {
                            Granularity::PerTensor => 1,
                            Granularity::PerChannel => n,
                            Granularity::Group(g) => n * k.div_ceil(g),
                        };
                        let scales: Vec<f32> = (0..ns)
                            .map(|_| f16::from_f32(rng.uniform(-2.0, 2.0)).to_f32())
                            .collect();
                        let zero_points = if symmetric {
                            vec![]
                        } else {
                            (0..ns).map(|_| rng.next_u64() as i8).collect()
                        };
                        // Symmetric 4-bit codes also as indices into a (shuffled-free,
                        // ascending but irregular) codebook.
                        let odd_levels: [i8; 16] =
                            std::array::from_fn(|i| (i as i32 * 17 - 128 + (i as i32 % 3)) as i8);
                        let codebooks = if bits == 4 && symmetric {
                            vec![None, Some(odd_levels)]
                        } else {
                            vec![None]
                        };
                        for codebook in codebooks {
                            let q = QuantizedTensor::from_parts(QuantizedParts {
                                out_features: n,
                                in_features: k,
                                bits,
                                granularity: gran,
                                scale_dtype,
                                data: data.clone(),
                                scales: scales.clone(),
                                zero_points: zero_points.clone(),
                                codebook,
                            })
                            .unwrap();
                            let layer = QL::try_new(q.clone(), None, dev.clone()).unwrap();
                            assert_eq!(
                                layer.weight_quantized(),
                                &q,
                                "{bits} bits {gran:?} sym={symmetric} {n}x{k} {codebook:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn from_linear_reports_the_configured_format() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(100, 10, true, DType::F32, dev, 1).unwrap();
    let c = cfg(4, Granularity::Group(64), false, ScaleDType::F32);
    let q = QL::from_linear(&linear, &c).unwrap();
    let wq = q.weight_quantized();
    assert_eq!(
        (wq.bits(), wq.granularity(), wq.scale_dtype()),
        (4, Granularity::Group(64), ScaleDType::F32)
    );
    assert!(!wq.is_symmetric());
    assert_eq!(wq.zero_points().len(), 10 * 2);
    assert_eq!(
        (q.bits(), q.granularity(), q.is_symmetric()),
        (4, Granularity::Group(64), false)
    );
    assert_eq!((q.in_features, q.out_features), (100, 10));
    assert_eq!(q.weight_bytes(), wq.size_in_bytes());
}

// ---------------------------------------------------------------------------------------
// Module semantics.
// ---------------------------------------------------------------------------------------

#[test]
fn quantized_linear_parameters_are_the_bias_only() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(20, 7, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let p = q.parameters();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].shape(), &[7]);
    assert!(p[0].is_variable());
    assert_eq!(p[0].to_f32_vec(), linear.bias().unwrap().to_f32_vec());

    let no_bias = Linear::<Cpu>::new_seeded(20, 7, false, DType::F32, dev, 1).unwrap();
    assert!(QL::from_linear(&no_bias, &QuantConfig::int8())
        .unwrap()
        .parameters()
        .is_empty());
}

#[test]
fn linear_parameters_are_weight_and_bias() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(20, 7, true, DType::F32, dev, 1).unwrap();
    let p = linear.parameters();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].shape(), &[7, 20]);
    assert_eq!(p[1].shape(), &[7]);
    assert!(p.iter().all(|t| t.is_variable()));
    let no_bias = Linear::<Cpu>::new_seeded(20, 7, false, DType::F32, dev, 1).unwrap();
    assert_eq!(no_bias.parameters().len(), 1);
}

#[test]
fn modules_start_in_training_mode_and_switch_through_a_shared_reference() {
    let dev = default_device();
    let linear = Arc::new(Linear::<Cpu>::new_seeded(8, 4, true, DType::F32, dev, 1).unwrap());
    let q = Arc::new(QL::from_linear(&linear, &QuantConfig::int4()).unwrap());
    let modules: [Arc<dyn Module<Cpu>>; 2] = [linear, q];
    for m in modules {
        assert!(m.is_training());
        let shared = Arc::clone(&m);
        std::thread::spawn(move || shared.set_training(false))
            .join()
            .unwrap();
        assert!(!m.is_training());
        m.set_training(true);
        assert!(m.is_training());
    }
}

#[test]
fn num_parameters_counts_frozen_weights_but_trainable_count_does_not() {
    let dev = default_device();
    let (k, n) = (20, 7);
    let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int4()).unwrap();
    assert_eq!(linear.num_parameters(), k * n + n);
    assert_eq!(linear.trainable_params_count(), k * n + n);
    assert_eq!(q.num_parameters(), k * n + n);
    assert_eq!(q.trainable_params_count(), n);

    let nb = Linear::<Cpu>::new_seeded(k, n, false, DType::F32, dev, 1).unwrap();
    let qnb = QL::from_linear(&nb, &QuantConfig::int4()).unwrap();
    assert_eq!(nb.num_parameters(), k * n);
    assert_eq!(qnb.num_parameters(), k * n);
    assert_eq!(qnb.trainable_params_count(), 0);
}

#[test]
fn frozen_parameters_are_non_variable_copies_with_the_same_values() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(20, 7, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let modules: [&dyn Module<Cpu>; 2] = [&linear, &q];
    for m in modules {
        let params = m.parameters();
        let frozen = m.frozen_parameters();
        assert_eq!(frozen.len(), params.len());
        for (f, p) in frozen.iter().zip(&params) {
            assert!(!f.is_variable());
            assert_eq!(f.shape(), p.shape());
            assert_eq!(f.to_f32_vec(), p.to_f32_vec());
        }
        // The module's own parameters stay trainable.
        assert!(m.parameters().iter().all(|t| t.is_variable()));
    }
}

// ---------------------------------------------------------------------------------------
// Memory accounting.
// ---------------------------------------------------------------------------------------

fn savings(k: usize, n: usize, cfg: &QuantConfig) -> (usize, usize) {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(k, n, false, DType::F32, dev, 5).unwrap();
    let q = QL::from_linear(&linear, cfg).unwrap();
    (
        q.memory_savings_bytes(),
        q.weight_quantized().size_in_bytes(),
    )
}

#[test]
fn memory_savings_of_int4_groups_of_32_with_f16_scales_is_exact() {
    let c = cfg(4, Granularity::Group(32), true, ScaleDType::F16);
    let kept = 64 * 2048 + 64 * 128 * 2;
    assert_eq!(savings(4096, 64, &c), (4 * 4096 * 64 - kept, kept));
}

#[test]
fn memory_savings_of_int8_per_channel_asymmetric_with_f32_scales_is_exact() {
    let c = cfg(8, Granularity::PerChannel, false, ScaleDType::F32);
    let kept = 64 * 4096 + 64 * 4 + 64;
    assert_eq!(savings(4096, 64, &c), (4 * 4096 * 64 - kept, kept));
}

#[test]
fn memory_savings_counts_a_short_last_group_as_a_full_scale() {
    // in = 33, groups of 32: two groups per row, the second holding one weight.
    let c = cfg(4, Granularity::Group(32), true, ScaleDType::F16);
    let kept = 5 * 17 + 5 * 2 * 2;
    assert_eq!(savings(33, 5, &c), (4 * 33 * 5 - kept, kept));
    let c = cfg(8, Granularity::Group(32), false, ScaleDType::F32);
    let kept = 5 * 33 + 5 * 2 * 4 + 5 * 2;
    assert_eq!(savings(33, 5, &c), (4 * 33 * 5 - kept, kept));
}

#[test]
fn memory_savings_of_per_tensor_int8_counts_one_scale() {
    let c = cfg(8, Granularity::PerTensor, false, ScaleDType::F16);
    let kept = 64 * 100 + 2 + 1;
    assert_eq!(savings(100, 64, &c), (4 * 100 * 64 - kept, kept));
}

#[test]
fn bits_per_weight_of_the_defaults() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(512, 16, false, DType::F32, dev, 5).unwrap();
    let q8 = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let q4 = QL::from_linear(&linear, &QuantConfig::int4()).unwrap();
    assert!(q8.weight_quantized().bits_per_weight() <= Q8_0_BITS_PER_WEIGHT);
    assert!(q4.weight_quantized().bits_per_weight() <= Q4_0_BITS_PER_WEIGHT);
}

// ---------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------

#[test]
fn forward_rejects_the_wrong_input_width_naming_expected_and_got() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(8, 3, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let x = T::from_f32(vec![0.0; 2 * 9], &[2, 9], dev).unwrap();
    assert_err(q.forward(&x), "ShapeMismatch", &["8", "[2, 9]"]);
    assert_err(linear.forward(&x), "ShapeMismatch", &["8", "[2, 9]"]);
}

#[test]
fn forward_rejects_a_rank_zero_input() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(1, 3, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let scalar = T::from_f32(vec![1.0], &[], dev).unwrap();
    assert_err(q.forward(&scalar), "ShapeMismatch", &["1", "[]"]);
    assert_err(linear.forward(&scalar), "ShapeMismatch", &["1", "[]"]);
}

#[test]
fn forward_rejects_an_input_with_no_rows() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(4, 3, true, DType::F32, dev, 1).unwrap();
    let q = QL::from_linear(&linear, &QuantConfig::int8()).unwrap();
    let empty = T::from_f32(vec![], &[0, 4], dev).unwrap();
    assert_err(q.forward(&empty), "InvalidArgument", &["[0, 4]"]);
}

#[test]
fn a_bias_of_the_wrong_shape_is_rejected_naming_expected_and_got() {
    let dev = default_device();
    let w = T::from_f32(vec![0.5; 12], &[3, 4], dev).unwrap();
    let bad = T::from_f32(vec![0.0; 4], &[4], dev).unwrap();
    assert_err(
        Linear::from_tensors(w.clone(), Some(bad.clone())),
        "ShapeMismatch",
        &["[3]", "[4]"],
    );
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    assert_err(
        QL::try_new(q.clone(), Some(bad), dev.clone()),
        "ShapeMismatch",
        &["[2]", "[4]"],
    );
    let rank2 = T::from_f32(vec![0.0; 2], &[1, 2], dev).unwrap();
    assert_err(
        QL::try_new(q, Some(rank2), dev.clone()),
        "ShapeMismatch",
        &["[2]", "[1, 2]"],
    );
}

#[test]
#[should_panic(expected = "QuantizedLinear::new")]
fn quantized_linear_new_panics_on_a_mismatched_bias() {
    let dev = default_device();
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    let bad = T::from_f32(vec![0.0; 3], &[3], dev).unwrap();
    let _ = QL::new(q, Some(bad), dev.clone());
}

#[test]
#[should_panic(expected = "QuantizedLinear::new")]
fn quantized_linear_new_panics_on_a_nan_bias() {
    let dev = default_device();
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    let bad = T::from_f32(vec![0.0, f32::NAN], &[2], dev).unwrap();
    let _ = QL::new(q, Some(bad), dev.clone());
}

#[test]
fn quantized_linear_new_accepts_what_try_new_accepts() {
    let dev = default_device();
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    let b = T::from_f32(vec![1.0, 2.0], &[2], dev).unwrap();
    let layer = QL::new(q.clone(), Some(b), dev.clone());
    assert_eq!(layer.weight_quantized(), &q);
    assert_eq!(layer.parameters().len(), 1);
}

#[test]
fn a_nan_bias_is_rejected_as_non_finite() {
    let dev = default_device();
    let w = T::from_f32(vec![0.5; 6], &[2, 3], dev).unwrap();
    let nan = T::from_f32(vec![0.0, f32::NAN], &[2], dev).unwrap();
    assert_err(
        Linear::from_tensors(w, Some(nan.clone())),
        "NonFinite",
        &["bias", "NaN"],
    );
    let q = QuantizedTensor::from_parts(sym_i4_parts()).unwrap();
    let e = assert_err(
        QL::try_new(q, Some(nan), dev.clone()),
        "NonFinite",
        &["bias"],
    );
    assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{e:?}");
}

#[test]
fn zero_sized_dimensions_are_rejected() {
    let dev = default_device();
    assert_err(
        Linear::<Cpu>::new(0, 4, true, DType::F32, dev),
        "InvalidArgument",
        &["in_features=0"],
    );
    assert_err(
        Linear::<Cpu>::new(4, 0, true, DType::F32, dev),
        "InvalidArgument",
        &["out_features=0"],
    );
    let w = T::from_f32(vec![], &[0, 3], dev).unwrap();
    assert_err(
        Linear::from_tensors(w, None),
        "InvalidArgument",
        &["[0, 3]"],
    );
    let parts = QuantizedParts {
        out_features: 0,
        data: vec![],
        scales: vec![],
        zero_points: vec![],
        ..sym_i4_parts()
    };
    assert_err(
        QuantizedTensor::from_parts(parts),
        "InvalidArgument",
        &["[0, 3]"],
    );
    let parts = QuantizedParts {
        in_features: 0,
        ..sym_i4_parts()
    };
    assert_err(
        QuantizedTensor::from_parts(parts),
        "InvalidArgument",
        &["[2, 0]"],
    );
}

#[test]
fn unsupported_bit_widths_are_rejected() {
    for bits in [0u8, 1, 2, 3, 5, 16] {
        let b = bits.to_string();
        assert_err(
            QuantConfig::builder().bits(bits).build(),
            "InvalidArgument",
            &["4 or 8", &b],
        );
        let parts = QuantizedParts {
            bits,
            ..sym_i4_parts()
        };
        assert_err(
            QuantizedTensor::from_parts(parts),
            "InvalidArgument",
            &["4 or 8", &b],
        );
    }
}

#[test]
fn unsupported_group_sizes_are_rejected() {
    let dev = default_device();
    let linear = Linear::<Cpu>::new_seeded(64, 4, false, DType::F32, dev, 1).unwrap();
    for g in [0usize, 1, 16, 48, 96, 2048] {
        let gs = g.to_string();
        assert_err(
            QuantConfig::builder().group_size(g).build(),
            "InvalidArgument",
            &["group size", &gs],
        );
        let c = QuantConfig {
            granularity: Granularity::Group(g),
            ..QuantConfig::int4()
        };
        assert_err(
            QL::from_linear(&linear, &c),
            "InvalidArgument",
            &["group size", &gs],
        );
        let parts = QuantizedParts {
            granularity: Granularity::Group(g),
            ..sym_i4_parts()
        };
        assert_err(
            QuantizedTensor::from_parts(parts),
            "InvalidArgument",
            &["group size", &gs],
        );
    }
    for g in [32usize, 64, 128, 256, 512, 1024] {
        QuantConfig::builder().group_size(g).build().unwrap();
    }
}

#[test]
fn nan_and_infinite_weights_are_rejected_at_quantization_time() {
    let dev = default_device();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut w = uniform(1, 4 * 40, -1.0, 1.0);
        w[77] = bad;
        for c in [
            QuantConfig::int8(),
            QuantConfig::int4(),
            cfg(8, Granularity::PerTensor, false, ScaleDType::F32),
        ] {
            let e = assert_err(
                <Cpu as Backend>::quantize(dev, &w, 4, 40, &c),
                "NonFinite",
                &["weights", "77"],
            );
            assert!(matches!(e, Error::NonFinite { index: 77, .. }), "{e:?}");
        }
        // A Linear cannot even hold such a weight, so from_linear never sees one.
        let wt = T::from_f32(w, &[4, 40], dev).unwrap();
        assert_err(
            Linear::from_tensors(wt, None),
            "NonFinite",
            &["weights", "77"],
        );
    }
}

#[test]
fn weights_too_large_for_f16_scales_are_rejected_with_advice() {
    let dev = default_device();
    let w = vec![1.0e7f32; 64];
    let c = QuantConfig::int8();
    assert_err(
        <Cpu as Backend>::quantize(dev, &w, 2, 32, &c),
        "InvalidArgument",
        &["f32 scales"],
    );
    let c32 = QuantConfig {
        scale_dtype: ScaleDType::F32,
        ..c
    };
    let q = <Cpu as Backend>::quantize(dev, &w, 2, 32, &c32).unwrap();
    check_error_bound(&w, &q, false, "1e7 with f32 scales");
}

#[test]
fn from_parts_rejects_wrong_lengths_naming_expected_and_got() {
    let p = sym_i4_parts();
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            data: vec![0; 5],
            ..p.clone()
        }),
        "ShapeMismatch",
        &["4 bytes", "5 bytes"],
    );
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            data: vec![0; 3],
            ..p.clone()
        }),
        "ShapeMismatch",
        &["4 bytes", "3 bytes"],
    );
    // int8 rows are K bytes.
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            bits: 8,
            ..p.clone()
        }),
        "ShapeMismatch",
        &["6 bytes", "4 bytes"],
    );
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            scales: vec![1.0],
            ..p.clone()
        }),
        "ShapeMismatch",
        &["2 scales", "got 1"],
    );
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            zero_points: vec![0; 3],
            ..p.clone()
        }),
        "ShapeMismatch",
        &["0 (symmetric) or 2", "got 3"],
    );
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            granularity: Granularity::PerTensor,
            ..p.clone()
        }),
        "ShapeMismatch",
        &["1 scales", "got 2"],
    );
}

#[test]
fn from_parts_rejects_an_f16_scale_that_f16_cannot_hold() {
    let p = sym_i4_parts();
    assert_err(
        QuantizedTensor::from_parts(QuantizedParts {
            scales: vec![0.5, 0.1],
            ..p.clone()
        }),
        "InvalidArgument",
        &["scale 1", "f16"],
    );
    // The same value is fine as an f32 scale.
    QuantizedTensor::from_parts(QuantizedParts {
        scales: vec![0.5, 0.1],
        scale_dtype: ScaleDType::F32,
        ..p
    })
    .unwrap();
}

#[test]
fn from_parts_rejects_non_finite_scales() {
    let p = sym_i4_parts();
    for bad in [f32::NAN, f32::INFINITY] {
        let parts = QuantizedParts {
            scales: vec![0.5, bad],
            scale_dtype: ScaleDType::F32,
            ..p.clone()
        };
        assert_err(QuantizedTensor::from_parts(parts), "NonFinite", &["scales"]);
    }
}

#[test]
fn from_parts_rejects_a_used_padding_nibble() {
    let parts = QuantizedParts {
        data: vec![0xE1, 0x17, 0x08, 0x03],
        ..sym_i4_parts()
    };
    assert_err(
        QuantizedTensor::from_parts(parts),
        "InvalidArgument",
        &["high nibble"],
    );
}

#[test]
fn a_device_rejects_zero_threads() {
    assert_err(
        CpuDevice::with_threads(0),
        "InvalidArgument",
        &["at least 1", "0"],
    );
}

#[test]
fn a_device_rejects_absurd_thread_counts_without_panicking() {
    for t in [1025, usize::MAX] {
        assert_err(
            CpuDevice::with_threads(t),
            "InvalidArgument",
            &["at most 1024"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// Threads.
// ---------------------------------------------------------------------------------------

fn bits_of(t: &T) -> Vec<u32> {
    t.to_f32_vec().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn eight_threads_sharing_one_layer_get_the_single_thread_result_bit_for_bit() {
    let dev = default_device();
    let (k, n) = (257, 300);
    let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, dev, 8).unwrap();
    let layer = Arc::new(QL::from_linear(&linear, &QuantConfig::int4()).unwrap());
    let inputs: Vec<T> = [1usize, 5, 64]
        .iter()
        .map(|&m| T::from_f32(uniform(m as u64, m * k, -1.0, 1.0), &[m, k], dev).unwrap())
        .collect();
    let expected: Vec<Vec<u32>> = inputs
        .iter()
        .map(|x| bits_of(&layer.forward(x).unwrap()))
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (layer, inputs, expected) = (Arc::clone(&layer), &inputs, &expected);
            s.spawn(move || {
                for round in 0..3 {
                    for i in 0..inputs.len() {
                        let j = (i + t + round) % inputs.len();
                        let y = layer.forward(&inputs[j]).unwrap();
                        assert_eq!(bits_of(&y), expected[j], "thread {t} input {j}");
                    }
                }
            });
        }
    });
}

#[test]
fn every_thread_count_gives_bit_identical_outputs() {
    let (k, n) = (257, 300);
    let devs: Vec<CpuDevice> = [1, 2, 3, 8]
        .iter()
        .map(|&t| CpuDevice::with_threads(t).unwrap())
        .collect();
    let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, &devs[0], 9).unwrap();
    let dyn8 = QuantConfig {
        activations: ActivationMode::Dyn8,
        ..QuantConfig::int8()
    };
    let asym = cfg(4, Granularity::Group(64), false, ScaleDType::F32);
    for c in [QuantConfig::int8(), QuantConfig::int4(), dyn8, asym] {
        let layers: Vec<QL> = devs
            .iter()
            .map(|d| QL::from_linear_on(&linear, &c, d).unwrap())
            .collect();
        let f32_layers: Vec<Linear<Cpu>> = devs
            .iter()
            .map(|d| {
                let w = T::from_f32(linear.weight().to_f32_vec(), &[n, k], d).unwrap();
                let b = T::from_f32(linear.bias().unwrap().to_f32_vec(), &[n], d).unwrap();
                Linear::from_tensors(w, Some(b)).unwrap()
            })
            .collect();
        for m in [1usize, 5, 64] {
            let x = uniform(m as u64 + 100, m * k, -1.0, 1.0);
            let run = |i: usize| {
                let xt = T::from_f32(x.clone(), &[m, k], &devs[i]).unwrap();
                (
                    bits_of(&layers[i].forward(&xt).unwrap()),
                    bits_of(&f32_layers[i].forward(&xt).unwrap()),
                )
            };
            let first = run(0);
            for (i, d) in devs.iter().enumerate().skip(1) {
                assert_eq!(run(i), first, "{} M={m} threads={}", c.label(), d.threads());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accuracy claims against ggml's Q8_0 / Q4_0.
// ---------------------------------------------------------------------------------------

/// Relative Frobenius error of `got` against `want`.
fn rel_error(got: &[f64], want: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den).sqrt()
}

/// Relative output errors `(library default, emulated ggml format)` for weights `w`.
fn output_errors(
    w: &[f32],
    n: usize,
    k: usize,
    cfg: &QuantConfig,
    emulate: fn(&[f32], usize) -> Vec<f32>,
) -> (f64, f64, f64) {
    let dev = default_device();
    let m = 16;
    let x = gaussian(1234, m * k, 1.0);
    let (exact, _) = matmul_f64(&x, m, k, &to_f64(w), n, None);
    let linear = linear_from(w.to_vec(), n, k, None, dev);
    let q = QL::from_linear(&linear, cfg).unwrap();
    let y = to_f64(
        &q.forward(&T::from_f32(x.clone(), &[m, k], dev).unwrap())
            .unwrap()
            .to_f32_vec(),
    );
    let (emu, _) = matmul_f64(&x, m, k, &to_f64(&emulate(w, k)), n, None);
    (
        rel_error(&y, &exact),
        rel_error(&emu, &exact),
        q.weight_quantized().bits_per_weight(),
    )
}

const ACC_N: usize = 256;
const ACC_K: usize = 512;

#[test]
fn int8_default_is_at_least_as_accurate_as_q8_0_on_gaussian_weights_at_no_more_bits() {
    let w = gaussian(2024, ACC_N * ACC_K, 0.02);
    let (ours, q8_0, bpw) = output_errors(&w, ACC_N, ACC_K, &QuantConfig::int8(), q8_0_dequant);
    assert!(ours <= q8_0, "int8 default {ours:.3e} vs Q8_0 {q8_0:.3e}");
    assert!(bpw <= Q8_0_BITS_PER_WEIGHT, "{bpw} bits per weight");
}

#[test]
fn int8_default_is_at_least_as_accurate_as_q8_0_on_heavy_tailed_weights() {
    let w = heavy_tailed(2025, ACC_N * ACC_K);
    let (ours, q8_0, bpw) = output_errors(&w, ACC_N, ACC_K, &QuantConfig::int8(), q8_0_dequant);
    assert!(ours <= q8_0, "int8 default {ours:.3e} vs Q8_0 {q8_0:.3e}");
    assert!(bpw <= Q8_0_BITS_PER_WEIGHT, "{bpw} bits per weight");
}

#[test]
fn int4_default_is_at_least_as_accurate_as_q4_0_on_gaussian_weights_at_no_more_bits() {
    let w = gaussian(2026, ACC_N * ACC_K, 0.02);
    let (ours, q4_0, bpw) = output_errors(&w, ACC_N, ACC_K, &QuantConfig::int4(), q4_0_dequant);
    assert!(ours <= q4_0, "int4 default {ours:.3e} vs Q4_0 {q4_0:.3e}");
    assert!(bpw <= Q4_0_BITS_PER_WEIGHT, "{bpw} bits per weight");
}

#[test]
fn int4_default_is_at_least_as_accurate_as_q4_0_on_heavy_tailed_weights() {
    let w = heavy_tailed(2027, ACC_N * ACC_K);
    let (ours, q4_0, bpw) = output_errors(&w, ACC_N, ACC_K, &QuantConfig::int4(), q4_0_dequant);
    assert!(ours <= q4_0, "int4 default {ours:.3e} vs Q4_0 {q4_0:.3e}");
    assert!(bpw <= Q4_0_BITS_PER_WEIGHT, "{bpw} bits per weight");
}

#[test]
fn the_emulated_formats_are_sane() {
    // Q8_0 of one block: d = 127/127 = 1, codes exact.
    let w: Vec<f32> = (0..32)
        .map(|i| i as f32 * 4.0 - 64.0)
        .map(|v| v.clamp(-127.0, 127.0))
        .collect();
    let mut w8 = w.clone();
    w8[0] = 127.0;
    assert_eq!(q8_0_dequant(&w8, 32), w8);
    // Q4_0: the signed max maps to code −8, so −8·d = max exactly.
    let mut w4 = vec![0.0f32; 32];
    w4[3] = 4.0;
    w4[4] = -1.0;
    w4[5] = 3.6;
    let d = q4_0_dequant(&w4, 32);
    assert_eq!(d[3], 4.0);
    assert_eq!(d[4], -1.0);
    assert_eq!(d[5], 3.5);
}

#[test]
fn nan_or_infinite_activations_are_refused_in_every_mode() {
    let dev = &devices()[0];
    let linear = Linear::<Cpu>::new_seeded(8, 4, true, DType::F32, dev, 1).unwrap();
    for bad in [f32::NAN, f32::INFINITY] {
        let mut x = vec![0.5f32; 16];
        x[9] = bad;
        let x = T::from_f32(x, &[2, 8], dev).unwrap();
        assert_err(
            linear.forward(&x),
            "NonFinite",
            &["activations", "element 9"],
        );
        for mode in [ActivationMode::Exact, ActivationMode::Dyn8] {
            let cfg = QuantConfig {
                activations: mode,
                ..QuantConfig::int4()
            };
            let q = QuantizedLinear::from_linear(&linear, &cfg).unwrap();
            assert_err(q.forward(&x), "NonFinite", &["activations", "element 9"]);
        }
    }
}
