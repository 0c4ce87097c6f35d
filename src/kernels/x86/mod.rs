//! x86-64 SIMD kernels, compiled with `#[target_feature]` and chosen at run time.

pub(crate) mod avx2;
pub(crate) mod avx512;
