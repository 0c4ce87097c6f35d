//! Dyn8 with AMX (Sapphire Rapids and later) for int8 weights with per-row activation
//! scales and groups of 64 inputs or more: blocks of 16 rows × 16 columns take their integer
//! dot products from one `tdpbsud` per 32 inputs (signed activations in an A tile, the
//! stored `q + 128` weight bytes in a B tile), and the f32 scaling of the AVX-512 kernel on
//! the 16 × 16 sums that `tilestored` leaves in L1, once per group.
//!
//! The packed weights already are AMX's B layout: a 64-byte step holds 4 consecutive inputs
//! of each of 16 columns, so 8 steps are one B tile of 32 inputs, loaded in place. Each
//! group's sum starts from the same `−(128 + zero)·Σx` as on the `vpdpbusd` path, so it is
//! the same i32 and the result has the oracle's bits.
//!
//! Everything else goes to the AVX-512 kernel: on Emerald Rapids tile products lost to it
//! wherever the f32 scaling comes every 32 inputs (block-wise) or the B tile must be built
//! in memory first (4-bit codes), because the vector units are then busy with that work
//! alone and the tile instructions do not overlap it. Rows past the last full 16 go there
//! too. Tile registers are set up and released within each call, so a thread holds AMX
//! state only while it runs one.

#![allow(clippy::needless_range_loop)] // index loops over parallel register arrays read best

use std::arch::asm;
use std::arch::x86_64::*;
use std::ops::Range;

use super::dyn8::q8_q_gemm_avx512vnni_icelake;
use super::{col_mask, load_scales, load_zeros};
use crate::kernels::{Dyn8Acts, OutPtr};
use crate::quant::pack::{PackedQuant, NR};
use crate::quant::{WeightFormat, DYN8_BLOCK};

/// Shortest kernel group worth tile products (per-row int8, 1 thread, M = 32/128: groups of
/// 64 ran 1.12× / 1.55× faster than the AVX-512 kernel, per-channel 1.37× / 1.84×).
const AMX_MIN_GROUP: usize = 64;

/// Rows of an A (and C) tile: the rows of one block.
const ROWS: usize = 16;

/// C tiles in flight: the sums of group `g` are scaled while the tile products of the next
/// `RING − 1` groups run, so each `tilestored` has long reached L1 when its sums are read.
const RING: usize = 6;

/// The `ldtilecfg` operand: C tiles `tmm0..tmm5` (16 rows × 16 i32), the A tile `tmm6`
/// (16 rows × 32 activation bytes) and the B tile `tmm7` (8 rows × 64 bytes: 32 inputs of
/// 16 columns).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const TILE_CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < RING {
        rows[t] = ROWS as u8;
        colsb[t] = 64;
        t += 1;
    }
    (rows[6], colsb[6]) = (ROWS as u8, 32);
    (rows[7], colsb[7]) = (8, 64);
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// Scratch of one block: the 16 × 16 i32 sums of each C tile, and the B tile of a partial
/// step.
#[repr(C, align(64))]
struct Scratch {
    sums: [[i32; ROWS * NR]; RING],
    b: [u8; 8 * 64],
}

/// Expands `$m!("c", args..)` for C tile `c = $slot` (tile registers are named in the
/// instruction, so each needs its own asm).
macro_rules! on_c_tile {
    ($slot:expr, $m:ident $(, $arg:expr)*) => {
        match $slot {
            0 => $m!("0" $(, $arg)*),
            1 => $m!("1" $(, $arg)*),
            2 => $m!("2" $(, $arg)*),
            3 => $m!("3" $(, $arg)*),
            4 => $m!("4" $(, $arg)*),
            _ => $m!("5" $(, $arg)*),
        }
    };
}

/// `tilezero` on C tile `$c`.
macro_rules! tile_zero {
    ($c:literal) => {
        asm!(concat!("tilezero tmm", $c), options(nostack, nomem))
    };
}

/// C tile `$c` += A (16 rows of 32 bytes at `$a`, `$lda` apart) · B (8 rows of 64 bytes at
/// `$b`), through tiles `tmm6` and `tmm7`.
macro_rules! tile_dot {
    ($c:literal, $a:expr, $lda:expr, $b:expr) => {
        asm!(
            "tileloadd tmm6, [{a} + {lda}*1]",
            "tileloadd tmm7, [{b} + {ldb}*1]",
            concat!("tdpbsud tmm", $c, ", tmm6, tmm7"),
            a = in(reg) $a,
            lda = in(reg) $lda,
            b = in(reg) $b,
            ldb = in(reg) 64usize,
            options(nostack, readonly),
        )
    };
}

