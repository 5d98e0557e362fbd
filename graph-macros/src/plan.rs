//! Partitions the optimised graph into steps. (Fusion comes with the CPU kernels; until then
//! every non-leaf node is its own library step.)

use graph_ir::OpClass;

use crate::ir::{Graph, NodeId};

/// A step of the plan, before emission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Library(NodeId),
}

pub fn plan(graph: &Graph) -> Vec<Step> {
    graph
        .ids()
        .filter(|id| graph.node(*id).op.class() != OpClass::Leaf)
        .map(Step::Library)
        .collect()
}
