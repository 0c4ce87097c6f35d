//! Activations prepared for the kernels, in per-thread scratch: padded f32 rows for exact
//! mode, and int8 codes with their block (or row) scales and sums for dyn8.

use std::cell::RefCell;

use super::cpu::CpuDevice;
use crate::error::Result;
use crate::kernels::{Dyn8Acts, ExactActs};
use crate::quant::pack::PackedQuant;
use crate::quant::DYN8_BLOCK;

/// Per-thread scratch for prepared activations, reused across calls (no allocation per
/// call once warm).
#[derive(Default)]
pub(super) struct Scratch {
    padded_x: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (or a fresh one if it is already in use).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

fn resize<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    v.clear();
    v.resize(len, T::default());
    v
}

/// Copies rows of `x` padded with zeros to `w.k_padded`.
pub(super) fn prepare_exact<'a>(
    w: &PackedQuant,
    x: &[f32],
    m: usize,
    s: &'a mut Scratch,
) -> ExactActs<'a> {
    let stride = w.k_padded;
    let xs = resize(&mut s.padded_x, m * stride);
    for r in 0..m {
        xs[r * stride..r * stride + w.k].copy_from_slice(&x[r * w.k..(r + 1) * w.k]);
    }
    ExactActs { x: xs, stride }
}

/// Rows from which activation quantization is split over the device's threads.
const SPLIT_QUANTIZE_ROWS: usize = 8;

/// Where each row's block-wise quantization writes (rows are disjoint).
#[derive(Clone, Copy)]
struct RowSinks {
    q: *mut i8,
    scales: *mut f32,
    sums: *mut i32,
}

// SAFETY: each task writes the rows it was given, and no two tasks get the same row.
unsafe impl Send for RowSinks {}
unsafe impl Sync for RowSinks {}

impl RowSinks {
    /// Row `r`'s codes, scales and sums.
    ///
    /// # Safety
    /// The buffers hold `r + 1` rows of `stride` codes and `blocks` entries, and no one else
    /// touches row `r` meanwhile.
    unsafe fn row<'a>(
        self,
        r: usize,
        stride: usize,
        blocks: usize,
    ) -> (&'a mut [i8], &'a mut [f32], &'a mut [i32]) {
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.q.add(r * stride), stride),
                std::slice::from_raw_parts_mut(self.scales.add(r * blocks), blocks),
                std::slice::from_raw_parts_mut(self.sums.add(r * blocks), blocks),
            )
        }
    }
}

/// Quantizes the activations to int8: block-wise (one scale per 32 inputs, with the ISA's
/// vectorised quantizer, split over threads from [`SPLIT_QUANTIZE_ROWS`] rows) or per row.
pub(super) fn prepare_dyn8<'a>(
    device: &CpuDevice,
    w: &PackedQuant,
    x: &[f32],
    m: usize,
    per_row: bool,
    s: &'a mut Scratch,
) -> Result<Dyn8Acts<'a>> {
    if per_row {
        return Ok(prepare_dyn8_per_row(w, x, m, s));
    }
    let stride = w.k.next_multiple_of(DYN8_BLOCK);
    let blocks = stride / DYN8_BLOCK;
    let sinks = RowSinks {
        q: resize(&mut s.codes, m * stride).as_mut_ptr(),
        scales: resize(&mut s.scales, m * blocks).as_mut_ptr(),
        sums: resize(&mut s.sums, m * blocks).as_mut_ptr(),
    };
    let quantize = device.kernels().quantize_blocks;
    let k = w.k;
    let rows = |range: std::ops::Range<usize>| {
        for r in range {
            // SAFETY: row `r` of each buffer is in bounds and written by this task only; the
            // table's quantizer runs only where its ISA is available.
            unsafe {
                let (q, scales, sums) = sinks.row(r, stride, blocks);
                quantize(&x[r * k..(r + 1) * k], q, scales, sums)
            }
        }
    };
    if m >= SPLIT_QUANTIZE_ROWS && device.threads() > 1 {
        let per_task = m.div_ceil(device.threads());
        device.executor().run(m.div_ceil(per_task), &|t| {
            rows(t * per_task..((t + 1) * per_task).min(m))
        })?;
    } else {
        rows(0..m);
    }
    Ok(Dyn8Acts {
        q: &s.codes,
        stride,
        per_row: false,
        blocks,
        scale: &s.scales,
        sums: &s.sums,
    })
}

/// Quantizes each row of `x` to int8 with one scale `max|x|/127` (round half to even), with
/// code sums per kernel group.
fn prepare_dyn8_per_row<'a>(
    w: &PackedQuant,
    x: &[f32],
    m: usize,
    s: &'a mut Scratch,
) -> Dyn8Acts<'a> {
    let stride = w.k_padded;
    let q = resize(&mut s.codes, m * stride);
    let scales = resize(&mut s.scales, m);
    let sums = resize(&mut s.sums, m * w.groups);
    for r in 0..m {
        let src = &x[r * w.k..(r + 1) * w.k];
        let amax = max_abs(src);
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        scales[r] = amax / 127.0;
        let row = &mut q[r * stride..(r + 1) * stride];
        for (dst, &v) in row.iter_mut().zip(src) {
            *dst = round_small(v * inv) as i8;
        }
        for g in 0..w.groups {
            let start = g * w.kg;
            sums[r * w.groups + g] = row[start..start + w.group_len(g)]
                .iter()
                .map(|&b| b as i32)
                .sum();
        }
    }
    Dyn8Acts {
        q,
        stride,
        per_row: true,
        blocks: w.groups,
        scale: scales,
        sums,
    }
}

/// max |v| of finite values, in 16 independent lanes so the loop vectorizes.
fn max_abs(src: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = src.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = if v.abs() > *m { v.abs() } else { *m };
        }
    }
    tail.iter()
        .chain(&lanes)
        .fold(0f32, |a, v| if v.abs() > a { v.abs() } else { a })
}
/// `v` rounded to the nearest integer, ties to even, for |v| ≤ 2²²: after adding 1.5·2²³
/// the integer sits in the low mantissa bits. Integer-only after one add, so it
/// vectorizes (`f32::round` is a libm call per element on baseline x86-64).
#[inline(always)]
fn round_small(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_rounding_is_ties_to_even_and_max_abs_is_exact() {
        let mut v = -128.0f32;
        while v <= 128.0 {
            assert_eq!(round_small(v), v.round_ties_even() as i32, "{v}");
            v += 0.125;
        }
        assert_eq!(round_small(126.99999), 127);
        assert_eq!(round_small(-0.49999997), 0);
        let mut rng = crate::rng::SplitMix64::new(5);
        for len in [0, 1, 15, 16, 17, 100, 4097] {
            let x = rng.uniform_vec(len, -3.0, 3.0);
            let want = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_eq!(max_abs(&x), want, "len {len}");
        }
    }
}
