//! Random graphs: valid functions drawn by `graph-gen` from the documented grammar, compiled into
//! this test by the root package's build script, each run fused, eager, and against an f64
//! reference written by the generator as plain Candle f64 ops, in every dtype, on random shapes
//! (size 1, odd sizes, long rows, empty dims) and random layouts (transposed, narrowed and
//! broadcast views).
//!
//! ```text
//! cargo test --test random                                   # the 500 functions CI runs
//! LAZY_GRAPH_RANDOM_SEED=7 cargo test --test random          # another stream of functions
//! tools/random-graphs.sh 10000                               # 10,000 functions, in batches
//! LAZY_GRAPH_RANDOM_FIRST=123 LAZY_GRAPH_RANDOM_COUNT=1 cargo test --test random   # one function
//! cargo run -p graph-gen -- SEED INDEX                       # print a function and its reference
//! ```
//!
//! `LAZY_GRAPH_RANDOM_INPUTS=N` fixes the seed of the inputs and sizes (otherwise fresh each run,
//! and printed with any failure). A failure also runs `graph-gen shrink` on the first failing
//! function and prints the minimised function (`LAZY_GRAPH_RANDOM_SHRINK=0` skips that).
//!
//! **Tolerances.** The generator bounds every value by an interval and its rounding error to
//! first order: each op adds its Lipschitz constant times its arguments' errors, plus its own
//! rounding (1 unit for `+ - *`, 2 for `/` and `sqrt`, 4 for `exp`, `log`, `tanh` and the other
//! transcendental functions, 8 for `pow` and `gelu`), `sum` and `matmul` add the worst case of a
//! running sum (`n` times the sum of magnitudes), and every node may be stored in the graph's
//! dtype (or the dtype a `cast` fixed) between kernels. The bound is kept as coefficients of the
//! unit roundoffs (compute, storage, f16, bf16, f32, f64), so one function gets its tolerance per
//! dtype: f32 graphs compute and store with `2^-24`, bf16 graphs compute with `2^-24` and store
//! with `2^-8`. A run passes when every element is within 4x that bound of the reference (fused
//! and eager alike), and fused is within 8x of eager; NaN and infinities must match exactly.
//!
//! **Gradients.** Each function's fused gradients, in f64 with every tensor argument a `Var`,
//! are checked against central differences of a random projection of its outputs, along a random
//! direction of its arguments (see [`check_gradients`]). Not against Candle's own autograd of
//! eager mode: Candle's `max` and `maximum` send the whole gradient to every tied element, where
//! PyTorch and this project split it, and random graphs make ties (a max over a broadcast axis).

use std::fmt::Write as _;

use candle_core::{DType, Device, Tensor, Var};
use graph_gen::rng::Rng;
use graph_runtime::{with_mode, Mode};

/// A size as the generator wrote it: `num * syms... / den`.
#[derive(Debug)]
pub struct D {
    num: u64,
    den: u64,
    syms: &'static [usize],
}

impl D {
    fn eval(&self, sz: &[usize]) -> usize {
        (self.syms.iter().fold(self.num as usize, |a, &s| a * sz[s])) / self.den as usize
    }
}

fn eval(shape: &[D], sz: &[usize]) -> Vec<usize> {
    shape.iter().map(|d| d.eval(sz)).collect()
}

#[derive(Debug)]
pub struct SymSpec {
    name: &'static str,
    max: u64,
    even: bool,
    min: u64,
}

#[derive(Debug)]
pub struct ParamSpec {
    name: &'static str,
    shape: Option<&'static [D]>,
    lo: f64,
    hi: f64,
}

#[derive(Debug)]
pub struct OutSpec {
    shape: &'static [D],
    /// Error bound per unit roundoff: `[compute, storage, f16, bf16, f32, f64]`.
    err: [f64; 6],
}

type Run = fn(&[&Tensor], &[f64], bool) -> graph_runtime::Result<Vec<Tensor>>;
type Reference = fn(&[Tensor], &[f64], &[usize]) -> candle_core::Result<Vec<Tensor>>;

#[derive(Debug)]
pub struct Case {
    name: &'static str,
    index: usize,
    /// The generator's recorded choices: `graph-gen shrink` starts from them.
    choices: &'static str,
    source: &'static str,
    syms: &'static [SymSpec],
    params: &'static [ParamSpec],
    outputs: &'static [OutSpec],
    shapes: &'static [&'static [D]],
    nonzero: &'static [usize],
    run: Run,
    reference: Reference,
}

