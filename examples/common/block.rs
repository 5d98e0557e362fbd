//! A pre-norm SwiGLU MLP block whose norm and activation are generated functions, with
//! candle-nn's linears: `x + down(swiglu(gate(norm(x)), up(norm(x))))`. Shared by the `train`
//! and `decode_graph` examples (each at its own size).

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear_no_bias, Init, Linear, VarBuilder};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// RMS normalisation over the last axis, with a learned scale.
    pub fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// The gated activation of a SwiGLU MLP.
    pub fn swiglu(gate: Tensor[N, F], up: Tensor[N, F]) -> Tensor[N, F] {
        silu(gate) * up
    }
}

/// The norm's epsilon.
pub const EPS: f32 = 1e-6;

pub struct Block {
    norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Block {
    /// A block from `dim` to `hidden` and back, its weights made (or read) through `vb`: the
    /// linears as candle-nn makes them, the norm's scale near 1.
    pub fn new(vb: VarBuilder, dim: usize, hidden: usize) -> Result<Block> {
        let scale = Init::Randn {
            mean: 1.0,
            stdev: 0.1,
        };
        Ok(Block {
            norm: vb.get_with_hints(dim, "norm.weight", scale)?,
            gate: linear_no_bias(dim, hidden, vb.pp("gate"))?,
            up: linear_no_bias(dim, hidden, vb.pp("up"))?,
            down: linear_no_bias(hidden, dim, vb.pp("down"))?,
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = rms_norm(x, &self.norm, EPS)?;
        let a = swiglu(&self.gate.forward(&h)?, &self.up.forward(&h)?)?;
        x + self.down.forward(&a)?
    }
}
