//! Binding call arguments to a graph: ranks, literal dims, symbol sizes, dtype and device.
//!
//! Symbols are bound from the dims where they stand alone (`D`), in parameter order; every other
//! dim (literals, and derived sizes such as `D / 2`) is then checked against the bound values.
//! Last, every derived size inside the graph is evaluated once, so a size that is not whole
//! (`D / 2` with `D` odd) or overflows `usize` fails here, before anything runs, rather than
//! halfway through. Element counts (which only the executors allocate) are checked by
//! [`elements`] where each value is allocated.

use candle_core::{DType, Device, Tensor};
use graph_ir::{display_shape, Dim, EvalError, Graph, Op, ParamKind};

use smallvec::SmallVec;

use crate::error::{Error, LeadingMismatch, Result, SymbolMismatch};

/// Graphs have a handful of parameters and symbols: binding keeps its lists on the stack, as a
/// call on a small input is latency-bound.
type Few<T> = SmallVec<[T; 8]>;

/// The sizes, dtype and device one call runs with.
#[derive(Debug)]
pub struct Bound {
    /// The size of each symbol, indexed like [`Graph::symbols`].
    pub symbols: Few<usize>,
    /// The parameter (index into [`Graph::params`]) and dim each symbol was bound from, for
    /// messages.
    pub origins: Few<(u16, u16)>,
    /// The leading dims `..` of a graph generic over them ([`Graph::leading`]), as the first
    /// argument declared with `..` has them; empty otherwise.
    pub leading: Few<usize>,
    /// The dtype all tensor arguments share.
    pub dtype: DType,
    pub device: Device,
}

impl Bound {
    /// Evaluates a shape under the bound symbols.
    pub fn shape(&self, graph: &Graph, dims: &[Dim], what: impl FnOnce() -> String) -> Result<Vec<usize>> {
        // Allocated once at its length, and filled in place.
        let mut out = Vec::with_capacity(dims.len());
        self.eval_each(graph, dims, what, |v| out.push(v))?;
        Ok(out)
    }

    /// Evaluates `dims` under the bound symbols into a list on the stack; the call path of small
    /// GPU kernels uses it.
    #[cfg(any(feature = "cuda", feature = "metal"))]
    pub fn dims<const N: usize>(
        &self,
        graph: &Graph,
        dims: &[Dim],
        what: impl FnOnce() -> String,
    ) -> Result<SmallVec<[usize; N]>>
    where
        [usize; N]: smallvec::Array<Item = usize>,
    {
        let mut out = SmallVec::new();
        self.dims_into(graph, dims, &mut out, what)?;
        Ok(out)
    }

    /// [`Bound::dims`] into a list the caller holds: the CPU launcher's lists are filled where
    /// they live, as moving a list just built stalls the next read of it.
    pub fn dims_into<const N: usize>(
        &self,
        graph: &Graph,
        dims: &[Dim],
        out: &mut SmallVec<[usize; N]>,
        what: impl FnOnce() -> String,
    ) -> Result<()>
    where
        [usize; N]: smallvec::Array<Item = usize>,
    {
        self.eval_each(graph, dims, what, |v| out.push(v))
    }

    /// Evaluates each of `dims` in order, handing the sizes to `push`; the error names the first
    /// that is not a whole number or overflows.
    #[inline]
    fn eval_each(
        &self,
        graph: &Graph,
        dims: &[Dim],
        what: impl FnOnce() -> String,
        mut push: impl FnMut(usize),
    ) -> Result<()> {
        for d in dims {
            match d.eval(&self.symbols) {
                Some(v) => push(v),
                None => return Err(self.size_error(graph, d, what())),
            }
        }
        Ok(())
    }

    /// An argument declared with `..` as the graph runs it: its leading dims flattened into one
    /// (`[prod, rest..]`). One leading dim is the argument as it is; none, a view with a leading
    /// `1`; several, a free reshape of a contiguous tensor and a contiguous copy of any other
    /// layout (Candle's reshape, whose backward carries gradients back). Other arguments are
    /// returned as they are.
    pub fn flatten(&self, graph: &Graph, declared: &[Dim], t: &Tensor) -> candle_core::Result<Tensor> {
        if !graph.has_leading(declared) {
            return Ok(t.clone());
        }
        let lead = t.rank() + 1 - declared.len();
        match lead {
            0 => t.unsqueeze(0),
            1 => Ok(t.clone()),
            _ => {
                let prod = self.symbols[graph.leading().expect("has leading dims") as usize];
                let mut dims = Vec::with_capacity(declared.len());
                dims.push(prod);
                dims.extend_from_slice(&t.dims()[lead..]);
                t.reshape(dims)
            }
        }
    }

