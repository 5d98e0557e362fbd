//! Generated functions inside a candle-nn model: a stack of pre-norm SwiGLU MLP blocks whose norm
//! and activation come from `lazy_graph!`, checked against the same blocks written with candle-nn's
//! ops.
//!
//!     cargo run --example model

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear_no_bias, Init, Linear, VarBuilder, VarMap};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// RMS normalisation over the last axis, with a learned scale.
    fn rms_norm(x: Tensor[B, T, D], w: Tensor[D], eps: f32) -> Tensor[B, T, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// The gated activation of a SwiGLU MLP.
    fn swiglu(gate: Tensor[B, T, F], up: Tensor[B, T, F]) -> Tensor[B, T, F] {
        silu(gate) * up
    }
}

const EPS: f32 = 1e-6;

/// `x + down(swiglu(gate(norm(x)), up(norm(x))))`.
struct Block {
    norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Block {
    fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Block> {
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

    /// The same block with candle-nn's ops, as the reference.
    fn forward_candle_nn(&self, x: &Tensor) -> Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.norm, EPS)?;
        let a = (candle_nn::ops::silu(&self.gate.forward(&h)?)? * self.up.forward(&h)?)?;
        x + self.down.forward(&a)?
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // The generated functions return graph_runtime::Result; `?` converts the error.
        let h = rms_norm(x, &self.norm, EPS)?;
        let a = swiglu(&self.gate.forward(&h)?, &self.up.forward(&h)?)?;
        x + self.down.forward(&a)?
    }
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let (dim, hidden) = (64, 172);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let blocks = (0..2)
        .map(|i| Block::new(dim, hidden, vb.pp(format!("block{i}"))))
        .collect::<Result<Vec<_>>>()?;

    let x = Tensor::randn(0f32, 1.0, (2, 5, dim), &dev)?;
    let y = blocks.iter().try_fold(x.clone(), |h, block| h.apply(block))?;
    let expected = blocks
        .iter()
        .try_fold(x, |h, block| block.forward_candle_nn(&h))?;

    let diff = (&y - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
    println!("output {:?}", y.dims());
    println!("max |lazy_graph - candle-nn| = {diff:.2e}");
    assert!(diff < 1e-4, "the two models disagree");
    Ok(())
}
