//! Functions generic over leading dims (`Tensor[.., D]`) and reductions over several axes: what
//! a Llama-style model writes once for every rank.

use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// One RMSNorm for `[D]`, `[N, D]`, `[B, S, D]`, ...
    pub fn rms_norm(x: Tensor[.., D], w: Tensor[D], eps: f32) -> Tensor[.., D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Rotate-half RoPE for `[.., T, D]`: batch and heads are leading dims.
    pub fn rope(x: Tensor[.., T, D], cos: Tensor[T, D], sin: Tensor[T, D]) -> Tensor[.., T, D] {
        let x1 = x.narrow(-1, 0, D / 2);
        let x2 = x.narrow(-1, D / 2, D / 2);
        x * cos + cat([-x2, x1], -1) * sin
    }

    /// Any shape at all, pointwise.
    pub fn gelu_any(x: Tensor[..]) -> Tensor[..] {
        gelu(x)
    }

    /// Heads split off the last axis, the leading dims kept; a transpose of named dims.
    pub fn heads(x: Tensor[.., S, D]) -> Tensor[.., 4, S, D / 4] {
        reshape(x, [.., S, 4, D / 4]).transpose(-3, -2)
    }

    /// A projection through Candle's matmul; a result broadcast to the leading dims.
    pub fn project(x: Tensor[.., K], w: Tensor[K, N], b: Tensor[N]) -> (Tensor[.., N], Tensor[.., N]) {
        let y = x.matmul(w);
        (y + b, broadcast(b, [.., N]) + y * 0.0)
    }

    /// Reductions over several axes, and a `..`-less function using them.
    pub fn plane_norm(x: Tensor[.., H, W]) -> Tensor[.., H, W] {
        (x - mean(x, [-2, -1])) * rsqrt(var(x, [-1, -2]) + 1e-5)
    }

    pub fn totals(x: Tensor[A, B, C]) -> (Tensor[1, B, 1], Tensor[1, 1, 1], Tensor[A, B, C]) {
        (sum(x, [0, 2]), max(x, [2, 1, 0]), log_softmax(x, [1, 2]))
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let w = Tensor::ones(8, DType::F32, &dev)?;
    for dims in [&[8][..], &[3, 8], &[2, 3, 8], &[2, 1, 3, 8]] {
        let x = Tensor::randn(0f32, 1.0, dims, &dev)?;
        assert_eq!(rms_norm(&x, &w, 1e-6)?.dims(), dims);
        assert_eq!(gelu_any(&x)?.dims(), dims);
    }
    let x = Tensor::randn(0f32, 1.0, (2, 3, 5, 8), &dev)?;
    let cs = Tensor::ones((5, 8), DType::F32, &dev)?;
    assert_eq!(rope(&x, &cs, &cs)?.dims(), &[2, 3, 5, 8]);
    assert_eq!(heads(&x)?.dims(), &[2, 3, 4, 5, 2]);
    assert_eq!(plane_norm(&x)?.dims(), &[2, 3, 5, 8]);
    let (y, b) = project(&x, &Tensor::ones((8, 6), DType::F32, &dev)?, &Tensor::ones(6, DType::F32, &dev)?)?;
    assert_eq!((y.dims(), b.dims()), (&[2, 3, 5, 6][..], &[2, 3, 5, 6][..]));
    let (s, m, l) = totals(&x.get(0)?)?;
    assert_eq!((s.dims(), m.dims(), l.dims()), (&[1, 5, 1][..], &[1, 1, 1][..], &[3, 5, 8][..]));
    println!("{}", rms_norm::GRAPH.to_text());
    Ok(())
}
