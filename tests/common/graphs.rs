//! The example graphs every numeric test runs: norms, softmaxes, activations, rope, LoRA,
//! attention and column reductions, each a `lazy_graph!` function of the test crate.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use graph_runtime::lazy_graph;

lazy_graph! {
    /// Softmax over the last axis, written out.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let e = exp(x - max(x, -1));
        e / sum(e, -1)
    }

    /// The `log_softmax` builtin over the last axis of a rank-3 tensor.
    pub fn log_softmax(x: Tensor[B, S, D]) -> Tensor[B, S, D] {
        log_softmax(x, -1)
    }

    /// The `logsumexp` builtin; the reduced axis stays as size 1.
    pub fn logsumexp(x: Tensor[N, D]) -> Tensor[N, 1] {
        x.logsumexp(-1)
    }

    /// RMS normalisation with a learned scale.
    pub fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Layer normalisation with population variance, scale and shift.
    pub fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
    }

    /// GELU, tanh approximation.
    pub fn gelu(x: Tensor[N, D]) -> Tensor[N, D] {
        gelu(x)
    }

    /// GELU, exact (erf) form.
    pub fn gelu_erf(x: Tensor[N, D]) -> Tensor[N, D] {
        x.gelu_erf()
    }

    pub fn silu(x: Tensor[N, D]) -> Tensor[N, D] {
        silu(x)
    }

    /// The gated activation of LLaMA-style MLPs.
    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        g.silu() * u
    }

    /// Rotary embedding, rotate-half form, with per-position cos/sin tables of half width.
    pub fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
        let x1 = narrow(x, -1, 0, D / 2);
        let x2 = narrow(x, -1, D / 2, D / 2);
        let c = cat([cos, cos], -1);
        let s = cat([sin, sin], -1);
        x * c + cat([-x2, x1], -1) * s
    }

    /// A linear layer with a low-rank adapter.
    pub fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
        x.matmul(w) + x.matmul(a).matmul(b) * scale
    }

    /// Attention probabilities; `mask` is 1 where a query may see a key and 0 elsewhere.
    pub fn attention(q: Tensor[B, H, S, K], k: Tensor[B, H, T, K], mask: Tensor[S, T], scale: f32) -> Tensor[B, H, S, T] {
        let scores = q.matmul(k.transpose(-2, -1)) * scale;
        softmax(where_(mask > 0.5, scores, -1e9), -1)
    }

    /// The residual stream and its normalised copy: two outputs.
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    /// The rounding ops and `sign`, four outputs of one pointwise kernel.
    pub fn rounding(x: Tensor[N, D]) -> (Tensor[N, D], Tensor[N, D], Tensor[N, D], Tensor[N, D]) {
        (floor(x), x.ceil(), round(x), x.sign())
    }

    /// `log1p` and `expm1`, whose values near 0 their naive forms get wrong.
    pub fn log1p_expm1(x: Tensor[N, D]) -> (Tensor[N, D], Tensor[N, D]) {
        (log1p(x), x.expm1())
    }

    /// A row max and a softmax over the positions `mask` keeps, masking with `-inf`.
    pub fn masked(x: Tensor[N, D], mask: Tensor[N, D]) -> (Tensor[N, 1], Tensor[N, D]) {
        let s = where_(mask > 0.5, x, -inf);
        (max(s, -1), softmax(s, -1))
    }

    /// Column means (a reduction over axis 0) and the centred columns.
    pub fn center_columns(x: Tensor[N, D]) -> (Tensor[1, D], Tensor[N, D]) {
        let m = mean(x, 0);
        (m, x - m)
    }

    /// Reductions over axes other than the last (column kernels), of values computed in them:
    /// over the leading axis, a middle one, and both leading axes through a reshape.
    pub fn column_stats(x: Tensor[B, S, D], w: Tensor[D]) -> (Tensor[1, S, D], Tensor[B, 1, D], Tensor[1, S, D], Tensor[D]) {
        let m = max(x * w, 1);
        let s = sum(x * w, 0);
        (s, m, mean(x * x, 0) * min(exp(x), 0), reshape(sum(reshape(exp(x) * w, [B * S, D]), 0), [D]))
    }
}
