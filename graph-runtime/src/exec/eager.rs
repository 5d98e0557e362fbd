//! The eager executor: runs a graph node by node as plain Candle ops on the inputs' device.
//!
//! It is the test oracle for the fused paths, the debugging mode (`LAZY_GRAPH_MODE=eager`) and
//! the fallback for whatever no backend fuses. Semantics match the fused kernels: f16/bf16/f32
//! graphs compute in f32 (f64 graphs in f64), scalar arithmetic runs in f64, comparisons yield
//! 1.0/0.0, and every output is stored in its node's dtype.
//!
//! Special values follow PyTorch, as in the kernels. Unary ops, binary ops and reductions run the
//! Candle ops of their rows in the op tables ([`graph_ir::UnaryInfo::eager`],
//! [`graph_ir::BinaryInfo::eager`], [`graph_ir::ReduceInfo::eager`]), which add what Candle's op
//! lacks where it differs: `max`/`min` and `maximum`/`minimum` with a NaN (Candle's results
//! depend on where the NaN is), `pow` with a tensor exponent (Candle's is `exp(b ln a)`, NaN for
//! every negative base).

use candle_core::{DType, Tensor};
use graph_ir::{BinaryInfo, Graph, Op, ReduceInfo};
use smallvec::SmallVec;

use crate::bind::{describe_node, elements, Bound};
use crate::error::{Context, Error, Result};
use crate::exec::Outputs;

/// A node's value: a tensor in the compute dtype, or an f64 scalar.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Tensor(Tensor),
    Scalar(f64),
}

/// The dtype kernels and the eager path compute in for tensors stored as `dtype`.
pub fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// The Candle dtype of a graph dtype.
pub fn candle_dtype(t: graph_ir::DType) -> DType {
    match t {
        graph_ir::DType::F16 => DType::F16,
        graph_ir::DType::BF16 => DType::BF16,
        graph_ir::DType::F32 => DType::F32,
        graph_ir::DType::F64 => DType::F64,
    }
}

/// Runs every node of `graph` and returns the outputs in their storage dtypes.
pub fn run(graph: &'static Graph, bound: &Bound, tensors: &[&Tensor], scalars: &[f64]) -> Result<Outputs> {
    let mut values: Vec<Option<Value>> = vec![None; graph.nodes().len()];
    let eval = Eager {
        graph,
        bound,
        tensors,
        scalars,
        compute: compute_dtype(bound.dtype),
    };
    for i in 0..graph.nodes().len() {
        let args: Vec<&Value> = graph.nodes()[i]
            .args
            .iter()
            .map(|a| values[*a as usize].as_ref().expect("arguments come first"))
            .collect();
        let v = eval.node(i, &args)?;
        values[i] = Some(v);
    }
    graph
        .outputs()
        .iter()
        .map(|&o| eval.output(o as usize, &values))
        .collect()
}

pub(crate) struct Eager<'a> {
    pub graph: &'static Graph,
    pub bound: &'a Bound,
    pub tensors: &'a [&'a Tensor],
    pub scalars: &'a [f64],
    pub compute: DType,
}

