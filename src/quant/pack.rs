//! The private kernel layout of quantized and f32 weights (rebuilt from the logical form).
//!
//! Output features are cut into tiles of [`NR`] = 16 columns (one AVX-512 register of f32 or
//! i32 lanes). The reduction axis is cut into *kernel groups* of `kg` inputs: the logical
//! group size, or [`CHANNEL_CHUNK`] for per-channel / per-tensor scales (their scale is
//! repeated per chunk, which also bounds int32 sums). Each tile is one 64-byte aligned block:
//!
//! ```text
//! tile t: [ weights: group 0 | group 1 | ... ][ scales: G × 16 ][ zero points: G × 16 i8 ]
//! ```
//!
//! Within a group, inputs go in steps of 4 (8-bit codes) or 8 (4-bit codes): each step is 64
//! bytes, one dword per column. For int8 the dword's byte `j` is the code of input `4s+j`; for
//! 4-bit codes its byte `j` holds input `8s+j` in the low nibble and input `8s+4+j` in the
//! high nibble. Codes are stored unsigned: int8 as `q + 128`, int4 as `q + 8` (offset
//! binary), cb4 as the level index. A masked nibble or a whole byte is then an unsigned
//! operand that `vpdpbusd` takes as is (int4 with no lookup, cb4 after one `vpermb`), and the
//! offset is taken back through the activations' block sums.
//! So one 512-bit load gives 16 columns × 4 (or 8) inputs, the operand shape of `vpdpbusd`,
//! and shifting each dword exposes one input across 16 columns for f32 FMAs.
//! The last group is padded to a multiple of 8 inputs with codes whose value is 0 (for cb4
//! any code: the padding activations are 0).

use std::sync::Arc;

use crate::backend::alloc::{AlignedBuf, HostAllocator, ALIGN};
use crate::error::{checked_product, Result};
use crate::quant::codebook::LEVELS;
use crate::quant::config::{Granularity, ScaleDType, WeightFormat};
use crate::quant::tensor::{QuantizedParts, QuantizedTensor};

/// Columns per tile.
pub const NR: usize = 16;
/// Kernel group length used for per-channel and per-tensor scales.
pub const CHANNEL_CHUNK: usize = 1024;

/// Quantized weights in kernel layout.
#[derive(Debug)]
pub struct PackedQuant {
    pub n: usize,
    pub k: usize,
    pub format: WeightFormat,
    /// 8 or 4 (`format.bits()`).
    pub bits: u8,
    pub granularity: Granularity,
    pub scale_dtype: ScaleDType,
    pub symmetric: bool,
    /// Kernel group length (a multiple of 8).
    pub kg: usize,
    /// Kernel groups per row.
    pub groups: usize,
    /// Inputs after padding the last group: `(groups-1)·kg + round_up(last, 8)`.
    pub k_padded: usize,
    pub tile_bytes: usize,
    /// Bytes of one full group of one tile's codes.
    pub group_bytes: usize,
    /// Offset of the scales inside a tile.
    pub scales_offset: usize,
    /// Offset of the zero points inside a tile.
    pub zeros_offset: usize,
    /// The value each stored 4-bit code stands for, indexed by the stored nibble: int4
    /// `−8..=7` (offset binary), cb4 its level; for the kernels' in-register lookups.
    pub nibble_values: [i8; LEVELS],
    /// The codebook of a cb4 tensor (kept to rebuild the logical form).
    pub codebook: Option<[i8; LEVELS]>,
    pub buf: AlignedBuf,
}

impl PackedQuant {
    /// Length of kernel group `g` before padding.
    pub fn group_len(&self, g: usize) -> usize {
        (self.k - g * self.kg).min(self.kg)
    }

    /// Length of kernel group `g` after padding to a multiple of 8.
    pub fn group_len_padded(&self, g: usize) -> usize {
        self.group_len(g).next_multiple_of(8)
    }

    /// The bytes of tile `t`.
    pub fn tile(&self, t: usize) -> &[u8] {
        &self.buf.as_slice()[t * self.tile_bytes..(t + 1) * self.tile_bytes]
    }

    /// Scale of column `c` (within tile `t`) in kernel group `g`.
    pub fn scale(&self, t: usize, g: usize, c: usize) -> f32 {
        let tile = self.tile(t);
        let i = self.scales_offset + (g * NR + c) * self.scale_dtype.size_in_bytes();
        match self.scale_dtype {
            ScaleDType::F32 => f32::from_le_bytes(tile[i..i + 4].try_into().unwrap()),
            ScaleDType::F16 => half::f16::from_le_bytes([tile[i], tile[i + 1]]).to_f32(),
        }
    }

