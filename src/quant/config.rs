//! `QuantConfig`: how weights are quantized (code format, scale granularity, zero points,
//! scale precision) and how activations are handled at run time.

use crate::error::{Error, Result};

/// What a weight code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 8-bit integer codes `q ∈ [−128, 127]`: `w = scale · (q − zero)`.
    Int8,
    /// 4-bit integer codes `q ∈ [−8, 7]` on a uniform grid: `w = scale · (q − zero)`.
    Int4,
    /// 4-bit codes that index 16 non-uniform levels ([`crate::quant::codebook::CB4_LEVELS`],
    /// denser near 0 where bell-shaped weights are): `w = scale · level[q]`. Symmetric only.
    Cb4,
}

impl WeightFormat {
    /// Bits per code: 8 or 4.
    pub fn bits(self) -> u8 {
        match self {
            WeightFormat::Int8 => 8,
            WeightFormat::Int4 | WeightFormat::Cb4 => 4,
        }
    }

    /// Short name: `int8`, `int4`, `cb4`.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Int8 => "int8",
            WeightFormat::Int4 => "int4",
            WeightFormat::Cb4 => "cb4",
        }
    }

    /// Parses `int8`, `int4` or `cb4`.
    pub fn parse(s: &str) -> Result<WeightFormat> {
        [WeightFormat::Int8, WeightFormat::Int4, WeightFormat::Cb4]
            .into_iter()
            .find(|f| f.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown weight format {s:?}: expected int8, int4 or cb4"
                ))
            })
    }
}

/// Which weights share one scale (and zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole matrix.
    PerTensor,
    /// One scale per output feature (row of `W`).
    PerChannel,
    /// One scale per run of `g` consecutive inputs of a row; the last group of a row may be
    /// shorter when `in_features` is not a multiple of `g`.
    Group(usize),
}

impl Granularity {
    /// Group sizes the kernels support: powers of two from 32 to 1024.
    pub fn validate(self) -> Result<()> {
        match self {
            Granularity::Group(g) if !(32..=1024).contains(&g) || !g.is_power_of_two() => {
                Err(Error::invalid(format!(
                    "group size must be a power of two from 32 to 1024, got {g}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Short name: `tensor`, `channel`, `g32`...
    pub fn name(self) -> String {
        match self {
            Granularity::PerTensor => "tensor".into(),
            Granularity::PerChannel => "channel".into(),
            Granularity::Group(g) => format!("g{g}"),
        }
    }
}

/// How scales are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleDType {
    /// 4 bytes per scale.
    F32,
    /// 2 bytes per scale; the scale search picks among f16-representable scales.
    F16,
}

impl ScaleDType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            ScaleDType::F32 => 4,
            ScaleDType::F16 => 2,
        }
    }
}

/// Activations per scale in [`ActivationMode::Dyn8`]: blocks of 32 along the inputs, aligned
/// with weight groups (which are powers of two from 32).
pub const DYN8_BLOCK: usize = 32;

/// What `forward` does with the f32 activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationMode {
    /// Activations stay f32: the result is `x · dequant(W)ᵀ` up to f32 rounding.
    Exact,
    /// Each block of [`DYN8_BLOCK`] = 32 inputs of a row of `x` is quantized to int8 with its
    /// own scale `max|x_block| / 127` at run time; the kernel sums integer dot products per
    /// block and scales each by `scale_w · scale_x`. Faster than `Exact`; adds an error of at
    /// most `Σ_blocks scale_x/2 · Σ_{k∈block} |w_k|` per output. One outlier channel only
    /// coarsens its own block.
    Dyn8,
    /// As `Dyn8` with one scale per row (`max|x_row| / 127`): slightly faster with
    /// per-channel weights, much less accurate when a row has outlier channels.
    Dyn8PerRow,
}

impl ActivationMode {
    pub const ALL: [ActivationMode; 3] = [
        ActivationMode::Exact,
        ActivationMode::Dyn8,
        ActivationMode::Dyn8PerRow,
    ];

    /// Short name: `exact`, `dyn8`, `dyn8-row`.
    pub fn name(self) -> &'static str {
        match self {
            ActivationMode::Exact => "exact",
            ActivationMode::Dyn8 => "dyn8",
            ActivationMode::Dyn8PerRow => "dyn8-row",
        }
    }

    /// Parses `exact`, `dyn8` or `dyn8-row`.
    pub fn parse(s: &str) -> Result<ActivationMode> {
        ActivationMode::ALL
            .into_iter()
            .find(|m| m.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown activation mode {s:?}: expected exact, dyn8 or dyn8-row"
                ))
            })
    }

    /// Whether activations are quantized to int8 at run time.
    pub fn is_dyn8(self) -> bool {
        self != ActivationMode::Exact
    }
}

