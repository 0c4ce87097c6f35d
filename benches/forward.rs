//! Criterion benchmarks of `forward`: qlinear formats next to the f32 `Linear` on the same
//! shape, in one run (`cargo bench --bench forward`). `examples/bench.rs` covers the full
//! shape/thread/cold-cache grid.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qlinear::{ActivationMode, Cpu, CpuDevice, DType, Linear, QuantConfig, QuantizedLinear};

/// A named `forward` on f32 buffers: `(x, rows, y)`.
type Runner<'a> = (String, Box<dyn Fn(&[f32], usize, &mut [f32]) + 'a>);

fn forward(c: &mut Criterion) {
    let dev = CpuDevice::new().unwrap();
    let (k, n) = (4096, 4096);
    let linear = Linear::<Cpu>::new_seeded(k, n, true, DType::F32, &dev, 1).unwrap();
    let mut layers: Vec<Runner> = Vec::new();
    let l = &linear;
    layers.push((
        "f32".into(),
        Box::new(move |x, m, y| l.forward_f32(x, m, y).unwrap()),
    ));
    for base in [QuantConfig::int8(), QuantConfig::int4()] {
        for mode in [ActivationMode::Exact, ActivationMode::Dyn8] {
            let cfg = QuantConfig {
                activations: mode,
                ..base
            };
            let q = QuantizedLinear::from_linear(&linear, &cfg).unwrap();
            let name = format!("{}-{}", cfg.label(), mode.name());
            layers.push((
                name,
                Box::new(move |x, m, y| q.forward_f32(x, m, y).unwrap()),
            ));
        }
    }
    for m in [1usize, 32] {
        let mut group = c.benchmark_group(format!("forward_{k}x{n}_m{m}"));
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.sample_size(20);
        let x: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
        let mut y = vec![0f32; m * n];
        for (name, run) in &layers {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| run(&x, m, &mut y))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
