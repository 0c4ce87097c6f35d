//! The `cb4` weight format's codebook: 16 non-uniform int8 levels that a 4-bit code indexes,
//! the nearest-level lookup, the scale search of one group, and the Lloyd–Max procedure the
//! levels were derived with.
//!
//! A uniform 16-level grid spends as many levels on the tails of a bell-shaped group as on
//! its dense middle. [`CB4_LEVELS`] are the Lloyd–Max levels (the centroids that minimise
//! the squared error, iterated with the scale search below) of Student-t (ν = 8) weights in
//! groups of 32 with log-normal row scales: [`derive_levels`] on [`training_weights`],
//! started from an evenly spaced grid, with one level pinned at 0. Without a zero level
//! (as in ggml's IQ4_NL) a group whose scale is set by one large outlier moves all its
//! small weights to the level nearest 0, several of their standard deviations away: on
//! layers with such outliers that costs 1.5× Q4_0's error; with it, such a group is no worse
//! than with a uniform grid. They are int8 so that dyn8 kernels multiply them with int8
//! activations exactly, and exact kernels look them up as f32.
//! `cargo run --release --example accuracy -- --derive-codebook` re-derives them.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::quant::config::ScaleDType;
use crate::quant::quantize::store_scale;
use crate::rng::SplitMix64;

/// Levels of a 4-bit codebook.
pub const LEVELS: usize = 16;

/// The `cb4` levels, ascending; a weight is `scale · CB4_LEVELS[code]`.
pub const CB4_LEVELS: [i8; LEVELS] = [
    -127, -97, -76, -60, -46, -34, -22, -11, 0, 12, 23, 35, 48, 62, 79, 103,
];

/// Scale factors the search tries around the plain scale, for both signs.
const SEARCH_FACTORS: [f32; 9] = [0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.175, 1.25];

/// Entries of the nearest-level table: `⌊2v⌋` for `v` in `[−256, 256)` level units.
const TABLE_LEN: usize = 1024;

/// Checks that `levels` are strictly ascending (so each code has one meaning and the
/// nearest-level table is well defined).
pub fn validate_levels(levels: &[i8; LEVELS]) -> Result<()> {
    if levels.windows(2).all(|p| p[0] < p[1]) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "codebook levels must be strictly ascending, got {levels:?}"
        )))
    }
}

/// A codebook and its nearest-level lookup table.
#[derive(Debug, Clone)]
pub struct Codebook {
    levels: [i8; LEVELS],
    /// `nearest[⌊2v⌋ + 512]` is the index of the level nearest to `v`: with integer levels,
    /// the midpoint of neighbours `a < b` is `(a+b)/2`, and `v ≥ (a+b)/2` iff `⌊2v⌋ ≥ a+b`.
    nearest: [u8; TABLE_LEN],
    /// The same table holding the nearest level's value, for the scale search.
    nearest_value: [f32; TABLE_LEN],
}

impl Codebook {
    pub fn new(levels: [i8; LEVELS]) -> Result<Codebook> {
        validate_levels(&levels)?;
        let mut nearest = [0u8; TABLE_LEN];
        for (t, slot) in nearest.iter_mut().enumerate() {
            let twice_v = t as i32 - (TABLE_LEN / 2) as i32;
            *slot = levels
                .windows(2)
                .filter(|p| twice_v >= p[0] as i32 + p[1] as i32)
                .count() as u8;
        }
        let nearest_value = std::array::from_fn(|t| levels[nearest[t] as usize] as f32);
        Ok(Codebook {
            levels,
            nearest,
            nearest_value,
        })
    }

    /// The codebook of [`crate::WeightFormat::Cb4`].
    pub fn cb4() -> &'static Codebook {
        static CB4: OnceLock<Codebook> = OnceLock::new();
        CB4.get_or_init(|| Codebook::new(CB4_LEVELS).expect("CB4_LEVELS are ascending"))
    }

    pub fn levels(&self) -> &[i8; LEVELS] {
        &self.levels
    }

    /// The index of the level nearest to `w · inv_scale` (in level units).
    #[inline(always)]
    pub fn index(&self, w: f32, inv_scale: f32) -> usize {
        self.nearest[Self::slot(w, inv_scale)] as usize
    }

    /// The nearest-level table slot of `w · inv_scale`: `⌊2v⌋ + 512`, clamped.
    #[inline(always)]
    fn slot(w: f32, inv_scale: f32) -> usize {
        // Truncating a non-negative value is ⌊·⌋; the clamp also absorbs ±inf. Converting
        // through i32 and masking (a no-op after the clamp) keeps it a single cvttss2si with
        // no bounds check.
        (((2.0 * w * inv_scale).clamp(-512.0, 511.0) + 512.0) as i32 as usize) & (TABLE_LEN - 1)
    }

    /// The level of largest magnitude (the one the plain scale maps the group's extreme to).
    fn extreme(&self) -> f32 {
        let (lo, hi) = (self.levels[0] as f32, self.levels[LEVELS - 1] as f32);
        if -lo >= hi {
            lo
        } else {
            hi
        }
    }

    /// The index whose level is nearest to 0 (the code of every weight of a zero group).
    pub fn zero_index(&self) -> usize {
        self.index(0.0, 1.0)
    }
}

