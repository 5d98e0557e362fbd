//! Several functions in one block with docs and visibility, called from model-like code.

use candle_core::{Device, Tensor};
use graph_runtime::lazy_graph;

mod kernels {
    use graph_runtime::lazy_graph;

    lazy_graph! {
        /// A gated MLP activation, public outside this module.
        pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
            g.silu() * u
        }

        /// Visible to the crate only.
        pub(crate) fn gelu_tanh(x: Tensor[N, F]) -> Tensor[N, F] {
            gelu(x)
        }
    }
}

lazy_graph! {
    /// Softmax over the last axis, written out.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let e = exp(x - max(x, -1));
        e / sum(e, -1)
    }

    /// A scalar-only `let` mixes in freely; a `let` may shadow a parameter.
    fn temperature(x: Tensor[N, D], t: f32) -> Tensor[N, D] {
        let inv = 1.0 / t;
        let x = x * inv;
        softmax(x, -1)
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let g = Tensor::randn(0f32, 1.0, (2, 6), &dev)?;
    let u = Tensor::randn(0f32, 1.0, (2, 6), &dev)?;
    let h = kernels::swiglu(&g, &u)?;
    let h = kernels::gelu_tanh(&h)?;
    let p = softmax(&h)?;
    let q = temperature(&h, 1.0)?;
    let diff = (p - q)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff < 1e-6, "softmax and temperature 1 differ by {diff}");
    println!("{}", softmax::GRAPH.to_text());
    Ok(())
}