/// Stores C tile `$c` to `$dst` (16 rows of 64 bytes).
macro_rules! tile_store {
    ($c:literal, $dst:expr) => {
        asm!(
            concat!("tilestored [{d} + {ld}*1], tmm", $c),
            d = in(reg) $dst,
            ld = in(reg) 64usize,
            options(nostack),
        )
    };
}

/// The B tile of inputs `k .. k + len` (`len ≤ 32`) of group `g` of the tile at `base`:
/// in place for 32 inputs, else (the last inputs of a row) copied to `scratch` with the
/// unused rows zeroed, so the tile load stays inside the packed weights.
#[inline(always)]
unsafe fn b_tile(
    w: &PackedQuant,
    base: *const u8,
    g: usize,
    k: usize,
    len: usize,
    scratch: *mut u8,
) -> *const u8 {
    let src = base.add(g * w.group_bytes + k / 4 * 64);
    if len == DYN8_BLOCK {
        return src;
    }
    let dst = scratch as *mut __m512i;
    for row in 0..8 {
        let v = if row < len / 4 {
            _mm512_load_si512(src.add(row * 64) as *const __m512i)
        } else {
            _mm512_setzero_si512()
        };
        _mm512_store_si512(dst.add(row), v);
    }
    scratch
}

/// Puts the sums of group `g` for the 16 rows in `panel` and the tile at `base` into C tile
/// `slot`, then stores them to `sums`.
#[inline(always)]
unsafe fn issue(
    w: &PackedQuant,
    panel: *const u8,
    base: *const u8,
    g: usize,
    b_scratch: *mut u8,
    slot: usize,
    sums: *mut i32,
) {
    on_c_tile!(slot, tile_zero);
    let end = w.group_len_padded(g);
    let mut k = 0;
    while k < end {
        let len = (end - k).min(DYN8_BLOCK);
        let b = b_tile(w, base, g, k, len, b_scratch);
        // The A tile: 16 rows of the 32 codes from `k`; past `len` they are the panel's zero
        // padding or zero codes past `k`, and meet zero B rows or weight padding.
        let x = panel.add((g * w.kg + k) / DYN8_BLOCK * PANEL_CHUNK);
        on_c_tile!(slot, tile_dot, x, DYN8_BLOCK, b);
        k += DYN8_BLOCK;
    }
    on_c_tile!(slot, tile_store, sums);
}

/// Scales group `g`'s 16 × 16 sums into `acc`, as the AVX-512 kernel does with its own.
#[inline(always)]
unsafe fn scale_group(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    base: *const u8,
    g: usize,
    sums: *const i32,
    acc: &mut [__m512; ROWS],
) {
    // Asymmetric: the offset per column is −(128 + zero).
    let zoff = if w.symmetric {
        _mm512_setzero_si512()
    } else {
        _mm512_sub_epi32(_mm512_set1_epi32(-128), load_zeros(w, base, g))
    };
    let sc = load_scales(w, base, g);
    for i in 0..ROWS {
        let sum = *a.sums.get_unchecked((r0 + i) * a.blocks + g);
        let offset = if w.symmetric {
            _mm512_set1_epi32(-128 * sum)
        } else {
            _mm512_mullo_epi32(zoff, _mm512_set1_epi32(sum))
        };
        let dot = _mm512_load_si512(sums.add(i * NR) as *const __m512i);
        let f = _mm512_cvtepi32_ps(_mm512_add_epi32(offset, dot));
        acc[i] = _mm512_fmadd_ps(f, sc, acc[i]);
    }
}

/// Rows `r0..r0 + 16` (their codes in `panel`) × tile `t`.
#[inline(always)]
unsafe fn amx_block(
    w: &PackedQuant,
    a: &Dyn8Acts,
    r0: usize,
    panel: *const u8,
    t: usize,
    y: OutPtr,
    scratch: &mut Scratch,
) {
    let base = w.tile(t).as_ptr();
    let b = scratch.b.as_mut_ptr();
    let ahead = RING - 1;
    let mut acc = [_mm512_setzero_ps(); ROWS];
    for g in 0..w.groups.min(ahead) {
        issue(w, panel, base, g, b, g, scratch.sums[g].as_mut_ptr());
    }
    for g in 0..w.groups {
        if g + ahead < w.groups {
            let slot = (g + ahead) % RING;
            let sums = scratch.sums[slot].as_mut_ptr();
            issue(w, panel, base, g + ahead, b, slot, sums);
        }
        let sums = scratch.sums[g % RING].as_ptr();
        scale_group(w, a, r0, base, g, sums, &mut acc);
    }
    for i in 0..ROWS {
        let v = _mm512_mul_ps(_mm512_set1_ps(*a.scale.get_unchecked(r0 + i)), acc[i]);
        let dst = y.ptr.add((r0 + i) * y.ld + t * NR);
        _mm512_mask_storeu_ps(dst, col_mask(t, w.n), v);
    }
}

