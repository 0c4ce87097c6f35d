//! Forward-pass benchmark: qlinear formats against the f32 `Linear` on the same shapes,
//! hot (one layer, weights cached) and cold (a stack of layers ≥ 4× the last-level cache,
//! called in turn as in LLM decoding), with the streaming-read bandwidth of the same bytes
//! measured just before each case.
//!
//! ```text
//! cargo run --release --example bench [-- --quick] [--csv] [--threads 1,2]
//!     [--formats int8,cb4] [--modes exact,dyn8] [--batches 32,128] [--states hot]
//!     [--shapes 4096x4096,512x4096]
//! cargo run --release --example bench -- --quantize   # quantization throughput
//! ```
//!
//! `peak_share` is the case's rate over the machine's peak measured at the start of the run
//! (`examples/common/peaks.rs`), with the instructions of the device's path: f32 FMA FLOP/s
//! for f32 and exact rows, int8 dot-product OP/s for dyn8 rows (`vpdpbusd` on AVX-512,
//! `vpmaddubsw` + `vpmaddwd` on AVX2, so `QLINEAR_ISA=avx2` reads AVX2 against its own peak). `stream_share` is weight GB/s over the stream read of the same bytes. The
//! header also gives the `vpdpbusd` rate left once every 8 of them carry block-wise dyn8's
//! f32 scaling (one conversion and one FMA, plus a multiply for group-wise weights): that
//! share of the peak is as far as a block-wise dyn8 kernel can go on this core.

#[path = "common/peaks.rs"]
mod peaks;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qlinear::backend::alloc::AlignedBuf;
use qlinear::{
    ActivationMode, CpuDevice, DType, Granularity, Isa, Linear, QuantConfig, QuantizedLinear,
    QuantizedTensor, Tensor,
};

/// Weights of a cold stack total at least this many bytes (4× a 32 MiB L3).
const COLD_BYTES: usize = 128 << 20;
/// Time spent per case, roughly.
const BUDGET: Duration = Duration::from_millis(250);

struct Case {
    format: String,
    mode: &'static str,
    state: &'static str,
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    median_us: f64,
    weight_bytes: usize,
    stream_gbps: f64,
    /// The peak this case is measured against (GFLOP/s or GOP/s), 0 if unknown.
    peak: f64,
}

/// A layer under test: runs `y = f(x)` for `rows` rows.
trait Layer {
    fn run(&self, x: &[f32], rows: usize, y: &mut [f32]);
    fn weight_bytes(&self) -> usize;
}

impl Layer for Linear<qlinear::Cpu> {
    fn run(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        self.forward_f32(x, rows, y).unwrap()
    }
    fn weight_bytes(&self) -> usize {
        4 * self.in_features * self.out_features
    }
}

impl Layer for QuantizedLinear<qlinear::Cpu> {
    fn run(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        self.forward_f32(x, rows, y).unwrap()
    }
    fn weight_bytes(&self) -> usize {
        QuantizedLinear::weight_bytes(self)
    }
}

/// Median time of one call, cycling through `layers`.
fn time_layers(layers: &[Box<dyn Layer>], x: &[f32], m: usize, y: &mut [f32]) -> f64 {
    for l in layers.iter().take(3) {
        l.run(x, m, y);
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < BUDGET || samples.len() < 2 * layers.len().min(8))
        && samples.len() < 2000
    {
        for l in layers {
            let t = Instant::now();
            l.run(x, m, y);
            samples.push(t.elapsed().as_secs_f64());
        }
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2] * 1e6
}