include!(concat!(env!("OUT_DIR"), "/random_graphs.rs"));

/// The f64 reference's ops: plain Candle ops in f64 on the CPU, with the DSL's broadcasting.
/// Which of them a batch uses depends on its functions (a shrinker's batch may use few).
#[allow(dead_code)]
mod r {
    use candle_core::{DType, Device, Result, Shape, Tensor};

    pub fn scalar(v: f64) -> Tensor {
        Tensor::new(v, &Device::Cpu).expect("a scalar")
    }

    /// `f` on every element.
    fn map(x: &Tensor, f: fn(f64) -> f64) -> Result<Tensor> {
        let values: Vec<f64> = x.flatten_all()?.to_vec1::<f64>()?.into_iter().map(f).collect();
        Tensor::from_vec(values, x.shape(), x.device())
    }

    pub fn un(op: &str, x: &Tensor) -> Result<Tensor> {
        match op {
            "neg" => x.neg(),
            "abs" => x.abs(),
            "exp" => x.exp(),
            "log" => x.log(),
            "sqrt" => x.sqrt(),
            "rsqrt" => x.sqrt()?.recip(),
            "recip" => x.recip(),
            "sqr" => x.sqr(),
            "sin" => x.sin(),
            "cos" => x.cos(),
            "tanh" => x.tanh(),
            "erf" => x.erf(),
            "sigmoid" => (x.neg()?.exp()? + 1.0)?.recip(),
            "silu" => x.silu(),
            "gelu" => x.gelu(),
            "gelu_erf" => x.gelu_erf(),
            "relu" => x.relu(),
            "floor" => x.floor(),
            "ceil" => x.ceil(),
            // Candle's round sends ties away from 0; the DSL's goes to even.
            "round" => map(x, f64::round_ties_even),
            "sign" => x.sign(),
            "log1p" => map(x, f64::ln_1p),
            "expm1" => map(x, f64::exp_m1),
            _ => unreachable!("unary {op}"),
        }
    }

    /// Both sides broadcast to their common shape.
    fn both(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
        let shape = a.shape().broadcast_shape_binary_op(b.shape(), "reference")?;
        Ok((a.broadcast_as(&shape)?, b.broadcast_as(&shape)?))
    }

    pub fn bin(op: &str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let flag = |t: Tensor| t.to_dtype(DType::F64);
        match op {
            "add" => a.broadcast_add(b),
            "sub" => a.broadcast_sub(b),
            "mul" => a.broadcast_mul(b),
            "div" => a.broadcast_div(b),
            "maximum" => a.broadcast_maximum(b),
            "minimum" => a.broadcast_minimum(b),
            "pow" => {
                // C `powf`, element by element (Candle's `pow` is `exp(b ln a)`).
                let (a, b) = both(a, b)?;
                let (x, y) = (
                    a.flatten_all()?.to_vec1::<f64>()?,
                    b.flatten_all()?.to_vec1::<f64>()?,
                );
                let v: Vec<f64> = x.iter().zip(&y).map(|(x, y)| x.powf(*y)).collect();
                Tensor::from_vec(v, a.shape(), &Device::Cpu)
            }
            "lt" => flag(a.broadcast_lt(b)?),
            "le" => flag(a.broadcast_le(b)?),
            "gt" => flag(a.broadcast_gt(b)?),
            "ge" => flag(a.broadcast_ge(b)?),
            "eq" => flag(a.broadcast_eq(b)?),
            "ne" => flag(a.broadcast_ne(b)?),
            _ => unreachable!("binary {op}"),
        }
    }

    pub fn select(c: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let shape = c.shape().broadcast_shape_binary_op(a.shape(), "reference")?;
        let shape = shape.broadcast_shape_binary_op(b.shape(), "reference")?;
        if shape.elem_count() == 0 {
            return Tensor::zeros(shape, DType::F64, &Device::Cpu);
        }
        let mask = c.broadcast_as(&shape)?.ne(0.0)?;
        mask.where_cond(&a.broadcast_as(&shape)?, &b.broadcast_as(&shape)?)
    }

