//! LoRA (Hu et al., 2021): a frozen linear layer plus a trained low-rank update, as one generated
//! function. Shared by `examples/finetune_lora.rs` and `examples/llama` (its attention adapters),
//! each of which includes this file with `#[path]`.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// A frozen linear layer `w` plus its low-rank adapter `a b`, scaled by `alpha / r`.
    pub fn lora(x: Tensor[N, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[N, O] {
        x.matmul(w) + x.matmul(a).matmul(b) * scale
    }
}

/// An adapter's rank `r` and `alpha`: the low-rank update is scaled by `alpha / r`.
#[derive(Debug, Clone, Copy)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
}

impl LoraConfig {
    pub fn scale(&self) -> f32 {
        (self.alpha / self.rank as f64) as f32
    }
}

/// The half-width of `a`'s uniform starting values for an input of `in_dim` features: variance
/// `1 / in_dim`, so `x a` keeps the scale of `x`.
pub fn a_half_width(in_dim: usize) -> f64 {
    (3.0 / in_dim as f64).sqrt()
}

/// `x w + (x a) b * alpha / r`: `w` `[in, out]` frozen, `a` `[in, r]` and `b` `[r, out]` trained.
#[derive(Debug, Clone)]
pub struct Lora {
    pub w: Tensor,
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f32,
}

impl Lora {
    /// An adapter over `w` `[in, out]`, which is detached: whatever it is, nothing trains it.
    /// `a` and `b` are `adapter`'s `lora_a` and `lora_b`: from a `VarMap`, its `Var`s of those
    /// names, or new ones as LoRA starts: `a` uniform (see [`a_half_width`]), `b` zeros, so the
    /// layer starts as its base.
    pub fn new(w: &Tensor, config: LoraConfig, adapter: VarBuilder) -> Result<Lora> {
        let (i, o) = w.dims2()?;
        let half = a_half_width(i);
        let uniform = Init::Uniform { lo: -half, up: half };
        Ok(Lora {
            w: w.detach(),
            a: adapter.get_with_hints((i, config.rank), "lora_a", uniform)?,
            b: adapter.get_with_hints((config.rank, o), "lora_b", Init::Const(0.0))?,
            scale: config.scale(),
        })
    }

    /// `x` `[.., in]` to `[.., out]`; `x` is read in place when its rows are contiguous.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (lead, i) = dims.split_at(dims.len() - 1);
        let y = lora(&x.reshape(((), i[0]))?, &self.w, &self.a, &self.b, self.scale)?;
        y.reshape([lead, &[self.w.dim(1)?]].concat())
    }
}
