//! What the C ABI adds to one forward: a 64×64 INT8 layer at batch 1, called through
//! `qlinear_quantized_linear_forward` (the `extern "C"` function, from Rust) and through
//! `QuantizedLinear::forward_f32`. Prints both medians and checks that the C path (f32 and
//! f16) allocates nothing per call once warm.
//!
//! `cargo run --release --example ffi_overhead`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use qlinear::ffi::*;
use qlinear::{CpuDevice, QuantConfig, QuantizedLinear};

/// Counts allocations, to show the C path does none per call.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 64;
const K: usize = 64;
const ITERS: usize = 20_000;
const SAMPLES: usize = 31;

/// Median over `SAMPLES` batches of the per-call time of `f`, in nanoseconds.
fn median_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERS {
        f();
    }
    let mut t: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            start.elapsed().as_nanos() as f64 / ITERS as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[SAMPLES / 2]
}

fn main() -> qlinear::Result<()> {
    let w: Vec<f32> = (0..N * K)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0)
        .collect();
    let x: Vec<f32> = (0..K).map(|i| (i as f32 * 0.1).sin()).collect();
    let x16: Vec<u16> = x
        .iter()
        .map(|&v| qlinear::f16::from_f32(v).to_bits())
        .collect();
    let mut y = vec![0f32; N];
    let mut y16 = vec![0u16; N];

    // Rust path: the same layer type, the same inline device the C path uses.
    let dev = CpuDevice::with_threads(1)?;
    let cfg = QuantConfig::int8();
    let q = <qlinear::Cpu as qlinear::Backend>::quantize(&dev, &w, N, K, &cfg)?;
    let rust_layer =
        QuantizedLinear::<qlinear::Cpu>::try_new_with_mode(q, None, dev, cfg.activations)?;

    // C path.
    let mut cdev = ptr::null_mut();
    let mut ccfg = ptr::null_mut();
    let mut layer = ptr::null_mut();
    // SAFETY: valid out-pointers and buffers of the stated lengths throughout.
    unsafe {
        assert_eq!(
            qlinear_device_create(1, &mut cdev),
            qlinear_status::QLINEAR_OK
        );
        assert_eq!(
            qlinear_quant_config_create_int8(&mut ccfg),
            qlinear_status::QLINEAR_OK
        );
        let s = qlinear_quantized_linear_quantize(
            cdev,
            w.as_ptr(),
            w.len(),
            N,
            K,
            ptr::null(),
            0,
            ccfg,
            &mut layer,
        );
        assert_eq!(s, qlinear_status::QLINEAR_OK);
    }

    let rust = median_ns(|| {
        rust_layer
            .forward_f32(black_box(&x), 1, black_box(&mut y))
            .unwrap();
    });
    // SAFETY: as above.
    let c_fwd = || unsafe {
        let s = qlinear_quantized_linear_forward(layer, x.as_ptr(), 1, K, y.as_mut_ptr(), N);
        assert_eq!(black_box(s), qlinear_status::QLINEAR_OK);
    };
    let c = median_ns(c_fwd);
    // SAFETY: as above.
    let c_f16 = || unsafe {
        let s =
            qlinear_quantized_linear_forward_f16(layer, x16.as_ptr(), 1, K, y16.as_mut_ptr(), N);
        assert_eq!(black_box(s), qlinear_status::QLINEAR_OK);
    };
    let c16 = median_ns(c_f16);

    // Allocations per call once warm (the medians above warmed both paths).
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        // SAFETY: as above.
        unsafe {
            qlinear_quantized_linear_forward(layer, x.as_ptr(), 1, K, y.as_mut_ptr(), N);
            qlinear_quantized_linear_forward_f16(layer, x16.as_ptr(), 1, K, y16.as_mut_ptr(), N);
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;

    println!("64x64 int8 (g32, f16 scales), batch 1, inline device, median of {SAMPLES} x {ITERS} calls:");
    println!("  Rust  QuantizedLinear::forward_f32      {rust:8.1} ns/call");
    println!(
        "  C ABI qlinear_quantized_linear_forward  {c:8.1} ns/call  (+{:.1} ns)",
        c - rust
    );
    println!("  C ABI ..._forward_f16 (with conversion) {c16:8.1} ns/call");
    println!("  allocations in 2000 warm C ABI calls:   {allocs}");

    // SAFETY: handles from the create calls above, freed once.
    unsafe {
        qlinear_quantized_linear_free(layer);
        qlinear_quant_config_free(ccfg);
        qlinear_device_free(cdev);
    }
    assert_eq!(allocs, 0, "the C path allocated per call");
    Ok(())
}
