//! Dead-node elimination: drops every node no output depends on.

use crate::ir::Graph;

pub fn eliminate_dead(graph: &Graph) -> Graph {
    let mut live = vec![false; graph.nodes.len()];
    for o in &graph.outputs {
        live[o.index()] = true;
    }
    for id in graph.ids().rev() {
        if live[id.index()] {
            for a in &graph.node(id).args {
                live[a.index()] = true;
            }
        }
    }
    graph.rebuild(&live, &graph.ids().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use graph_ir::UnaryOp;

    use super::*;
    use crate::passes::test_util::*;

    #[test]
    fn drops_unused_nodes_and_keeps_order() {
        let (mut g, x) = tensor_graph();
        let _unused = un(&mut g, UnaryOp::Sin, x);
        let e = un(&mut g, UnaryOp::Exp, x);
        let l = un(&mut g, UnaryOp::Log, e);
        g.outputs = vec![l];
        let out = eliminate_dead(&g);
        assert_eq!(out.nodes.len(), 3);
        assert_eq!(out.node(out.outputs[0]).op, graph_ir::Op::Unary(UnaryOp::Log));
        assert_eq!(
            out.node(out.node(out.outputs[0]).args[0]).op,
            graph_ir::Op::Unary(UnaryOp::Exp)
        );
    }
}
