//! The backward graphs the macro derives (`name::BACKWARD`) against Candle's autograd.
//!
//! For each example graph, random f64 inputs and output cotangents `c_i`: `BACKWARD` run on
//! `(inputs.., c..)`, in fused and in eager mode, returns the gradient of
//! `loss = sum_i sum(out_i * c_i)` with respect to each tensor input, which must agree with what
//! `loss.backward()` gives for the forward run eagerly on `Var`s (an input without a path to
//! the loss has gradient 0).

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor, Var};
use common::{randn, Case, Sizes};
use graph_runtime::{with_mode, Graph, Mode};

/// Which forward Candle's autograd differentiates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forward {
    /// The generated function, in eager mode.
    Eager,
    /// The case's hand-written reference.
    Reference,
}

/// The example graphs with a backward, their `BACKWARD` statics, and the forward to compare with.
const CASES: &[(Case, &Graph, Forward)] = &[
    (common::SOFTMAX, &common::softmax::BACKWARD, Forward::Eager),
    (
        common::LOG_SOFTMAX,
        &common::log_softmax::BACKWARD,
        Forward::Eager,
    ),
    (common::LOGSUMEXP, &common::logsumexp::BACKWARD, Forward::Eager),
    (common::RMS_NORM, &common::rms_norm::BACKWARD, Forward::Eager),
    (common::LAYER_NORM, &common::layer_norm::BACKWARD, Forward::Eager),
    (common::GELU, &common::gelu::BACKWARD, Forward::Reference),
    (common::GELU_ERF, &common::gelu_erf::BACKWARD, Forward::Reference),
    (common::SILU, &common::silu::BACKWARD, Forward::Eager),
    (common::SWIGLU, &common::swiglu::BACKWARD, Forward::Eager),
    (common::ROPE, &common::rope::BACKWARD, Forward::Eager),
    (common::LORA, &common::lora::BACKWARD, Forward::Eager),
    (common::ATTENTION, &common::attention::BACKWARD, Forward::Eager),
    (
        common::ADD_RMS_NORM,
        &common::add_rms_norm::BACKWARD,
        Forward::Eager,
    ),
    (
        common::CENTER_COLUMNS,
        &common::center_columns::BACKWARD,
        Forward::Eager,
    ),
    (
        common::LOG1P_EXPM1,
        &common::log1p_expm1::BACKWARD,
        Forward::Eager,
    ),
    (common::ROUNDING, &common::rounding::BACKWARD, Forward::Eager),
    (common::MASKED, &common::masked::BACKWARD, Forward::Eager),
];

/// `graph` on `tensors` and `scalars`: its outputs, one per tensor parameter of the forward.
fn run(
    graph: &'static Graph,
    tensors: &[&Tensor],
    scalars: &[f64],
    n: usize,
) -> graph_runtime::Result<Vec<Tensor>> {
    use graph_runtime::__private::run;
    Ok(match n {
        1 => run::<1>(graph, tensors, scalars)?.to_vec(),
        2 => run::<2>(graph, tensors, scalars)?.to_vec(),
        3 => run::<3>(graph, tensors, scalars)?.to_vec(),
        4 => run::<4>(graph, tensors, scalars)?.to_vec(),
        _ => unreachable!("the example graphs have at most 4 tensor parameters"),
    })
}

/// Asserts that `a` and `b` agree to within `tol` times the larger of their magnitudes (at least
/// 1), with NaN exactly where the other has NaN.
fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) -> Result<()> {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    let values = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
    let (va, vb) = (values(a)?, values(b)?);
    let size = (va.iter().chain(&vb))
        .filter(|v| !v.is_nan())
        .fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in va.iter().zip(&vb).enumerate() {
        let ok = if x.is_nan() || y.is_nan() {
            x.is_nan() && y.is_nan()
        } else {
            x == y || (x - y).abs() <= tol * size
        };
        assert!(
            ok,
            "{what}: element {i} is {x:e}, autograd gives {y:e}\nbackward: {a}\nautograd: {b}"
        );
    }
    Ok(())
}

fn check(
    case: &Case,
    backward: &'static Graph,
    forward: Forward,
    rng: &mut rand::rngs::StdRng,
    device: &Device,
) -> Result<()> {
    let name = case.name;
    let inputs = (case.draw)(rng, Sizes::Small)?.to(DType::F64, device)?;
    let vars: Vec<Var> = inputs
        .tensors
        .iter()
        .map(Var::from_tensor)
        .collect::<Result<_>>()?;
    let tracked = common::Inputs {
        tensors: vars.iter().map(|v| v.as_tensor().clone()).collect(),
        ..inputs.clone()
    };
    let outputs = match forward {
        Forward::Eager => with_mode(Mode::Eager, || (case.graph)(&tracked))?,
        Forward::Reference => (case.reference)(&tracked)?,
    };
    let cotangents: Vec<Tensor> = outputs
        .iter()
        .map(|y| randn(rng, y.dims(), 0.0, 1.0)?.to_device(device))
        .collect::<Result<_>>()?;
    let mut loss = Tensor::zeros((), DType::F64, device)?;
    for (y, c) in outputs.iter().zip(&cotangents) {
        loss = (loss + (y * c)?.sum_all()?)?;
    }
    let grads = loss.backward()?;
    let expected: Vec<Tensor> = vars
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => v.as_tensor().zeros_like(),
        })
        .collect::<Result<_>>()?;
    let tensors: Vec<&Tensor> = inputs.tensors.iter().chain(&cotangents).collect();
    let scalars: Vec<f64> = inputs.scalars.iter().map(|&s| f64::from(s)).collect();
    for mode in [Mode::Fused, Mode::Eager] {
        let got = with_mode(mode, || run(backward, &tensors, &scalars, vars.len()))?;
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_close(
                g,
                e,
                1e-9,
                &format!("{name}: gradient of input {i} in {mode:?} mode"),
            )?;
        }
    }
    Ok(())
}

fn backward_graphs_match_candles_autograd(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for (case, backward, forward) in CASES {
        for _ in 0..4 {
            check(case, backward, *forward, &mut rng, device)?;
        }
    }
    Ok(())
}
test_device!(backward_graphs_match_candles_autograd);

#[test]
fn backward_graphs_print() {
    let text = common::rms_norm::BACKWARD.to_text();
    assert!(text.contains("dy"), "{text}");
    eprintln!("{text}");
    assert!(!common::rms_norm::BACKWARD.to_dot().is_empty());
}
