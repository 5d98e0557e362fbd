//! Defines a few fused functions, runs them on the CPU and prints their results and a graph.
//!
//!     cargo run --example quickstart

use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// Softmax over the last axis.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let e = exp(x - max(x, -1));
        e / sum(e, -1)
    }

    /// RMS normalisation with a learned scale.
    pub fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// The residual stream and its normalised copy, from one graph.
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    /// A gated MLP activation.
    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        g.silu() * u
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 5), &dev)?;
    println!("x =\n{x}");
    let p = softmax(&x)?;
    println!("softmax(x) =\n{p}");
    println!("rows sum to {}", p.sum(1)?);

    let x3 = Tensor::randn(0f32, 1.0, (1, 2, 4), &dev)?;
    let w = Tensor::randn(1f32, 0.1, 4, &dev)?;
    println!("rms_norm =\n{}", rms_norm(&x3, &w, 1e-6)?);

    let r = Tensor::randn(0f32, 1.0, (2, 5), &dev)?;
    let w5 = Tensor::ones(5, DType::F32, &dev)?;
    let (h, y) = add_rms_norm(&x, &r, &w5, 1e-6)?;
    println!("x + r =\n{h}\nnormalised =\n{y}");

    let u = Tensor::randn(0f32, 1.0, (2, 5), &dev)?;
    println!("swiglu =\n{}", swiglu(&x, &u)?);

    // Shape errors are caught before anything runs.
    let bad = Tensor::zeros((2, 3), DType::F32, &dev)?;
    println!(
        "add_rms_norm with a mismatched residual: {}",
        add_rms_norm(&x, &bad, &w5, 1e-6).unwrap_err()
    );

    println!("\n{}", add_rms_norm::GRAPH.to_text());
    println!("{}", softmax::GRAPH.to_dot());
    Ok(())
}
