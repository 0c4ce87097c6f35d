//! The CPU backend: `CpuDevice` (ISA path, executor, allocator) and the forward drivers
//! that split work into tasks and call the selected kernels (activations are prepared in
//! `activations.rs`).

use std::fmt;
use std::sync::Arc;

use super::activations::{prepare_dyn8, prepare_exact, with_scratch};
use super::alloc::HostAllocator;
use super::pool::{Executor, HostJobSystem};
pub use super::workers::DEFAULT_SPIN;
use super::Backend;
use crate::error::{Error, Result};
use crate::kernels::{Isa, KernelTable, OutPtr};
use crate::quant::pack::{self, PackedDense, PackedQuant, NR};
use crate::quant::{ActivationMode, QuantConfig, QuantizedTensor};

/// The CPU backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu;

struct DeviceInner {
    kernels: KernelTable,
    executor: Executor,
    allocator: Option<Arc<HostAllocator>>,
}

/// A CPU device: which kernels run, on which threads, with whose memory. Cheap to clone
/// (clones share the thread pool).
#[derive(Clone)]
pub struct CpuDevice {
    inner: Arc<DeviceInner>,
}

impl fmt::Debug for CpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuDevice")
            .field("isa", &self.isa())
            .field("executor", &self.inner.executor)
            .field("host_allocator", &self.inner.allocator.is_some())
            .finish()
    }
}

impl CpuDevice {
    /// A device using every core and the ISA from `QLINEAR_ISA` (or the best available).
    pub fn new() -> Result<Self> {
        CpuDevice::builder().build()
    }

    /// A device with `threads` threads (1 = run on the caller's thread).
    pub fn with_threads(threads: usize) -> Result<Self> {
        CpuDevice::builder().threads(threads).build()
    }

    pub fn builder() -> CpuDeviceBuilder {
        CpuDeviceBuilder::default()
    }

    /// The ISA path this device runs.
    pub fn isa(&self) -> Isa {
        self.inner.kernels.isa
    }

    /// What the kernel path uses beyond its ISA's baseline (e.g. `vnni+gfni+vbmi`; empty for
    /// none).
    pub fn isa_variant(&self) -> &'static str {
        self.inner.kernels.variant
    }

    /// Threads that may run one call's tasks at once.
    pub fn threads(&self) -> usize {
        self.inner.executor.threads()
    }

    pub(crate) fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    pub(crate) fn kernels(&self) -> &KernelTable {
        &self.inner.kernels
    }

    pub(crate) fn allocator(&self) -> Option<&Arc<HostAllocator>> {
        self.inner.allocator.as_ref()
    }
}

/// Configures a [`CpuDevice`].
#[derive(Debug, Default, Clone)]
pub struct CpuDeviceBuilder {
    threads: Option<usize>,
    spin: Option<std::time::Duration>,
    isa: Option<Isa>,
    #[cfg(test)]
    kernels: Option<KernelTable>,
    host_jobs: Option<HostJobSystem>,
    allocator: Option<HostAllocator>,
}

impl fmt::Debug for HostJobSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostJobSystem({} threads)", self.threads)
    }
}

impl CpuDeviceBuilder {
    /// Run each call on `threads` threads: the caller plus `threads − 1` workers of a pool the
    /// device owns (1 = inline on the caller, no pool). Default: all cores.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// How long idle workers spin, waiting for the next call, before they park (default
    /// `QLINEAR_SPIN_US`, else [`DEFAULT_SPIN`], 1 ms). Spinning keeps back-to-back calls
    /// (the layers of a model) free of thread wake-ups; `Duration::ZERO` parks at once, for
    /// hosts that need the cores between calls.
    pub fn spin(mut self, spin: std::time::Duration) -> Self {
        self.spin = Some(spin);
        self
    }

    /// Tests: run exactly these kernels (a variant `Isa` alone cannot pick).
    #[cfg(test)]
    pub(crate) fn kernels(mut self, table: KernelTable) -> Self {
        self.kernels = Some(table);
        self
    }

    /// Force an ISA path instead of `QLINEAR_ISA` / auto-detection.
    pub fn isa(mut self, isa: Isa) -> Self {
        self.isa = Some(isa);
        self
    }

    /// Hand work to the host's job system instead of owning threads.
    pub fn host_jobs(mut self, jobs: HostJobSystem) -> Self {
        self.host_jobs = Some(jobs);
        self
    }

    /// Allocate packed weights through the host's allocator.
    pub fn allocator(mut self, allocator: HostAllocator) -> Self {
        self.allocator = Some(allocator);
        self
    }

