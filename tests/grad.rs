//! Gradients through generated functions: `loss.backward()` after a fused call gives every tracked
//! input the gradient Candle's autograd gives the same function run eagerly (node by node as
//! Candle ops), and both agree with central differences of the function in f64.
//!
//! Each example graph is called with its tensor inputs as `Var`s (all of them, and a random
//! subset), and the loss is `sum_i sum(out_i * c_i)` with random cotangents `c_i`, so that every
//! output's gradient enters with its own weights. A call whose inputs track nothing returns
//! outputs that track nothing. With any number of tracked inputs, the fused gradient must come
//! from the function's backward graph (`name::BACKWARD`).

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

/// Cases whose eager gradient is Candle's own backward of `gelu` / `gelu_erf`, which uses
/// six-digit constants (about 2e-7 relative off the exact derivative the backward graph
/// computes): compared at 1e-5. Central differences check the fused gradient at 1e-5 below.
const CANDLE_APPROXIMATES: &[&str] = &["gelu", "gelu_erf"];

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
    let tied = graph_runtime::testing::tied_outputs();
    let fused = gradients(case, &inputs, &vars, &cotangents, Mode::Fused)?;
    let eager = gradients(case, &inputs, &vars, &cotangents, Mode::Eager)?;
    let name = case.name;
    // With any number of tracked inputs, the fused call's gradient comes from its backward graph
    // (every example graph has one; past three inputs, through a chain of ops).
    // (An input reached only through a comparison or a condition has no gradient to tie.)
    let count = vars.iter().flatten().count();
    if fused.iter().any(Option::is_some) {
        assert!(
            graph_runtime::testing::tied_outputs() > tied,
            "{name}: with {count} tracked inputs the gradient did not come from the backward graph"
        );
    }
    for (i, (f, e)) in fused.iter().zip(&eager).enumerate() {
        match (f, e) {
            (Some(f), Some(e)) => {
                let tol = if CANDLE_APPROXIMATES.contains(&name) {
                    1e-5
                } else {
                    1e-10
                };
                assert_close(f, e, tol, &format!("{name}: gradient of input {i}"))?
            }
            (None, None) => {}
            // Candle's autograd stops at `floor`, `ceil`, `round` and `sign` (no gradient); the
            // backward graph gives PyTorch's exact zeros, checked below.
            (Some(_), None) if STEPS.contains(&name) => {}
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
    // Fourth-order central differences: the second-order ones erred by up to 5e-5 of the
    // derivative on a norm of a row with a small mean square (LAZY_GRAPH_SEED=13098832648414614453)
    // and across a column max's kink (LAZY_GRAPH_SEED=10367132386314763104), which a smaller step
    // straddles less often (rounding stays below 1e-9 of the derivative).
    let h = 1e-6;
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
    let measured = (8.0 * (moved(1.0)? - moved(-1.0)?) - (moved(2.0)? - moved(-2.0)?)) / (12.0 * h);
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

/// The largest difference between the gradients `loss.backward()` gives through the fused call
/// in `dtype` and through the eager call in f64 on the same (rounded) inputs, over the scale of
/// the f64 gradient (at least 1), for every tracked input; the worst over inputs.
fn dtype_error(case: &common::Case, rng: &mut StdRng, device: &Device, dtype: DType) -> Result<f64> {
    // Rounded to `dtype` once, so that both sides see the same inputs.
    let inputs = (case.draw)(rng, Sizes::Small)?.to(dtype, device)?;
    let wide = inputs.to(DType::F64, device)?;
    let outputs = with_mode(Mode::Fused, || (case.graph)(&inputs))?;
    // Cotangents that `dtype` holds exactly, as Candle's autograd rounds them to it.
    let cotangents: Vec<Tensor> = outputs
        .iter()
        .map(|y| {
            randn(rng, y.dims(), 0.0, 1.0)?
                .to_dtype(dtype)?
                .to_dtype(DType::F64)?
                .to_device(device)
        })
        .collect::<Result<_>>()?;
    let vars = |i: &Inputs| -> Result<Vec<Option<Var>>> {
        i.tensors.iter().map(|t| Var::from_tensor(t).map(Some)).collect()
    };
    let fused = gradients(case, &inputs, &vars(&inputs)?, &cotangents, Mode::Fused)?;
    // Rounded inputs tie in a row's max; see `TIES`.
    let mode = if TIES.contains(&case.name) {
        Mode::Fused
    } else {
        Mode::Eager
    };
    let exact = gradients(case, &wide, &vars(&wide)?, &cotangents, mode)?;
    let mut worst = 0.0f64;
    for (f, e) in fused.iter().zip(&exact) {
        let (Some(f), Some(e)) = (f, e) else { continue };
        let s = scale(e, 1.0)?;
        let d = (f.to_dtype(DType::F64)? - e)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f64>()?;
        worst = worst.max(d / s);
    }
    Ok(worst)
}

/// Cases with a `max` (of a row, or of a column) as an output. Rounded to a half type, the
/// largest values often tie; PyTorch's `amax`, and the backward graph, split the cotangent evenly among the ties, while
/// Candle's `max` backward gives each of them all of it. Their reference is the backward graph in
/// f64 on the same inputs (the f64 test above ties it to Candle's autograd, where no values tie).
const TIES: &[&str] = &["masked", "column_stats"];

/// Gradients in every float dtype against f64 autograd on the same inputs, each within its
/// dtype's tolerance (relative to the largest gradient, at least 1): f32 1e-5 (observed at most
/// 4e-7: the backward's kernels compute in f32 over rows of up to a few dozen values); f16 4e-3
/// and bf16 3e-2, 8 roundings of the half type (observed at most 6e-4 and 6e-3: values are
/// stored in it between the backward's kernels). `rounding` is left out: its gradient is exactly
/// 0 in every dtype, checked in f64 above. Three tracked inputs at most, so each call goes through its
/// backward graph (`lora` tracks all four and runs as Candle ops).
fn gradients_in_every_dtype(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 4e-3), (DType::BF16, 3e-2)] {
        for case in CASES.iter().filter(|c| !STEPS.contains(&c.name)) {
            let worst = dtype_error(case, &mut rng, device, dtype)?;
            assert!(
                worst <= tol,
                "{}: {dtype:?} gradients differ from f64 autograd by {worst:e} of their scale (tolerance {tol:e})",
                case.name
            );
        }
    }
    Ok(())
}
test_device!(gradients_in_every_dtype);

