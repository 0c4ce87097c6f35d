//! Register blocking shared by every SIMD path: visiting a task's rows × tiles in blocks,
//! and the macros that turn a run-time block size into a const generic.

use std::ops::Range;

/// Evaluates `$body` with the const `$M` set to the row count `$mr`, for each listed count;
/// the last listed count also takes anything larger.
macro_rules! dispatch_rows {
    ($mr:expr; $($m:literal),* ; $last:literal; $M:ident => $body:expr) => {
        match $mr {
            $($m => { const $M: usize = $m; $body })*
            _ => { const $M: usize = $last; $body }
        }
    };
}

/// Expands `$m!(j)` for each input `j` of a 64-byte step: 0..4 for int8, 0..8 for int4.
macro_rules! each_input {
    ($bits:expr, $m:ident) => {
        $m!(0);
        $m!(1);
        $m!(2);
        $m!(3);
        if $bits == 4 {
            $m!(4);
            $m!(5);
            $m!(6);
            $m!(7);
        }
    };
}

/// Visits `rows × tiles` in blocks: `mr_max` rows and `nt_max` tiles at a time
/// (`nt_gemv` tiles when there is a single row, so a GEMV still has independent
/// accumulator chains), calling `block(first_row, rows, first_tile, ntiles)`. The tile
/// count of a block is its width or 1.
#[inline(always)]
pub(crate) fn for_each_block(
    rows: Range<usize>,
    tiles: Range<usize>,
    mr_max: usize,
    nt_max: usize,
    nt_gemv: usize,
    mut block: impl FnMut(usize, usize, usize, usize),
) {
    let wide = if rows.len() == 1 { nt_gemv } else { nt_max };
    let mut t = tiles.start;
    while t < tiles.end {
        let nt = if tiles.end - t >= wide { wide } else { 1 };
        let mut r = rows.start;
        while r < rows.end {
            let mr = (rows.end - r).min(mr_max);
            block(r, mr, t, nt);
            r += mr;
        }
        t += nt;
    }
}