/// Streaming read bandwidth (GB/s) of `buf` split over `threads` threads: the best of 7
/// reads after a warm-up one. Threads meet at a spinning barrier before each read and each
/// times its own part, so neither thread start-up nor wake-up is counted (either costs tens
/// of microseconds here, as much as reading a hot layer).
fn stream_gbps(buf: &[u64], threads: usize) -> f64 {
    const REPS: usize = 8;
    let chunk = buf.len().div_ceil(threads).next_multiple_of(64).max(64);
    let parts = buf.len().div_ceil(chunk);
    let arrived = AtomicUsize::new(0);
    // Per read: the slowest thread's time, in nanoseconds.
    let slowest: Vec<AtomicU64> = (0..REPS).map(|_| AtomicU64::new(0)).collect();
    std::thread::scope(|s| {
        for part in buf.chunks(chunk) {
            let (arrived, slowest) = (&arrived, &slowest);
            s.spawn(move || {
                for (rep, slot) in slowest.iter().enumerate() {
                    arrived.fetch_add(1, Ordering::AcqRel);
                    while arrived.load(Ordering::Acquire) < (rep + 1) * parts {
                        std::hint::spin_loop();
                    }
                    let t = Instant::now();
                    std::hint::black_box(read_sum(part));
                    slot.fetch_max(t.elapsed().as_nanos() as u64, Ordering::AcqRel);
                }
            });
        }
    });
    let best_ns = slowest[1..]
        .iter()
        .map(|t| t.load(Ordering::Acquire))
        .min()
        .unwrap_or(1)
        .max(1);
    (buf.len() * 8) as f64 / best_ns as f64
}

/// Sums `c` with the widest loads available (the read is what is measured).
fn read_sum(c: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present.
        return unsafe { read_sum_avx512(c) };
    }
    c.iter().fold(0, |a, &b| a.wrapping_add(b))
}

/// Four independent 512-bit sums, so the loop is bound by loads, not by add latency.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_sum_avx512(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 4];
    let blocks = c.chunks_exact(32);
    let tail: u64 = blocks.remainder().iter().fold(0, |a, &b| a.wrapping_add(b));
    for b in blocks {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm512_add_epi64(
                *a,
                _mm512_loadu_si512(b.as_ptr().add(8 * i) as *const __m512i),
            );
        }
    }
    let sum = _mm512_add_epi64(
        _mm512_add_epi64(acc[0], acc[1]),
        _mm512_add_epi64(acc[2], acc[3]),
    );
    (_mm512_reduce_add_epi64(sum) as u64).wrapping_add(tail)
}

/// `--split`: small square layers at batch 1 on 1 and 2 threads, to see from which size
/// handing work to a second thread pays (the task threshold in `backend/cpu.rs`).
fn split_threshold() {
    println!(
        "{:>6} {:>12} {:>10} {:>10} {:>8}",
        "K=N", "MACs", "1 thr us", "2 thr us", "speedup"
    );
    let one = CpuDevice::with_threads(1).unwrap();
    let two = CpuDevice::with_threads(2).unwrap();
    let cfg = QuantConfig {
        activations: ActivationMode::Dyn8,
        ..QuantConfig::int4()
    };
    for size in [64, 128, 256, 362, 512, 724, 1024, 2048] {
        let lin =
            Linear::<qlinear::Cpu>::new_seeded(size, size, false, DType::F32, &one, 3).unwrap();
        let q = QuantizedLinear::from_linear(
            &lin,
            &QuantConfig {
                search: false,
                ..cfg
            },
        )
        .unwrap();
        let x = vec![0.5f32; size];
        let mut y = vec![0f32; size];
        let mut us = [0.0; 2];
        for (i, dev) in [&one, &two].into_iter().enumerate() {
            let layer: Vec<Box<dyn Layer>> = vec![Box::new(
                QuantizedLinear::try_new_with_mode(
                    q.weight_quantized().clone(),
                    None,
                    dev.clone(),
                    cfg.activations,
                )
                .unwrap(),
            )];
            us[i] = time_layers(&layer, &x, 1, &mut y);
        }
        println!(
            "{size:>6} {:>12} {:>10.2} {:>10.2} {:>7.2}x",
            size * size,
            us[0],
            us[1],
            us[0] / us[1]
        );
    }
}

