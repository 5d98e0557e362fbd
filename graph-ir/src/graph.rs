//! The static graph the macro emits for each function: parameters, symbols, nodes in topological
//! order, and outputs. Everything is `&'static` so a graph is a `static` item with no run-time
//! construction.

use crate::dim::Dim;
use crate::ops::{DType, Op};
use crate::plan::Step;

/// One `lazy_graph!` function after checking and optimisation.
///
/// The macro emits one per function as the `static` `name::GRAPH`. Print it with
/// [`Graph::to_text`], [`Graph::nodes_to_text`] or [`Graph::to_dot`].
#[derive(Debug)]
pub struct Graph {
    /// The function's name.
    pub name: &'static str,
    /// Parameters in signature order.
    pub params: &'static [Param],
    /// Shape symbol names; `Dim` symbol ids index this table.
    pub symbols: &'static [&'static str],
    /// Nodes in topological order: every argument comes before its user.
    pub nodes: &'static [Node],
    /// The node of each returned value, in order.
    pub outputs: &'static [u32],
    /// The fused execution plan: every non-leaf node in exactly one step.
    pub plan: &'static [Step],
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
