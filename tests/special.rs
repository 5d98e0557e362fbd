//! Special values through every op: `0`, `-0`, `±inf`, NaN and negative numbers, fused and eager,
//! in every dtype, on every device (`test_device!`). Each op has a row of inputs and the results
//! PyTorch 2.x gives for them (derived from its documented semantics and kernels: `torch.maximum`
//! and `amax` propagate NaN, `relu` is `clamp_min(x, 0)`, `silu` is `x / (1 + exp(-x))`, the
//! GELUs are the textbook formulas, `pow` is C's `pow`, `logsumexp` replaces an infinite max by
//! 0 before subtracting it).
//!
//! A result matches when it is of the same class as the expected value: both NaN, the same
//! infinity, or finite and within the dtype's tolerance ([`tolerance`], relative to
//! `max(|want|, 1)`). The sign of a zero is not compared (PyTorch's own kernels differ there);
//! signed zeros in inputs are, through ops that turn them into infinities (`recip(-0) = -inf`).
//! Fused and eager both meeting one table is what makes them agree.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::tolerance;
use graph_ir::{BinaryOp, ReduceOp, UnaryOp};
use graph_runtime::{lazy_graph, with_mode, Mode};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

lazy_graph! {
    fn t_neg(x: Tensor[N]) -> Tensor[N] { -x }
    fn t_abs(x: Tensor[N]) -> Tensor[N] { abs(x) }
    fn t_exp(x: Tensor[N]) -> Tensor[N] { exp(x) }
    fn t_log(x: Tensor[N]) -> Tensor[N] { log(x) }
    fn t_sqrt(x: Tensor[N]) -> Tensor[N] { sqrt(x) }
    fn t_rsqrt(x: Tensor[N]) -> Tensor[N] { rsqrt(x) }
    fn t_recip(x: Tensor[N]) -> Tensor[N] { recip(x) }
    fn t_sqr(x: Tensor[N]) -> Tensor[N] { sqr(x) }
    fn t_sin(x: Tensor[N]) -> Tensor[N] { sin(x) }
    fn t_cos(x: Tensor[N]) -> Tensor[N] { cos(x) }
    fn t_tanh(x: Tensor[N]) -> Tensor[N] { tanh(x) }
    fn t_erf(x: Tensor[N]) -> Tensor[N] { erf(x) }
    fn t_sigmoid(x: Tensor[N]) -> Tensor[N] { sigmoid(x) }
    fn t_silu(x: Tensor[N]) -> Tensor[N] { silu(x) }
    fn t_gelu(x: Tensor[N]) -> Tensor[N] { gelu(x) }
    fn t_gelu_erf(x: Tensor[N]) -> Tensor[N] { gelu_erf(x) }
    fn t_relu(x: Tensor[N]) -> Tensor[N] { relu(x) }
    fn t_floor(x: Tensor[N]) -> Tensor[N] { floor(x) }
    fn t_ceil(x: Tensor[N]) -> Tensor[N] { ceil(x) }
    fn t_round(x: Tensor[N]) -> Tensor[N] { round(x) }
    fn t_sign(x: Tensor[N]) -> Tensor[N] { sign(x) }
    fn t_log1p(x: Tensor[N]) -> Tensor[N] { log1p(x) }
    fn t_expm1(x: Tensor[N]) -> Tensor[N] { expm1(x) }
    fn t_clamp(x: Tensor[N]) -> Tensor[N] { clamp(x, -1.0, 1.0) }
    fn t_cube(x: Tensor[N]) -> Tensor[N] { pow(x, 3.0) }

    fn t_add(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { a + b }
    fn t_sub(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { a - b }
    fn t_mul(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { a * b }
    fn t_div(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { a / b }
    fn t_pow(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { pow(a, b) }
    fn t_maximum(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { maximum(a, b) }
    fn t_minimum(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { minimum(a, b) }
    fn t_eq(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { eq(a, b) }
    fn t_ne(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { ne(a, b) }
    fn t_lt(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { lt(a, b) }
    fn t_le(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { le(a, b) }
    fn t_gt(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { gt(a, b) }
    fn t_ge(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { ge(a, b) }
    /// `where_` with the condition in `a`: `1` where `a != 0`, else `-1`.
    fn t_where(a: Tensor[N], b: Tensor[N]) -> Tensor[N] { where_(a, b * 0.0 + 1.0, -1.0) }

    fn r_max(x: Tensor[N, D]) -> Tensor[N, 1] { max(x, -1) }
    fn r_min(x: Tensor[N, D]) -> Tensor[N, 1] { min(x, -1) }
    fn r_sum(x: Tensor[N, D]) -> Tensor[N, 1] { sum(x, -1) }
    fn r_mean(x: Tensor[N, D]) -> Tensor[N, 1] { mean(x, -1) }
    fn r_var(x: Tensor[N, D]) -> Tensor[N, 1] { var(x, -1) }
    fn r_logsumexp(x: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) }
    /// Two logsumexps in one row kernel, each with its own infinite-max rule.
    fn r_two_logsumexps(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) + logsumexp(y, -1) }
    fn r_softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }
    fn r_log_softmax(x: Tensor[N, D]) -> Tensor[N, D] { log_softmax(x, -1) }
    /// Reductions over the first axis: a library step in fused mode.
    fn c_max(x: Tensor[D, N]) -> Tensor[1, N] { max(x, 0) }
    fn c_min(x: Tensor[D, N]) -> Tensor[1, N] { min(x, 0) }
    fn c_sum(x: Tensor[D, N]) -> Tensor[1, N] { sum(x, 0) }
    fn c_mean(x: Tensor[D, N]) -> Tensor[1, N] { mean(x, 0) }
    fn c_var(x: Tensor[D, N]) -> Tensor[1, N] { var(x, 0) }
    fn c_logsumexp(x: Tensor[D, N]) -> Tensor[1, N] { logsumexp(x, 0) }

    /// Masks with the literal `-inf`: a row it masks entirely has the max `-inf` and a softmax
    /// of NaN, as in PyTorch.
    fn m_max(x: Tensor[N, D], m: Tensor[N, D]) -> Tensor[N, 1] { max(where_(m > 0.5, x, -inf), -1) }
    fn m_softmax(x: Tensor[N, D], m: Tensor[N, D]) -> Tensor[N, D] { softmax(where_(m > 0.5, x, -inf), -1) }
    /// `inf` folded with itself, and against values.
    fn f_inf(x: Tensor[N]) -> (Tensor[N], Tensor[N]) { (x + (inf - inf), minimum(x, inf) - inf) }

    /// Literals only: constant folding computes these at build time.
    fn f_folded(x: Tensor[N]) -> (Tensor[N], Tensor[N], Tensor[N], Tensor[N], Tensor[N]) {
        (x * log(0.0), x + relu(0.0 / 0.0), x + maximum(0.0 / 0.0, 1.0), x * exp(-1.0 / 0.0), x + rsqrt(-0.0))
    }
    /// The same ops on a scalar parameter, computed at run time.
    fn f_scalar(x: Tensor[N], s: f32) -> (Tensor[N], Tensor[N], Tensor[N], Tensor[N], Tensor[N]) {
        (x * log(s), x + relu(s / s), x + maximum(s / s, 1.0), x * exp(-1.0 / s), x + rsqrt(-s))
    }
}

type Unary = fn(&Tensor) -> graph_runtime::Result<Tensor>;
type Binary = fn(&Tensor, &Tensor) -> graph_runtime::Result<Tensor>;

/// The inputs of every unary row.
const X: [f64; 7] = [0.0, -0.0, INF, -INF, NAN, -1.0, 0.5];

/// Each unary op's results at [`X`].
#[rustfmt::skip]
const UNARY: [(&str, Unary, [f64; 7]); 25] = [
    ("neg", t_neg, [-0.0, 0.0, -INF, INF, NAN, 1.0, -0.5]),
    ("abs", t_abs, [0.0, 0.0, INF, INF, NAN, 1.0, 0.5]),
    ("exp", t_exp, [1.0, 1.0, INF, 0.0, NAN, 0.36787944117144233, 1.6487212707001282]),
    ("log", t_log, [-INF, -INF, INF, NAN, NAN, NAN, -std::f64::consts::LN_2]),
    ("sqrt", t_sqrt, [0.0, -0.0, INF, NAN, NAN, NAN, std::f64::consts::FRAC_1_SQRT_2]),
    ("rsqrt", t_rsqrt, [INF, -INF, 0.0, NAN, NAN, NAN, std::f64::consts::SQRT_2]),
    ("recip", t_recip, [INF, -INF, 0.0, -0.0, NAN, -1.0, 2.0]),
    ("sqr", t_sqr, [0.0, 0.0, INF, INF, NAN, 1.0, 0.25]),
    ("sin", t_sin, [0.0, -0.0, NAN, NAN, NAN, -0.8414709848078965, 0.479425538604203]),
    ("cos", t_cos, [1.0, 1.0, NAN, NAN, NAN, 0.5403023058681398, 0.8775825618903728]),
    ("tanh", t_tanh, [0.0, -0.0, 1.0, -1.0, NAN, -0.7615941559557649, 0.46211715726000974]),
    ("erf", t_erf, [0.0, -0.0, 1.0, -1.0, NAN, -0.8427007929497149, 0.5204998778130465]),
    ("sigmoid", t_sigmoid, [0.5, 0.5, 1.0, 0.0, NAN, 0.2689414213699951, 0.6224593312018546]),
    // -inf / (1 + exp(inf)) = -inf / inf.
    ("silu", t_silu, [0.0, -0.0, INF, NAN, NAN, -0.2689414213699951, 0.3112296656009273]),
    // 0.5 * -inf * (1 + tanh(-inf)) = -inf * 0, in both GELUs.
    ("gelu", t_gelu, [0.0, -0.0, INF, NAN, NAN, -0.15880800939172324, 0.34571400982514394]),
    ("gelu_erf", t_gelu_erf, [0.0, -0.0, INF, NAN, NAN, -0.15865525393145707, 0.34573123063700656]),
    ("relu", t_relu, [0.0, 0.0, INF, 0.0, NAN, 0.0, 0.5]),
    ("floor", t_floor, [0.0, -0.0, INF, -INF, NAN, -1.0, 0.0]),
    ("ceil", t_ceil, [0.0, -0.0, INF, -INF, NAN, -1.0, 1.0]),
    // Ties to even: 0.5 rounds to 0.
    ("round", t_round, [0.0, -0.0, INF, -INF, NAN, -1.0, 0.0]),
    // (x > 0) - (x < 0): 0 for NaN.
    ("sign", t_sign, [0.0, 0.0, 1.0, -1.0, 0.0, -1.0, 1.0]),
    ("log1p", t_log1p, [0.0, -0.0, INF, NAN, NAN, -INF, 0.4054651081081644]),
    ("expm1", t_expm1, [0.0, -0.0, INF, -1.0, NAN, -0.6321205588285577, 0.6487212707001282]),
    ("clamp(x, -1, 1)", t_clamp, [0.0, -0.0, 1.0, -1.0, NAN, -1.0, 0.5]),
    ("pow(x, 3)", t_cube, [0.0, -0.0, INF, -INF, NAN, -1.0, 0.125]),
];

/// Every op of the table (`graph_ir::UnaryOp::info`) has a row in [`UNARY`], so each backend's
/// kernels and the eager path are run on it, here and in [`unary_ops_follow_the_table`].
#[test]
fn every_unary_op_has_a_row() {
    let missing: Vec<&str> = UnaryOp::ALL
        .iter()
        .map(|op| op.name())
        .filter(|name| !UNARY.iter().any(|row| row.0 == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "tests/special.rs has no row for {missing:?}: add a graph and PyTorch's results"
    );
}

/// Every binary op and reduction of the tables (`graph_ir::BinaryOp::info`,
/// `graph_ir::ReduceOp::info`) has a row in [`binary`] or [`REDUCTIONS`], so each backend's
/// kernels and the eager path are run on it.
#[test]
fn every_binary_op_and_reduction_has_a_row() {
    let binary = binary();
    let binary_missing = BinaryOp::ALL
        .iter()
        .map(|op| op.name())
        .filter(|name| !binary.iter().any(|row| row.0 == *name));
    let reduce_missing = ReduceOp::ALL
        .iter()
        .map(|op| op.name())
        .filter(|name| !REDUCTIONS.iter().any(|row| row.0 == *name));
    let missing: Vec<&str> = binary_missing.chain(reduce_missing).collect();
    assert!(
        missing.is_empty(),
        "tests/special.rs has no row for {missing:?}: add a graph and PyTorch's results"
    );
}

/// Each binary op's `(a, b, a op b)` cases.
#[rustfmt::skip]
fn binary() -> Vec<(&'static str, Binary, Vec<[f64; 3]>)> {
    // Comparisons are false with a NaN on either side, except `ne`; -0 equals 0.
    let compare = |name, f: Binary, results: [f64; 7]| {
        let pairs = [(NAN, NAN), (NAN, 1.0), (1.0, NAN), (INF, INF), (-INF, INF), (0.0, -0.0), (2.0, 1.0)];
        (name, f, pairs.iter().zip(results).map(|(&(a, b), r)| [a, b, r]).collect())
    };
    vec![
        ("add", t_add as Binary, vec![[INF, -INF, NAN], [INF, 1.0, INF], [NAN, 1.0, NAN], [-INF, -INF, -INF], [-0.0, 0.0, 0.0]]),
        ("sub", t_sub, vec![[INF, INF, NAN], [-INF, INF, -INF], [1.0, NAN, NAN], [INF, -INF, INF]]),
        ("mul", t_mul, vec![[0.0, INF, NAN], [-1.0, INF, -INF], [-INF, -INF, INF], [NAN, 0.0, NAN], [-0.0, 1.0, 0.0]]),
        ("div", t_div, vec![[1.0, 0.0, INF], [-1.0, 0.0, -INF], [1.0, -0.0, -INF], [0.0, 0.0, NAN], [INF, INF, NAN], [1.0, INF, 0.0], [NAN, 1.0, NAN]]),
        // C's pow: a negative base with an integral exponent, 1 for x^0 and 1^y even with NaN.
        ("pow", t_pow, vec![
            [0.0, -1.0, INF], [-0.0, -1.0, -INF], [-0.0, -2.0, INF], [-1.0, 0.5, NAN], [NAN, 0.0, 1.0],
            [1.0, NAN, 1.0], [-1.0, INF, 1.0], [-1.0, -INF, 1.0], [-2.0, 3.0, -8.0], [-2.0, 2.0, 4.0],
            [-2.0, -1.0, -0.5], [INF, -1.0, 0.0], [-INF, 3.0, -INF], [-INF, 2.0, INF], [-INF, 0.5, INF],
            [0.0, 0.0, 1.0], [2.0, -INF, 0.0], [0.5, -INF, INF], [2.0, INF, INF], [NAN, 1.0, NAN],
            [2.0, NAN, NAN], [2.0, 0.5, std::f64::consts::SQRT_2], [0.0, 2.0, 0.0],
        ]),
        ("maximum", t_maximum, vec![[NAN, 1.0, NAN], [1.0, NAN, NAN], [NAN, NAN, NAN], [-INF, 1.0, 1.0], [INF, -INF, INF], [NAN, -INF, NAN], [2.0, 3.0, 3.0]]),
        ("minimum", t_minimum, vec![[NAN, 1.0, NAN], [1.0, NAN, NAN], [NAN, NAN, NAN], [-INF, 1.0, -INF], [INF, -INF, -INF], [NAN, INF, NAN], [2.0, 3.0, 2.0]]),
        compare("eq", t_eq, [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
        compare("ne", t_ne, [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]),
        compare("lt", t_lt, [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
        compare("le", t_le, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
        compare("gt", t_gt, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
        compare("ge", t_ge, [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0]),
        // The condition is true where it is not 0: NaN and infinities are true, -0 false.
        ("where_", t_where, vec![[NAN, 0.0, 1.0], [INF, 0.0, 1.0], [-INF, 0.0, 1.0], [-0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [2.0, 0.0, 1.0]]),
    ]
}

/// The rows every row reduction reads (three columns each).
const ROWS: [[f64; 3]; 9] = [
    [NAN, 1.0, 2.0],
    [1.0, NAN, 2.0],
    [1.0, 2.0, NAN],
    [-INF, -INF, -INF],
    [INF, 1.0, 2.0],
    [INF, -INF, 1.0],
    [1.0, 2.0, 3.0],
    [-INF, 0.0, -INF],
    [NAN, -INF, INF],
];

/// Each reduction's result per row of [`ROWS`]: a NaN anywhere in a row is the max, min and sum
/// of it; `inf + -inf` is NaN; `var` is the population variance, NaN with an infinity (`x - inf`).
#[rustfmt::skip]
const REDUCTIONS: [(&str, Unary, Unary, [f64; 9]); 6] = [
    ("max", r_max, c_max, [NAN, NAN, NAN, -INF, INF, INF, 3.0, 0.0, NAN]),
    ("min", r_min, c_min, [NAN, NAN, NAN, -INF, 1.0, -INF, 1.0, -INF, NAN]),
    ("sum", r_sum, c_sum, [NAN, NAN, NAN, -INF, INF, NAN, 6.0, -INF, NAN]),
    ("mean", r_mean, c_mean, [NAN, NAN, NAN, -INF, INF, NAN, 2.0, -INF, NAN]),
    ("var", r_var, c_var, [NAN, NAN, NAN, NAN, NAN, NAN, 2.0 / 3.0, NAN, NAN]),
    // A row of -inf is -inf and a row with +inf is +inf (PyTorch's logsumexp subtracts 0, not an
    // infinite max); a NaN is NaN.
    ("logsumexp", r_logsumexp, c_logsumexp, [NAN, NAN, NAN, -INF, INF, INF, 3.4076059644443806, 0.0, NAN]),
];

/// `softmax` and `log_softmax` of [`ROWS`]: as PyTorch, NaN for a whole row that holds a NaN, a
/// `+inf` (`inf - inf`), or only `-inf` (a fully masked row: `-inf - -inf`).
#[rustfmt::skip]
fn row_ops() -> [(&'static str, Unary, [[f64; 3]; 9]); 2] {
    let nan = [NAN; 3];
    [
        ("softmax", r_softmax, [nan, nan, nan, nan, nan, nan,
            [0.09003057317038046, 0.24472847105479767, 0.6652409557748219], [0.0, 1.0, 0.0], nan]),
        ("log_softmax", r_log_softmax, [nan, nan, nan, nan, nan, nan,
            [-2.4076059644443806, -1.4076059644443804, -0.4076059644443804], [-INF, 0.0, -INF], nan]),
    ]
}

/// Whether `got` is of `want`'s class: both NaN, the same infinity, or finite and close.
fn matches(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else if want.is_infinite() {
        got == want
    } else {
        got.is_finite() && (got - want).abs() <= tol * want.abs().max(1.0)
    }
}

/// `values` stored as `dtype` on `device`, shaped `shape`.
fn tensor(values: &[f64], shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    Tensor::new(values, &Device::Cpu)?
        .reshape(shape)?
        .to_dtype(dtype)?
        .to_device(device)
}

fn values(t: &Tensor) -> Result<Vec<f64>> {
    t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1()
}

/// Collects every mismatch, to fail once with all of them.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    /// Compares `got` (any shape) with `want` element by element; `inputs(i)` describes element
    /// `i`'s inputs.
    fn check(
        &mut self,
        what: &str,
        got: &Tensor,
        want: &[f64],
        inputs: impl Fn(usize) -> String,
    ) -> Result<()> {
        let tol = tolerance(got.dtype());
        let got = values(got)?;
        assert_eq!(got.len(), want.len(), "{what}: result size");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            if !matches(g, w, tol) {
                self.0.push(format!("{what} at {}: got {g}, want {w}", inputs(i)));
            }
        }
        Ok(())
    }

    fn finish(self, device: &Device) {
        assert!(
            self.0.is_empty(),
            "{} special-value mismatches on {device:?}:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Runs `f(dtype, label)` fused and eagerly in every dtype of `device`; `label` names the mode
/// and dtype for failures. On the CPU, fused kernels run twice: compiled for AVX2 and FMA (where
/// the CPU has them, the default) and for the baseline, whose `exp`/`tanh` differ.
fn in_each_mode(device: &Device, mut f: impl FnMut(DType, &str) -> Result<()>) -> Result<()> {
    // The choice of CPU code is global: one test at a time switches it.
    static SIMD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SIMD.lock().unwrap_or_else(|e| e.into_inner());
    let runs: &[(Mode, bool, &str)] = if device.is_cpu() {
        &[
            (Mode::Fused, true, "Fused"),
            (Mode::Fused, false, "Fused baseline"),
            (Mode::Eager, true, "Eager"),
        ]
    } else {
        &[(Mode::Fused, true, "Fused"), (Mode::Eager, true, "Eager")]
    };
    let result = common::dtypes(device).iter().try_for_each(|&dtype| {
        runs.iter().try_for_each(|&(mode, simd, name)| {
            graph_ir::cpu::set_simd(simd);
            with_mode(mode, || f(dtype, &format!("{name} {dtype:?}")))
        })
    });
    graph_ir::cpu::set_simd(true);
    result
}

fn call(what: &str, r: graph_runtime::Result<Tensor>) -> Tensor {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn unary_ops(device: &Device) -> Result<()> {
    let mut report = Report::default();
    in_each_mode(device, |dtype, label| {
        let x = tensor(&X, &[X.len()], dtype, device)?;
        for (name, f, want) in UNARY {
            let what = format!("{name} ({label})");
            report.check(&what, &call(&what, f(&x)), &want, |i| format!("x = {}", X[i]))?;
        }
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(unary_ops);

/// Ordinary values through every unary op, fused and eager, against the op table's f64 math
/// evaluated at the stored inputs: ties and near-ties of the rounding ops, values near 0 where
/// `log1p`/`expm1` differ from their naive forms, and both signs of each.
fn unary_ops_follow_the_table(device: &Device) -> Result<()> {
    let mut xs: Vec<f64> = (-40..=40).map(|i| f64::from(i) * 0.1).collect();
    xs.extend([
        0.5, 1.5, 2.5, -0.5, -2.5, 0.499, 1e-3, -1e-3, 3e-5, -3e-5, 7.25, -7.75,
    ]);
    let mut report = Report::default();
    in_each_mode(device, |dtype, label| {
        let x = tensor(&xs, &[xs.len()], dtype, device)?;
        let stored = values(&x)?;
        for (name, f, _) in UNARY {
            let Some(op) = UnaryOp::ALL.into_iter().find(|op| op.name() == name) else {
                continue; // a composite row (clamp, pow)
            };
            let want: Vec<f64> = stored.iter().map(|&v| op.eval(v)).collect();
            let what = format!("{name} ({label})");
            report.check(&what, &call(&what, f(&x)), &want, |i| {
                format!("x = {}", stored[i])
            })?;
        }
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(unary_ops_follow_the_table);

fn binary_ops(device: &Device) -> Result<()> {
    let mut report = Report::default();
    let table = binary();
    in_each_mode(device, |dtype, label| {
        for (name, f, cases) in &table {
            let a: Vec<f64> = cases.iter().map(|c| c[0]).collect();
            let b: Vec<f64> = cases.iter().map(|c| c[1]).collect();
            let want: Vec<f64> = cases.iter().map(|c| c[2]).collect();
            let (ta, tb) = (
                tensor(&a, &[a.len()], dtype, device)?,
                tensor(&b, &[b.len()], dtype, device)?,
            );
            let what = format!("{name} ({label})");
            report.check(&what, &call(&what, f(&ta, &tb)), &want, |i| {
                format!("({}, {})", a[i], b[i])
            })?;
        }
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(binary_ops);

fn reductions(device: &Device) -> Result<()> {
    let mut report = Report::default();
    let flat: Vec<f64> = ROWS.iter().flatten().copied().collect();
    let (n, d) = (ROWS.len(), ROWS[0].len());
    let row = |i: usize| format!("row {:?}", ROWS[i]);
    in_each_mode(device, |dtype, label| {
        let x = tensor(&flat, &[n, d], dtype, device)?;
        // The same rows as columns, for the reductions over the first axis.
        let xt = x.t()?.contiguous()?;
        for (name, by_row, by_column, want) in REDUCTIONS {
            let what = format!("{name} over the last axis ({label})");
            report.check(&what, &call(&what, by_row(&x)), &want, row)?;
            let what = format!("{name} over the first axis ({label})");
            report.check(&what, &call(&what, by_column(&xt)), &want, row)?;
        }
        let what = format!("logsumexp(x) + logsumexp(x) ({label})");
        let lse = REDUCTIONS
            .iter()
            .find(|r| r.0 == "logsumexp")
            .expect("a logsumexp row")
            .3;
        report.check(
            &what,
            &call(&what, r_two_logsumexps(&x, &x)),
            &lse.map(|v| 2.0 * v),
            row,
        )?;
        for (name, f, want) in row_ops() {
            let what = format!("{name} ({label})");
            let want: Vec<f64> = want.iter().flatten().copied().collect();
            report.check(&what, &call(&what, f(&x)), &want, |i| row(i / d))?;
        }
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(reductions);

/// Long rows, so that a NaN or an infinity lands in every part of a row reduction: the wide and
/// narrow lanes and the tail on the CPU, each thread's share and the cross-thread steps on a GPU.
fn long_rows(device: &Device) -> Result<()> {
    let mut report = Report::default();
    for len in [1, 5, 8, 31, 32, 33, 100, 257, 1000, 4099] {
        // Row 0 holds no special value; rows 1.. a NaN, then an inf, at each place.
        let mut places: Vec<usize> = [0, 7, 31, 32, len / 2, len - 1]
            .into_iter()
            .filter(|p| *p < len)
            .collect();
        places.sort_unstable();
        places.dedup();
        let base: Vec<f64> = (0..len).map(|j| 3.0 * (j as f64 * 0.7).sin()).collect();
        let mut rows = vec![base.clone()];
        for special in [NAN, INF] {
            for &p in &places {
                let mut r = base.clone();
                r[p] = special;
                rows.push(r);
            }
        }
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        in_each_mode(device, |dtype, label| {
            let x = tensor(&flat, &[rows.len(), len], dtype, device)?;
            // The stored values, from which the finite results follow.
            let stored = values(&x)?;
            let first = &stored[..len];
            let (hi, lo) = first
                .iter()
                .fold((-INF, INF), |(hi, lo), &v| (hi.max(v), lo.min(v)));
            let lse = hi + first.iter().map(|v| (v - hi).exp()).sum::<f64>().ln();
            let specials = places.len();
            let want = |finite: f64, nan: f64, inf: f64| {
                let mut w = vec![finite];
                w.extend(std::iter::repeat_n(nan, specials));
                w.extend(std::iter::repeat_n(inf, specials));
                w
            };
            let at = |i: usize| match i {
                0 => format!("len {len}, finite"),
                i if i <= specials => format!("len {len}, NaN at {}", places[i - 1]),
                i => format!("len {len}, inf at {}", places[i - 1 - specials]),
            };
            let what = format!("max ({label})");
            report.check(&what, &call(&what, r_max(&x)), &want(hi, NAN, INF), at)?;
            // The min of a row with an inf: of the other values.
            let mut want_min = want(lo, NAN, NAN);
            for (k, &p) in places.iter().enumerate() {
                let others = first.iter().enumerate().filter(|(j, _)| *j != p);
                want_min[1 + specials + k] = others.fold(INF, |lo, (_, &v)| lo.min(v));
            }
            let what = format!("min ({label})");
            report.check(&what, &call(&what, r_min(&x)), &want_min, at)?;
            let what = format!("logsumexp ({label})");
            report.check(&what, &call(&what, r_logsumexp(&x)), &want(lse, NAN, INF), at)?;
            // softmax: every element of a row with a NaN or a +inf is NaN.
            let what = format!("softmax ({label})");
            let got = call(&what, r_softmax(&x)).to_dtype(DType::F64)?;
            let nan_rows = got.ne(&got)?.to_dtype(DType::F64)?.min_keepdim(1)?;
            let mut want_nan = want(0.0, 1.0, 1.0);
            want_nan[0] = 0.0;
            report.check(&what, &nan_rows, &want_nan, at)?;
            Ok(())
        })?;
    }
    report.finish(device);
    Ok(())
}
test_device!(long_rows);

/// Constant folding computes literal-only expressions at build time as the kernels do at run
/// time: the same ops on a scalar parameter give the same values.
fn folding_agrees_with_kernels(device: &Device) -> Result<()> {
    let mut report = Report::default();
    let xs = [1.0, -1.0, 0.0, INF];
    #[rustfmt::skip]
    let want: [[f64; 4]; 5] = [
        [-INF, INF, NAN, -INF],  // x * log(0)
        [NAN; 4],                // x + relu(NaN)
        [NAN; 4],                // x + maximum(NaN, 1)
        [0.0, 0.0, 0.0, NAN],    // x * exp(-inf)
        [-INF, -INF, -INF, NAN], // x + rsqrt(-0)
    ];
    in_each_mode(device, |dtype, label| {
        let x = tensor(&xs, &[xs.len()], dtype, device)?;
        let folded = f_folded(&x).unwrap_or_else(|e| panic!("f_folded: {e}"));
        let scalar = f_scalar(&x, 0.0).unwrap_or_else(|e| panic!("f_scalar: {e}"));
        let folded = [folded.0, folded.1, folded.2, folded.3, folded.4];
        let scalar = [scalar.0, scalar.1, scalar.2, scalar.3, scalar.4];
        for (k, w) in want.iter().enumerate() {
            let at = |i: usize| format!("x = {}", xs[i]);
            report.check(&format!("folded output {k} ({label})"), &folded[k], w, at)?;
            report.check(&format!("scalar output {k} ({label})"), &scalar[k], w, at)?;
        }
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(folding_agrees_with_kernels);

/// The literal `inf` as a mask value and in folded arithmetic, fused and eager.
fn masking_with_inf(device: &Device) -> Result<()> {
    let mut report = Report::default();
    let x = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
    let m = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let softmax = [
        0.09003057317038046,
        0.24472847105479767,
        0.6652409557748219,
        0.0,
        1.0,
        0.0,
    ];
    let softmax: Vec<f64> = softmax.into_iter().chain([NAN; 3]).collect();
    let xs = [1.0, -1.0, 0.0, INF];
    in_each_mode(device, |dtype, label| {
        let (tx, tm) = (
            tensor(&x, &[3, 3], dtype, device)?,
            tensor(&m, &[3, 3], dtype, device)?,
        );
        let row = |i: usize| format!("row {i}");
        let what = format!("masked max ({label})");
        report.check(&what, &call(&what, m_max(&tx, &tm)), &[3.0, 2.0, -INF], row)?;
        let what = format!("masked softmax ({label})");
        report.check(&what, &call(&what, m_softmax(&tx, &tm)), &softmax, |i| row(i / 3))?;
        let (nan, less) = f_inf(&tensor(&xs, &[4], dtype, device)?).unwrap_or_else(|e| panic!("f_inf: {e}"));
        let at = |i: usize| format!("x = {}", xs[i]);
        report.check(&format!("x + (inf - inf) ({label})"), &nan, &[NAN; 4], at)?;
        report.check(
            &format!("minimum(x, inf) - inf ({label})"),
            &less,
            &[-INF, -INF, -INF, NAN],
            at,
        )?;
        Ok(())
    })?;
    report.finish(device);
    Ok(())
}
test_device!(masking_with_inf);