    pub fn build(self) -> Result<CpuDevice> {
        let isa = match self.isa {
            Some(isa) => isa.require()?,
            None => Isa::from_env()?,
        };
        let executor = match (self.host_jobs, self.threads) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "a device takes either its own threads or a host job system, not both",
                ))
            }
            (Some(jobs), None) => {
                if jobs.threads == 0 {
                    return Err(Error::invalid(
                        "host job system must report at least 1 thread",
                    ));
                }
                Executor::Host(jobs)
            }
            (None, threads) => Executor::with_threads(
                threads.unwrap_or_else(default_threads),
                match self.spin {
                    Some(spin) => spin,
                    None => spin_from_env()?,
                },
            )?,
        };
        Ok(CpuDevice {
            inner: Arc::new(DeviceInner {
                #[cfg(not(test))]
                kernels: KernelTable::for_isa(isa),
                #[cfg(test)]
                kernels: self.kernels.unwrap_or_else(|| KernelTable::for_isa(isa)),
                executor,
                allocator: self.allocator.map(Arc::new),
            }),
        })
    }
}

/// `QLINEAR_SPIN_US` (microseconds idle workers spin before parking), or [`DEFAULT_SPIN`].
fn spin_from_env() -> Result<std::time::Duration> {
    match std::env::var("QLINEAR_SPIN_US") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&us| us <= 10_000_000)
            .map(std::time::Duration::from_micros)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "QLINEAR_SPIN_US={v:?}: expected microseconds from 0 to 10000000"
                ))
            }),
        _ => Ok(DEFAULT_SPIN),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Multiply-adds below which a call runs as one task. Handing work to spinning workers
/// costs ~0.3 µs, but splitting pays only from ~1 M multiply-adds per call
/// (`examples/bench.rs --split`: 1.6× at 1024², none at 724²).
const MIN_MACS_PER_TASK: usize = 1 << 18;
/// Tiles per task are a multiple of this, so the GEMV kernels run their widest blocks.
const TILE_QUANTUM: usize = 4;
/// Rows per task when splitting rows.
const ROWS_PER_TASK: usize = 64;
/// Most tasks one call is cut into.
const MAX_TASKS: usize = 64;

/// The fixed task grid of a call: it depends on the shape only, never on the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskGrid {
    pub row_blocks: usize,
    pub rows_per_block: usize,
    pub tile_blocks: usize,
    pub tiles_per_block: usize,
}

impl TaskGrid {
    pub fn for_shape(m: usize, n: usize, k: usize) -> TaskGrid {
        let tiles = n.div_ceil(NR);
        let macs = m.saturating_mul(n).saturating_mul(k);
        let want = (macs / MIN_MACS_PER_TASK).clamp(1, MAX_TASKS);
        let row_blocks = m.div_ceil(ROWS_PER_TASK).min(want);
        let rows_per_block = m.div_ceil(row_blocks);
        let tile_blocks = want.div_ceil(row_blocks).min(tiles);
        let tiles_per_block = tiles
            .div_ceil(tile_blocks)
            .next_multiple_of(TILE_QUANTUM)
            .min(tiles);
        TaskGrid {
            row_blocks: m.div_ceil(rows_per_block),
            rows_per_block,
            tile_blocks: tiles.div_ceil(tiles_per_block),
            tiles_per_block,
        }
    }

    pub fn tasks(&self) -> usize {
        self.row_blocks * self.tile_blocks
    }

    /// Rows and tiles of task `i`.
    pub fn task(
        &self,
        i: usize,
        m: usize,
        tiles: usize,
    ) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (rb, tb) = (i / self.tile_blocks, i % self.tile_blocks);
        let r0 = rb * self.rows_per_block;
        let t0 = tb * self.tiles_per_block;
        (
            r0..(r0 + self.rows_per_block).min(m),
            t0..(t0 + self.tiles_per_block).min(tiles),
        )
    }
}

/// Runs `kernel(rows, tiles, out)` over the task grid, then adds the bias.
fn run_tiled(
    device: &CpuDevice,
    m: usize,
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
    y: &mut [f32],
    kernel: &(dyn Fn(std::ops::Range<usize>, std::ops::Range<usize>, OutPtr) + Sync),
) -> Result<()> {
    let grid = TaskGrid::for_shape(m, n, k);
    let tiles = n.div_ceil(NR);
    let out = OutPtr {
        ptr: y.as_mut_ptr(),
        ld: n,
    };
    device.executor().run(grid.tasks(), &|i| {
        let (rows, ts) = grid.task(i, m, tiles);
        kernel(rows.clone(), ts.clone(), out);
        if let Some(b) = bias {
            let cols = ts.start * NR..(ts.end * NR).min(n);
            for r in rows {
                // SAFETY: this task owns rows × cols of the output.
                let row = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * n), n) };
                for c in cols.clone() {
                    row[c] += b[c];
                }
            }
        }
    })
}