/// Bytes of one A tile in a panel: 16 rows × 32 codes.
const PANEL_CHUNK: usize = ROWS * DYN8_BLOCK;

thread_local! {
    /// Each thread's activation panels, kept between calls.
    static PANELS: std::cell::Cell<Vec<__m512i>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Input chunks of 32 per row: per-row codes come `k_padded` (a multiple of 8) to a row.
fn chunks(a: &Dyn8Acts) -> usize {
    a.stride.div_ceil(DYN8_BLOCK)
}

/// Copies the codes of `rows` (a multiple of 16) into panels: per 16 rows, per 32 inputs, one
/// contiguous A tile, the last one padded with zero codes. Read in place, the 16 rows of a
/// tile are `stride` bytes apart, which for a stride of 4 KiB puts them all in one L1 set.
#[inline(always)]
unsafe fn pack_panels(a: &Dyn8Acts, rows: Range<usize>, panels: &mut Vec<__m512i>) {
    let chunks = chunks(a);
    panels.clear();
    panels.resize(
        rows.len() * chunks * DYN8_BLOCK / 64,
        _mm512_setzero_si512(),
    );
    let dst = panels.as_mut_ptr() as *mut u8;
    for (i, r) in rows.enumerate() {
        let src = a.q.as_ptr().add(r * a.stride);
        let row_dst = dst.add((i / ROWS) * chunks * PANEL_CHUNK + (i % ROWS) * DYN8_BLOCK);
        let whole = a.stride / DYN8_BLOCK;
        for c in 0..whole {
            let v = _mm256_loadu_si256(src.add(c * DYN8_BLOCK) as *const __m256i);
            _mm256_store_si256(row_dst.add(c * PANEL_CHUNK) as *mut __m256i, v);
        }
        // The rest of the row (the panel is zeroed past it).
        let tail = a.stride - whole * DYN8_BLOCK;
        std::ptr::copy_nonoverlapping(
            src.add(whole * DYN8_BLOCK) as *const u8,
            row_dst.add(whole * PANEL_CHUNK),
            tail,
        );
    }
}

#[inline(always)]
unsafe fn amx_rows(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    let mut scratch = Scratch {
        sums: [[0; ROWS * NR]; RING],
        b: [0; 8 * 64],
    };
    let mut panels = PANELS.take();
    pack_panels(a, rows.clone(), &mut panels);
    let panel_bytes = chunks(a) * PANEL_CHUNK;
    asm!("ldtilecfg [{}]", in(reg) &TILE_CONFIG, options(nostack, readonly));
    // Tiles outside: one tile's weights stay in L2 for every 16 rows.
    for t in tiles {
        for (p, r0) in rows.clone().step_by(ROWS).enumerate() {
            let panel = (panels.as_ptr() as *const u8).add(p * panel_bytes);
            amx_block(w, a, r0, panel, t, y, &mut scratch);
        }
    }
    asm!("tilerelease", options(nostack, nomem));
    PANELS.set(panels);
}

/// Dyn8 with AMX-INT8 for whole blocks of 16 rows of per-row int8 with long groups, the
/// AVX-512 kernel for the rest.
///
/// # Safety
/// As every dyn8 kernel; the CPU must have AMX-TILE and AMX-INT8 and the process Linux's
/// permission to use them ([`crate::os::request_amx`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,gfni,fma,f16c")]
pub(crate) unsafe fn q8_q_gemm_amx(
    w: &PackedQuant,
    a: &Dyn8Acts,
    rows: Range<usize>,
    tiles: Range<usize>,
    y: OutPtr,
) {
    let amx = w.format == WeightFormat::Int8 && a.per_row && w.kg >= AMX_MIN_GROUP;
    let full = if amx {
        rows.start + rows.len() / ROWS * ROWS
    } else {
        rows.start
    };
    if full > rows.start {
        amx_rows(w, a, rows.start..full, tiles.clone(), y);
    }
    if full < rows.end {
        q8_q_gemm_avx512vnni_icelake(w, a, full..rows.end, tiles, y);
    }
}
