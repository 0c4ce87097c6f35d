//! Kernel selection: the one place that looks at CPU features.
//!
//! Features are detected once per device and turned into a [`KernelTable`] of function
//! pointers; kernels themselves never test features. `QLINEAR_ISA=scalar|avx2|avx512|neon|
//! neon-dotprod|neon-i8mm`
//! (or [`crate::CpuDeviceBuilder::isa`]) forces a path; asking for a path this CPU lacks is
//! an error, never a silent fallback.

#[macro_use]
pub(crate) mod blocking;
#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
pub(crate) mod reference;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::quant::pack::{PackedDense, PackedQuant};
#[cfg(doc)]
use crate::quant::DYN8_BLOCK;

/// An instruction-set path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust loops: the reference every other path is tested against.
    Scalar,
    /// AVX2 + FMA + F16C (int8 products via `vpmaddubsw`, or AVX-VNNI's `vpdpbusd` where
    /// present).
    Avx2,
    /// AVX-512 F/BW/DQ/VL with VNNI (`vpdpbusd`) and F16C.
    Avx512,
    /// aarch64 NEON (ARMv8-A): FMA, int8 products by widening multiplies.
    Neon,
    /// NEON with the dot-product extension (`sdot`).
    NeonDotprod,
    /// NEON with dot products and the int8 matrix extension (`smmla` for row pairs).
    NeonI8mm,
}

impl Isa {
    pub const ALL: [Isa; 6] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::Avx512,
        Isa::Neon,
        Isa::NeonDotprod,
        Isa::NeonI8mm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::NeonDotprod => "neon-dotprod",
            Isa::NeonI8mm => "neon-i8mm",
        }
    }

    /// Parses `scalar`, `avx2`, `avx512`, `neon`, `neon-dotprod` or `neon-i8mm`.
    pub fn parse(s: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown ISA {s:?}: expected scalar, avx2, avx512, neon, neon-dotprod or neon-i8mm"
                ))
            })
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            // NEON is part of every ARMv8-A core.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => {
                Isa::Neon.is_available() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::NeonI8mm => {
                Isa::NeonDotprod.is_available() && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            _ => false,
        }
    }

    /// The fastest available path.
    pub fn best() -> Isa {
        [
            Isa::Avx512,
            Isa::Avx2,
            Isa::NeonI8mm,
            Isa::NeonDotprod,
            Isa::Neon,
        ]
        .into_iter()
        .find(|i| i.is_available())
        .unwrap_or(Isa::Scalar)
    }

    /// The path `QLINEAR_ISA` asks for, or the best one when it is unset, empty or `auto`.
    pub fn from_env() -> Result<Isa> {
        match std::env::var("QLINEAR_ISA") {
            Ok(v) if !v.trim().is_empty() && v.trim() != "auto" => {
                Isa::parse(&v).and_then(Isa::require)
            }
            _ => Ok(Isa::best()),
        }
    }

    /// `self`, or an error when this CPU lacks it.
    pub fn require(self) -> Result<Isa> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::Unsupported(format!(
                "ISA {} is not available on this CPU",
                self.name()
            )))
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a kernel writes: row-major f32 with leading dimension `ld`.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr {
    pub ptr: *mut f32,
    pub ld: usize,
}

// SAFETY: tasks write disjoint (row, column) blocks of the output.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Writes `vals` (at most 16) to row `r`, columns `c0..c0+vals.len()`.
    ///
    /// # Safety
    /// The block must be inside the output and owned by the calling task.
    #[inline]
    pub unsafe fn write(&self, r: usize, c0: usize, vals: &[f32]) {
        std::ptr::copy_nonoverlapping(vals.as_ptr(), self.ptr.add(r * self.ld + c0), vals.len());
    }
}

/// f32 activations for the exact kernels: rows padded with zeros to `k_padded`.
pub(crate) struct ExactActs<'a> {
    pub x: &'a [f32],
    pub stride: usize,
}

