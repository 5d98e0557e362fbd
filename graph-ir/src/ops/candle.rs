//! The eager executor's Candle compositions for the ops Candle lacks or rounds differently,
//! named by their rows of the op tables. Each keeps PyTorch's special values, and runs on every
//! device Candle does: only Candle ops, in the compute dtype.

use candle_core::{Result, Tensor};

/// Round half to even, as `torch.round` (Candle's `round` sends ties away from zero): a tie,
/// where `x - floor(x)` is 0.5, goes to `2 * round(x / 2)`, its even neighbour. The difference
/// is exact wherever `|x| >= 1/2`; below, it can round to 0.5 only for an `x` within an ulp of
/// `-0.5`, which both formulas round to `-0`.
pub fn round_ties_even(x: &Tensor) -> Result<Tensor> {
    let tie = (x - x.floor()?)?.eq(0.5)?;
    let even = ((x * 0.5)?.round()? * 2.0)?;
    tie.where_cond(&even, &x.round()?)
}

/// `ln(1 + x)` that keeps `x`'s digits where `1 + x` rounds them away: `ln(u) * (x / (u - 1))`
/// with `u = 1 + x`, where `u - 1` is exact and the ratio undoes `u`'s rounding (Goldberg, "What
/// every computer scientist should know about floating-point arithmetic", theorem 4). `x` itself
/// where `u` is 1, and where it is `+inf` (the ratio is `inf / inf` there).
pub fn log1p(x: &Tensor) -> Result<Tensor> {
    let u = (x + 1.0)?;
    let corrected = (u.log()? * (x / (&u - 1.0)?)?)?;
    let near_zero = u.eq(1.0)?.where_cond(x, &corrected)?;
    x.eq(f64::INFINITY)?.where_cond(x, &near_zero)
}

/// `e^x - 1` that keeps `x`'s digits near 0: `(u - 1) * (x / ln(u))` with `u = e^x` (Kahan's
/// correction: the ratio undoes `u`'s rounding). `x` itself where `u` is 1, `-1` where `u - 1` is
/// (`x` far below 0, `ln(u)` is `-inf` or inexact there), and `u` where it is `+inf`.
pub fn expm1(x: &Tensor) -> Result<Tensor> {
    let u = x.exp()?;
    let less_one = (&u - 1.0)?;
    let corrected = (&less_one * (x / u.log()?)?)?;
    let r = less_one.eq(-1.0)?.where_cond(&less_one, &corrected)?;
    let r = u.eq(1.0)?.where_cond(x, &r)?;
    u.eq(f64::INFINITY)?.where_cond(&u, &r)
}