    pub fn clamp(x: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor> {
        x.broadcast_maximum(lo)?.broadcast_minimum(hi)
    }

    /// `x`'s shape with `axes` kept as 1.
    fn kept(x: &Tensor, axes: &[usize]) -> Vec<usize> {
        let mut dims = x.dims().to_vec();
        for &a in axes {
            dims[a] = 1;
        }
        dims
    }

    /// `op` over all the elements of `axes` at once (each kept as 1), in f64.
    pub fn reduce(op: &str, x: &Tensor, axes: &[usize]) -> Result<Tensor> {
        // Candle refuses to reduce a tensor without elements. The tests keep every axis that an
        // op other than `sum` reduces non-empty, so an empty tensor here has an empty result or
        // is a sum of nothing.
        if x.elem_count() == 0 {
            return Tensor::zeros(kept(x, axes), DType::F64, &Device::Cpu);
        }
        let x = &fresh(x)?;
        let all = axes.to_vec();
        match op {
            "sum" => x.sum_keepdim(all),
            "mean" => x.mean_keepdim(all),
            // The largest of the largest along each axis is the largest over all of them.
            "max" => axes.iter().try_fold(x.clone(), |v, &a| v.max_keepdim(a)),
            "min" => axes.iter().try_fold(x.clone(), |v, &a| v.min_keepdim(a)),
            "var" => x
                .broadcast_sub(&x.mean_keepdim(all.clone())?)?
                .sqr()?
                .mean_keepdim(all),
            _ => unreachable!("reduction {op}"),
        }
    }

    /// `x` in fresh row-major storage: Candle's max/min divide by the reduced axis' stride,
    /// which is 0 on a broadcast axis.
    fn fresh(x: &Tensor) -> Result<Tensor> {
        Tensor::from_vec(x.flatten_all()?.to_vec1::<f64>()?, x.dims(), &Device::Cpu)
    }

    pub fn softmax(op: &str, x: &Tensor, axis: usize) -> Result<Tensor> {
        if x.elem_count() == 0 {
            let dims = if op == "logsumexp" {
                kept(x, &[axis])
            } else {
                x.dims().to_vec()
            };
            return Tensor::zeros(dims, DType::F64, &Device::Cpu);
        }
        let x = &fresh(x)?;
        let m = x.max_keepdim(axis)?;
        let s = x.broadcast_sub(&m)?;
        let z = s.exp()?.sum_keepdim(axis)?;
        match op {
            "softmax" => s.exp()?.broadcast_div(&z),
            "log_softmax" => s.broadcast_sub(&z.log()?),
            "logsumexp" => m + z.log()?,
            _ => unreachable!("{op}"),
        }
    }

    /// Batch dims broadcast and folded into one: Candle's matmul takes at most two.
    pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k, n) = (a.dim(ra - 2)?, a.dim(ra - 1)?, b.dim(rb - 1)?);
        let batch = Shape::from(&a.dims()[..ra - 2])
            .broadcast_shape_binary_op(&Shape::from(&b.dims()[..rb - 2]), "reference")?;
        let count = batch.elem_count();
        let with = |tail: [usize; 2]| [batch.dims(), &tail[..]].concat();
        let a = a
            .broadcast_as(with([m, k]))?
            .contiguous()?
            .reshape((count, m, k))?;
        let b = b
            .broadcast_as(with([k, n]))?
            .contiguous()?
            .reshape((count, k, n))?;
        a.matmul(&b)?.reshape(with([m, n]))
    }

    pub fn transpose(x: &Tensor, i: usize, j: usize) -> Result<Tensor> {
        x.transpose(i, j)
    }

    pub fn reshape(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        x.contiguous()?.reshape(dims)
    }

    pub fn broadcast(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        x.broadcast_as(dims)
    }

    /// An empty result is a fresh tensor: Candle's narrow of an empty tensor starts past its
    /// storage, which its CPU ops then index.
    pub fn narrow(x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        let t = x.narrow(axis, start, len)?;
        if t.elem_count() == 0 {
            Tensor::zeros(t.dims(), DType::F64, &Device::Cpu)
        } else {
            Ok(t)
        }
    }

    pub fn cat(parts: &[&Tensor], axis: usize) -> Result<Tensor> {
        Tensor::cat(parts, axis)
    }

    pub fn cast(x: &Tensor, dtype: &str) -> Result<Tensor> {
        let t = match dtype {
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            "f32" => DType::F32,
            _ => DType::F64,
        };
        x.to_dtype(t)?.to_dtype(DType::F64)
    }
}