fn check_lengths(
    op: &'static str,
    x: &[f32],
    m: usize,
    k: usize,
    n: usize,
    bias: Option<&[f32]>,
    y: &[f32],
) -> Result<()> {
    let xk = m
        .checked_mul(k)
        .ok_or_else(|| Error::Overflow(format!("{m} rows × {k} inputs")))?;
    let yn = m
        .checked_mul(n)
        .ok_or_else(|| Error::Overflow(format!("{m} rows × {n} outputs")))?;
    if x.len() != xk {
        return Err(Error::shape(
            op,
            format!("x of {xk} values ({m} × {k})"),
            x.len(),
        ));
    }
    if y.len() != yn {
        return Err(Error::shape(
            op,
            format!("y of {yn} values ({m} × {n})"),
            y.len(),
        ));
    }
    if let Some(b) = bias {
        if b.len() != n {
            return Err(Error::shape(op, format!("bias of {n} values"), b.len()));
        }
    }
    // NaN/Inf activations are refused in every mode (dyn8 could not scale them, and a
    // silent NaN output is worse than an error naming the element).
    crate::error::check_finite(x, "activations")?;
    Ok(())
}

/// Packed quantized weights plus the activation mode they serve.
#[derive(Debug)]
pub struct CpuQuantWeights {
    pub(crate) packed: PackedQuant,
    pub(crate) mode: ActivationMode,
}

impl Backend for Cpu {
    type Device = CpuDevice;
    type DenseWeights = PackedDense;
    type QuantWeights = CpuQuantWeights;

    fn name() -> &'static str {
        "cpu"
    }

    fn pack_dense(device: &CpuDevice, w: &[f32], n: usize, k: usize) -> Result<PackedDense> {
        pack::pack_dense(w, n, k, device.allocator())
    }

    fn dense_forward(
        device: &CpuDevice,
        w: &PackedDense,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<()> {
        check_lengths("Linear::forward", x, m, w.k, w.n, bias, y)?;
        let kernel = device.kernels().dense;
        run_tiled(device, m, w.n, w.k, bias, y, &|rows, tiles, out| {
            // SAFETY: the table's kernels run only on CPUs that have their ISA; rows and
            // tiles are in range and this task owns that block of `out`.
            unsafe { kernel(w, x, rows, tiles, out) }
        })
    }

    fn quantize(
        device: &CpuDevice,
        w: &[f32],
        n: usize,
        k: usize,
        config: &QuantConfig,
    ) -> Result<QuantizedTensor> {
        crate::quant::quantize::quantize_weights(w, n, k, config, device.executor())
    }

    fn pack_quant(
        device: &CpuDevice,
        q: &QuantizedTensor,
        mode: ActivationMode,
    ) -> Result<CpuQuantWeights> {
        Ok(CpuQuantWeights {
            packed: pack::pack_quant(q, device.allocator())?,
            mode,
        })
    }

    fn unpack_quant(w: &CpuQuantWeights) -> QuantizedTensor {
        pack::unpack_quant(&w.packed)
    }

    fn quant_packed_bytes(w: &CpuQuantWeights) -> usize {
        w.packed.buf.len()
    }

    fn quant_forward(
        device: &CpuDevice,
        w: &CpuQuantWeights,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<()> {
        let p = &w.packed;
        check_lengths("QuantizedLinear::forward", x, m, p.k, p.n, bias, y)?;
        let table = *device.kernels();
        with_scratch(|s| match w.mode {
            ActivationMode::Exact => {
                let acts = prepare_exact(p, x, m, s);
                run_tiled(device, m, p.n, p.k, bias, y, &|rows, tiles, out| {
                    // SAFETY: as in dense_forward.
                    unsafe { (table.q_exact)(p, &acts, rows, tiles, out) }
                })
            }
            ActivationMode::Dyn8 | ActivationMode::Dyn8PerRow => {
                let per_row = w.mode == ActivationMode::Dyn8PerRow;
                let acts = prepare_dyn8(device, p, x, m, per_row, s)?;
                run_tiled(device, m, p.n, p.k, bias, y, &|rows, tiles, out| {
                    // SAFETY: as in dense_forward.
                    unsafe { (table.q_dyn8)(p, &acts, rows, tiles, out) }
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_grid_covers_every_row_and_tile_exactly_once() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 2100, 2100),
            (3, 4096, 4096),
            (70, 700, 1000),
            (300, 33, 5),
        ] {
            let grid = TaskGrid::for_shape(m, n, k);
            let tiles = n.div_ceil(NR);
            let mut seen = vec![0u8; m * tiles];
            for i in 0..grid.tasks() {
                let (rows, ts) = grid.task(i, m, tiles);
                for r in rows {
                    for t in ts.clone() {
                        seen[r * tiles + t] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "({m}, {n}, {k}): {grid:?}");
        }
    }

    #[test]
    fn small_calls_stay_one_task_and_large_ones_split() {
        assert_eq!(TaskGrid::for_shape(1, 512, 512).tasks(), 1);
        assert!(TaskGrid::for_shape(1, 4096, 4096).tasks() >= 4);
        assert!(TaskGrid::for_shape(128, 4096, 4096).tasks() <= MAX_TASKS);
    }
}