    /// An output declared with `..`, as computed flattened (`[prod, rest..]`), with the call's
    /// leading dims restored: `[leading.., rest..]`.
    pub fn unflatten(&self, t: &Tensor) -> candle_core::Result<Tensor> {
        match self.leading.len() {
            0 => t.squeeze(0),
            1 => Ok(t.clone()),
            _ => {
                let mut dims: Vec<usize> = self.leading.to_vec();
                dims.extend_from_slice(&t.dims()[1..]);
                t.reshape(dims)
            }
        }
    }

    /// The parameter name and dim symbol `s` was bound from.
    fn origin(&self, graph: &Graph, s: u16) -> (&'static str, usize) {
        let (p, d) = self.origins[s as usize];
        (graph.params()[p as usize].name, d as usize)
    }

    /// The error for a dim that has no size (not a whole number, or past `usize`), naming each
    /// of its symbols with its value and origin, as in "D = 5 (from `x` dim 1)".
    fn size_error(&self, graph: &Graph, dim: &Dim, what: String) -> Error {
        // Factors are sorted, so a symbol's powers are adjacent.
        let mut ids: Vec<u16> = dim.symbols().collect();
        ids.dedup();
        let symbols: Vec<String> = ids
            .into_iter()
            .map(|s| {
                let (param, d) = self.origin(graph, s);
                let (name, value) = (graph.symbols()[s as usize], self.symbols[s as usize]);
                match graph.leading() == Some(s) {
                    true => format!(
                        "`..` = {value} (the leading dims {:?} of `{param}`)",
                        self.leading
                    ),
                    false => format!("{name} = {value} (from `{param}` dim {d})"),
                }
            })
            .collect();
        let (func, size, symbols) = (
            graph.name(),
            dim.display(graph.symbols()).to_string(),
            symbols.join(", "),
        );
        match dim.try_eval(&self.symbols) {
            Err(EvalError::Overflow) => Error::Overflow {
                func,
                what,
                size,
                symbols,
            },
            Err(EvalError::Fraction) => Error::Fraction {
                func,
                what,
                size,
                symbols,
            },
            Ok(_) | Err(EvalError::UnknownSymbol) => {
                unreachable!("binding gives every symbol a size; {size} of {what} has none")
            }
        }
    }
}

/// The element count of a value of `shape` in `dtype`, or [`Error::TooLarge`] where its bytes
/// pass `isize::MAX` (the most any allocation holds) or its count overflows: products of huge
/// broadcast views. Executors check each value before allocating it, so that no size
/// computation wraps (which would hand a kernel a buffer shorter than it writes).
pub fn elements(
    func: &'static str,
    shape: &[usize],
    dtype: DType,
    what: impl FnOnce() -> String,
) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match count {
        Some(n)
            if n.checked_mul(dtype.size_in_bytes())
                .is_some_and(|b| b <= isize::MAX as usize) =>
        {
            Ok(n)
        }
        _ => Err(Error::TooLarge {
            func,
            what: what(),
            shape: shape.to_vec(),
        }),
    }
}

