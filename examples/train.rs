//! Training through generated functions: a pre-norm SwiGLU MLP block whose norm and activation come
//! from `lazy_graph!`, fitted with candle-nn's AdamW to a random teacher block. `loss.backward()`
//! reaches every weight through the generated functions (their backward graphs, derived by the
//! macro, run fused), and the loss curve is the same as that of the block run in eager mode (each
//! op a Candle op, with Candle's own gradients). Then the explicit backward API, for loops that
//! drive their own gradients: `rms_norm_backward` against autograd's.
//!
//!     cargo run --release --example train
//!     cargo run --release --example train --features cuda -- cuda

use std::time::Instant;

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use graph_runtime::{with_mode, Mode};

#[path = "common/block.rs"]
mod block;

use block::{rms_norm, rms_norm_backward, Block, EPS};

const DIM: usize = 64;
const HIDDEN: usize = 172;
const ROWS: usize = 256;
const STEPS: usize = 200;

/// The losses of `STEPS` AdamW steps fitting a block that starts from a copy of `init`'s weights
/// to `target` in `mode`, and the seconds per step.
fn fit(mode: Mode, init: &VarMap, x: &Tensor, target: &Tensor, device: &Device) -> Result<(Vec<f32>, f64)> {
    let vars = VarMap::new();
    for (name, var) in init.data().lock().unwrap().iter() {
        let copy = Var::from_tensor(&var.as_tensor().copy()?)?;
        vars.data().lock().unwrap().insert(name.clone(), copy);
    }
    let block = Block::new(VarBuilder::from_varmap(&vars, DType::F32, device), DIM, HIDDEN)?;
    let params = ParamsAdamW {
        lr: 1e-2,
        ..Default::default()
    };
    let mut opt = AdamW::new(vars.all_vars(), params)?;
    let mut losses = Vec::with_capacity(STEPS);
    let start = Instant::now();
    for _ in 0..STEPS {
        let loss = with_mode(mode, || -> Result<Tensor> {
            let y = block.forward(x)?;
            (y - target)?.sqr()?.mean_all()
        })?;
        opt.backward_step(&loss)?;
        losses.push(loss.to_scalar::<f32>()?);
    }
    Ok((losses, start.elapsed().as_secs_f64() / STEPS as f64))
}

fn main() -> Result<()> {
    let device = match std::env::args().nth(1).as_deref() {
        Some("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    let x = Tensor::randn(0f32, 1.0, (ROWS, DIM), &device)?;
    let teacher = Block::new(
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &device),
        DIM,
        HIDDEN,
    )?;
    let target = teacher.forward(&x)?;
    // The student's starting weights, shared by both runs.
    let init = VarMap::new();
    Block::new(VarBuilder::from_varmap(&init, DType::F32, &device), DIM, HIDDEN)?;

    let (fused, fused_s) = fit(Mode::Fused, &init, &x, &target, &device)?;
    let (eager, eager_s) = fit(Mode::Eager, &init, &x, &target, &device)?;
    println!("step   fused loss   eager loss");
    for i in (0..STEPS).step_by(STEPS / 10).chain([STEPS - 1]) {
        println!("{i:>4}   {:>10.6}   {:>10.6}", fused[i], eager[i]);
    }
    // Both compute in f32, in different orders: the curves agree to rounding, which AdamW's
    // normalised steps carry along.
    let worst = (fused.iter().zip(&eager))
        .map(|(f, e)| (f - e).abs() / e.abs().max(1e-3))
        .fold(0f32, f32::max);
    println!("largest relative difference between the curves: {worst:.1e}");
    assert!(
        worst < 1e-2,
        "the fused and eager loss curves differ by {worst:e}"
    );
    assert!(fused[STEPS - 1] < fused[0] / 10.0, "the loss did not fall");
    println!(
        "time per step: fused {:.2} ms, eager {:.2} ms",
        fused_s * 1e3,
        eager_s * 1e3
    );

    // The explicit API: gradients of `sum(rms_norm(x, w) * dy)` without autograd.
    let w = Var::from_tensor(&Tensor::randn(1f32, 0.1, DIM, &device)?)?;
    let xv = Var::from_tensor(&x)?;
    let dy = Tensor::randn(0f32, 1.0, (ROWS, DIM), &device)?;
    let (dx, dw) = rms_norm_backward(&x, &w, EPS, &dy)?;
    let grads = with_mode(Mode::Eager, || rms_norm(xv.as_tensor(), w.as_tensor(), EPS))?
        .mul(&dy)?
        .sum_all()?
        .backward()?;
    for (name, ours, theirs) in [
        ("dx", &dx, grads.get(&xv).unwrap()),
        ("dw", &dw, grads.get(&w).unwrap()),
    ] {
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let size = theirs.abs()?.max_all()?.to_scalar::<f32>()?;
        println!("rms_norm_backward {name}: largest difference from autograd {diff:.1e} (of {size:.1e})");
        assert!(diff <= 1e-4 * size.max(1.0), "{name} differs from autograd");
    }
    println!("\n{}", rms_norm::BACKWARD.to_text());
    Ok(())
}
