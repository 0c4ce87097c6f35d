//! `QuantizedTensor`: quantized weights in the documented interchange layout.
//!
//! # Layout
//!
//! A weight matrix `W` of shape `[out, in]` (`N` rows, `K` inputs) is stored as:
//!
//! * **codes** (`data`): row-major, each row starting on a byte boundary.
//!   * 8 bits: one signed byte (two's complement, `i8`) per weight; a row is `K` bytes.
//!   * 4 bits: two weights per byte; a row is `ceil(K/2)` bytes. Weight `k` of a row lives
//!     in byte `k/2`: the **low nibble holds the even `k`**, the high nibble the odd `k`.
//!     For integer codes a nibble is a signed two's complement value in `[-8, 7]`; for the
//!     `cb4` codebook it is an unsigned index `0..=15` into the 16 `codebook` levels. When
//!     `K` is odd the unused high nibble of a row's last byte is 0.
//! * **scales**: one per group, row-major `[N][G]` where `G` = groups per row
//!   (`PerTensor`: a single scale; `PerChannel`: `G = 1`; `Group(g)`: `G = ceil(K/g)`, the
//!   last group holding `K - (G-1)·g` weights). Scales may be negative. They are held as f32;
//!   with [`ScaleDType::F16`] every scale is exactly representable in f16 and is counted
//!   (and serialised) as 2 bytes.
//! * **zero points** (asymmetric integer codes only): one `i8` per scale, same indexing;
//!   empty when symmetric.
//! * **codebook** (`cb4` only): 16 strictly ascending `i8` levels.
//!
//! A weight dequantizes as `w = scale · (q − zero)` (zero = 0 when symmetric) for integer
//! codes and as `w = scale · codebook[q]` for `cb4`, computed in f32.

use crate::error::{checked_product, Error, Result};
use crate::quant::codebook::{validate_levels, LEVELS};
use crate::quant::config::{Granularity, ScaleDType, WeightFormat};

/// Quantized weights `[out, in]` with their scales and zero points (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTensor {
    out_features: usize,
    in_features: usize,
    bits: u8,
    granularity: Granularity,
    scale_dtype: ScaleDType,
    data: Vec<u8>,
    scales: Vec<f32>,
    zero_points: Vec<i8>,
    codebook: Option<[i8; LEVELS]>,
}

/// The fields of a [`QuantizedTensor`], for building one from data made elsewhere.
#[derive(Debug, Clone)]
pub struct QuantizedParts {
    pub out_features: usize,
    pub in_features: usize,
    pub bits: u8,
    pub granularity: Granularity,
    pub scale_dtype: ScaleDType,
    pub data: Vec<u8>,
    pub scales: Vec<f32>,
    /// Empty for symmetric quantization.
    pub zero_points: Vec<i8>,
    /// The 16 levels 4-bit codes index (`cb4`), or `None` for integer codes.
    pub codebook: Option<[i8; LEVELS]>,
}

