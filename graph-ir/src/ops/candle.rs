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
