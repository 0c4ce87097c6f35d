//! Quickstart: quantize a seeded 4096→4096 `Linear` in several formats and compare size,
//! accuracy and speed against the f32 layer; then compare the defaults with ggml's
//! Q8_0 / Q4_0 on heavy-tailed weights.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::time::{Duration, Instant};

use qlinear::quant::reference_formats::{
    q4_0_dequant, q8_0_dequant, Q4_0_BITS_PER_WEIGHT, Q8_0_BITS_PER_WEIGHT,
};
use qlinear::rng::SplitMix64;
use qlinear::{
    ActivationMode, CpuDevice, CpuTensor, DType, Granularity, Linear, Module, QuantConfig,
    QuantizedLinear, Result,
};

const IN: usize = 4096;
const OUT: usize = 4096;
const BATCHES: [usize; 2] = [1, 32];
/// Timed runs per measurement (after one warm-up), fewer if they exceed `TIME_BUDGET`.
const RUNS: usize = 20;
const TIME_BUDGET: Duration = Duration::from_millis(1500);
/// Heavy-tailed comparison size (smaller: it only measures error).
const HT_OUT: usize = 1024;

/// Median wall time of `f` over up to `RUNS` runs after a warm-up, and the runs made.
fn median_time(mut f: impl FnMut()) -> (Duration, usize) {
    f();
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

/// Gaussian weights (std 0.02) with about 1 in 2000 set to ±(50..300)·0.02.
fn heavy_tailed(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let w = 0.02 * rng.normal();
            if rng.next_u64() % 2000 == 0 {
                let sign = if rng.next_u64() % 2 == 0 { 1.0 } else { -1.0 };
                sign * rng.uniform(50.0, 300.0) * 0.02
            } else {
                w
            }
        })
        .collect()
}

fn main() -> Result<()> {
    let dev = CpuDevice::new()?;
    println!(
        "qlinear quickstart: Linear {IN}→{OUT} with bias, device {:?} ({} threads)\n",
        dev.isa(),
        dev.threads()
    );
    let linear = Linear::new_seeded(IN, OUT, true, DType::F32, &dev, 2024)?;
    let w = linear.weight().to_f32_vec();
    let inputs: Vec<CpuTensor> = BATCHES
        .iter()
        .map(|&m| random_input(m, IN, 7 + m as u64, &dev))
        .collect::<Result<_>>()?;
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
        "{:<18} {:>5} {:>10} {:>13} {:>10} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "format",
        "bits",
        "weight MB",
        "saved",
        "rel w err",
        "rel y err",
        "ms @1",
        "ms @32",
        "f32/q@1",
        "f32/q@32"
    );
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "{:<18} {:>5} {:>10.2} {:>13} {:>10} {:>10} {:>9.3} {:>9.3} {:>7} {:>7}",
        "f32 Linear",
        32,
        mib(4 * IN * OUT),
        "-",
        "-",
        "-",
        ms(f32_times[0].0),
        ms(f32_times[1].0),
        "1.00",
        "1.00"
    );
    let mut fewest_runs = f32_times.iter().map(|t| t.1).min().unwrap_or(RUNS);
    for (label, cfg) in &formats {
        let q = QuantizedLinear::from_linear(&linear, cfg)?;
        let wq = q.weight_quantized();
        let w_err = rel_error(&wq.dequantize(), &w);
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
            "{:<18} {:>5.3} {:>10.2} {:>6.1} MiB {:>4.2}x {:>10.3e} {:>10.3e} {:>9.3} {:>9.3} {:>7.2} {:>7.2}",
            label,
            wq.bits_per_weight(),
            mib(q.weight_bytes()),
            mib(saved),
            (4 * IN * OUT) as f64 / q.weight_bytes() as f64,
            w_err,
            y_err,
            ms(times[0].0),
            ms(times[1].0),
            ratio(0),
            ratio(1)
        );
    }
    println!(
        "\n(times: median of up to {RUNS} runs after a warm-up, at least {fewest_runs} per cell; \
         rel y err on a seeded batch of 32 against the f32 Linear)"
    );

    // Heavy-tailed weights: the defaults against emulated ggml formats.
    let (n, k) = (HT_OUT, IN);
    let wh = heavy_tailed(n * k, 99);
    let ht_linear = Linear::from_tensors(CpuTensor::from_f32(wh.clone(), &[n, k], &dev)?, None)?;
    let x = random_input(32, k, 5, &dev)?;
    let y_ref = ht_linear.forward(&x)?.to_f32_vec();
    let emulated_error = |dq: Vec<f32>| -> Result<(f64, f64)> {
        let w_err = rel_error(&dq, &wh);
        let l = Linear::from_tensors(CpuTensor::from_f32(dq, &[n, k], &dev)?, None)?;
        Ok((w_err, rel_error(&l.forward(&x)?.to_f32_vec(), &y_ref)))
    };
    println!(
        "\nHeavy-tailed weights ({n}x{k}, std 0.02, 1 in 2000 set to ±(50..300)·0.02), batch 32:"
    );
    println!(
        "{:<18} {:>6} {:>10} {:>10}",
        "format", "bits", "rel w err", "rel y err"
    );
    for (label, cfg, emu_label, emu, emu_bits) in [
        (
            "int8() default",
            QuantConfig::int8(),
            "Q8_0 (emulated)",
            q8_0_dequant as fn(&[f32], usize) -> Vec<f32>,
            Q8_0_BITS_PER_WEIGHT,
        ),
        (
            "int4() default",
            QuantConfig::int4(),
            "Q4_0 (emulated)",
            q4_0_dequant,
            Q4_0_BITS_PER_WEIGHT,
        ),
    ] {
        let q = QuantizedLinear::from_linear(&ht_linear, &cfg)?;
        let wq = q.weight_quantized();
        let w_err = rel_error(&wq.dequantize(), &wh);
        let y_err = rel_error(&q.forward(&x)?.to_f32_vec(), &y_ref);
        println!(
            "{label:<18} {:>6.3} {w_err:>10.3e} {y_err:>10.3e}",
            wq.bits_per_weight()
        );
        let (ew, ey) = emulated_error(emu(&wh, k))?;
        println!("{emu_label:<18} {emu_bits:>6.3} {ew:>10.3e} {ey:>10.3e}");
    }
    Ok(())
}
