//! Accuracy of every qlinear format × activation mode next to ggml's formats, on data made to
//! look like trained transformer layers.
//!
//! ```text
//! cargo run --release --example accuracy                      # all three test sets
//! cargo run --release --example accuracy -- --quick           # the transformer-like set only
//! cargo run --release --example accuracy -- --derive-codebook # re-derive the cb4 levels
//! ```
//!
//! Every output error is `‖y − y_ref‖ / ‖y_ref‖` with `y_ref = x · Wᵀ` computed in f64 from
//! the unquantized weights; weight errors are `‖ŵ − w‖ / ‖w‖`. Both are means over the
//! layers of a set. The ggml rows are computed here in f64 from emulations of ggml's
//! reference quantizers (`qlinear::quant::reference_formats`); "Q8_0×Q8_0" also quantizes the
//! activations to Q8_0 blocks, as ggml's fast CPU path does.
//!
//! Test sets (all seeded):
//! * transformer-like: Student-t (ν = 4) weights, rows scaled by `0.02·e^(0.5z)`; activations
//!   Gaussian with per-row scales `e^(0.3z)` and 1 input channel in 256 scaled by 20–50×
//!   (the outlier channels of real transformers).
//! * Gaussian: Gaussian weights (std 0.02) and activations, no outliers.
//! * extreme outliers: Gaussian weights with 1 in 2000 at ±(50..300)σ, activations as in the
//!   transformer-like set.
//!
//! Layers: 1024×1024, 2048×1024 and 1024×4096 (out × in), batch 32.

use std::time::Instant;

use qlinear::quant::codebook::{derive_levels, training_weights, uniform_start, CB4_LEVELS};
use qlinear::quant::reference_formats::{
    iq4_nl_levels_dequant, q4_0_dequant, q4_1_dequant, q8_0_dequant, q8_0_quantize, BLOCK,
    Q4_0_BITS_PER_WEIGHT, Q4_1_BITS_PER_WEIGHT, Q8_0_BITS_PER_WEIGHT,
};
use qlinear::rng::SplitMix64;
use qlinear::{
    ActivationMode, CpuDevice, CpuTensor, Granularity, Linear, QuantConfig, QuantizedLinear,
    Result, ScaleDType, WeightFormat,
};

const LAYERS: [(usize, usize); 3] = [(1024, 1024), (2048, 1024), (1024, 4096)];
const ROWS: usize = 32;

/// One layer of a test set: weights `[n][k]`, activations `[ROWS][k]` and the f64 output.
struct Layer {
    n: usize,
    k: usize,
    w: Vec<f32>,
    x: Vec<f32>,
    y_ref: Vec<f64>,
}

/// `x · Wᵀ` in f64 for `w` `[n][k]` and `x` `[m][k]`.
fn matmul_f64(x: &[f32], w: &[f32], n: usize, k: usize) -> Vec<f64> {
    let m = x.len() / k;
    let mut y = vec![0f64; m * n];
    for r in 0..m {
        let xr = &x[r * k..(r + 1) * k];
        for c in 0..n {
            y[r * n + c] = xr
                .iter()
                .zip(&w[c * k..(c + 1) * k])
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
        }
    }
    y
}

fn rel_error<T: Copy + Into<f64>>(got: &[T], want: &[T]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        let (g, w): (f64, f64) = (g.into(), w.into());
        num += (g - w).powi(2);
        den += w * w;
    }
    (num / den).sqrt()
}

