//! What the CPU and GPU benchmarks share: the kernels as `lazy_graph!` functions, and the same
//! math composed of Candle ops, one op per step.

use candle_core::{Result, Tensor, D};
use graph_runtime::lazy_graph;

lazy_graph! {
    pub fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }

    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }

    pub fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    pub fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        let c = x - mean(x, -1);
        c * rsqrt(mean(c * c, -1) + eps) * w + b
    }

    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] { silu(g) * u }

    pub fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
        let x1 = narrow(x, -1, 0, D / 2);
        let x2 = narrow(x, -1, D / 2, D / 2);
        x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
    }
}

pub fn composed_softmax(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

pub fn composed_rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let r = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&r)?.broadcast_mul(w)
}

pub fn composed_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let c = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let r = (c.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    c.broadcast_mul(&r)?.broadcast_mul(w)?.broadcast_add(b)
}

pub fn composed_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let (x1, x2) = (x.narrow(D::Minus1, 0, d / 2)?, x.narrow(D::Minus1, d / 2, d / 2)?);
    let (c, s) = (
        Tensor::cat(&[cos, cos], D::Minus1)?,
        Tensor::cat(&[sin, sin], D::Minus1)?,
    );
    x.broadcast_mul(&c)? + Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?.broadcast_mul(&s)?
}
