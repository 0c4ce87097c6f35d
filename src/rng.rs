//! A tiny deterministic random generator (SplitMix64) for initialisation, tests and examples.

/// SplitMix64: fast, seedable, statistically fine for weight initialisation.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Student's t with `nu` (≥ 1) degrees of freedom: `z / sqrt(χ²_ν / ν)`, the χ² drawn as
    /// a sum of `nu` squared normals. Heavy-tailed like trained weights (ν ≈ 4–8).
    pub fn student_t(&mut self, nu: u32) -> f32 {
        let z = self.normal() as f64;
        let chi2: f64 = (0..nu.max(1)).map(|_| (self.normal() as f64).powi(2)).sum();
        (z / (chi2 / nu.max(1) as f64).sqrt()) as f32
    }

    /// `n` values uniform in `[lo, hi)`.
    pub fn uniform_vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// `n` weights shaped like a transformer layer's: Gaussian with standard deviation `std`,
    /// about 1 in 2000 replaced by an outlier of ±(50..300)·`std`.
    pub fn heavy_tailed_vec(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let w = std * self.normal();
                if self.next_u64().is_multiple_of(2000) {
                    let sign = if self.next_u64().is_multiple_of(2) {
                        1.0
                    } else {
                        -1.0
                    };
                    sign * self.uniform(50.0, 300.0) * std
                } else {
                    w
                }
            })
            .collect()
    }
}