/// `(Σ w·l, Σ l²)` over `vals` for the levels `l` nearest to `w / d`: enough for the squared
/// error at `d` and at any other scale with the same codes (`Σw² − 2s·Σwl + s²·Σl²`). Eight
/// f32 lanes in a fixed order: the loop vectorizes and gives the same result everywhere.
fn fit(vals: &[f32], cb: &Codebook, d: f32) -> (f64, f64) {
    let inv = 1.0 / d;
    let (mut wl, mut ll) = ([0f32; 8], [0f32; 8]);
    let chunks = vals.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            let l = cb.nearest_value[Codebook::slot(c[i], inv)];
            wl[i] += c[i] * l;
            ll[i] += l * l;
        }
    }
    for (i, &w) in tail.iter().enumerate() {
        let l = cb.nearest_value[Codebook::slot(w, inv)];
        wl[i] += w * l;
        ll[i] += l * l;
    }
    let sum = |v: [f32; 8]| v.iter().map(|&x| x as f64).sum::<f64>();
    (sum(wl), sum(ll))
}

/// Squared error at scale `s` of codes with sums `(wl, ll)`, for `ww = Σw²`.
fn error_at(s: f32, ww: f64, (wl, ll): (f64, f64)) -> f64 {
    let s = s as f64;
    (ww - 2.0 * s * wl + s * s * ll).max(0.0)
}

/// The scale of one group and its squared error (with nearest codes; for a refit scale, an
/// upper bound of it). Without `search` it is the plain scale `m / extreme level` (`m` the
/// weight of largest magnitude, with its sign), which maps `m` exactly onto that level. With
/// `search`, scales around it of both signs (so either end of the asymmetric codebook can
/// take the group's extreme) are each refined once by least squares; the plain scale is
/// always a candidate, so the search never does worse. Scales are rounded to `dtype` before
/// they are scored.
pub(crate) fn choose_scale(
    vals: &[f32],
    cb: &Codebook,
    dtype: ScaleDType,
    search: bool,
) -> Result<(f32, f64)> {
    let m = vals
        .iter()
        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    if m == 0.0 {
        return Ok((0.0, 0.0));
    }
    let ww: f64 = vals.iter().map(|&w| w as f64 * w as f64).sum();
    let mut best = (0f32, f64::INFINITY);
    let mut keep = |s: f32, err: f64| {
        if err < best.1 {
            best = (s, err);
        }
    };
    let stored = |d: f32| -> Result<f32> {
        let d = store_scale(d, dtype);
        if d.is_finite() {
            Ok(d)
        } else {
            Err(Error::invalid(format!(
                "weights up to {} need a scale ({d}) beyond {dtype:?}; use f32 scales",
                m.abs()
            )))
        }
    };
    // Each candidate costs one pass: its own error, and its least-squares refit scored with
    // the same codes (an upper bound: re-choosing the nearest codes at the refit scale, as
    // the final quantization does, can only lower it).
    let mut consider = |d: f32, refine: bool| -> Result<bool> {
        let d = stored(d)?;
        if d == 0.0 {
            return Ok(false);
        }
        let sums = fit(vals, cb, d);
        keep(d, error_at(d, ww, sums));
        if refine && sums.1 > 0.0 {
            let r = stored((sums.0 / sums.1) as f32)?;
            if r != 0.0 {
                keep(r, error_at(r, ww, sums));
            }
        }
        Ok(true)
    };
    let plain = m / cb.extreme();
    // An f16 rounding of a tiny scale to 0 takes the smallest f16 of the same sign instead.
    if !consider(plain, false)? {
        let tiny = half::f16::from_bits(1).to_f32().copysign(plain);
        consider(tiny, false)?;
    }
    if search {
        for f in SEARCH_FACTORS {
            for sign in [1.0f32, -1.0] {
                consider(sign * f * plain, true)?;
            }
        }
    }
    Ok(best)
}