/// Unit roundoff of a dtype.
fn unit(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2f64.powi(-11),
        DType::BF16 => 2f64.powi(-8),
        DType::F32 => 2f64.powi(-24),
        _ => 2f64.powi(-53),
    }
}

fn tolerance(out: &OutSpec, dtype: DType) -> f64 {
    let compute = if dtype == DType::F64 {
        unit(DType::F64)
    } else {
        unit(DType::F32)
    };
    let units = [
        compute,
        unit(dtype),
        unit(DType::F16),
        unit(DType::BF16),
        unit(DType::F32),
        unit(DType::F64),
    ];
    4.0 * out.err.iter().zip(units).map(|(e, u)| e * u).sum::<f64>() + 1e-300
}

/// Symbol sizes for one run, within every constraint and with at most `LIMIT` elements in any
/// intermediate value.
fn draw_sizes(case: &Case, rng: &mut Rng, wide: bool) -> Vec<usize> {
    const LIMIT: usize = 60_000;
    const SHORT: [usize; 11] = [1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 33];
    const LONG: [usize; 10] = [1, 7, 31, 32, 33, 255, 256, 257, 543, 1000];
    let fit = |s: &SymSpec, v: usize| {
        let v = v.max(s.min as usize).min(s.max as usize);
        if s.even && v % 2 == 1 {
            v + 1
        } else {
            v
        }
    };
    let mut sz: Vec<usize> = case
        .syms
        .iter()
        .map(|s| {
            let v = if wide && s.max > 40 {
                *rng.pick(&LONG)
            } else {
                *rng.pick(&SHORT)
            };
            fit(s, v)
        })
        .collect();
    // An empty dim now and then, where nothing needs that symbol non-zero.
    if wide && rng.chance(0.3) {
        let free: Vec<usize> = (0..sz.len())
            .filter(|s| !case.nonzero.contains(s) && case.syms[*s].min == 0)
            .collect();
        if !free.is_empty() {
            sz[*rng.pick(&free)] = 0;
        }
    }
    for _ in 0..64 {
        let largest = case
            .shapes
            .iter()
            .map(|s| eval(s, &sz).iter().product::<usize>())
            .max()
            .unwrap_or(0);
        if largest <= LIMIT {
            break;
        }
        let big = (0..sz.len()).max_by_key(|&s| sz[s]).expect("a symbol");
        sz[big] = fit(&case.syms[big], (sz[big] / 3).max(1));
    }
    sz
}

/// How one tensor argument is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Contiguous,
    /// The last two dims swapped in memory, then swapped back: a transposed view.
    Transposed,
    /// A narrow of a wider tensor along the last dim.
    Narrowed,
    /// Stride 0 along one dim: a broadcast view.
    Broadcast(usize),
}

fn uniform(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.unit()).collect()
}

fn argument(
    rng: &mut Rng,
    p: &ParamSpec,
    shape: &[usize],
    dtype: DType,
    dev: &Device,
) -> candle_core::Result<(Tensor, Layout)> {
    let r = shape.len();
    let layout = match rng.below(8) {
        0 if r >= 2 => Layout::Transposed,
        1 if r >= 1 => Layout::Narrowed,
        2 if r >= 1 => match (0..r).filter(|&a| shape[a] > 1).collect::<Vec<_>>() {
            axes if !axes.is_empty() => Layout::Broadcast(*rng.pick(&axes)),
            _ => Layout::Contiguous,
        },
        _ => Layout::Contiguous,
    };
    let make = |rng: &mut Rng, s: &[usize]| {
        let n = s.iter().product();
        Tensor::from_vec(uniform(rng, n, p.lo, p.hi), s, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)
    };
    let t = match layout {
        Layout::Contiguous => make(rng, shape)?,
        Layout::Transposed => {
            let mut s = shape.to_vec();
            s.swap(r - 2, r - 1);
            make(rng, &s)?.transpose(r - 2, r - 1)?
        }
        Layout::Narrowed => {
            let mut s = shape.to_vec();
            s[r - 1] += 2;
            make(rng, &s)?.narrow(r - 1, 1, shape[r - 1])?
        }
        Layout::Broadcast(a) => {
            let mut s = shape.to_vec();
            s[a] = 1;
            make(rng, &s)?.broadcast_as(shape)?
        }
    };
    Ok((t, layout))
}

