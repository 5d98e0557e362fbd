//! The literal `inf`: masks with `-inf`, bounds at the infinities, `inf` as a method receiver,
//! and arithmetic on it folded at compile time.

use candle_core::{Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// The largest value `mask` keeps in each row; `-inf` in a row it keeps nothing of.
    pub fn masked_max(x: Tensor[N, D], mask: Tensor[N, D]) -> Tensor[N, 1] {
        max(where_(mask > 0.5, x, -inf), -1)
    }

    /// Bounds at the infinities leave every value as it is.
    pub fn unbounded(x: Tensor[N]) -> Tensor[N] {
        minimum(maximum(x, -inf), inf) + inf.recip() + x.clamp(-inf, inf) * 0.0
    }

    /// `inf - inf` folds to NaN.
    pub fn nan(x: Tensor[N]) -> Tensor[N] {
        x + (inf - inf)
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::new(&[[1f32, 5.0, 3.0], [2.0, 7.0, 4.0]], &dev)?;
    let mask = Tensor::new(&[[1f32, 0.0, 1.0], [0.0, 0.0, 0.0]], &dev)?;
    let m: Vec<f32> = masked_max(&x, &mask)?.flatten_all()?.to_vec1()?;
    assert_eq!(m, [3.0, f32::NEG_INFINITY]);
    let v = Tensor::new(&[-2f32, 0.5, 9.0], &dev)?;
    assert_eq!(unbounded(&v)?.to_vec1::<f32>()?, [-2.0, 0.5, 9.0]);
    assert!(nan(&v)?.to_vec1::<f32>()?.iter().all(|v| v.is_nan()));
    Ok(())
}