/// Lloyd–Max levels for `weights` in groups of `group`: starting from `start`, each round
/// chooses every group's scale with the search, then moves each level to the weighted
/// centroid of the values `w / scale` it was nearest to (weights `scale²`, which makes the
/// centroid minimise the squared error in weight units), rescales so the largest magnitude
/// is 127, and rounds to integers. A level that is 0 in `start` stays 0. Stops after
/// `rounds` or when nothing moves.
pub fn derive_levels(
    weights: &[f32],
    group: usize,
    start: [i8; LEVELS],
    rounds: usize,
) -> Result<[i8; LEVELS]> {
    let mut levels = start;
    for _ in 0..rounds {
        let cb = Codebook::new(levels)?;
        let (mut num, mut den) = ([0f64; LEVELS], [0f64; LEVELS]);
        for g in weights.chunks(group) {
            let (d, _) = choose_scale(g, &cb, ScaleDType::F32, true)?;
            if d == 0.0 {
                continue;
            }
            for &w in g {
                let i = cb.index(w, 1.0 / d);
                num[i] += d as f64 * w as f64;
                den[i] += d as f64 * d as f64;
            }
        }
        let centroid: Vec<f64> = (0..LEVELS)
            .map(|i| {
                if start[i] == 0 {
                    0.0
                } else if den[i] > 0.0 {
                    num[i] / den[i]
                } else {
                    levels[i] as f64
                }
            })
            .collect();
        let top = centroid.iter().fold(0f64, |a, c| a.max(c.abs()));
        let mut next = [0i8; LEVELS];
        for (n, c) in next.iter_mut().zip(&centroid) {
            *n = (c * 127.0 / top).round() as i8;
        }
        // Keep levels distinct if two centroids round together.
        for i in 1..LEVELS {
            if next[i] <= next[i - 1] {
                next[i] = next[i - 1] + 1;
            }
        }
        if next == levels {
            break;
        }
        levels = next;
    }
    Ok(levels)
}

/// The documented ensemble [`CB4_LEVELS`] were derived on: 512 rows × 4096 Student-t (ν = 8)
/// weights, each row scaled by `0.02 · e^(0.5·z)` (rows of different scales), seed 8.
pub fn training_weights() -> Vec<f32> {
    let mut rng = SplitMix64::new(8);
    let (rows, k) = (512, 4096);
    let mut w = Vec::with_capacity(rows * k);
    for _ in 0..rows {
        let scale = 0.02 * (0.5 * rng.normal()).exp();
        w.extend((0..k).map(|_| scale * rng.student_t(8)));
    }
    w
}

/// The evenly spaced start of the derivation: `127·(i − 8)/8` for `i` in `0..16`, so level
/// 8 is 0 (and stays pinned there).
pub fn uniform_start() -> [i8; LEVELS] {
    std::array::from_fn(|i| ((127 * (i as i32 - 8)) as f32 / 8.0).round() as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_level_matches_a_brute_force_search() {
        let cb = Codebook::cb4();
        let mut rng = SplitMix64::new(3);
        for _ in 0..20_000 {
            let v = rng.uniform(-300.0, 300.0);
            let i = cb.index(v, 1.0);
            let best = CB4_LEVELS
                .iter()
                .map(|&l| (v - l as f32).abs())
                .fold(f32::INFINITY, f32::min);
            assert!((v - CB4_LEVELS[i] as f32).abs() <= best + 1e-4, "{v}");
        }
        assert_eq!(CB4_LEVELS[cb.zero_index()], 0);
    }

    #[test]
    fn levels_must_ascend() {
        let mut l = CB4_LEVELS;
        l.swap(3, 4);
        assert!(Codebook::new(l).is_err());
        assert!(Codebook::new(uniform_start()).is_ok());
    }

    #[test]
    fn the_search_is_never_worse_than_the_plain_scale() {
        let cb = Codebook::cb4();
        let mut rng = SplitMix64::new(4);
        for _ in 0..200 {
            let g: Vec<f32> = (0..32).map(|_| rng.student_t(4)).collect();
            let (_, plain) = choose_scale(&g, cb, ScaleDType::F16, false).unwrap();
            let (_, searched) = choose_scale(&g, cb, ScaleDType::F16, true).unwrap();
            assert!(searched <= plain);
        }
    }
}
