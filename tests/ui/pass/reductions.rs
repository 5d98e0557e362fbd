//! Every reduction and composite, over the last axis and others, in the norms models use; tuple
//! returns.

use candle_core::{Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// Every reduction, each keeping its axis as size 1.
    pub fn stats(x: Tensor[N, D]) -> (Tensor[N, 1], Tensor[N, 1], Tensor[1, D], Tensor[N, 1], Tensor[N, 1]) {
        (sum(x, -1), x.mean(1), max(x, 0), x.min(-1), var(x, -1))
    }

    /// The softmax family, as calls and methods, over the last and the first axis.
    pub fn probabilities(x: Tensor[B, S, V]) -> (Tensor[B, S, V], Tensor[B, S, V], Tensor[B, S, 1], Tensor[B, S, V]) {
        (softmax(x, -1), x.log_softmax(2), logsumexp(x, -1), x.softmax(0))
    }

    /// RMS normalisation with a learned scale.
    pub(crate) fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Layer normalisation; the mean is shared with `var`'s.
    fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f64) -> Tensor[N, D] {
        (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
    }

    /// The residual stream and its normalised copy: two outputs.
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (3, 5), &dev)?;
    let (s, m, mx, mn, v) = stats(&x)?;
    assert_eq!(
        (s.dims(), m.dims(), mx.dims(), mn.dims(), v.dims()),
        (&[3, 1][..], &[3, 1][..], &[1, 5][..], &[3, 1][..], &[3, 1][..])
    );

    let logits = Tensor::randn(0f32, 1.0, (2, 3, 7), &dev)?;
    let (p, lp, lse, p0) = probabilities(&logits)?;
    assert_eq!(
        (p.dims(), lp.dims(), lse.dims(), p0.dims()),
        (&[2, 3, 7][..], &[2, 3, 7][..], &[2, 3, 1][..], &[2, 3, 7][..])
    );

    let w = Tensor::randn(1f32, 0.1, 5, &dev)?;
    let b = Tensor::randn(0f32, 0.1, 5, &dev)?;
    assert_eq!(rms_norm(&x.unsqueeze(0)?, &w, 1e-6)?.dims(), &[1, 3, 5]);
    assert_eq!(layer_norm(&x, &w, &b, 1e-5)?.dims(), &[3, 5]);
    let (h, y) = add_rms_norm(&x, &x, &w, 1e-6)?;
    assert_eq!((h.dims(), y.dims()), (&[3, 5][..], &[3, 5][..]));
    Ok(())
}