impl QuantizedTensor {
    /// Validates `parts` against the documented layout and takes ownership of them.
    pub fn from_parts(parts: QuantizedParts) -> Result<Self> {
        let QuantizedParts {
            out_features: n,
            in_features: k,
            bits,
            granularity,
            scale_dtype,
            data,
            scales,
            zero_points,
            codebook,
        } = parts;
        if n == 0 || k == 0 {
            return Err(Error::invalid(format!(
                "weight shape must be non-empty, got [{n}, {k}]"
            )));
        }
        if bits != 4 && bits != 8 {
            return Err(Error::invalid(format!("bits must be 4 or 8, got {bits}")));
        }
        granularity.validate()?;
        checked_product(&[n, k], "weight shape")?;
        if let Some(levels) = &codebook {
            if bits != 4 || !zero_points.is_empty() {
                return Err(Error::invalid(
                    "a codebook needs 4-bit codes and no zero points",
                ));
            }
            validate_levels(levels)?;
        }
        let t = QuantizedTensor {
            out_features: n,
            in_features: k,
            bits,
            granularity,
            scale_dtype,
            data,
            scales,
            zero_points,
            codebook,
        };
        let want_data = n * t.row_bytes();
        if t.data.len() != want_data {
            return Err(Error::shape(
                "QuantizedTensor data",
                format!("{want_data} bytes for [{n}, {k}] at {bits} bits"),
                format!("{} bytes", t.data.len()),
            ));
        }
        let want_scales = t.num_scales();
        if t.scales.len() != want_scales {
            return Err(Error::shape(
                "QuantizedTensor scales",
                format!("{want_scales} scales"),
                format!("{}", t.scales.len()),
            ));
        }
        if !t.zero_points.is_empty() && t.zero_points.len() != want_scales {
            return Err(Error::shape(
                "QuantizedTensor zero points",
                format!("0 (symmetric) or {want_scales}"),
                format!("{}", t.zero_points.len()),
            ));
        }
        crate::error::check_finite(&t.scales, "scales")?;
        if scale_dtype == ScaleDType::F16 {
            if let Some(i) = t
                .scales
                .iter()
                .position(|&s| half::f16::from_f32(s).to_f32() != s)
            {
                return Err(Error::invalid(format!(
                    "scale {i} ({}) is not representable in f16 as scale_dtype F16 requires",
                    t.scales[i]
                )));
            }
        }
        if bits == 4
            && k % 2 == 1
            && t.data
                .chunks(t.row_bytes())
                .any(|r| r[r.len() - 1] >> 4 != 0)
        {
            return Err(Error::invalid(
                "int4 rows with odd in_features must leave the last high nibble 0",
            ));
        }
        Ok(t)
    }

