//! The static graph the macro emits for each function: parameters, symbols, nodes in topological
//! order, and outputs. Everything is `&'static` so a graph is a `static` item with no run-time
//! construction.

use crate::dim::Dim;
use crate::ops::{DType, Op};
use crate::plan::Step;

/// One `lazy_graph!` function after checking and optimisation.
///
/// The macro emits one per function as the `static` `name::GRAPH`. Print it with
/// [`Graph::to_text`], [`Graph::nodes_to_text`] or [`Graph::to_dot`]; read its parts with the
/// accessors below.
#[derive(Debug)]
pub struct Graph {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Param],
    pub(crate) symbols: &'static [&'static str],
    pub(crate) nodes: &'static [Node],
    pub(crate) outputs: &'static [u32],
    pub(crate) plan: &'static [Step],
    pub(crate) checks: &'static [u32],
    pub(crate) single: Option<&'static [Source]>,
    pub(crate) backward: Option<&'static Graph>,
    pub(crate) reached: &'static [&'static [u16]],
    pub(crate) leading: Option<u16>,
}

impl Graph {
    /// A graph from its parts, for generated code: the macro upholds what each accessor's doc
    /// promises (nodes in topological order, every index in range, a plan covering every node).
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        params: &'static [Param],
        symbols: &'static [&'static str],
        nodes: &'static [Node],
        outputs: &'static [u32],
        plan: &'static [Step],
        checks: &'static [u32],
        single: Option<&'static [Source]>,
    ) -> Graph {
        Graph {
            name,
            params,
            symbols,
            nodes,
            outputs,
            plan,
            checks,
            single,
            backward: None,
            reached: &[],
            leading: None,
        }
    }

    /// The graph with symbol `symbol` standing for the leading dims `..` (see
    /// [`Graph::leading`]), for generated code.
    #[doc(hidden)]
    pub const fn with_leading(self, symbol: u16) -> Graph {
        Graph {
            leading: Some(symbol),
            ..self
        }
    }

    /// The graph with `backward` as its backward graph (see [`Graph::backward`]) and, for each
    /// output, the tensor arguments its gradient reaches (see [`Graph::reached`]), for generated
    /// code.
    #[doc(hidden)]
    pub const fn with_backward(self, backward: &'static Graph, reached: &'static [&'static [u16]]) -> Graph {
        Graph {
            backward: Some(backward),
            reached,
            ..self
        }
    }

    /// For a function generic over leading dims (`x: Tensor[.., D]`), the symbol that stands
    /// for them, named `..`: it is the first dim of every parameter and output declared with
    /// `..`, and its size at a call is the product of the caller's leading dims, which binding
    /// reads from the first such argument. Each such argument runs flattened to `[prod, rest..]`
    /// and each such output is reshaped back to `[leading.., rest..]`. `None` for other graphs.
    pub fn leading(&self) -> Option<u16> {
        self.leading
    }

    /// Whether a shape starts with the leading dims `..` (see [`Graph::leading`]).
    pub fn has_leading(&self, shape: &[Dim]) -> bool {
        self.leading.is_some_and(|l| shape.first() == Some(&Dim::sym(l)))
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Parameters in signature order.
    pub fn params(&self) -> &'static [Param] {
        self.params
    }

    /// Shape symbol names; `Dim` symbol ids index this table.
    pub fn symbols(&self) -> &'static [&'static str] {
        self.symbols
    }

    /// Nodes in topological order: every argument comes before its user.
    pub fn nodes(&self) -> &'static [Node] {
        self.nodes
    }

    /// The node of each returned value, in order.
    pub fn outputs(&self) -> &'static [u32] {
        self.outputs
    }

    /// The fused execution plan: every non-leaf node in exactly one step.
    pub fn plan(&self) -> &'static [Step] {
        self.plan
    }

    /// The nodes whose sizes binding evaluates and checks at each call, in node order: see
    /// [`needs_size_check`]. The rest have sizes that cannot fail once the parameters bind.
    pub fn checks(&self) -> &'static [u32] {
        self.checks
    }

    /// For a graph whose plan is one kernel that reads parameters and constants only and writes
    /// the graph's outputs in order, in the storage dtype (most example graphs): where that
    /// kernel reads each input. A call of such a graph goes from its arguments straight to the
    /// kernel, with no table of node values. `None` for other graphs.
    pub fn single(&self) -> Option<&'static [Source]> {
        self.single
    }

    /// The graph of this function's backward, derived by the macro (`name::BACKWARD`): it takes
    /// this graph's parameters in order, then one cotangent per output of that output's shape,
    /// and returns the gradient of each tensor parameter, in order, of that parameter's shape.
    /// `None` for a backward graph itself, a function with no tensor parameter, and one whose
    /// backward the graph language cannot write.
    pub fn backward(&self) -> Option<&'static Graph> {
        self.backward
    }

    /// For each output of a graph with a [`Graph::backward`], the tensor arguments (by index
    /// among the tensor parameters, in order) it depends on through ops that carry gradients
    /// ([`Op::carries_gradient`]): the arguments its cotangent sends a gradient to. Empty for a
    /// graph with no backward.
    pub fn reached(&self) -> &'static [&'static [u16]] {
        self.reached
    }
}