/// A complete quantization recipe. Build one with [`QuantConfig::int8`], [`QuantConfig::int4`]
/// or [`QuantConfig::builder`].
///
/// The defaults were chosen from measured accuracy (README, "Accuracy"; `cargo run --release
/// --example accuracy`): `int8()` is symmetric, groups of 32, f16 scales chosen by a
/// squared-error search (8.5 bits per weight, the budget of ggml's Q8_0 and at least as
/// accurate); `int4()` is the [`WeightFormat::Cb4`] codebook, groups of 32, f16 scales chosen
/// by a search with a least-squares refit (4.5 bits per weight, the budget of ggml's Q4_0,
/// with about 0.75–0.85× its error); [`QuantConfig::int4_uniform`] is the uniform 4-bit grid.
/// The claims are checked in `tests/core.rs` on Gaussian and heavy-tailed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantConfig {
    pub format: WeightFormat,
    pub granularity: Granularity,
    pub symmetric: bool,
    pub scale_dtype: ScaleDType,
    /// Search scales (and zero points) that minimise the squared error of each group,
    /// instead of taking `max|w| / qmax`.
    pub search: bool,
    pub activations: ActivationMode,
}

impl QuantConfig {
    /// The INT8 default (see the type's docs for why).
    pub fn int8() -> Self {
        QuantConfig {
            format: WeightFormat::Int8,
            granularity: Granularity::Group(32),
            symmetric: true,
            scale_dtype: ScaleDType::F16,
            search: true,
            activations: ActivationMode::Exact,
        }
    }

    /// The 4-bit default: the [`WeightFormat::Cb4`] codebook (see the type's docs for why).
    pub fn int4() -> Self {
        QuantConfig {
            format: WeightFormat::Cb4,
            ..Self::int4_uniform()
        }
    }

    /// Uniform 4-bit integer codes, symmetric, groups of 32, f16 scales chosen by a search
    /// over both scale signs (the 4-bit default before the codebook).
    pub fn int4_uniform() -> Self {
        QuantConfig {
            format: WeightFormat::Int4,
            ..Self::int8()
        }
    }

    /// A builder starting from [`QuantConfig::int8`].
    pub fn builder() -> QuantConfigBuilder {
        QuantConfigBuilder {
            config: Self::int8(),
            bad_bits: None,
        }
    }

    /// Bits per code: 8 or 4.
    pub fn bits(&self) -> u8 {
        self.format.bits()
    }

    /// Checks that the recipe is one the library supports.
    pub fn validate(&self) -> Result<()> {
        if self.format == WeightFormat::Cb4 && !self.symmetric {
            return Err(Error::invalid(
                "the cb4 codebook is symmetric by construction: zero points are not supported",
            ));
        }
        self.granularity.validate()
    }

    /// The largest code magnitude of a symmetric integer quantizer: 127 or 7.
    pub(crate) fn qmax(&self) -> i32 {
        (1 << (self.bits() - 1)) - 1
    }

    /// A short label such as `int4-g32`, `cb4-g64` or `int8-channel-asym`.
    pub fn label(&self) -> String {
        let asym = if self.symmetric { "" } else { "-asym" };
        format!("{}-{}{asym}", self.format.name(), self.granularity.name())
    }
}

/// Builds a [`QuantConfig`]; `build` validates it.
#[derive(Debug, Clone, Copy)]
pub struct QuantConfigBuilder {
    config: QuantConfig,
    /// A width `bits` was given that no format has, reported by `build`.
    bad_bits: Option<u8>,
}

impl QuantConfigBuilder {
    /// 8 selects [`WeightFormat::Int8`], 4 the uniform [`WeightFormat::Int4`]; any other
    /// width makes `build` fail.
    pub fn bits(mut self, bits: u8) -> Self {
        match bits {
            8 => self.config.format = WeightFormat::Int8,
            4 => self.config.format = WeightFormat::Int4,
            _ => {
                self.bad_bits = Some(bits);
                return self;
            }
        }
        self.bad_bits = None;
        self
    }
    pub fn format(mut self, format: WeightFormat) -> Self {
        self.config.format = format;
        self.bad_bits = None;
        self
    }
    pub fn granularity(mut self, granularity: Granularity) -> Self {
        self.config.granularity = granularity;
        self
    }
    /// Shorthand for `granularity(Granularity::Group(g))`.
    pub fn group_size(self, g: usize) -> Self {
        self.granularity(Granularity::Group(g))
    }
    pub fn symmetric(mut self, symmetric: bool) -> Self {
        self.config.symmetric = symmetric;
        self
    }
    pub fn scale_dtype(mut self, scale_dtype: ScaleDType) -> Self {
        self.config.scale_dtype = scale_dtype;
        self
    }
    pub fn search(mut self, search: bool) -> Self {
        self.config.search = search;
        self
    }
    pub fn activations(mut self, mode: ActivationMode) -> Self {
        self.config.activations = mode;
        self
    }
    pub fn build(self) -> Result<QuantConfig> {
        if let Some(b) = self.bad_bits {
            return Err(Error::invalid(format!("bits must be 4 or 8, got {b}")));
        }
        self.config.validate()?;
        Ok(self.config)
    }
}