    /// Gives back the fields (the inverse of [`QuantizedTensor::from_parts`]).
    pub fn into_parts(self) -> QuantizedParts {
        QuantizedParts {
            out_features: self.out_features,
            in_features: self.in_features,
            bits: self.bits,
            granularity: self.granularity,
            scale_dtype: self.scale_dtype,
            data: self.data,
            scales: self.scales,
            zero_points: self.zero_points,
            codebook: self.codebook,
        }
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }
    pub fn in_features(&self) -> usize {
        self.in_features
    }
    /// `[out_features, in_features]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.out_features, self.in_features]
    }
    pub fn bits(&self) -> u8 {
        self.bits
    }
    /// `Int8`, `Int4`, or `Cb4` when the codes index a codebook.
    pub fn format(&self) -> WeightFormat {
        match (self.bits, self.codebook) {
            (8, _) => WeightFormat::Int8,
            (_, None) => WeightFormat::Int4,
            (_, Some(_)) => WeightFormat::Cb4,
        }
    }
    /// The levels 4-bit codes index (`cb4`), `None` for integer codes.
    pub fn codebook(&self) -> Option<&[i8; LEVELS]> {
        self.codebook.as_ref()
    }
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }
    pub fn scale_dtype(&self) -> ScaleDType {
        self.scale_dtype
    }
    pub fn is_symmetric(&self) -> bool {
        self.zero_points.is_empty()
    }
    /// The packed codes (see the module docs).
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// Empty when symmetric.
    pub fn zero_points(&self) -> &[i8] {
        &self.zero_points
    }

    /// Inputs that share one scale along a row (`in_features` unless group-wise).
    pub fn group_size(&self) -> usize {
        match self.granularity {
            Granularity::Group(g) => g,
            _ => self.in_features,
        }
    }

    /// Groups per row.
    pub fn groups_per_row(&self) -> usize {
        self.in_features.div_ceil(self.group_size())
    }

    /// Number of scales (and of zero points, when asymmetric).
    pub fn num_scales(&self) -> usize {
        match self.granularity {
            Granularity::PerTensor => 1,
            _ => self.out_features * self.groups_per_row(),
        }
    }

    /// Bytes of one row of codes.
    pub fn row_bytes(&self) -> usize {
        if self.bits == 8 {
            self.in_features
        } else {
            self.in_features.div_ceil(2)
        }
    }

    /// The code of weight `(row, col)`: the signed integer for integer codes, the level
    /// index `0..=15` for a codebook.
    pub fn code(&self, row: usize, col: usize) -> i8 {
        let row_data = &self.data[row * self.row_bytes()..];
        if self.bits == 8 {
            return row_data[col] as i8;
        }
        let byte = row_data[col / 2];
        let nibble = if col.is_multiple_of(2) {
            byte & 0x0F
        } else {
            byte >> 4
        };
        if self.codebook.is_some() {
            nibble as i8
        } else {
            ((nibble << 4) as i8) >> 4
        }
    }

    /// The integer the scale of weight `(row, col)` multiplies: `q − zero`, or the level.
    pub fn value(&self, row: usize, col: usize) -> i32 {
        let q = self.code(row, col);
        match &self.codebook {
            Some(levels) => levels[q as usize] as i32,
            None => q as i32 - self.scale_and_zero(row, col).1 as i32,
        }
    }

    /// Index into `scales` / `zero_points` of weight `(row, col)`.
    pub fn scale_index(&self, row: usize, col: usize) -> usize {
        match self.granularity {
            Granularity::PerTensor => 0,
            _ => row * self.groups_per_row() + col / self.group_size(),
        }
    }

    /// Scale and zero point of weight `(row, col)`.
    pub fn scale_and_zero(&self, row: usize, col: usize) -> (f32, i8) {
        let i = self.scale_index(row, col);
        (
            self.scales[i],
            self.zero_points.get(i).copied().unwrap_or(0),
        )
    }

    /// The dequantized weights `[out, in]`, row-major: `scale · (q − zero)` or
    /// `scale · level[q]`, in f32.
    pub fn dequantize(&self) -> Vec<f32> {
        let (n, k) = (self.out_features, self.in_features);
        let mut out = Vec::with_capacity(n * k);
        for r in 0..n {
            for c in 0..k {
                out.push(self.scale_and_zero(r, c).0 * self.value(r, c) as f32);
            }
        }
        out
    }

    /// Row `row` dequantized into `out` (`in_features` values), as [`Self::dequantize`]
    /// computes it, decoding the row's bytes directly.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let k = self.in_features;
        let g = self.group_size();
        let data = &self.data[row * self.row_bytes()..(row + 1) * self.row_bytes()];
        // Per nibble: its value (two's complement, or the codebook level).
        let nibble: [i32; 16] = match &self.codebook {
            Some(levels) => std::array::from_fn(|i| levels[i] as i32),
            None => std::array::from_fn(|i| ((i as i8) << 4 >> 4) as i32),
        };
        for (start, chunk) in (0..k).step_by(g).zip(out[..k].chunks_mut(g)) {
            let (s, z) = self.scale_and_zero(row, start);
            let z = if self.codebook.is_some() { 0 } else { z as i32 };
            for (i, o) in chunk.iter_mut().enumerate() {
                let c = start + i;
                let v = if self.bits == 8 {
                    data[c] as i8 as i32
                } else {
                    nibble[((data[c / 2] >> (4 * (c % 2))) & 0x0F) as usize]
                };
                *o = s * (v - z) as f32;
            }
        }
    }

    /// Bytes this tensor keeps per weight: codes, scales (at their storage width) and zero
    /// points. A codebook's 16 levels are per-tensor metadata, like the shape, and are not
    /// counted.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
            + self.scales.len() * self.scale_dtype.size_in_bytes()
            + self.zero_points.len()
    }

    /// Average storage bits per weight, scales and zero points included.
    pub fn bits_per_weight(&self) -> f64 {
        8.0 * self.size_in_bytes() as f64 / (self.out_features * self.in_features) as f64
    }
}