/// Views that track gradients (a transposed and a narrowed slice of a `Var`) as inputs: the
/// gradient reaches the `Var` through the view, as in eager mode.
fn views_as_inputs(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    let (b, s, d) = (2, 5, 7);
    let base = Var::from_tensor(&randn(&mut rng, &[b, d, s + 2], 0.0, 1.0)?.to_device(device)?)?;
    let w = Var::from_tensor(&randn(&mut rng, &[d], 1.0, 0.5)?.to_device(device)?)?;
    let c = randn(&mut rng, &[b, s, d], 0.0, 1.0)?.to_device(device)?;
    let grads = |mode: Mode| -> Result<(Tensor, Tensor)> {
        let x = base.as_tensor().narrow(2, 1, s)?.transpose(1, 2)?;
        let y = with_mode(mode, || common::rms_norm(&x, w.as_tensor(), 1e-5))?;
        let g = (y * &c)?.sum_all()?.backward()?;
        let get = |v: &Var| g.get(v.as_tensor()).cloned().expect("a gradient for each Var");
        Ok((get(&base), get(&w)))
    };
    let tied = graph_runtime::testing::tied_outputs();
    let (fx, fw) = grads(Mode::Fused)?;
    assert!(
        graph_runtime::testing::tied_outputs() > tied,
        "the view's call did not use its backward graph"
    );
    let (ex, ew) = grads(Mode::Eager)?;
    assert_close(&fx, &ex, 1e-10, "rms_norm: gradient of the viewed Var")?;
    assert_close(&fw, &ew, 1e-10, "rms_norm: gradient of w")?;
    // Outside the narrowed window, the viewed Var's gradient is exactly 0.
    let outside = fx.narrow(2, 0, 1)?.abs()?.sum_all()?.to_scalar::<f64>()?;
    assert_eq!(outside, 0.0, "the gradient leaks outside the view");
    Ok(())
}
test_device!(views_as_inputs);

/// Gradients are the same bits from run to run (no atomics, a fixed order of every sum), on
/// rows long enough to be split across threads and blocks.
fn gradients_repeat_bit_for_bit(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for case in [
        &common::RMS_NORM,
        &common::LAYER_NORM,
        &common::SOFTMAX,
        &common::ADD_RMS_NORM,
    ] {
        let inputs = (case.draw)(&mut rng, Sizes::LongRows)?.to(DType::F32, device)?;
        let outputs = with_mode(Mode::Fused, || (case.graph)(&inputs))?;
        let cotangents: Vec<Tensor> = outputs
            .iter()
            .map(|y| randn(&mut rng, y.dims(), 0.0, 1.0)?.to_device(device))
            .collect::<Result<_>>()?;
        let vars: Vec<Option<Var>> = inputs
            .tensors
            .iter()
            .map(|t| Var::from_tensor(t).map(Some))
            .collect::<Result<_>>()?;
        let bits = || -> Result<Vec<Vec<u32>>> {
            gradients(case, &inputs, &vars, &cotangents, Mode::Fused)?
                .iter()
                .map(|g| {
                    let g = g.as_ref().expect("every input has a gradient");
                    Ok(g.flatten_all()?
                        .to_vec1::<f32>()?
                        .iter()
                        .map(|v| v.to_bits())
                        .collect())
                })
                .collect()
        };
        let first = bits()?;
        for _ in 0..3 {
            assert!(bits()? == first, "{}: gradients changed between runs", case.name);
        }
    }
    Ok(())
}
test_device!(gradients_repeat_bit_for_bit);

