//! Quickstart: quantize a seeded 4096→4096 `Linear` in several formats and compare size,
//! accuracy and speed against the f32 layer. (`examples/accuracy.rs` compares every format
//! and mode with ggml's on transformer-like data.)
//!
//! ```text
//! cargo run --release --example quickstart            # 4096→4096
//! cargo run --release --example quickstart -- 1024    # a smaller square layer
//! ```
//!
//! Formats that differ only in the activation mode share one quantized weight.

use std::time::{Duration, Instant};

use qlinear::rng::SplitMix64;
use qlinear::{
    ActivationMode, CpuDevice, CpuTensor, Granularity, Linear, Module, QuantConfig,
    QuantizedLinear, Result,
};

/// Default layer size (in = out), overridden by the first argument.
const DIM: usize = 4096;
const BATCHES: [usize; 2] = [1, 32];
/// Timed runs per measurement (after one warm-up), fewer if they exceed `TIME_BUDGET`.
const RUNS: usize = 20;
const TIME_BUDGET: Duration = Duration::from_millis(1000);

/// Median wall time of `f` over up to `RUNS` runs (at least 3, fewer than `RUNS` when they
/// exceed `TIME_BUDGET`), and the runs made. The caller warms up first.
fn median_time(mut f: impl FnMut()) -> (Duration, usize) {
    let start = Instant::now();
    let mut times = Vec::with_capacity(RUNS);
    while times.len() < RUNS && (times.len() < 3 || start.elapsed() < TIME_BUDGET) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times.len())
}