/// `--quantize`: quantization throughput (million weights per second, median of 3) of a
/// 4096×11008 Student-t (ν = 4) weight, for the defaults and the uniform int4 grid, on 1 and
/// 2 threads.
fn quantize_throughput() {
    let (n, k) = (4096, 11008);
    let mut rng = qlinear::rng::SplitMix64::new(11);
    let w: Vec<f32> = (0..n * k).map(|_| 0.02 * rng.student_t(4)).collect();
    println!(
        "{:<16} {:>8} {:>12} {:>10}",
        "recipe", "threads", "median s", "M w/s"
    );
    for (name, cfg) in [
        ("int4() (cb4)", QuantConfig::int4()),
        ("int4_uniform()", QuantConfig::int4_uniform()),
        ("int8()", QuantConfig::int8()),
    ] {
        for threads in [1, 2] {
            let dev = CpuDevice::with_threads(threads).unwrap();
            let mut t: Vec<f64> = (0..3)
                .map(|_| {
                    let s = Instant::now();
                    std::hint::black_box(
                        <qlinear::Cpu as qlinear::Backend>::quantize(&dev, &w, n, k, &cfg).unwrap(),
                    );
                    s.elapsed().as_secs_f64()
                })
                .collect();
            t.sort_by(f64::total_cmp);
            println!(
                "{name:<16} {threads:>8} {:>12.3} {:>10.1}",
                t[1],
                (n * k) as f64 / t[1] / 1e6
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--split") {
        split_threshold();
        return;
    }
    if args.iter().any(|a| a == "--quantize") {
        quantize_throughput();
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let csv = args.iter().any(|a| a == "--csv");
    // `--name a,b`: the listed values, if given.
    let list = |name: &str| -> Option<Vec<String>> {
        let i = args.iter().position(|a| a == name)?;
        Some(args.get(i + 1)?.split(',').map(str::to_string).collect())
    };
    let numbers = |name: &str| -> Option<Vec<usize>> {
        list(name).map(|v| v.iter().map(|t| t.parse().expect(name)).collect())
    };
    let threads = numbers("--threads").unwrap_or_else(|| vec![1, 2]);
    let only_formats = list("--formats");
    let only_modes = list("--modes");
    // `--shapes KxN,...` (inputs × outputs) replaces the default shapes.
    let shapes: Vec<(usize, usize)> = match list("--shapes") {
        Some(v) => v
            .iter()
            .map(|s| {
                let (k, n) = s.split_once('x').expect("--shapes KxN");
                (k.parse().expect("K"), n.parse().expect("N"))
            })
            .collect(),
        None if quick => vec![(4096, 4096)],
        None => vec![(4096, 4096), (4096, 11008), (11008, 4096)],
    };
    let batches: Vec<usize> = numbers("--batches").unwrap_or_else(|| {
        if quick {
            vec![1, 32, 128]
        } else {
            vec![1, 8, 32, 128]
        }
    });
    let states: Vec<&str> = match list("--states") {
        Some(v) => ["hot", "cold"]
            .into_iter()
            .filter(|s| v.iter().any(|w| w == s))
            .collect(),
        None if quick => vec!["hot"],
        None => vec!["hot", "cold"],
    };
    // The defaults (int8, and int4 = the cb4 codebook) next to the uniform int4 they
    // replaced; every quantized format runs exact, block-wise dyn8 and per-row dyn8 (the
    // mode block-wise dyn8 replaced).
    let formats: Vec<(String, Option<QuantConfig>)> = vec![
        ("f32".into(), None),
        ("int8".into(), Some(QuantConfig::int8())),
        ("int4".into(), Some(QuantConfig::int4_uniform())),
        ("cb4".into(), Some(QuantConfig::int4())),
        // Per-channel scales: dyn8-row then has no per-block scaling at all.
        ("int8-channel".into(), Some(per_channel(8))),
        ("int4-channel".into(), Some(per_channel(4))),
    ]
    .into_iter()
    .filter(|(f, _)| only_formats.as_ref().is_none_or(|v| v.contains(f)))
    .collect();

    // (threads, f32 FMA GFLOP/s, int8 dot-product GOP/s), measured once before the cases
    // with the instructions of the path the device runs (`QLINEAR_ISA` chooses it).
    let dev_quant = CpuDevice::new().unwrap();
    let isa = dev_quant.isa();
    let peaks_by_threads: Vec<(usize, f64, f64)> = threads
        .iter()
        .map(|&t| {
            let (f, v) = match (isa, dev_quant.isa_variant()) {
                (Isa::Avx512, _) => peaks::peaks(t),
                (Isa::Avx2, "avx-vnni") => peaks::peaks_avx_vnni(t),
                (Isa::Avx2, _) => peaks::peaks_avx2(t),
                _ => None,
            }
            .unwrap_or((0.0, 0.0));
            eprintln!(
                "peaks of the {isa}[{}] path, {t} threads: f32 FMA {f:.0} GFLOP/s, int8 dot products {v:.0} GOP/s",
                dev_quant.isa_variant()
            );
            // The AMX path runs tile products only for per-row int8 with long groups; its
            // rows' peak_share stays against vpdpbusd, and this is the ceiling above it.
            if let Some((k32, _)) =
                peaks::amx_peaks(t).filter(|_| dev_quant.isa_variant().contains("amx"))
            {
                eprintln!("  AMX-INT8 tdpbsud with dyn8's 32-byte A tiles: {k32:.0} GOP/s");
            }
            if let Some((c, g)) = peaks::block_scaled_vnni(t).filter(|_| isa == Isa::Avx512) {
                eprintln!(
                    "  vpdpbusd with dyn8's block scaling (the ceiling of a dyn8 row's peak_share): \
                     per-channel {:.2}, group-wise {:.2}",
                    c / v,
                    g / v
                );
            }
            (t, f, v)
        })
        .collect();
    let mut cases = Vec::new();
    for &(k, n) in &shapes {
        let base =
            Linear::<qlinear::Cpu>::new_seeded(k, n, false, DType::F32, &dev_quant, 42).unwrap();
        let mut seen = Vec::new();
        for (fname, cfg) in &formats {
            // Quantize once per format; the stack reuses the same codes.
            let q: Option<QuantizedTensor> = cfg.map(|c| {
                QuantizedLinear::from_linear(&base, &c)
                    .unwrap()
                    .weight_quantized()
                    .clone()
            });
            let label = match (cfg, &q) {
                (Some(c), Some(_)) => c.label(),
                _ => fname.clone(),
            };
            if seen.contains(&label) {
                continue;
            }
            seen.push(label.clone());
            let modes: &[Option<ActivationMode>] = if cfg.is_some() {
                &[
                    Some(ActivationMode::Exact),
                    Some(ActivationMode::Dyn8),
                    Some(ActivationMode::Dyn8PerRow),
                ]
            } else {
                &[None]
            };
            let modes: Vec<Option<ActivationMode>> = modes
                .iter()
                .copied()
                .filter(|m| {
                    only_modes
                        .as_ref()
                        .is_none_or(|v| v.iter().any(|w| *w == m.map_or("-", |m| m.name())))
                })
                .collect();
            for &t in &threads {
                let dev = CpuDevice::with_threads(t).unwrap();
                for &mode in &modes {
                    for &state in &states {
                        let one_bytes = q.as_ref().map_or(4 * k * n, |q| q.size_in_bytes());
                        let count = if state == "hot" {
                            1
                        } else {
                            COLD_BYTES.div_ceil(one_bytes).max(2)
                        };
                        let layers: Vec<Box<dyn Layer>> = (0..count)
                            .map(|_| -> Box<dyn Layer> {
                                match (&q, mode) {
                                    (Some(q), Some(mode)) => Box::new(
                                        QuantizedLinear::try_new_with_mode(
                                            q.clone(),
                                            None,
                                            dev.clone(),
                                            mode,
                                        )
                                        .unwrap(),
                                    ),
                                    _ => Box::new(
                                        Linear::from_tensors(
                                            Tensor::from_f32(
                                                base.weight().to_f32_vec(),
                                                &[n, k],
                                                &dev,
                                            )
                                            .unwrap(),
                                            None,
                                        )
                                        .unwrap(),
                                    ),
                                }
                            })
                            .collect();
                        let total_bytes: usize = layers.iter().map(|l| l.weight_bytes()).sum();
                        // The same allocator as the weights, so both sit on the same pages
                        // (2 MiB ones unless QLINEAR_HUGE_PAGES=0).
                        let mut stream_bytes = AlignedBuf::zeroed(total_bytes, None).unwrap();
                        stream_bytes.as_mut_slice().fill(1);
                        // SAFETY: 64-byte aligned, initialised, len/8 whole u64s.
                        let stream_buf: &[u64] = unsafe {
                            std::slice::from_raw_parts(
                                stream_bytes.as_ptr() as *const u64,
                                total_bytes / 8,
                            )
                        };
                        for &m in &batches {
                            let stream = stream_gbps(stream_buf, t);
                            let x: Vec<f32> = (0..m * k)
                                .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0)
                                .collect();
                            let mut y = vec![0f32; m * n];
                            let us = time_layers(&layers, &x, m, &mut y);
                            let c = Case {
                                format: label.clone(),
                                mode: mode.map_or("-", |m| m.name()),
                                state,
                                m,
                                k,
                                n,
                                threads: t,
                                median_us: us,
                                weight_bytes: layers[0].weight_bytes(),
                                stream_gbps: stream,
                                peak: peaks_by_threads.iter().find(|p| p.0 == t).map_or(0.0, |p| {
                                    if mode.is_some_and(|m| m.is_dyn8()) {
                                        p.2
                                    } else {
                                        p.1
                                    }
                                }),
                            };
                            if csv {
                                print_csv(&c);
                            }
                            cases.push(c);
                        }
                    }
                }
            }
        }
    }
    if !csv {
        print_table(&cases);
    }
}

fn gflops(c: &Case) -> f64 {
    2.0 * (c.m * c.k * c.n) as f64 / c.median_us / 1e3
}

fn weight_gbps(c: &Case) -> f64 {
    c.weight_bytes as f64 / c.median_us / 1e3
}

fn peak_share(c: &Case) -> f64 {
    if c.peak > 0.0 {
        gflops(c) / c.peak
    } else {
        f64::NAN
    }
}

fn stream_share(c: &Case) -> f64 {
    weight_gbps(c) / c.stream_gbps
}

fn print_csv(c: &Case) {
    use std::sync::Once;
    static HEADER: Once = Once::new();
    HEADER.call_once(|| {
        println!("impl,format,mode,state,M,K,N,threads,median_us,gflops,weight_gbps,stream_gbps,peak_share,stream_share")
    });
    println!(
        "qlinear,{},{},{},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{:.3},{:.3}",
        c.format,
        c.mode,
        c.state,
        c.m,
        c.k,
        c.n,
        c.threads,
        c.median_us,
        gflops(c),
        weight_gbps(c),
        c.stream_gbps,
        peak_share(c),
        stream_share(c)
    );
}

fn print_table(cases: &[Case]) {
    println!(
        "{:<14} {:<8} {:<5} {:>4} {:>6} {:>6} {:>3} {:>11} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8}",
        "format",
        "mode",
        "state",
        "M",
        "K",
        "N",
        "thr",
        "median_us",
        "GFLOP/s",
        "wGB/s",
        "streamGB/s",
        "peak",
        "stream",
        "vs f32"
    );
    for c in cases {
        let f32_us = cases
            .iter()
            .find(|b| {
                b.format == "f32"
                    && b.state == c.state
                    && b.m == c.m
                    && b.k == c.k
                    && b.n == c.n
                    && b.threads == c.threads
            })
            .map(|b| b.median_us);
        let ratio = f32_us.map_or(String::from("-"), |f| format!("{:.2}x", f / c.median_us));
        println!(
            "{:<14} {:<8} {:<5} {:>4} {:>6} {:>6} {:>3} {:>11.1} {:>9.1} {:>9.1} {:>9.1} {:>6.2} {:>6.2} {:>8}",
            c.format,
            c.mode,
            c.state,
            c.m,
            c.k,
            c.n,
            c.threads,
            c.median_us,
            gflops(c),
            weight_gbps(c),
            c.stream_gbps,
            peak_share(c),
            stream_share(c),
            ratio
        );
    }
}

/// Symmetric per-channel weights of `bits` bits, f16 scales chosen by the search.
fn per_channel(bits: u8) -> QuantConfig {
    QuantConfig::builder()
        .bits(bits)
        .granularity(Granularity::PerChannel)
        .build()
        .expect("a valid config")
}