impl Eager<'_> {
    fn func(&self) -> &'static str {
        self.graph.name()
    }

    /// The slot of parameter `p` among the tensor (or scalar) parameters.
    pub(crate) fn slot(&self, p: u16, tensor: bool) -> usize {
        self.graph.params()[..p as usize]
            .iter()
            .filter(|q| matches!(q.kind, graph_ir::ParamKind::Tensor(_)) == tensor)
            .count()
    }

    pub(crate) fn tensor(&self, v: &Value) -> Result<Tensor> {
        match v {
            Value::Tensor(t) => unview_empty(t).within(self.func()),
            Value::Scalar(s) => Tensor::new(*s, &self.bound.device)
                .and_then(|t| t.to_dtype(self.compute))
                .within(self.func()),
        }
    }

    pub(crate) fn output(&self, o: usize, values: &[Option<Value>]) -> Result<Tensor> {
        let node = &self.graph.nodes()[o];
        let dtype = self.storage(o);
        let t = self.tensor(values[o].as_ref().expect("outputs are computed"))?;
        // A scalar-valued output still has the declared shape. Most outputs already have their
        // shape and dtype, and are returned as they are (no new tensor nor list on the hot path).
        let has_shape = t.rank() == node.shape.len()
            && (node.shape.iter().zip(t.dims())).all(|(d, &n)| d.eval(&self.bound.symbols) == Some(n));
        let t = if has_shape {
            t
        } else {
            let what = || describe_node(self.graph, o);
            let shape = self.bound.shape(self.graph, node.shape, what)?;
            elements(self.func(), &shape, dtype, what)?;
            t.broadcast_as(shape).within(self.func())?
        };
        // Candle's ops pass views of nothing through with their offset, which may lie past their
        // storage (a narrow at the end of an empty tensor), where Candle's readers then index:
        // an empty output is a fresh tensor instead (`cast`).
        cast(&t, dtype).within(self.func())
    }

    /// The storage dtype of node `i`'s values.
    pub(crate) fn storage(&self, i: usize) -> DType {
        self.graph.nodes()[i]
            .dtype
            .map(candle_dtype)
            .unwrap_or(self.bound.dtype)
    }

    /// Computes node `i` from its argument values (tensors in the compute dtype, or scalars).
    pub(crate) fn node(&self, i: usize, args: &[&Value]) -> Result<Value> {
        let node = &self.graph.nodes()[i];
        let arg = |k: usize| args[k];
        let func = self.func();
        let c = self.compute;
        if !node.scalar && !matches!(node.op, Op::Input(_)) {
            // Candle computes element counts unchecked: a product of huge broadcast views must
            // fail here, with its name, before any op sees its shape.
            let mut dims: SmallVec<[usize; 8]> = SmallVec::new();
            let what = || describe_node(self.graph, i);
            self.bound.dims_into(self.graph, node.shape, &mut dims, what)?;
            elements(func, &dims, c, what)?;
            // A value without elements is computed by no op: see `cast`.
            if dims.contains(&0) {
                let t = Tensor::zeros(dims.as_slice(), c, &self.bound.device);
                return t.map(Value::Tensor).within(func);
            }
        }
        let t = match node.op {
            Op::Input(p) => cast(self.tensors[self.slot(p, true)], c),
            Op::Scalar(p) => return Ok(Value::Scalar(self.scalars[self.slot(p, false)])),
            Op::Const(v) => return Ok(Value::Scalar(v.value())),
            Op::Size(d) => {
                let n = self.bound.shape(self.graph, &[d], || format!("node %{i}"))?[0];
                return Ok(Value::Scalar(n as f64));
            }
            Op::Unary(u) => match arg(0) {
                Value::Scalar(x) => return Ok(Value::Scalar(u.eval(*x))),
                Value::Tensor(x) => (u.info().eager)(x),
            },
            Op::Binary(b) => match (arg(0), arg(1), b.info().eager_scalar) {
                (Value::Scalar(x), Value::Scalar(y), _) => return Ok(Value::Scalar(b.eval(*x, *y))),
                (Value::Tensor(x), Value::Scalar(y), Some(op)) => op(x, *y),
                (x, y, _) => binary(b.info(), &self.tensor(x)?, &self.tensor(y)?),
            },
            Op::Where => {
                let shape = self
                    .bound
                    .shape(self.graph, node.shape, || format!("node %{i}"))?;
                let [cond, a, b] = [arg(0), arg(1), arg(2)].map(|v| self.tensor(v));
                let (cond, a, b) = (cond?, a?, b?);
                if shape.len() > MAX_DIMS {
                    let [cond, a, b] = [&cond, &a, &b].map(|t| flat(t, &shape));
                    let (cond, a, b) = (cond.within(func)?, a.within(func)?, b.within(func)?);
                    let t = cond.ne(0.0).and_then(|m| m.where_cond(&a, &b));
                    return t.and_then(|t| t.reshape(shape)).map(Value::Tensor).within(func);
                }
                cond.ne(0.0)
                    .and_then(|m| m.broadcast_as(shape.as_slice()))
                    .and_then(|m| {
                        m.where_cond(
                            &a.broadcast_as(shape.as_slice())?,
                            &b.broadcast_as(shape.as_slice())?,
                        )
                    })
            }
            Op::Reduce(r, axis) => {
                let x = self.tensor(arg(0))?;
                let axis = axis as usize;
                match r {
                    // Reducing one element is that element. Candle's CPU max/min divide by the
                    // axis' stride, which a broadcast axis of size 1 has as 0.
                    _ if x.dim(axis).within(func)? == 1 => Ok(x),
                    // Candle refuses to reduce a tensor without elements ("empty tensor for
                    // reduce"); the result is the reduction of nothing (the row's identity,
                    // NaN for a mean).
                    _ if x.elem_count() == 0 => {
                        let mut dims = x.dims().to_vec();
                        dims[axis] = 1;
                        Tensor::full(r.eval(&[]), dims, &self.bound.device).and_then(|t| t.to_dtype(c))
                    }
                    _ => reduce(r.info(), &x, axis),
                }
            }
            Op::Matmul => {
                let (a, b) = (self.tensor(arg(0))?, self.tensor(arg(1))?);
                // A sum of no products: zeros (Candle would copy the empty sides, see `cast`).
                if a.dims().last() == Some(&0) {
                    let shape = self
                        .bound
                        .shape(self.graph, node.shape, || format!("matmul %{i}"))?;
                    Tensor::zeros(shape, c, &self.bound.device)
                } else {
                    matmul(&a, &b)
                }
            }
            Op::Transpose(a, b) => self.tensor(arg(0))?.transpose(a as usize, b as usize),
            Op::Reshape => {
                let shape = self
                    .bound
                    .shape(self.graph, node.shape, || format!("reshape %{i}"))?;
                self.tensor(arg(0))?.reshape(shape)
            }
            Op::Broadcast => {
                let shape = self
                    .bound
                    .shape(self.graph, node.shape, || format!("broadcast %{i}"))?;
                self.tensor(arg(0))?.broadcast_as(shape)
            }
            Op::Narrow(axis, start) => {
                let x = self.tensor(arg(0))?;
                let axis = axis as usize;
                let start = self
                    .bound
                    .shape(self.graph, &[start], || format!("narrow %{i} start"))?[0];
                let len = self.bound.shape(self.graph, &node.shape[axis..=axis], || {
                    format!("narrow %{i} length")
                })?[0];
                let size = x.dim(axis).within(func)?;
                if start.checked_add(len).is_none_or(|end| end > size) {
                    return Err(Error::Narrow {
                        func,
                        axis,
                        start,
                        len,
                        size,
                    });
                }
                x.narrow(axis, start, len)
            }
            Op::Cat(axis) => {
                // Parts without elements add nothing (and Candle would copy them: see `cast`);
                // the result has some, so some part has.
                let mut parts = Vec::with_capacity(node.args.len());
                for k in 0..node.args.len() {
                    let t = self.tensor(arg(k))?;
                    if t.elem_count() > 0 {
                        parts.push(t);
                    }
                }
                Tensor::cat(&parts, axis as usize)
            }
            Op::Cast(to) => self
                .tensor(arg(0))?
                .to_dtype(candle_dtype(to))
                .and_then(|t| t.to_dtype(c)),
        };
        t.map(Value::Tensor).within(func)
    }
}