/// Checks `tensors` (the tensor parameters in order) against `graph`.
#[inline]
pub fn bind(graph: &'static Graph, tensors: &[&Tensor]) -> Result<Bound> {
    let func = graph.name();
    // The tensor parameters, with their index among all parameters.
    let params = || {
        graph
            .params()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.kind {
                ParamKind::Tensor(shape) => Some((i as u16, p.name, shape)),
                ParamKind::Scalar(_) => None,
            })
    };
    assert_eq!(
        params().count(),
        tensors.len(),
        "generated code passes one tensor per tensor parameter"
    );
    let Some(first) = tensors.first() else {
        // A graph of scalars only cannot be written (the result must be a tensor).
        unreachable!("graphs have at least one tensor parameter");
    };
    let first_name = params().next().expect("as many parameters as tensors").1;
    let (dtype, device) = (first.dtype(), first.device());

    for ((_, param, declared), t) in params().zip(tensors) {
        if !matches!(t.dtype(), DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
            return Err(Error::UnsupportedDType {
                func,
                param,
                actual: t.dtype(),
            });
        }
        if t.dtype() != dtype {
            return Err(Error::DType {
                func,
                param,
                first: first_name,
                expected: dtype,
                actual: t.dtype(),
            });
        }
        if !t.device().same_device(device) {
            let (expected, actual) = (
                format!("{:?}", device.location()),
                format!("{:?}", t.device().location()),
            );
            return Err(Error::Device {
                func,
                param,
                first: first_name,
                expected,
                actual,
            });
        }
        if graph.has_leading(declared) {
            if t.rank() + 1 < declared.len() {
                return Err(Error::RankAtLeast {
                    func,
                    param,
                    declared: display_shape(declared, graph.symbols()),
                    expected: declared.len() - 1,
                    actual: t.dims().to_vec(),
                });
            }
        } else if t.rank() != declared.len() {
            return Err(Error::Rank {
                func,
                param,
                declared: display_shape(declared, graph.symbols()),
                expected: declared.len(),
                actual: t.dims().to_vec(),
            });
        }
    }

    // Symbols from the dims where they stand alone; `UNBOUND` until then.
    const UNBOUND: u16 = u16::MAX;
    let n = graph.symbols().len();
    // The lists are filled where they live (building them first and moving them in stalls the
    // reads that follow).
    let mut bound = Bound {
        symbols: SmallVec::new(),
        origins: SmallVec::new(),
        leading: SmallVec::new(),
        dtype,
        device: device.clone(),
    };
    bound.symbols.resize(n, 0);
    bound.origins.resize(n, (UNBOUND, 0));
    let mismatch = |bound: &Bound, s: u16, param, dim: usize, declared, expected, actual| {
        let (bound_by, bound_dim) = bound.origin(graph, s);
        Error::Symbol(Box::new(SymbolMismatch {
            func,
            symbol: graph.symbols()[s as usize],
            bound: bound.symbols[s as usize],
            bound_by,
            bound_dim,
            param,
            dim,
            declared: display_shape(declared, graph.symbols()),
            expected,
            actual,
        }))
    };
    if let Some(l) = graph.leading() {
        bind_leading(graph, l, &mut bound, params(), tensors)?;
    }
    for ((p, param, declared), t) in params().zip(tensors) {
        for (i, d, actual) in named_dims(graph, declared, t) {
            if let Some(s) = d.as_sym() {
                let s = s as usize;
                if bound.origins[s].0 == UNBOUND {
                    bound.symbols[s] = actual;
                    bound.origins[s] = (p, i as u16);
                } else if bound.symbols[s] != actual {
                    let expected = bound.symbols[s];
                    return Err(mismatch(&bound, s as u16, param, i, declared, expected, actual));
                }
            }
        }
    }
    debug_assert!(
        bound.origins.iter().all(|o| o.0 != UNBOUND),
        "the macro rejects symbols that no parameter binds"
    );

    for ((_, param, declared), t) in params().zip(tensors) {
        for (i, d, actual) in named_dims(graph, declared, t) {
            if d.as_sym().is_some() {
                continue;
            }
            let Some(expected) = d.eval(&bound.symbols) else {
                return Err(bound.size_error(graph, d, format!("parameter `{param}` dim {i}")));
            };
            if expected != actual {
                return Err(match d.symbols().next() {
                    None => Error::Dim {
                        func,
                        param,
                        dim: i,
                        declared: display_shape(declared, graph.symbols()),
                        expected,
                        actual,
                    },
                    Some(s) => mismatch(&bound, s, param, i, declared, expected, actual),
                });
            }
        }
    }
    check_derived_sizes(graph, &bound)?;
    Ok(bound)
}