graph_runtime::lazy_graph! {
    /// A scalar argument broadcast into a row under a mean: the mean's cotangent stays `[1]`,
    /// standing for its broadcast, and `y`'s gradient once missed the sum over the row (`D`).
    fn broadcast_under_mean(x: Tensor[D], y: Tensor[]) -> Tensor[1] {
        exp(mean(x - y, -1))
    }

    /// The same through a sum over a broadcast and a transpose: `x - x` cancels, so `x`'s
    /// gradient is exactly 0 (it was `N * D - N`).
    fn broadcast_under_sum(x: Tensor[1, 1], _n: Tensor[N], _d: Tensor[D]) -> Tensor[N, 1] {
        sum(x.broadcast_as([D, N]).transpose(-2, -1) + x.neg(), 1)
    }

    /// A column reduction of a value computed with a broadcast group absorbed into its row
    /// kernel: taking the value out of that kernel once left it writing the narrower `x0 <= -x1`
    /// row by row of the wider kernel.
    fn absorbed_into_rows(x0: Tensor[N, 1, D], x1: Tensor[N, 1, D], x2: Tensor[N, N, D]) -> Tensor[N, N, D] {
        -where_(x0 <= (-x1), x1 + x2, x2 * 2.0)
    }

    /// An output that is a library step's view (a transpose of a broadcast): tying it to the
    /// tracked input once handed Candle the view's small storage as if it were contiguous.
    fn view_output(x: Tensor[N], _d: Tensor[D]) -> Tensor[N, N, D] {
        transpose((x / (abs(x) + 0.5)).broadcast_as([N, D, N]), 1, -1)
    }
}

/// Functions whose fused gradients the random graphs once found wrong, in f64 against eager
/// mode (Candle's autograd: no ties here) and against the values of an eager call.
fn gradients_found_wrong_by_random_graphs(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    let f64_on = |t: Tensor| t.to_device(device);
    let (n, d) = (5, 3);
    type Call = fn(&[&Tensor]) -> graph_runtime::Result<Tensor>;
    let cases: [(&str, Vec<Vec<usize>>, usize, Call); 4] = [
        ("broadcast_under_mean", vec![vec![d], vec![]], 2, |t| {
            broadcast_under_mean(t[0], t[1])
        }),
        (
            "broadcast_under_sum",
            vec![vec![1, 1], vec![n], vec![d]],
            1,
            |t| broadcast_under_sum(t[0], t[1], t[2]),
        ),
        (
            "absorbed_into_rows",
            vec![vec![n, 1, d], vec![n, 1, d], vec![n, n, d]],
            3,
            |t| absorbed_into_rows(t[0], t[1], t[2]),
        ),
        ("view_output", vec![vec![n], vec![d]], 1, |t| {
            view_output(t[0], t[1])
        }),
    ];
    for (name, shapes, tracked, f) in cases {
        let values: Vec<Tensor> = shapes
            .iter()
            .map(|s| f64_on(randn(&mut rng, s, 0.5, 1.0)?))
            .collect::<Result<_>>()?;
        let vars: Vec<Var> = values[..tracked]
            .iter()
            .map(Var::from_tensor)
            .collect::<Result<_>>()?;
        let mut args: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
        args.extend(&values[tracked..]);
        let run = |mode: Mode| -> Result<(Tensor, Vec<Tensor>)> {
            let y = with_mode(mode, || f(&args))?;
            let c = randn(
                &mut <StdRng as rand::SeedableRng>::seed_from_u64(7),
                y.dims(),
                0.0,
                1.0,
            )?
            .to_device(device)?;
            let grads = (y.contiguous()? * c)?.sum_all()?.backward()?;
            // No gradient (an argument read only by a comparison, in eager mode) is zero.
            let g = vars
                .iter()
                .map(|v| {
                    grads
                        .get(v.as_tensor())
                        .cloned()
                        .map_or_else(|| v.zeros_like(), Ok)
                })
                .collect::<Result<_>>()?;
            Ok((y, g))
        };
        let (fy, fg) = run(Mode::Fused)?;
        let (ey, eg) = run(Mode::Eager)?;
        assert_close(&fy, &ey, 1e-12, &format!("{name}: values"))?;
        for (k, (f, e)) in fg.iter().zip(&eg).enumerate() {
            assert_close(f, e, 1e-10, &format!("{name}: gradient of argument {k}"))?;
        }
    }
    Ok(())
}
test_device!(gradients_found_wrong_by_random_graphs);
