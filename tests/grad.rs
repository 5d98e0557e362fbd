//! Gradients through generated functions: `loss.backward()` after a fused call gives every tracked
//! input the gradient Candle's autograd gives the same function run eagerly (node by node as
//! Candle ops), and both agree with central differences of the function in f64.
//!
//! Each example graph is called with its tensor inputs as `Var`s (all of them, and a random
//! subset), and the loss is `sum_i sum(out_i * c_i)` with random cotangents `c_i`, so that every
//! output's gradient enters with its own weights. A call whose inputs track nothing returns
//! outputs that track nothing.

#[macro_use]
mod common;

use candle_core::{backprop::GradStore, DType, Device, Result, Tensor, Var};
use common::{randn, Inputs, Sizes, CASES};
use graph_runtime::{with_mode, Mode};
use rand::rngs::StdRng;
use rand::Rng;

/// `sum_i sum(out_i * c_i)` of `case` on `inputs`, in `mode`.
fn loss(case: &common::Case, inputs: &Inputs, cotangents: &[Tensor], mode: Mode) -> Result<Tensor> {
    let outputs = with_mode(mode, || (case.graph)(inputs))?;
    let mut total = Tensor::zeros((), DType::F64, &inputs.tensors[0].device().clone())?;
    for (y, c) in outputs.iter().zip(cotangents) {
        total = (total + (y.to_dtype(DType::F64)? * c)?.sum_all()?)?;
    }
    Ok(total)
}

/// The gradient of each input of `vars` (None: the input is not tracked) after `backward` on the
/// loss in `mode`.
fn gradients(
    case: &common::Case,
    inputs: &Inputs,
    vars: &[Option<Var>],
    cotangents: &[Tensor],
    mode: Mode,
) -> Result<Vec<Option<Tensor>>> {
    let tracked = Inputs {
        tensors: inputs
            .tensors
            .iter()
            .zip(vars)
            .map(|(t, v)| v.as_ref().map_or_else(|| t.clone(), |v| v.as_tensor().clone()))
            .collect(),
        ..inputs.clone()
    };
    let grads: GradStore = loss(case, &tracked, cotangents, mode)?.backward()?;
    Ok(vars
        .iter()
        .map(|v| v.as_ref().and_then(|v| grads.get(v.as_tensor()).cloned()))
        .collect())
}

/// The largest absolute value of `t`, at least `floor`.
fn scale(t: &Tensor, floor: f64) -> Result<f64> {
    Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?.max(floor))
}

/// Asserts that `a` and `b` agree to within `tol` times the larger of their magnitudes (at least 1).
fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) -> Result<()> {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    if a.elem_count() == 0 {
        return Ok(());
    }
    let (a, b) = (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?);
    let err = scale(&(&a - &b)?, 0.0)?;
    let size = scale(&a, 1.0)?.max(scale(&b, 1.0)?);
    assert!(
        err <= tol * size,
        "{what}: differ by {err:e} (tolerance {:e})\nfused: {a}\neager: {b}",
        tol * size
    );
    Ok(())
}

/// The cases made of piecewise-constant ops (`floor`, `ceil`, `round`, `sign`).
const STEPS: &[&str] = &["rounding"];

/// Which inputs track gradients: all, or a random non-empty subset.
fn tracking(rng: &mut StdRng, n: usize, all: bool) -> Vec<bool> {
    if all {
        return vec![true; n];
    }
    let mut pick: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
    if !pick.contains(&true) {
        pick[rng.gen_range(0..n)] = true;
    }
    pick
}

/// One case on `device` in f64: fused gradients against eager ones, then against central
/// differences of the fused function along a random direction.
fn check(case: &common::Case, rng: &mut StdRng, device: &Device, all: bool) -> Result<()> {
    let inputs = (case.draw)(rng, Sizes::Small)?.to(DType::F64, device)?;
    let outputs = with_mode(Mode::Fused, || (case.graph)(&inputs))?;
    for y in &outputs {
        assert!(
            !y.track_op(),
            "{}: an output tracks gradients with no input tracking",
            case.name
        );
    }
    let cotangents: Vec<Tensor> = outputs
        .iter()
        .map(|y| randn(rng, y.dims(), 0.0, 1.0)?.to_device(device))
        .collect::<Result<_>>()?;
    let vars: Vec<Option<Var>> = tracking(rng, inputs.tensors.len(), all)
        .into_iter()
        .zip(&inputs.tensors)
        .map(|(t, x)| t.then(|| Var::from_tensor(x)).transpose())
        .collect::<Result<_>>()?;
    let fused = gradients(case, &inputs, &vars, &cotangents, Mode::Fused)?;
    let eager = gradients(case, &inputs, &vars, &cotangents, Mode::Eager)?;
    let name = case.name;
    for (i, (f, e)) in fused.iter().zip(&eager).enumerate() {
        match (f, e) {
            (Some(f), Some(e)) => assert_close(f, e, 1e-10, &format!("{name}: gradient of input {i}"))?,
            (None, None) => {}
            (f, _) => panic!(
                "{name}: input {i} has a gradient in {} mode only",
                if f.is_some() { "fused" } else { "eager" }
            ),
        }
    }
    if STEPS.contains(&name) {
        // Piecewise constant, drawn on the steps (ties of `round` included): central differences
        // straddle them. The gradient is 0 everywhere, as PyTorch's.
        for (i, g) in fused.iter().enumerate() {
            if let Some(g) = g {
                assert_eq!(scale(g, 0.0)?, 0.0, "{name}: input {i}'s gradient is not 0");
            }
        }
        return Ok(());
    }
    // d/dh loss(x + h v) at h = 0 is the sum over inputs of <grad_i, v_i>.
    let direction: Vec<Option<Tensor>> = vars
        .iter()
        .zip(&inputs.tensors)
        .map(|(v, x)| {
            v.as_ref()
                .map(|_| randn(rng, x.dims(), 0.0, 1.0)?.to_device(device))
                .transpose()
        })
        .collect::<Result<_>>()?;
    let mut predicted = 0.0;
    for (g, v) in fused.iter().zip(&direction) {
        if let (Some(g), Some(v)) = (g, v) {
            predicted += (g * v)?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    let h = 1e-5;
    let moved = |sign: f64| -> Result<f64> {
        let moved = Inputs {
            tensors: inputs
                .tensors
                .iter()
                .zip(&direction)
                .map(|(x, v)| match v {
                    Some(v) => x + (v * (sign * h))?,
                    None => Ok(x.clone()),
                })
                .collect::<Result<_>>()?,
            ..inputs.clone()
        };
        loss(case, &moved, &cotangents, Mode::Fused)?.to_scalar::<f64>()
    };
    let measured = (moved(1.0)? - moved(-1.0)?) / (2.0 * h);
    let tol = 1e-5 * predicted.abs().max(measured.abs()).max(1.0);
    assert!(
        (predicted - measured).abs() <= tol,
        "{name}: the gradient predicts {predicted:e} along a random direction, central differences \
         measure {measured:e}"
    );
    Ok(())
}

fn gradients_match_eager_and_finite_differences(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for case in CASES {
        for all in [true, false, false] {
            check(case, &mut rng, device, all)?;
        }
    }
    Ok(())
}
test_device!(gradients_match_eager_and_finite_differences);