    /// Zero point of column `c` (within tile `t`) in kernel group `g` (0 when symmetric).
    pub fn zero(&self, t: usize, g: usize, c: usize) -> i8 {
        if self.symmetric {
            0
        } else {
            self.tile(t)[self.zeros_offset + g * NR + c] as i8
        }
    }

    /// The stored (unsigned) code of input `kk` (within kernel group `g`) of column `c` of
    /// tile `t`.
    fn stored(&self, t: usize, g: usize, kk: usize, c: usize) -> u8 {
        let (byte, shift) = code_position(self.bits, g * self.group_bytes, kk, c);
        let b = self.tile(t)[byte];
        if self.bits == 8 {
            b
        } else {
            (b >> shift) & 0x0F
        }
    }

    /// The logical code of input `kk` of column `c` (as `QuantizedTensor::code` gives it):
    /// the signed integer, or the level index for cb4.
    pub fn code(&self, t: usize, g: usize, kk: usize, c: usize) -> i8 {
        let s = self.stored(t, g, kk, c);
        match self.format {
            WeightFormat::Int8 => (s ^ 0x80) as i8,
            WeightFormat::Int4 => s as i8 - 8,
            WeightFormat::Cb4 => s as i8,
        }
    }

    /// The integer the scale multiplies for input `kk` of column `c`: `q − zero`, or the
    /// level.
    pub fn value(&self, t: usize, g: usize, kk: usize, c: usize) -> i32 {
        match self.format {
            WeightFormat::Cb4 => self.nibble_values[self.stored(t, g, kk, c) as usize] as i32,
            _ => self.code(t, g, kk, c) as i32 - self.zero(t, g, c) as i32,
        }
    }
}

/// Byte offset (within a tile) and nibble shift of input `kk` of column `c` in a group
/// starting at `group_offset`.
fn code_position(bits: u8, group_offset: usize, kk: usize, c: usize) -> (usize, u32) {
    if bits == 8 {
        (group_offset + (kk / 4) * 64 + c * 4 + kk % 4, 0)
    } else {
        let j = kk % 8;
        (
            group_offset + (kk / 8) * 64 + c * 4 + j % 4,
            if j < 4 { 0 } else { 4 },
        )
    }
}

/// Packs a logical quantized tensor into kernel layout.
pub fn pack_quant(q: &QuantizedTensor, host: Option<&Arc<HostAllocator>>) -> Result<PackedQuant> {
    let (n, k, bits, format) = (q.out_features(), q.in_features(), q.bits(), q.format());
    let kg = match q.granularity() {
        Granularity::Group(g) => g,
        _ => CHANNEL_CHUNK,
    };
    let groups = k.div_ceil(kg);
    let last = k - (groups - 1) * kg;
    let k_padded = (groups - 1) * kg + last.next_multiple_of(8);
    let tiles = n.div_ceil(NR);
    let group_bytes = kg * NR * bits as usize / 8;
    let weight_bytes = k_padded * NR * bits as usize / 8;
    let ss = q.scale_dtype().size_in_bytes();
    let scales_offset = weight_bytes;
    let zeros_offset = scales_offset + groups * NR * ss;
    let zero_bytes = if q.is_symmetric() { 0 } else { groups * NR };
    let tile_bytes = (zeros_offset + zero_bytes).next_multiple_of(ALIGN);
    let total = checked_product(&[tiles, tile_bytes], "packed weights")?;
    let mut buf = AlignedBuf::zeroed(total, host)?;
    // Padding inputs and padding columns are stored as value 0: byte 128 for int8, nibble 8
    // for int4 (cb4 padding multiplies zero activations, so any index will do).
    let padding = match format {
        WeightFormat::Int8 => 0x80,
        WeightFormat::Int4 => 0x88,
        WeightFormat::Cb4 => 0x00,
    };
    {
        let bytes = buf.as_mut_slice();
        for tile in bytes.chunks_mut(tile_bytes) {
            tile[..weight_bytes].fill(padding);
        }
        for r in 0..n {
            let (t, c) = (r / NR, r % NR);
            let tile = &mut bytes[t * tile_bytes..(t + 1) * tile_bytes];
            for g in 0..groups {
                let start = g * kg;
                let len = (k - start).min(kg);
                let (scale, zero) = q.scale_and_zero(r, start);
                for kk in 0..len {
                    let code = q.code(r, start + kk) as u8;
                    let (byte, shift) = code_position(bits, g * group_bytes, kk, c);
                    tile[byte] = match format {
                        WeightFormat::Int8 => code ^ 0x80,
                        _ => {
                            let nib = if format == WeightFormat::Int4 {
                                (code & 0x0F) ^ 0x08
                            } else {
                                code
                            };
                            (tile[byte] & !(0x0F << shift)) | (nib << shift)
                        }
                    };
                }
                let si = scales_offset + (g * NR + c) * ss;
                match q.scale_dtype() {
                    ScaleDType::F32 => tile[si..si + 4].copy_from_slice(&scale.to_le_bytes()),
                    ScaleDType::F16 => {
                        tile[si..si + 2].copy_from_slice(&half::f16::from_f32(scale).to_le_bytes())
                    }
                }
                if !q.is_symmetric() {
                    tile[zeros_offset + g * NR + c] = zero as u8;
                }
            }
        }
    }
    let nibble_values = match q.codebook() {
        Some(levels) => *levels,
        None => std::array::from_fn(|i| i as i8 - 8),
    };
    Ok(PackedQuant {
        n,
        k,
        format,
        bits,
        granularity: q.granularity(),
        scale_dtype: q.scale_dtype(),
        symmetric: q.is_symmetric(),
        kg,
        groups,
        k_padded,
        tile_bytes,
        group_bytes,
        scales_offset,
        zeros_offset,
        nibble_values,
        codebook: q.codebook().copied(),
        buf,
    })
}

