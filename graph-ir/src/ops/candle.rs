//! The eager executor's Candle compositions for the ops Candle lacks or rounds differently,
//! named by their rows of the op tables. Each keeps PyTorch's special values, and runs on every
//! device Candle does: only Candle ops, in the compute dtype.

use candle_core::{Result, Tensor};

/// A comparison's mask (`u8`) as 1.0/0.0 in the compute dtype, `x`'s.
pub fn flag(mask: Tensor, x: &Tensor) -> Result<Tensor> {
    mask.to_dtype(x.dtype())
}

/// `maximum`/`minimum`: Candle's `op`, with a NaN on either side the result (as PyTorch's;
/// Candle's result depends on which side the NaN is).
pub fn nan_either(x: &Tensor, y: &Tensor, op: fn(&Tensor, &Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let m = op(x, y)?;
    let (x, y) = (x.broadcast_as(m.shape())?, y.broadcast_as(m.shape())?);
    let m = y.ne(&y)?.where_cond(&y, &m)?;
    x.ne(&x)?.where_cond(&x, &m)
}

/// `a` to the power `b`, elementwise, as C's `pow` (the kernels' `powf`; Candle's tensor `pow` is
/// `exp(b ln a)`, NaN for every negative base): `|a|^b` as `exp(b ln |a|)`, then C's cases where
/// that is not the answer.
pub fn pow(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), "pow")?;
    let (a, b) = (a.broadcast_as(&shape)?, b.broadcast_as(&shape)?);
    let magnitude = (&b * a.abs()?.log()?)?.exp()?;
    let integral = b.floor()?.eq(&b)?;
    let half = (&b * 0.5)?;
    let odd = (half.floor()?.ne(&half)? * &integral)?;
    // A negative base, -0 included (its reciprocal is -inf).
    let negative = a.lt(0.0)?.maximum(&a.recip()?.lt(0.0)?)?;
    let signed = (&negative * &odd)?.where_cond(&magnitude.neg()?, &magnitude)?;
    // A finite negative base to a non-integral power has no real value.
    let no_value = ((a.lt(0.0)? * a.gt(f64::NEG_INFINITY)?)? * integral.eq(0u8)?)?;
    let nan = (signed.zeros_like()? + f64::NAN)?;
    let signed = no_value.where_cond(&nan, &signed)?;
    // pow(x, 0) and pow(1, y) are 1 even for a NaN, and pow(-1, +-inf) is 1.
    let one = b
        .eq(0.0)?
        .maximum(&a.eq(1.0)?)?
        .maximum(&(a.eq(-1.0)? * b.abs()?.eq(f64::INFINITY)?)?)?;
    one.where_cond(&signed.ones_like()?, &signed)
}

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

/// The max along `axis`, kept, as `torch.amax`: see [`nan_if_any`].
pub fn max_keepdim(x: &Tensor, axis: usize) -> Result<Tensor> {
    // Contiguous first: Candle's CPU max/min divide by the axis' stride, which is 0 on a
    // broadcast axis.
    let x = x.contiguous()?;
    x.max_keepdim(axis).and_then(|m| nan_if_any(&x, axis, m))
}

/// The min along `axis`, kept, as `torch.amin`: see [`nan_if_any`].
pub fn min_keepdim(x: &Tensor, axis: usize) -> Result<Tensor> {
    let x = x.contiguous()?;
    x.min_keepdim(axis).and_then(|m| nan_if_any(&x, axis, m))
}

/// `m`, the max or min of `x` along `axis`, made NaN in every row of `x` that holds a NaN (as
/// PyTorch's; Candle's skips a NaN or returns it depending on where it is).
fn nan_if_any(x: &Tensor, axis: usize, m: Tensor) -> Result<Tensor> {
    let nan = x.ne(x)?.to_dtype(x.dtype())?.max_keepdim(axis)?;
    nan.ne(0.0)?.where_cond(&(m.zeros_like()? + f64::NAN)?, &m)
}
