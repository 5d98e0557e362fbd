//! Common subexpression elimination: nodes with the same op, the same arguments and the same
//! type are one node. The type matters: `broadcast`, `reshape` and `narrow` take their target
//! size from it, so `broadcast(x, [N, D])` and `broadcast(x, [D, N])` differ in it alone.
//!
//! Assumes nodes are in topological order, so arguments are already deduplicated when a node is
//! looked up. Ops are pure, so merging never changes a result.

use std::collections::HashMap;

use graph_ir::Op;

use crate::ir::{Graph, NodeId, Ty};

pub fn cse(graph: &Graph) -> Graph {
    let mut seen: HashMap<(Op, Vec<NodeId>, Ty), NodeId> = HashMap::new();
    let mut replace: Vec<NodeId> = graph.ids().collect();
    for id in graph.ids() {
        let node = graph.node(id);
        let args: Vec<NodeId> = node.args.iter().map(|a| replace[a.index()]).collect();
        let key = (node.op, args, node.ty.clone());
        match seen.get(&key) {
            Some(&first) => replace[id.index()] = first,
            None => {
                seen.insert(key, id);
            }
        }
    }
    graph.rebuild(&vec![true; graph.nodes.len()], &replace)
}

#[cfg(test)]
mod tests {
    use graph_ir::{BinaryOp, UnaryOp};

    use super::*;
    use crate::passes::test_util::*;

    #[test]
    fn merges_repeated_subexpressions() {
        let (mut g, x) = tensor_graph();
        let e1 = un(&mut g, UnaryOp::Exp, x);
        let e2 = un(&mut g, UnaryOp::Exp, x);
        let s = bin(&mut g, BinaryOp::Add, e1, e2);
        g.outputs = vec![s];
        let out = cse(&g);
        assert_eq!(out.nodes.len(), 3);
        let add = out.node(out.outputs[0]);
        assert_eq!(add.args[0], add.args[1]);
    }

    #[test]
    fn keeps_different_ops_and_argument_orders() {
        let (mut g, x) = tensor_graph();
        let e = un(&mut g, UnaryOp::Exp, x);
        let l = un(&mut g, UnaryOp::Log, x);
        let a = bin(&mut g, BinaryOp::Sub, e, l);
        let b = bin(&mut g, BinaryOp::Sub, l, e);
        let s = bin(&mut g, BinaryOp::Add, a, b);
        g.outputs = vec![s];
        assert_eq!(cse(&g).nodes.len(), g.nodes.len());
    }
}