/// Rebuilds the logical tensor from the packed one (the exact inverse of [`pack_quant`]).
pub fn unpack_quant(p: &PackedQuant) -> QuantizedTensor {
    let (n, k) = (p.n, p.k);
    let row_bytes = if p.bits == 8 { k } else { k.div_ceil(2) };
    let mut data = vec![0u8; n * row_bytes];
    for r in 0..n {
        let (t, c) = (r / NR, r % NR);
        for col in 0..k {
            let code = p.code(t, col / p.kg, col % p.kg, c) as u8;
            let row = &mut data[r * row_bytes..];
            if p.bits == 8 {
                row[col] = code;
            } else {
                row[col / 2] |= (code & 0x0F) << (4 * (col % 2));
            }
        }
    }
    let (scale_rows, per_row) = match p.granularity {
        Granularity::PerTensor => (1, 1),
        Granularity::PerChannel => (n, 1),
        Granularity::Group(_) => (n, p.groups),
    };
    let mut scales = Vec::with_capacity(scale_rows * per_row);
    let mut zeros = Vec::new();
    for r in 0..scale_rows {
        for g in 0..per_row {
            scales.push(p.scale(r / NR, g, r % NR));
            if !p.symmetric {
                zeros.push(p.zero(r / NR, g, r % NR));
            }
        }
    }
    QuantizedTensor::from_parts(QuantizedParts {
        out_features: n,
        in_features: k,
        bits: p.bits,
        granularity: p.granularity,
        scale_dtype: p.scale_dtype,
        data,
        scales,
        zero_points: zeros,
        codebook: p.codebook,
    })
    .expect("unpacking a packed tensor reproduces a valid logical tensor")
}

/// f32 weights `[n, k]` in kernel layout: tiles of 16 columns, each `[k][16]`.
#[derive(Debug)]
pub struct PackedDense {
    pub n: usize,
    pub k: usize,
    pub tiles: usize,
    pub buf: AlignedBuf,
}

impl PackedDense {
    /// The `k × 16` floats of tile `t`.
    pub fn tile(&self, t: usize) -> &[f32] {
        let all = self.buf.as_slice();
        // SAFETY: the buffer is 64-byte aligned and holds tiles·k·16 f32 values.
        let floats =
            unsafe { std::slice::from_raw_parts(all.as_ptr() as *const f32, all.len() / 4) };
        &floats[t * self.k * NR..(t + 1) * self.k * NR]
    }
}

/// Packs row-major f32 weights `[n, k]`.
pub fn pack_dense(
    w: &[f32],
    n: usize,
    k: usize,
    host: Option<&Arc<HostAllocator>>,
) -> Result<PackedDense> {
    let tiles = n.div_ceil(NR);
    let bytes = checked_product(&[tiles, k, NR, 4], "packed weights")?;
    let mut buf = AlignedBuf::zeroed(bytes, host)?;
    {
        let raw = buf.as_mut_slice();
        for r in 0..n {
            let (t, c) = (r / NR, r % NR);
            for kk in 0..k {
                let i = ((t * k + kk) * NR + c) * 4;
                raw[i..i + 4].copy_from_slice(&w[r * k + kk].to_le_bytes());
            }
        }
    }
    Ok(PackedDense { n, k, tiles, buf })
}
