//! Optimisation passes over the checked IR. Each pass keeps the graph's meaning exactly (IEEE
//! results included), reports no errors, and returns a new graph in topological order.

mod cse;
mod eliminate_dead;
mod fold_constants;
mod narrow;
mod simplify;

pub use cse::cse;
pub use eliminate_dead::eliminate_dead;
pub use fold_constants::fold_constants;
pub use narrow::push_narrows;
pub use simplify::simplify;

use crate::ir::Graph;

/// Runs the passes to a fixed point, then moves narrows towards the inputs (which can add
/// nodes: a sliced product becomes products of slices) and runs them again.
pub fn optimise(graph: Graph) -> Graph {
    let graph = shrink(graph);
    match push_narrows(&graph) {
        (pushed, true) => shrink(pushed),
        (_, false) => graph,
    }
}

/// Runs the passes that only shrink the graph to a fixed point (so this ends).
fn shrink(mut graph: Graph) -> Graph {
    loop {
        let before = graph.nodes.len();
        graph = eliminate_dead(&cse(&simplify(&fold_constants(&graph))));
        if graph.nodes.len() == before {
            return graph;
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builds small graphs by hand for the pass tests.
    use graph_ir::{BinaryOp, Dim, Lit, Op, UnaryOp};

    use crate::ir::{Graph, Node, NodeId, Param, ParamKind, Ty};

    pub fn tensor_graph() -> (Graph, NodeId) {
        let mut g = Graph {
            symbols: vec!["N".into()],
            ..Graph::default()
        };
        g.params.push(Param {
            name: "x".into(),
            kind: ParamKind::Tensor(vec![Dim::sym(0)]),
        });
        let x = g.push(node(Op::Input(0), vec![], Ty::Tensor(vec![Dim::sym(0)])));
        (g, x)
    }

    pub fn node(op: Op, args: Vec<NodeId>, ty: Ty) -> Node {
        Node { op, args, ty }
    }

    pub fn lit(g: &mut Graph, v: f64) -> NodeId {
        g.push(node(Op::Const(Lit::new(v)), vec![], Ty::Scalar))
    }

    pub fn bin(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        let ty = if g.node(a).ty == Ty::Scalar {
            g.node(b).ty.clone()
        } else {
            g.node(a).ty.clone()
        };
        g.push(node(Op::Binary(op), vec![a, b], ty))
    }

    pub fn un(g: &mut Graph, op: UnaryOp, a: NodeId) -> NodeId {
        let ty = g.node(a).ty.clone();
        g.push(node(Op::Unary(op), vec![a], ty))
    }
}
