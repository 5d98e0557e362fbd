//! Every pointwise op, in call and method syntax, with operators, literals, f32/f64 scalars,
//! symbol sizes used as values, and a deliberately unused `_` parameter.

use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// Every one-argument op as a function call.
    pub fn unary_calls(x: Tensor[N, D]) -> Tensor[N, D] {
        let p = abs(x) + 1.0;
        let a = neg(x) + exp(x) + log(p) + sqrt(p) + rsqrt(p) + recip(p) + sqr(x);
        let b = sin(x) + cos(x) + tanh(x) + erf(x) + sigmoid(x);
        let c = floor(x) + ceil(x) + round(x) + sign(x) + log1p(p) + expm1(x);
        a + b + c + silu(x) + gelu(x) + gelu_erf(x) + relu(x)
    }

    /// The same ops as methods.
    pub fn unary_methods(x: Tensor[N, D]) -> Tensor[N, D] {
        let p = x.abs() + 1.0;
        let a = x.neg() + x.exp() + p.log() + p.sqrt() + p.rsqrt() + p.recip() + x.sqr();
        let b = x.sin() + x.cos() + x.tanh() + x.erf() + x.sigmoid();
        let c = x.floor() + x.ceil() + x.round() + x.sign() + p.log1p() + x.expm1();
        a + b + c + x.silu() + x.gelu() + x.gelu_erf() + x.relu()
    }

    /// Two-argument ops by name, and the arithmetic operators with unary minus.
    pub fn binary(a: Tensor[N, D], b: Tensor[D], s: f32, t: f64) -> Tensor[N, D] {
        let named = add(a, b) + sub(a, b) + mul(a, s) + div(a, t) + a.pow(2.0);
        let bounds = maximum(a, b) + a.minimum(b) + a.maximum(0.5);
        named + bounds + (-a + b - s) * t / 2 - 1e-3
    }

    /// Comparisons, by operator and by name, selecting with `where_` and `where_cond`.
    pub fn compare(a: Tensor[N, D], b: Tensor[N, D]) -> Tensor[N, D] {
        let ops = (a < b) + (a <= b) + (a > b) + (a >= b) + (a == b) + (a != b);
        let named = eq(a, b) + ne(a, b) + lt(a, b) + a.le(b) + a.gt(b) + ge(a, b);
        where_(a > 0.0, ops, named) + where_cond(b < 0.0, a, 0.0) + (a > b).where_(a, b)
    }

    /// `clamp` with literal and parameter bounds, in both syntaxes; a size as a value.
    pub fn clip(x: Tensor[N, D], hi: f64, _unused: Tensor[N, D]) -> Tensor[N, D] {
        clamp(x, -1.0, hi) + x.clamp(0, 6) / D
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (3, 4), &dev)?;
    let y = Tensor::randn(0f32, 1.0, (3, 4), &dev)?;
    let b = Tensor::randn(0f32, 1.0, 4, &dev)?;

    let calls = unary_calls(&x)?;
    let methods = unary_methods(&x)?;
    let diff = (calls - methods)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff == 0.0, "call and method syntax differ by {diff}");

    assert_eq!(binary(&x, &b, 0.5, 2.0)?.dims(), &[3, 4]);
    assert_eq!(compare(&x, &y)?.dims(), &[3, 4]);
    let zeros = Tensor::zeros((3, 4), DType::F32, &dev)?;
    assert_eq!(clip(&x, 1.0, &zeros)?.dims(), &[3, 4]);
    Ok(())
}
