//! A decode step captured into a CUDA graph: one token through 16 pre-norm SwiGLU blocks (a
//! generated RMSNorm and SwiGLU, candle-nn's linears) is ~100 small kernels, each of which
//! costs more to launch than to run. Captured once (`graph_runtime::cuda_graph`), a step is one
//! launch. Prints steps per second both ways, after checking that they compute the same.
//!
//!     cargo run --release --features cuda --example decode_graph

use std::time::Instant;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear_no_bias, Init, Linear, VarBuilder, VarMap};
use graph_runtime::cuda_graph;

#[path = "common/block.rs"]
mod block;

use block::{rms_norm, Block, EPS};

const DIM: usize = 1024;
const HIDDEN: usize = 2816;
const LAYERS: usize = 16;
const VOCAB: usize = 4096;

/// The step: the token's embedding through the blocks, the final norm and the LM head.
struct Model {
    embedding: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    head: Linear,
}

impl Model {
    fn step(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        self.head.forward(&rms_norm(&h, &self.norm, EPS)?)
    }
}

fn main() -> Result<()> {
    let device = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("**** no usable GPU ({e}): this example needs one; nothing run ****");
            return Ok(());
        }
    };
    let dtype = DType::BF16;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, dtype, &device);
    let model = Model {
        embedding: vb.get_with_hints(
            (VOCAB, DIM),
            "embedding",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?,
        blocks: (0..LAYERS)
            .map(|l| Block::new(vb.pp(format!("block{l}")), DIM, HIDDEN))
            .collect::<Result<_>>()?,
        norm: vb.get_with_hints(DIM, "norm", Init::Const(1.0))?,
        head: linear_no_bias(DIM, VOCAB, vb.pp("head"))?,
    };
    let tokens: Vec<usize> = (0..200).map(|i| (i * 7919) % VOCAB).collect();
    let embed = |t: usize| model.embedding.narrow(0, t, 1);

    // The input buffer the graph reads; each step writes the next token's embedding into it.
    // (A copy: a row of the table is a view sharing its storage, which each write would change.)
    let x = embed(0)?.copy()?;
    let first = model.step(&x)?; // warm-up: kernels compile, cuBLAS starts
                                 // SAFETY: this program uses the device from this thread only, and the step drops no tensor
                                 // made before the capture.
    let graph = unsafe { cuda_graph::capture(&device, || model.step(&x)) }?;
    let same = (graph.outputs() - &first)?
        .abs()?
        .max_all()?
        .to_dtype(DType::F32)?;
    println!(
        "captured step against the uncaptured one: largest difference {}",
        same.to_scalar::<f32>()?
    );

    let time = |captured: bool| -> Result<f64> {
        device.synchronize()?;
        let start = Instant::now();
        for &t in &tokens {
            let e = embed(t)?;
            if captured {
                cuda_graph::write(&x, &e)?;
                graph.replay()?;
            } else {
                model.step(&e)?;
            }
        }
        device.synchronize()?;
        Ok(tokens.len() as f64 / start.elapsed().as_secs_f64())
    };
    // Best of three rounds taking the two ways in turn.
    let (mut launched, mut replayed) = (0f64, 0f64);
    for _ in 0..3 {
        launched = launched.max(time(false)?);
        replayed = replayed.max(time(true)?);
    }
    let kernels = LAYERS * 6 + 2;
    println!(
        "{LAYERS} blocks, dim {DIM}, bf16, about {kernels} kernels a step: {launched:.0} steps/s launched one by one, \
         {replayed:.0} steps/s replayed from a CUDA graph ({:.2}x)",
        replayed / launched
    );
    Ok(())
}