/// `t`, or a fresh tensor of its shape where it has no elements but starts past the start of
/// its storage (a narrow of an empty tensor): Candle's CPU ops index such a view's storage from
/// its offset, and panic.
pub(crate) fn unview_empty(t: &Tensor) -> candle_core::Result<Tensor> {
    if t.elem_count() == 0 && t.layout().start_offset() > 0 {
        Tensor::zeros(t.dims(), t.dtype(), t.device())
    } else {
        Ok(t.clone())
    }
}

/// `t` in `dtype`. A tensor without elements is never handed to a Candle op: on CUDA, Candle
/// launches its kernels with a grid of no blocks for one, which the driver refuses
/// (`CUDA_ERROR_INVALID_VALUE`), and on the CPU a view of nothing may start past its storage
/// (see [`unview_empty`]). It becomes a fresh tensor instead.
pub(crate) fn cast(t: &Tensor, dtype: DType) -> candle_core::Result<Tensor> {
    if t.elem_count() > 0 {
        t.to_dtype(dtype)
    } else if t.dtype() == dtype && t.layout().start_offset() == 0 {
        Ok(t.clone())
    } else {
        Tensor::zeros(t.dims(), dtype, t.device())
    }
}

/// `a @ b` with broadcast batch dims. Candle's matmul takes at most two batch dims, so more are
/// broadcast, folded into one for the product, and unfolded after.
fn matmul(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra.max(rb) <= 3 {
        return a.contiguous()?.broadcast_matmul(&b.contiguous()?);
    }
    let (m, k, n) = (a.dim(ra - 2)?, a.dim(ra - 1)?, b.dim(rb - 1)?);
    let batch = candle_core::Shape::from(&a.dims()[..ra - 2])
        .broadcast_shape_binary_op(&candle_core::Shape::from(&b.dims()[..rb - 2]), "matmul")?;
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

/// The most dims Candle's CPU binary ops, comparisons and `where_cond` walk: past it they fail
/// an assertion in debug builds and index out of bounds in release builds.
const MAX_DIMS: usize = candle_core::nditer::MAX_DIMS;

/// `t` broadcast to `shape` and flattened to one contiguous dim, for the Candle ops limited to
/// [`MAX_DIMS`]: elementwise ops do not care about the shape they run in.
fn flat(t: &Tensor, shape: &[usize]) -> candle_core::Result<Tensor> {
    t.broadcast_as(shape)?.contiguous()?.flatten_all()
}

/// `x` reduced along `axis` by the Candle ops of `r`'s row, keeping the axis. Past [`MAX_DIMS`]
/// the dims before and after the axis are folded into one each, as Candle's elementwise ops
/// (which the max and min rows use to find NaNs) walk at most that many.
fn reduce(r: &ReduceInfo, x: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    if x.rank() > MAX_DIMS {
        let dims = x.dims();
        let (before, after) = (
            dims[..axis].iter().product::<usize>(),
            dims[axis + 1..].iter().product::<usize>(),
        );
        let mut kept = dims.to_vec();
        kept[axis] = 1;
        return reduce(r, &x.contiguous()?.reshape((before, dims[axis], after))?, 1)?.reshape(kept);
    }
    (r.eager)(x, axis)
}

/// `x op y` by the Candle ops of `op`'s row. Past [`MAX_DIMS`] both sides are broadcast and
/// flattened first.
fn binary(op: &BinaryInfo, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let shape = x.shape().broadcast_shape_binary_op(y.shape(), "binary op")?;
    if shape.rank() > MAX_DIMS {
        let dims = shape.dims();
        return binary(op, &flat(x, dims)?, &flat(y, dims)?)?.reshape(shape);
    }
    (op.eager)(x, y)
}