/// Activations quantized to int8 for the dyn8 kernels.
///
/// Block-wise (`per_row == false`): each row is cut into blocks of [`DYN8_BLOCK`] inputs
/// (the last padded with zero codes); `scale` and `sums` hold one entry per row and block.
/// Per row: one `scale` per row, and `sums` one entry per row and *kernel group*.
pub(crate) struct Dyn8Acts<'a> {
    /// Codes `round(x / scale)` in `[−127, 127]`, rows padded with zeros to `stride`.
    pub q: &'a [i8],
    pub stride: usize,
    pub per_row: bool,
    /// Entries per row in `scale` (block-wise) and `sums`.
    pub blocks: usize,
    /// `max|x| / 127` of each block (or row).
    pub scale: &'a [f32],
    /// Σ of the codes of each block (or kernel group): the kernels feed weights offset to
    /// unsigned bytes and take `offset · Σ x` back out with it.
    pub sums: &'a [i32],
}

/// Quantizes one row `x` to blocks of [`DYN8_BLOCK`]: `q` (at least `x.len()` rounded up to
/// a block, padding set to 0), and per block the scale and code sum. Every ISA's version
/// gives the same bits: `inv = 127 / max|x|` in f32, codes `x · inv` rounded half to even.
pub(crate) type QuantizeBlocks =
    unsafe fn(x: &[f32], q: &mut [i8], scales: &mut [f32], sums: &mut [i32]);

pub(crate) type DenseKernel =
    unsafe fn(w: &PackedDense, x: &[f32], rows: Range<usize>, tiles: Range<usize>, y: OutPtr);
pub(crate) type QExactKernel =
    unsafe fn(w: &PackedQuant, a: &ExactActs, rows: Range<usize>, tiles: Range<usize>, y: OutPtr);
pub(crate) type QDyn8Kernel =
    unsafe fn(w: &PackedQuant, a: &Dyn8Acts, rows: Range<usize>, tiles: Range<usize>, y: OutPtr);

/// The kernels of one ISA path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelTable {
    pub isa: Isa,
    /// What the path uses beyond its ISA's baseline (e.g. `vnni+gfni+vbmi`), for reports.
    pub variant: &'static str,
    pub dense: DenseKernel,
    pub q_exact: QExactKernel,
    pub q_dyn8: QDyn8Kernel,
    pub quantize_blocks: QuantizeBlocks,
}

/// One row of the selection table: a kernel table and whether this CPU can run it.
pub(crate) struct Path {
    pub table: KernelTable,
    pub available: fn() -> bool,
}

/// Every kernel table, best first within each ISA. A new ISA or CPU variant is one row here.
pub(crate) const PATHS: &[Path] = &[
    #[cfg(target_arch = "x86_64")]
    Path {
        table: x86::avx512::TABLE_AMX,
        available: x86::avx512::has_amx,
    },
    #[cfg(target_arch = "x86_64")]
    Path {
        table: x86::avx512::TABLE_ICELAKE,
        available: x86::avx512::has_icelake_extras,
    },
    #[cfg(target_arch = "x86_64")]
    Path {
        table: x86::avx512::TABLE,
        available: || Isa::Avx512.is_available(),
    },
    #[cfg(target_arch = "x86_64")]
    Path {
        table: x86::avx2::TABLE_VNNI,
        available: x86::avx2::has_avx_vnni,
    },
    #[cfg(target_arch = "x86_64")]
    Path {
        table: x86::avx2::TABLE,
        available: || Isa::Avx2.is_available(),
    },
    #[cfg(target_arch = "aarch64")]
    Path {
        table: aarch64::TABLE_I8MM,
        available: || Isa::NeonI8mm.is_available(),
    },
    #[cfg(target_arch = "aarch64")]
    Path {
        table: aarch64::TABLE_DOTPROD,
        available: || Isa::NeonDotprod.is_available(),
    },
    #[cfg(target_arch = "aarch64")]
    Path {
        table: aarch64::TABLE_NEON,
        available: || Isa::Neon.is_available(),
    },
    Path {
        table: reference::TABLE,
        available: || true,
    },
];

impl KernelTable {
    /// The best table for `isa` (which must be available: see [`Isa::require`]).
    pub fn for_isa(isa: Isa) -> KernelTable {
        PATHS
            .iter()
            .find(|p| p.table.isa == isa && (p.available)())
            .map_or(reference::TABLE, |p| p.table)
    }
}
