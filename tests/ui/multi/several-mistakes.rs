use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// Layer normalisation with three independent mistakes: an axis out of range, an unknown op
    /// and a parameter left unused.
    pub fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        let mu = mean(x, 2);
        let sigma = varr(x, -1);
        (x - mu) * rsqrt(sigma + 1e-5) * w + b
    }

    /// A correct function between two broken ones.
    pub fn double(x: Tensor[N, D]) -> Tensor[N, D] {
        x + x
    }

    /// Two more, one per output: a wrong arity and a return shape that drops the kept axis.
    pub fn softmax_lse(x: Tensor[N, D]) -> (Tensor[N, D], Tensor[N]) {
        (x.softmax(-1, 1.0), logsumexp(x, -1))
    }
}

// Calls to the broken functions add no errors of their own.
fn main() -> candle_core::Result<()> {
    let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu)?;
    let w = Tensor::ones(4, DType::F32, &Device::Cpu)?;
    let y = layer_norm(&x, &w, &w, 1e-5)?;
    let (p, lse) = softmax_lse(&double(&y)?)?;
    let _pending = softmax_lse_async(&p);
    println!("{p} {lse}");
    Ok(())
}