/// Where a one-kernel graph's kernel reads one input: see [`Graph::single`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The tensor argument at this index among the tensor parameters.
    Tensor(u16),
    /// The scalar argument at this index among the scalar parameters.
    Scalar(u16),
    /// A constant.
    Const(crate::Lit),
}

/// Whether binding must evaluate a node's sizes (its `shape`, and a narrow's start or a `Size`
/// node's dim) at each call: a product or fraction of symbols can overflow or not be whole, and
/// a narrow must fit its argument. A lone symbol, or a literal of up to 32 bits, always
/// evaluates once the parameters have bound every symbol. Parameters are checked as they bind.
pub fn needs_size_check(op: &Op, shape: &[Dim]) -> bool {
    let plain = |d: &Dim| d.as_sym().is_some() || d.as_lit().is_some_and(|n| n <= u64::from(u32::MAX));
    match op {
        Op::Input(_) => false,
        Op::Narrow(..) => true,
        Op::Size(d) => !plain(d) || !shape.iter().all(plain),
        _ => !shape.iter().all(plain),
    }
}

/// A function parameter.
#[derive(Debug)]
pub struct Param {
    /// The name as declared.
    pub name: &'static str,
    /// Tensor (with its declared shape) or scalar.
    pub kind: ParamKind,
}

/// What a parameter holds.
#[derive(Debug)]
pub enum ParamKind {
    /// A tensor with this declared shape.
    Tensor(&'static [Dim]),
    /// A scalar of this Rust type.
    Scalar(ScalarType),
}

/// The Rust type of a scalar parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

/// One node of the graph.
#[derive(Debug)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Argument nodes, by index into [`Graph::nodes`].
    pub args: &'static [u32],
    /// The symbolic shape; empty for scalars and rank-0 tensors.
    pub shape: &'static [Dim],
    /// Whether the node is a scalar (parameters, literals and arithmetic on them) rather than a
    /// tensor.
    pub scalar: bool,
    /// The storage type of the node's values: `None` is the inputs' dtype, `Some` is fixed by a
    /// cast.
    pub dtype: Option<DType>,
}

impl Graph {
    /// The shape of a declared tensor parameter, `None` for scalars.
    pub fn param_shape(&self, param: usize) -> Option<&'static [Dim]> {
        match self.params.get(param)?.kind {
            ParamKind::Tensor(shape) => Some(shape),
            ParamKind::Scalar(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::UnaryOp;

    #[test]
    fn only_sizes_that_can_fail_are_checked() {
        let (n, d) = (Dim::sym(0), Dim::sym(1));
        let neg = Op::Unary(UnaryOp::Neg);
        // Lone symbols and small literals always evaluate.
        assert!(!needs_size_check(&neg, &[n, Dim::lit(4096)]));
        assert!(!needs_size_check(&Op::Size(d), &[]));
        // Products, fractions and literals past 32 bits may not.
        let nd = n.times(d).expect("a product");
        assert!(needs_size_check(&neg, &[nd]));
        assert!(needs_size_check(&neg, &[d.div_lit(2).expect("a fraction")]));
        assert!(needs_size_check(&neg, &[Dim::lit(1 << 40)]));
        assert!(needs_size_check(&Op::Size(nd), &[]));
        // A narrow's range is checked whatever its sizes; parameters never are here.
        assert!(needs_size_check(&Op::Narrow(0, Dim::lit(0)), &[n]));
        assert!(!needs_size_check(&Op::Input(0), &[nd]));
    }
}