fn rel_error(got: &[f32], want: &[f32]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|&w| (w as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn random_input(m: usize, k: usize, seed: u64, dev: &CpuDevice) -> Result<CpuTensor> {
    let mut rng = SplitMix64::new(seed);
    let x: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
    CpuTensor::from_f32(x, &[m, k], dev)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A layer whose weights look trained rather than freshly initialised: Student-t (ν = 4)
/// values, each row scaled by `0.02·e^(0.5z)`, and a small bias. (A fresh PyTorch-style
/// `Linear::new` has uniform weights, on which the uniform int4 grid beats cb4.)
fn trained_like(
    in_f: usize,
    out_f: usize,
    seed: u64,
    dev: &CpuDevice,
) -> Result<Linear<qlinear::Cpu>> {
    let mut rng = SplitMix64::new(seed);
    let mut w = Vec::with_capacity(in_f * out_f);
    for _ in 0..out_f {
        let s = 0.02 * (0.5 * rng.normal()).exp();
        w.extend((0..in_f).map(|_| s * rng.student_t(4)));
    }
    let b: Vec<f32> = (0..out_f).map(|_| 0.01 * rng.normal()).collect();
    Linear::from_tensors(
        CpuTensor::from_f32(w, &[out_f, in_f], dev)?,
        Some(CpuTensor::from_f32(b, &[out_f], dev)?),
    )
}

fn main() -> Result<()> {
    let dim = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| {
            qlinear::Error::InvalidArgument(format!("layer size must be an integer, got {a:?}"))
        })?,
        None => DIM,
    };
    let (in_f, out_f) = (dim, dim);
    let dev = CpuDevice::new()?;
    println!(
        "qlinear quickstart: Linear {in_f}→{out_f} with bias, trained-like weights, device {} {} ({} threads)\n",
        dev.isa(),
        dev.isa_variant(),
        dev.threads()
    );
    let linear = trained_like(in_f, out_f, 2024, &dev)?;
    let w = linear.weight().to_f32_vec();
    let inputs: Vec<CpuTensor> = BATCHES
        .iter()
        .map(|&m| random_input(m, in_f, 7 + m as u64, &dev))
        .collect::<Result<_>>()?;
    // These two calls are also the warm-ups of the timings below.
    linear.forward(&inputs[0])?;
    let reference = linear.forward(&inputs[1])?.to_f32_vec();
    let mut f32_times = Vec::new();
    for x in &inputs {
        f32_times.push(median_time(|| {
            linear.forward(x).unwrap();
        }));
    }

    let with = |mode: ActivationMode, c: QuantConfig| QuantConfig {
        activations: mode,
        ..c
    };
    let formats: Vec<(String, QuantConfig)> = vec![
        ("int8() default".into(), QuantConfig::int8()),
        ("int4() default (cb4)".into(), QuantConfig::int4()),
        ("int4_uniform()".into(), QuantConfig::int4_uniform()),
        (
            "int8 per-channel".into(),
            QuantConfig::builder()
                .granularity(Granularity::PerChannel)
                .build()?,
        ),
        (
            "int8() dyn8".into(),
            with(ActivationMode::Dyn8, QuantConfig::int8()),
        ),
        (
            "int4() dyn8".into(),
            with(ActivationMode::Dyn8, QuantConfig::int4()),
        ),
        (
            "int8() dyn8-row".into(),
            with(ActivationMode::Dyn8PerRow, QuantConfig::int8()),
        ),
    ];

    println!(
        "{:<21} {:>5} {:>10} {:>15} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>10}",
        "format",
        "bits",
        "weight MiB",
        "saved",
        "rel w err",
        "rel y err",
        "ms @1",
        "ms @32",
        "f32/q@1",
        "f32/q@32",
        "quantize s"
    );
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "{:<21} {:>5} {:>10.2} {:>15} {:>10} {:>10} {:>9.3} {:>9.3} {:>8} {:>8} {:>10}",
        "f32 Linear",
        32,
        mib(4 * in_f * out_f),
        "-",
        "-",
        "-",
        ms(f32_times[0].0),
        ms(f32_times[1].0),
        "1.00",
        "1.00",
        "-"
    );
    let mut fewest_runs = f32_times.iter().map(|t| t.1).min().unwrap_or(RUNS);
    let mut quantized: Vec<(QuantConfig, qlinear::QuantizedTensor)> = Vec::new();
    for (label, cfg) in &formats {
        let t = Instant::now();
        let same_weights = QuantConfig {
            activations: ActivationMode::Exact,
            ..*cfg
        };
        let q = match quantized.iter().find(|(c, _)| *c == same_weights) {
            Some((_, wq)) => QuantizedLinear::try_new_with_mode(
                wq.clone(),
                linear.bias().cloned(),
                dev.clone(),
                cfg.activations,
            )?,
            None => {
                let q = QuantizedLinear::from_linear(&linear, cfg)?;
                quantized.push((same_weights, q.weight_quantized().clone()));
                q
            }
        };
        let quantize_time = t.elapsed();
        let wq = q.weight_quantized();
        let w_err = rel_error(&wq.dequantize(), &w);
        q.forward(&inputs[0])?;
        let y_err = rel_error(&q.forward(&inputs[1])?.to_f32_vec(), &reference);
        let times: Vec<(Duration, usize)> = inputs
            .iter()
            .map(|x| {
                median_time(|| {
                    q.forward(x).unwrap();
                })
            })
            .collect();
        fewest_runs = fewest_runs.min(times.iter().map(|t| t.1).min().unwrap_or(RUNS));
        let ratio = |i: usize| f32_times[i].0.as_secs_f64() / times[i].0.as_secs_f64();
        let saved = q.memory_savings_bytes();
        println!(
            "{:<21} {:>5.3} {:>10.2} {:>6.1} MiB {:>5.2}x {:>10.3e} {:>10.3e} {:>9.3} {:>9.3} {:>8.2} {:>8.2} {:>10.2}",
            label,
            wq.bits_per_weight(),
            mib(q.weight_bytes()),
            mib(saved),
            (4 * in_f * out_f) as f64 / q.weight_bytes() as f64,
            w_err,
            y_err,
            ms(times[0].0),
            ms(times[1].0),
            ratio(0),
            ratio(1),
            quantize_time.as_secs_f64()
        );
    }
    println!(
        "\n(times: median of up to {RUNS} runs after a warm-up, at least {fewest_runs} per cell, \
         fewer than {RUNS} when a cell exceeds {TIME_BUDGET:?}; rel y err on a seeded batch of 32 \
         against the f32 Linear; saved = f32 bytes minus weight bytes, x = f32 bytes / weight bytes; \
         quantize s = from_linear time, only repacking for rows that reuse a quantized weight)"
    );

    Ok(())
}