/// One run: compares fused and eager against the reference; `Err` describes a mismatch.
fn run_once(
    case: &Case,
    dev: &Device,
    dtype: DType,
    rng: &mut Rng,
    wide: bool,
    asynchronous: bool,
) -> Result<(), String> {
    let sz = draw_sizes(case, rng, wide);
    let mut tensors = Vec::new();
    let mut layouts = Vec::new();
    let mut scalars = Vec::new();
    for p in case.params {
        match p.shape {
            Some(shape) => {
                let (t, l) =
                    argument(rng, p, &eval(shape, &sz), dtype, dev).map_err(|e| format!("inputs: {e}"))?;
                tensors.push(t);
                layouts.push((p.name, l));
            }
            // Scalars are drawn f32-representable, so every mode holds them exactly.
            None => scalars.push((p.lo + (p.hi - p.lo) * rng.unit()) as f32 as f64),
        }
    }
    let args: Vec<&Tensor> = tensors.iter().collect();
    let fused = with_mode(Mode::Fused, || (case.run)(&args, &scalars, asynchronous));
    let eager = with_mode(Mode::Eager, || (case.run)(&args, &scalars, false));
    let reference = tensors
        .iter()
        .map(|t| match t.elem_count() {
            0 => Tensor::zeros(t.dims(), DType::F64, &Device::Cpu),
            _ => t.to_device(&Device::Cpu)?.to_dtype(DType::F64),
        })
        .collect::<candle_core::Result<Vec<_>>>()
        .and_then(|t| (case.reference)(&t, &scalars, &sz));
    let context = || {
        let names: Vec<String> = case
            .syms
            .iter()
            .zip(&sz)
            .map(|(s, v)| format!("{}={v}", s.name))
            .collect();
        format!(
            "{dtype:?} on {dev:?}, sizes {}, layouts {layouts:?}, scalars {scalars:?}, async {asynchronous}",
            names.join(" ")
        )
    };
    let (fused, eager, reference) = match (fused, eager, reference) {
        (Ok(f), Ok(e), Ok(r)) => (f, e, r),
        (f, e, r) => {
            return Err(format!(
                "{}: a call failed: fused {:?}, eager {:?}, reference {:?}",
                context(),
                f.err().map(|e| e.to_string()),
                e.err().map(|e| e.to_string()),
                r.err().map(|e| e.to_string())
            ))
        }
    };
    for (o, spec) in case.outputs.iter().enumerate() {
        let expected = eval(spec.shape, &sz);
        let tol = tolerance(spec, dtype);
        let (f, e, r) = (&fused[o], &eager[o], &reference[o]);
        if f.dims() != expected || e.dims() != expected || r.dims() != expected {
            return Err(format!(
                "{}: output {o} shapes: fused {:?}, eager {:?}, reference {:?}, declared {expected:?}",
                context(),
                f.dims(),
                e.dims(),
                r.dims()
            ));
        }
        if f.dtype() != e.dtype() {
            return Err(format!(
                "{}: output {o} dtypes: fused {:?}, eager {:?}",
                context(),
                f.dtype(),
                e.dtype()
            ));
        }
        let values = |t: &Tensor| -> Result<Vec<f64>, String> {
            if t.elem_count() == 0 {
                return Ok(Vec::new());
            }
            t.to_dtype(DType::F64)
                .and_then(|t| t.flatten_all()?.to_vec1::<f64>())
                .map_err(|e| e.to_string())
        };
        let (fv, ev, rv) = (values(f)?, values(e)?, values(r)?);
        for (what, got, want, tol) in [
            ("fused", &fv, &rv, tol),
            ("eager", &ev, &rv, tol),
            ("fused vs eager", &fv, &ev, 2.0 * tol),
        ] {
            if let Some((i, (g, w))) = got
                .iter()
                .zip(want)
                .enumerate()
                .find(|(_, (g, w))| !close(**g, **w, tol))
            {
                let worst = got
                    .iter()
                    .zip(want)
                    .map(|(g, w)| (g - w).abs())
                    .filter(|d| !d.is_nan())
                    .fold(0.0, f64::max);
                return Err(format!(
                    "{}: output {o}, {what}: element {i} is {g:e}, expected {w:e} (tolerance {tol:e}; largest difference {worst:e})",
                    context()
                ));
            }
        }
    }
    Ok(())
}

