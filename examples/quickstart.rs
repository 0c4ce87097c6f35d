//! Quickstart: quantize a seeded 4096→4096 `Linear` in several formats and compare size,
//! accuracy and speed against the f32 layer; then compare the defaults with ggml's
//! Q8_0 / Q4_0 on heavy-tailed weights.
//!
//! ```text
//! cargo run --release --example quickstart            # 4096→4096
//! cargo run --release --example quickstart -- 1024    # a smaller square layer
//! ```
//!
//! Formats that differ only in the activation mode share one quantized weight.

use std::time::{Duration, Instant};

use qlinear::quant::reference_formats::{
    q4_0_dequant, q8_0_dequant, Q4_0_BITS_PER_WEIGHT, Q8_0_BITS_PER_WEIGHT,
};
use qlinear::rng::SplitMix64;
use qlinear::{
    ActivationMode, CpuDevice, CpuTensor, DType, Granularity, Linear, Module, QuantConfig,
    QuantizedLinear, Result, ScaleDType,
};

/// Default layer size (in = out), overridden by the first argument.
const DIM: usize = 4096;
const BATCHES: [usize; 2] = [1, 32];
/// Timed runs per measurement (after one warm-up), fewer if they exceed `TIME_BUDGET`.
const RUNS: usize = 20;
const TIME_BUDGET: Duration = Duration::from_millis(1000);
/// Heavy-tailed comparison size (smaller: it only measures error).
const HT_OUT: usize = 1024;

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

/// How a comparison row is quantized: by qlinear, or by an emulated ggml format.
enum Scheme {
    Ours(QuantConfig),
    Emulated(fn(&[f32], usize) -> Vec<f32>, f64),
}

/// Gaussian weights with standard deviation 0.02.
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| 0.02 * rng.normal()).collect()
}

/// Gaussian weights (std 0.02) with about 1 in 2000 set to ±(50..300)·0.02.
fn heavy_tailed(n: usize, seed: u64) -> Vec<f32> {
    SplitMix64::new(seed).heavy_tailed_vec(n, 0.02)
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
        "qlinear quickstart: Linear {in_f}→{out_f} with bias, device {:?} ({} threads)\n",
        dev.isa(),
        dev.threads()
    );
    let linear = Linear::new_seeded(in_f, out_f, true, DType::F32, &dev, 2024)?;
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

    let b = QuantConfig::builder();
    let formats: Vec<(String, QuantConfig)> = vec![
        ("int8() default".into(), QuantConfig::int8()),
        ("int4() default".into(), QuantConfig::int4()),
        (
            "int8 per-channel".into(),
            b.granularity(Granularity::PerChannel).build()?,
        ),
        (
            "int4 g128 asym".into(),
            b.bits(4).group_size(128).symmetric(false).build()?,
        ),
        (
            "int4 g32 dyn8".into(),
            b.bits(4)
                .group_size(32)
                .activations(ActivationMode::Dyn8)
                .build()?,
        ),
        (
            "int8() dyn8".into(),
            QuantConfig {
                activations: ActivationMode::Dyn8,
                ..QuantConfig::int8()
            },
        ),
    ];

    println!(
        "{:<18} {:>5} {:>10} {:>15} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>10}",
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
        "{:<18} {:>5} {:>10.2} {:>15} {:>10} {:>10} {:>9.3} {:>9.3} {:>8} {:>8} {:>10}",
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
            "{:<18} {:>5.3} {:>10.2} {:>6.1} MiB {:>5.2}x {:>10.3e} {:>10.3e} {:>9.3} {:>9.3} {:>8.2} {:>8.2} {:>10.2}",
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

    // Accuracy of the schemes against emulated ggml formats, on Gaussian and on
    // heavy-tailed weights (the data the defaults were chosen from).
    let (n, k) = (HT_OUT.min(dim), in_f);
    let x = random_input(32, k, 5, &dev)?;
    let no_search = |c: QuantConfig| QuantConfig { search: false, ..c };
    let asym = |g: usize| {
        QuantConfig::builder()
            .bits(4)
            .group_size(g)
            .symmetric(false)
            .build()
    };
    let schemes: Vec<(&str, Scheme)> = vec![
        (
            "Q8_0 (emulated)",
            Scheme::Emulated(q8_0_dequant, Q8_0_BITS_PER_WEIGHT),
        ),
        ("int8() default", Scheme::Ours(QuantConfig::int8())),
        (
            "int8 g32 no search",
            Scheme::Ours(no_search(QuantConfig::int8())),
        ),
        (
            "int8 per-channel",
            Scheme::Ours(
                QuantConfig::builder()
                    .granularity(Granularity::PerChannel)
                    .scale_dtype(ScaleDType::F32)
                    .build()?,
            ),
        ),
        (
            "Q4_0 (emulated)",
            Scheme::Emulated(q4_0_dequant, Q4_0_BITS_PER_WEIGHT),
        ),
        ("int4() default", Scheme::Ours(QuantConfig::int4())),
        (
            "int4 g32 no search",
            Scheme::Ours(no_search(QuantConfig::int4())),
        ),
        ("int4 g32 asym", Scheme::Ours(asym(32)?)),
        ("int4 g64 asym", Scheme::Ours(asym(64)?)),
        ("int4 g128 asym", Scheme::Ours(asym(128)?)),
    ];
    for (kind, w) in [
        ("Gaussian (std 0.02)", gaussian(n * k, 98)),
        (
            "heavy-tailed (std 0.02, 1 in 2000 at ±(50..300)·0.02)",
            heavy_tailed(n * k, 99),
        ),
    ] {
        let linear = Linear::from_tensors(CpuTensor::from_f32(w.clone(), &[n, k], &dev)?, None)?;
        let y_ref = linear.forward(&x)?.to_f32_vec();
        println!(
            "\nAccuracy on {kind} weights {n}x{k}, batch 32 (y err relative to the f32 Linear):"
        );
        println!(
            "{:<20} {:>6} {:>10} {:>10}",
            "scheme", "bits", "rel w err", "rel y err"
        );
        for (label, scheme) in &schemes {
            let (bits, dq) = match scheme {
                Scheme::Emulated(f, bits) => (*bits, f(&w, k)),
                Scheme::Ours(cfg) => {
                    let q = QuantizedLinear::from_linear(&linear, cfg)?;
                    let wq = q.weight_quantized();
                    (wq.bits_per_weight(), wq.dequantize())
                }
            };
            let l = Linear::from_tensors(CpuTensor::from_f32(dq.clone(), &[n, k], &dev)?, None)?;
            let y_err = rel_error(&l.forward(&x)?.to_f32_vec(), &y_ref);
            println!(
                "{label:<20} {bits:>6.3} {:>10.3e} {y_err:>10.3e}",
                rel_error(&dq, &w)
            );
        }
    }
    Ok(())
}