/// Activations: Gaussian rows with scales `e^(0.3z)`; with `outliers`, 1 channel in 256
/// (the same channels for every row) scaled by 20–50×.
fn activations(rng: &mut SplitMix64, k: usize, outliers: bool) -> Vec<f32> {
    let channels: Vec<(usize, f32)> = if outliers {
        (0..k.div_ceil(256))
            .map(|_| {
                let c = (rng.next_u64() % k as u64) as usize;
                (c, rng.uniform(20.0, 50.0))
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut x = Vec::with_capacity(ROWS * k);
    for _ in 0..ROWS {
        let s = if outliers {
            (0.3 * rng.normal()).exp()
        } else {
            1.0
        };
        let start = x.len();
        x.extend((0..k).map(|_| s * rng.normal()));
        for &(c, f) in &channels {
            x[start + c] *= f;
        }
    }
    x
}

fn test_set(kind: &str, seed: u64) -> Vec<Layer> {
    let mut rng = SplitMix64::new(seed);
    LAYERS
        .iter()
        .map(|&(n, k)| {
            let w: Vec<f32> = match kind {
                "transformer-like" => (0..n)
                    .flat_map(|_| {
                        let s = 0.02 * (0.5 * rng.normal()).exp();
                        (0..k).map(|_| s * rng.student_t(4)).collect::<Vec<_>>()
                    })
                    .collect(),
                "Gaussian" => (0..n * k).map(|_| 0.02 * rng.normal()).collect(),
                _ => rng.heavy_tailed_vec(n * k, 0.02),
            };
            let x = activations(&mut rng, k, kind != "Gaussian");
            let y_ref = matmul_f64(&x, &w, n, k);
            Layer { n, k, w, x, y_ref }
        })
        .collect()
}

/// `Σ_b dw_b · dx_b · Σ qw·qx` over blocks of 32, in f64: ggml's Q8_0 × Q8_0 dot product.
fn q8_0_x_q8_0(l: &Layer) -> Vec<f64> {
    let (qw, dw) = q8_0_quantize(&l.w, l.k);
    let (qx, dx) = q8_0_quantize(&l.x, l.k);
    let blocks = l.k.div_ceil(BLOCK);
    let mut y = vec![0f64; ROWS * l.n];
    for r in 0..ROWS {
        for c in 0..l.n {
            let mut acc = 0f64;
            for b in 0..blocks {
                let (xo, wo) = ((r * blocks + b) * BLOCK, (c * blocks + b) * BLOCK);
                let dot: i32 = (0..BLOCK)
                    .map(|i| qx[xo + i] as i32 * qw[wo + i] as i32)
                    .sum();
                acc += dx[r * blocks + b] as f64 * dw[c * blocks + b] as f64 * dot as f64;
            }
            y[r * l.n + c] = acc;
        }
    }
    y
}

/// A row of the table: a qlinear recipe, or a ggml emulation.
enum Scheme {
    Ours(QuantConfig),
    /// Weights dequantized by an emulation, activations f32.
    Weights(fn(&[f32], usize) -> Vec<f32>, f64),
    Q8Q8,
}

#[derive(Default)]
struct Row {
    bits: f64,
    w_err: f64,
    y_err: f64,
    forward_ms: f64,
    quantize_s: f64,
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[3]
}

fn measure(layers: &[Layer], scheme: &Scheme, dev: &CpuDevice) -> Result<Row> {
    let mut row = Row::default();
    for l in layers {
        let (bits, dq, y): (f64, Vec<f32>, Vec<f64>) = match scheme {
            Scheme::Ours(cfg) => {
                let linear = Linear::from_tensors(
                    CpuTensor::from_f32(l.w.clone(), &[l.n, l.k], dev)?,
                    None,
                )?;
                let t = Instant::now();
                let q = QuantizedLinear::from_linear(&linear, cfg)?;
                row.quantize_s += t.elapsed().as_secs_f64();
                let mut y = vec![0f32; ROWS * l.n];
                row.forward_ms += median_ms(|| q.forward_f32(&l.x, ROWS, &mut y).unwrap());
                let wq = q.weight_quantized();
                let y = y.iter().map(|&v| v as f64).collect();
                (wq.bits_per_weight(), wq.dequantize(), y)
            }
            Scheme::Weights(f, bits) => {
                let dq = f(&l.w, l.k);
                let y = matmul_f64(&l.x, &dq, l.n, l.k);
                (*bits, dq, y)
            }
            Scheme::Q8Q8 => (
                Q8_0_BITS_PER_WEIGHT,
                q8_0_dequant(&l.w, l.k),
                q8_0_x_q8_0(l),
            ),
        };
        row.bits = bits;
        row.w_err += rel_error(&dq, &l.w) / layers.len() as f64;
        row.y_err += rel_error(&y, &l.y_ref) / layers.len() as f64;
    }
    Ok(row)
}

fn schemes() -> Result<Vec<(&'static str, Scheme)>> {
    let with = |c: QuantConfig, m: ActivationMode| QuantConfig {
        activations: m,
        ..c
    };
    let (exact, dyn8, row) = (
        ActivationMode::Exact,
        ActivationMode::Dyn8,
        ActivationMode::Dyn8PerRow,
    );
    let int8 = QuantConfig::int8();
    let channel = QuantConfig::builder()
        .granularity(Granularity::PerChannel)
        .scale_dtype(ScaleDType::F32)
        .build()?;
    let uniform = QuantConfig::int4_uniform();
    let cb4 = QuantConfig::int4();
    let cb4_g = |g| {
        QuantConfig::builder()
            .format(WeightFormat::Cb4)
            .group_size(g)
            .build()
    };
    let asym = QuantConfig::builder().bits(4).symmetric(false).build()?;
    Ok(vec![
        (
            "Q8_0 (ggml)",
            Scheme::Weights(q8_0_dequant, Q8_0_BITS_PER_WEIGHT),
        ),
        ("Q8_0×Q8_0 (ggml)", Scheme::Q8Q8),
        ("int8 exact", Scheme::Ours(with(int8, exact))),
        ("int8 dyn8", Scheme::Ours(with(int8, dyn8))),
        ("int8 dyn8-row", Scheme::Ours(with(int8, row))),
        ("int8-channel exact", Scheme::Ours(with(channel, exact))),
        ("int8-channel dyn8", Scheme::Ours(with(channel, dyn8))),
        (
            "Q4_0 (ggml)",
            Scheme::Weights(q4_0_dequant, Q4_0_BITS_PER_WEIGHT),
        ),
        (
            "Q4_1 (ggml)",
            Scheme::Weights(q4_1_dequant, Q4_1_BITS_PER_WEIGHT),
        ),
        (
            "IQ4_NL levels",
            Scheme::Weights(iq4_nl_levels_dequant, Q4_0_BITS_PER_WEIGHT),
        ),
        ("int4 exact", Scheme::Ours(with(uniform, exact))),
        ("int4 dyn8", Scheme::Ours(with(uniform, dyn8))),
        ("int4-g32-asym exact", Scheme::Ours(with(asym, exact))),
        ("cb4 exact", Scheme::Ours(with(cb4, exact))),
        ("cb4 dyn8", Scheme::Ours(with(cb4, dyn8))),
        ("cb4 dyn8-row", Scheme::Ours(with(cb4, row))),
        ("cb4-g64 exact", Scheme::Ours(cb4_g(64)?)),
        ("cb4-g128 exact", Scheme::Ours(cb4_g(128)?)),
    ])
}

fn derive_codebook() -> Result<()> {
    let t = Instant::now();
    let levels = derive_levels(&training_weights(), 32, uniform_start(), 40)?;
    println!(
        "derived {levels:?} in {:.1} s; CB4_LEVELS {}",
        t.elapsed().as_secs_f64(),
        if levels == CB4_LEVELS {
            "match"
        } else {
            "DIFFER"
        }
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--derive-codebook") {
        return derive_codebook();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let dev = CpuDevice::new()?;
    println!(
        "qlinear accuracy: layers {LAYERS:?} (out × in), batch {ROWS}, {} {} ({} threads)",
        dev.isa(),
        dev.isa_variant(),
        dev.threads()
    );
    let sets: &[(&str, u64)] = if quick {
        &[("transformer-like", 1)]
    } else {
        &[
            ("transformer-like", 1),
            ("Gaussian", 2),
            ("extreme outliers", 3),
        ]
    };
    let schemes = schemes()?;
    for &(kind, seed) in sets {
        let layers = test_set(kind, seed);
        println!("\n{kind}:");
        println!(
            "{:<20} {:>6} {:>10} {:>10} {:>8} {:>10} {:>10}",
            "scheme", "bits", "w err", "y err", "vs Q4_0", "fwd ms", "quant s"
        );
        let mut rows = Vec::new();
        for (name, scheme) in &schemes {
            rows.push((*name, measure(&layers, scheme, &dev)?));
        }
        let err_of = |n: &str| {
            rows.iter()
                .find(|r| r.0 == n)
                .map_or(f64::NAN, |r| r.1.y_err)
        };
        let q4 = err_of("Q4_0 (ggml)");
        for (name, r) in &rows {
            let timed = matches!(
                schemes.iter().find(|s| s.0 == *name),
                Some((_, Scheme::Ours(_)))
            );
            let (f, q) = if timed {
                (
                    format!("{:.3}", r.forward_ms),
                    format!("{:.2}", r.quantize_s),
                )
            } else {
                ("-".into(), "-".into())
            };
            println!(
                "{name:<20} {:>6.3} {:>10.3e} {:>10.3e} {:>8.3} {f:>10} {q:>10}",
                r.bits,
                r.w_err,
                r.y_err,
                r.y_err / q4
            );
        }
        let (q8q8, q8dyn) = (err_of("Q8_0×Q8_0 (ggml)"), err_of("int8 dyn8"));
        println!(
            "bars: int8 dyn8 / Q8_0×Q8_0 = {:.3} (≤ 1.1), cb4 exact / Q4_0 = {:.3}, \
             cb4 dyn8 / Q4_0 = {:.3} (≤ 0.85)",
            q8dyn / q8q8,
            err_of("cb4 exact") / q4,
            err_of("cb4 dyn8") / q4
        );
    }
    println!(
        "\n(fwd ms: the set's layers at batch {ROWS}, median of 7 calls each, summed; quant s: \
         quantization time with the scale search)"
    );
    Ok(())
}