/// How the gradient check of one run went.
#[derive(Debug, PartialEq)]
enum Gradients {
    /// The directional derivative matched central differences.
    Checked,
    /// Not comparable: a gradient or the differences were not finite (a NaN in the forward
    /// reaches the backward through a zero cotangent, as in PyTorch; or a step left the
    /// function's domain).
    NotFinite,
    /// Not compared: the function casts, and a cast to a narrower type is piecewise constant at
    /// f64's resolution, so differences do not see the gradient PyTorch's rule gives it (the
    /// cotangent, cast back).
    Casts,
}

/// `loss = sum_o sum(where(finite(y_o), y_o, 0) * c_o)` over the outputs `y` of one call (with
/// random fixed `c` and the mask of the unperturbed call): the fused gradient's derivative along
/// a random direction `v` of the tensor arguments, `sum_p <g_p, v_p>`, against central
/// differences of `loss` along `v`, extrapolated (Richardson, from steps `h` and `h / 2`). It
/// passes within `1e-6` of the terms' magnitude, plus the rounding of `loss` over the step, plus
/// `1e-12` per unit of the direction (a gradient of terms that cancel, where `loss` is constant),
/// plus
/// how much the two steps' differences disagree (large only near a jump, as `floor`'s). The step
/// is small (`1e-6`), so that few elements lie that close to a kink (`maximum`, `abs`, `relu`),
/// where a difference averages two slopes.
fn check_gradients(case: &Case, dev: &Device, rng: &mut Rng) -> Result<Gradients, String> {
    if case.source.contains("cast(") || case.source.contains("to_dtype(") {
        return Ok(Gradients::Casts);
    }
    let sz = draw_sizes(case, rng, false);
    let mut tensors = Vec::new();
    let mut scalars = Vec::new();
    let on = |t: Tensor| t.to_device(dev).map_err(|e| e.to_string());
    for p in case.params {
        match p.shape {
            Some(shape) => {
                let shape = eval(shape, &sz);
                let n = shape.iter().product();
                let t = Tensor::from_vec(uniform(rng, n, p.lo, p.hi), shape, &Device::Cpu);
                tensors.push(on(t.map_err(|e| e.to_string())?)?);
            }
            None => scalars.push((p.lo + (p.hi - p.lo) * rng.unit()) as f32 as f64),
        }
    }
    let fail = |what: &str, e: String| format!("gradients, f64 on {dev:?}, sizes {sz:?}: {what}: {e}");
    let vars: Vec<Var> = tensors
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<_>>()
        .map_err(|e| fail("vars", e.to_string()))?;
    let tracked: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    let outputs = with_mode(Mode::Fused, || (case.run)(&tracked, &scalars, false))
        .map_err(|e| fail("fused call", e.to_string()))?;
    // The projection: random weights where the unperturbed output is finite, zero elsewhere.
    let mut weights = Vec::new();
    for y in &outputs {
        let values: Vec<f64> = match y.elem_count() {
            0 => Vec::new(),
            _ => y
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(|e| fail("outputs", e.to_string()))?,
        };
        let c: Vec<f64> = values
            .iter()
            .map(|v| {
                if v.is_finite() {
                    2.0 * rng.unit() - 1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mask: Vec<u8> = values.iter().map(|v| u8::from(v.is_finite())).collect();
        let shape = y.dims().to_vec();
        let c = on(Tensor::from_vec(c, shape.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?)?;
        let mask = on(Tensor::from_vec(mask, shape.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?)?;
        weights.push((c, mask));
    }
    let loss = |ys: &[Tensor]| -> candle_core::Result<(Tensor, f64)> {
        let mut total = Tensor::zeros((), DType::F64, dev)?;
        let mut magnitude = 0.0;
        for (y, (c, mask)) in ys.iter().zip(&weights) {
            if y.elem_count() == 0 {
                continue;
            }
            let clean = mask.where_cond(y, &y.zeros_like()?)?;
            let terms = (clean * c)?;
            magnitude += terms.abs()?.sum_all()?.to_scalar::<f64>()?;
            total = (total + terms.sum_all()?)?;
        }
        Ok((total, magnitude))
    };
    let (l, l_mag) = loss(&outputs).map_err(|e| fail("loss", e.to_string()))?;
    let grads = l.backward().map_err(|e| fail("backward", e.to_string()))?;
    // The direction, and the gradient's derivative along it.
    let mut directions = Vec::new();
    let (mut gv, mut gv_mag, mut v_mag) = (0.0, 0.0, 0.0);
    for (t, var) in tensors.iter().zip(&vars) {
        let n = t.elem_count();
        let values = uniform(rng, n, -1.0, 1.0);
        v_mag += values.iter().map(|v| v.abs()).sum::<f64>();
        let v = on(Tensor::from_vec(values, t.dims(), &Device::Cpu).map_err(|e| e.to_string())?)?;
        if let Some(g) = grads.get(var.as_tensor()) {
            if n > 0 {
                let terms = (g * &v).map_err(|e| fail("g . v", e.to_string()))?;
                let sum = |t: Tensor| t.sum_all().and_then(|s| s.to_scalar::<f64>());
                gv += sum(terms.clone()).map_err(|e| fail("g . v", e.to_string()))?;
                gv_mag += sum(terms.abs().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
        }
        directions.push(v);
    }
    if !gv.is_finite() || !gv_mag.is_finite() {
        return Ok(Gradients::NotFinite);
    }
    // The loss at `x + step * v`, untracked.
    let at = |step: f64| -> Result<f64, String> {
        let moved: Vec<Tensor> = tensors
            .iter()
            .zip(&directions)
            .map(|(t, v)| t + (v * step)?)
            .collect::<candle_core::Result<_>>()
            .map_err(|e| e.to_string())?;
        let args: Vec<&Tensor> = moved.iter().collect();
        let ys = with_mode(Mode::Fused, || (case.run)(&args, &scalars, false)).map_err(|e| e.to_string())?;
        let (l, _) = loss(&ys).map_err(|e| e.to_string())?;
        l.to_scalar::<f64>().map_err(|e| e.to_string())
    };
    let h = 1e-6;
    let diff = |h: f64| -> Result<f64, String> { Ok((at(h)? - at(-h)?) / (2.0 * h)) };
    let (coarse, fine) = (diff(h)?, diff(h / 2.0)?);
    let extrapolated = (4.0 * fine - coarse) / 3.0;
    if !extrapolated.is_finite() {
        return Ok(Gradients::NotFinite);
    }
    // A gradient element of 1e-12 is the rounding of contributions that cancel (`x - x` through
    // a broadcast, summed in another order), when the differences see a constant. Where rounding
    // dominates both differences, their gap measures it, and the extrapolation (4 fine - coarse)
    // / 3 carries up to about three times that (f245 with LAZY_GRAPH_RANDOM_INPUTS=
    // 1796221701287848007: a derivative of 0, differences 2.2e-8 and 4.4e-8).
    let allowed = 1e-6 * gv_mag + 1e-13 * l_mag / h + 1e-12 * v_mag + 3.0 * (coarse - fine).abs();
    if (gv - extrapolated).abs() > allowed {
        return Err(format!(
            "gradients, f64 on {dev:?}, sizes {sz:?}, scalars {scalars:?}: the derivative along a random direction is {gv:e} from the fused gradients, {extrapolated:e} from central differences (steps {h:e}: {coarse:e}, {:e}: {fine:e}; allowed difference {allowed:e})",
            h / 2.0
        ));
    }
    Ok(Gradients::Checked)
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got.is_infinite() || want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= tol
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Runs one case in every dtype, on small and wide sizes: how many runs, and the failures (the
/// first per dtype).
fn check_case(case: &Case, dev: &Device, inputs: u64) -> (usize, Vec<String>) {
    let dtypes = [DType::F32, DType::F64, DType::BF16, DType::F16];
    let mut rng = Rng::new(inputs ^ (case.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut runs, mut failures) = (0, Vec::new());
    let gradients = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_gradients(case, dev, &mut rng)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        Err(format!("gradients: panicked: {}", what.unwrap_or_default()))
    });
    match gradients {
        Ok(Gradients::Checked) => GRADIENTS_CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        Ok(Gradients::NotFinite | Gradients::Casts) => 0,
        Err(why) => {
            failures.push(why);
            0
        }
    };
    for (k, &dtype) in dtypes.iter().enumerate() {
        for wide in [false, true] {
            runs += 1;
            let asynchronous = (case.index + k).is_multiple_of(4) && wide;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_once(case, dev, dtype, &mut rng, wide, asynchronous)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                Err(format!("{dtype:?}: panicked: {}", what.unwrap_or_default()))
            });
            if let Err(why) = outcome {
                failures.push(why);
                break;
            }
        }
    }
    (runs, failures)
}

/// How many functions' gradients [`check_gradients`] compared.
static GRADIENTS_CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check_all(dev: &Device) {
    GRADIENTS_CHECKED.store(0, std::sync::atomic::Ordering::Relaxed);
    let inputs = env_u64("LAZY_GRAPH_RANDOM_INPUTS").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    // Cases run on several threads: on a GPU, most of a case's time is the first-use NVRTC
    // compile of its kernels, which runs on the host. Each case draws from its own seed, so the
    // split does not change what is run.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = CASES.get(i) else { break };
                let (n, failed) = check_case(case, dev, inputs);
                runs.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                failures
                    .lock()
                    .unwrap()
                    .extend(failed.into_iter().map(|why| (case, why)));
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(case, _)| case.index);
    let runs = runs.into_inner();
    let mut report = String::new();
    for (case, why) in &failures {
        writeln!(
            report,
            "\n---- {} (seed {SEED}, index {}): {why}\n{}\nrerun: LAZY_GRAPH_RANDOM_SEED={SEED} LAZY_GRAPH_RANDOM_FIRST={} LAZY_GRAPH_RANDOM_COUNT=1 LAZY_GRAPH_RANDOM_INPUTS={inputs} cargo test --test random\nminimise: LAZY_GRAPH_RANDOM_INPUTS={inputs} cargo run -p graph-gen -- shrink {SEED} {}\nchoices: {}",
            case.name, case.index, case.source, case.index, case.index, case.choices
        )
        .unwrap();
    }
    println!(
        "random graphs on {dev:?}: {} functions (seed {SEED}), {runs} runs, gradients of {} compared, {} failed (inputs seed {inputs})",
        CASES.len(),
        GRADIENTS_CHECKED.load(std::sync::atomic::Ordering::Relaxed),
        failures.len()
    );
    if let Some((case, _)) = failures.first() {
        report.push_str(&minimised(case, inputs));
    }
    assert!(
        failures.is_empty(),
        "{} of {} random functions failed:{report}",
        failures.len(),
        CASES.len()
    );
}

/// The first failing function, minimised by `graph-gen shrink` (which compiles candidates
/// through this test, in a target folder of its own). Not while shrinking already, nor with
/// `LAZY_GRAPH_RANDOM_SHRINK=0`.
fn minimised(case: &Case, inputs: u64) -> String {
    if std::env::var_os("LAZY_GRAPH_RANDOM_CHOICES").is_some()
        || std::env::var("LAZY_GRAPH_RANDOM_SHRINK").as_deref() == Ok("0")
    {
        return String::new();
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target")) + "/graph-gen-shrink";
    eprintln!(
        "minimising {} (LAZY_GRAPH_RANDOM_SHRINK=0 skips this) ...",
        case.name
    );
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "graph-gen",
            "--",
            "shrink",
            &SEED.to_string(),
            &case.index.to_string(),
        ])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .env("LAZY_GRAPH_RANDOM_INPUTS", inputs.to_string())
        .output();
    match output {
        Ok(o) => format!(
            "\n\n==== graph-gen shrink {SEED} {}:\n{}{}",
            case.index,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("\n\n(could not run graph-gen shrink: {e})"),
    }
}

#[test]
fn cpu() {
    check_all(&Device::Cpu);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda() {
    match Device::new_cuda(0) {
        Ok(dev) => check_all(&dev),
        Err(why) => eprintln!("\n**** SKIPPED on CUDA: no usable GPU ({why}) ****\n"),
    }
}

/// The generator draws every unary op of the op table, and its reference computes each one as
/// the table's f64 math does.
#[test]
fn generator_covers_every_unary_op() {
    let xs = [0.75, -0.25, 2.5, -1.5];
    let x = Tensor::new(&xs, &Device::Cpu).expect("a tensor");
    for op in graph_ir::UnaryOp::ALL {
        let name = op.name();
        assert!(
            graph_gen::UNARY_OPS.contains(&name),
            "graph-gen never draws `{name}`: add it to UNARY_OPS with its interval and error bound"
        );
        let got: Vec<f64> = r::un(name, &x)
            .and_then(|t| t.to_vec1())
            .expect("the reference runs");
        for (&x, got) in xs.iter().zip(got) {
            let want = op.eval(x);
            let same = (got.is_nan() && want.is_nan()) || (got - want).abs() <= 1e-12 * want.abs().max(1.0);
            assert!(same, "the reference's {name}({x}) is {got}, the table's {want}");
        }
    }
}
