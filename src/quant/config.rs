//! `QuantConfig`: how weights are quantized (bits, scale granularity, zero points, scale
//! precision) and how activations are handled at run time.

use crate::error::{Error, Result};

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

/// What `forward` does with the f32 activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationMode {
    /// Activations stay f32: the result is `x · dequant(W)ᵀ` up to f32 rounding.
    Exact,
    /// Each row of `x` is quantized to int8 (one scale per row) at run time and the kernel
    /// uses integer dot products. Faster; adds an error of at most `scale_x/2 · Σ|w|` per
    /// output, where `scale_x = max|x_row| / 127`.
    Dyn8,
}

impl ActivationMode {
    pub fn name(self) -> &'static str {
        match self {
            ActivationMode::Exact => "exact",
            ActivationMode::Dyn8 => "dyn8",
        }
    }
}

/// A complete quantization recipe. Build one with [`QuantConfig::int8`], [`QuantConfig::int4`]
/// or [`QuantConfig::builder`].
///
/// The defaults were chosen from measured accuracy (README, "Accuracy"): `int8()` is
/// symmetric, groups of 32, f16 scales chosen by a squared-error search (8.5 bits per weight,
/// the same budget as ggml's Q8_0 and at least as accurate); `int4()` is likewise
/// symmetric, groups of 32, f16 scales chosen by a squared-error search over both scale
/// signs (4.5 bits per weight, the budget of ggml's Q4_0 and at least as accurate; both
/// claims are checked in `tests/core.rs` on Gaussian and heavy-tailed weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantConfig {
    pub bits: u8,
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
            bits: 8,
            granularity: Granularity::Group(32),
            symmetric: true,
            scale_dtype: ScaleDType::F16,
            search: true,
            activations: ActivationMode::Exact,
        }
    }

    /// The INT4 default (see the type's docs for why).
    pub fn int4() -> Self {
        QuantConfig {
            bits: 4,
            granularity: Granularity::Group(32),
            symmetric: true,
            scale_dtype: ScaleDType::F16,
            search: true,
            activations: ActivationMode::Exact,
        }
    }

    /// A builder starting from [`QuantConfig::int8`].
    pub fn builder() -> QuantConfigBuilder {
        QuantConfigBuilder(Self::int8())
    }

    /// Checks that the recipe is one the library supports.
    pub fn validate(&self) -> Result<()> {
        if self.bits != 4 && self.bits != 8 {
            return Err(Error::invalid(format!(
                "bits must be 4 or 8, got {}",
                self.bits
            )));
        }
        self.granularity.validate()
    }

    /// The largest code magnitude of a symmetric quantizer: 127 or 7.
    pub(crate) fn qmax(&self) -> i32 {
        (1 << (self.bits - 1)) - 1
    }

    /// A short label such as `int4-g32` or `int8-channel-asym`.
    pub fn label(&self) -> String {
        let asym = if self.symmetric { "" } else { "-asym" };
        format!("int{}-{}{asym}", self.bits, self.granularity.name())
    }
}

/// Builds a [`QuantConfig`]; `build` validates it.
#[derive(Debug, Clone, Copy)]
pub struct QuantConfigBuilder(QuantConfig);

impl QuantConfigBuilder {
    pub fn bits(mut self, bits: u8) -> Self {
        self.0.bits = bits;
        self
    }
    pub fn granularity(mut self, granularity: Granularity) -> Self {
        self.0.granularity = granularity;
        self
    }
    /// Shorthand for `granularity(Granularity::Group(g))`.
    pub fn group_size(self, g: usize) -> Self {
        self.granularity(Granularity::Group(g))
    }
    pub fn symmetric(mut self, symmetric: bool) -> Self {
        self.0.symmetric = symmetric;
        self
    }
    pub fn scale_dtype(mut self, scale_dtype: ScaleDType) -> Self {
        self.0.scale_dtype = scale_dtype;
        self
    }
    pub fn search(mut self, search: bool) -> Self {
        self.0.search = search;
        self
    }
    pub fn activations(mut self, mode: ActivationMode) -> Self {
        self.0.activations = mode;
        self
    }
    pub fn build(self) -> Result<QuantConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}