/// Each declared dim of a parameter with the argument's dim index and size, but for the leading
/// dims `..` (which [`bind_leading`] binds): the dims after them pair with the argument's last
/// dims.
fn named_dims<'a>(
    graph: &Graph,
    declared: &'a [Dim],
    t: &'a Tensor,
) -> impl Iterator<Item = (usize, &'a Dim, usize)> + 'a {
    let skip = usize::from(graph.has_leading(declared));
    // Ranks were checked: at least the named dims.
    let first = t.rank() + skip - declared.len();
    (declared[skip..].iter().zip(&t.dims()[first..]))
        .enumerate()
        .map(move |(i, (d, &actual))| (first + i, d, actual))
}

/// Binds the leading dims `..` from the first argument declared with them, checks that every
/// other such argument has the same, and binds symbol `l` to their product.
fn bind_leading<'p>(
    graph: &'static Graph,
    l: u16,
    bound: &mut Bound,
    params: impl Iterator<Item = (u16, &'static str, &'p [Dim])>,
    tensors: &[&Tensor],
) -> Result<()> {
    let func = graph.name();
    let mut first: Option<(u16, &'static str, &Tensor)> = None;
    for ((p, param, declared), t) in params.zip(tensors) {
        if !graph.has_leading(declared) {
            continue;
        }
        let lead = &t.dims()[..t.rank() + 1 - declared.len()];
        let Some((_, first_name, first_t)) = first else {
            first = Some((p, param, t));
            bound.leading.extend_from_slice(lead);
            continue;
        };
        if lead != &bound.leading[..] {
            return Err(Error::Leading(Box::new(LeadingMismatch {
                func,
                param,
                declared: display_shape(declared, graph.symbols()),
                first: first_name,
                expected: bound.leading.to_vec(),
                actual: lead.to_vec(),
                first_shape: first_t.dims().to_vec(),
                actual_shape: t.dims().to_vec(),
            })));
        }
    }
    let (p, param, _) = first.expect("a graph with `..` has a parameter declared with it");
    let product = bound.leading.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    // A view can have more elements than `usize` counts (broadcast dims of stride 0).
    let product = match bound.leading.contains(&0) {
        true => Some(0),
        false => product,
    };
    let Some(product) = product else {
        return Err(Error::TooLarge {
            func,
            what: format!("the leading dims of parameter `{param}`"),
            shape: bound.leading.to_vec(),
        });
    };
    bound.symbols[l as usize] = product;
    bound.origins[l as usize] = (p, 0);
    Ok(())
}

/// Evaluates every size inside the graph that can fail (node shapes, narrow starts and `Size`
/// nodes; see [`graph_ir::needs_size_check`]) and checks that each narrow fits its argument, so
/// no executor meets a bad size.
fn check_derived_sizes(graph: &Graph, bound: &Bound) -> Result<()> {
    // Only the nodes whose sizes can fail (the macro lists them); parameter shapes were checked
    // against the arguments above.
    for &i in graph.checks() {
        let (i, node) = (i as usize, &graph.nodes()[i as usize]);
        let extra = match node.op {
            Op::Narrow(_, start) | Op::Size(start) => Some(start),
            _ => None,
        };
        if let Some(d) = node
            .shape
            .iter()
            .chain(&extra)
            .find(|d| d.eval(&bound.symbols).is_none())
        {
            return Err(bound.size_error(graph, d, describe_node(graph, i)));
        }
        if let Op::Narrow(axis, start) = node.op {
            // Arguments come first in the node order, so their sizes were evaluated already.
            let eval = |d: &Dim| d.eval(&bound.symbols).expect("checked above");
            let axis = axis as usize;
            let size = eval(&graph.nodes()[node.args[0] as usize].shape[axis]);
            let (start, len) = (eval(&start), eval(&node.shape[axis]));
            if start.checked_add(len).is_none_or(|end| end > size) {
                return Err(Error::Narrow {
                    func: graph.name(),
                    axis,
                    start,
                    len,
                    size,
                });
            }
        }
    }
    Ok(())
}

/// Names a node for users, who never see node numbers.
pub(crate) fn describe_node(graph: &Graph, i: usize) -> String {
    if let Some(k) = graph.outputs().iter().position(|&o| o as usize == i) {
        return match graph.outputs().len() {
            1 => "the result".to_string(),
            _ => format!("result {k}"),
        };
    }
    match graph.nodes()[i].op {
        Op::Narrow(axis, _) => format!("a narrow of axis {axis}"),
        Op::Reshape => "a reshape".to_string(),
        Op::Broadcast => "a broadcast".to_string(),
        Op::Cat(axis) => format!("a cat along axis {axis}"),
        Op::Size(_) => "a size used as a value".to_string(),
        _ => "an intermediate value".to_string(),
    }
}
