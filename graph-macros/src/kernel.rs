//! The kernel IR shared by every backend emitter (CPU now; CUDA and Metal read the same): a
//! planned kernel's inputs and how they are indexed, its run-time sizes, and the schedule of one
//! row as a list of statements.
//!
//! A row is computed in stages. Stage k runs the reductions that depend on k - 1 earlier
//! reductions (one column loop per row length), then the per-row scalars that need them. The last
//! stage writes the outputs. Column values are recomputed from the inputs in every loop that needs
//! them rather than stored: a row stays in cache, and no scratch memory is needed.

use std::collections::{BTreeMap, BTreeSet};

use graph_ir::{Access, Dim, KernelKind, Op, OpClass};

use crate::ir::{Graph, NodeId, Ty};
use crate::plan::KernelPlan;

#[derive(Clone, Debug)]
pub struct KernelIr {
    pub name: String,
    pub kind: KernelKind,
    pub prefix: Vec<Dim>,
    pub nodes: Vec<NodeId>,
    pub inputs: Vec<(NodeId, Access)>,
    pub outputs: Vec<NodeId>,
    /// Run-time sizes: row lengths, narrow starts and cat splits, deduplicated.
    pub sizes: Vec<Dim>,
    /// Nodes computed once per row (reductions and the scalar work after them).
    /// A set: the emitters look a node up here for every value they bind.
    pub row_scalars: BTreeSet<NodeId>,
    pub stmts: Vec<Stmt>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// One loop over columns `0..sizes[len]` accumulating these reductions.
    Reduce { len: usize, reductions: Vec<NodeId> },
    /// Per-row scalar nodes, computed in this order.
    RowScalars(Vec<NodeId>),
    /// One loop over the columns writing these outputs (indices into `outputs`), all of row length
    /// `sizes[len]`.
    Write { len: usize, outputs: Vec<usize> },
    /// Writes these one-per-row outputs.
    WriteRowScalars(Vec<usize>),
}

/// Whether a tensor node has one value per row (last dim literally 1, or rank 0).
pub fn is_row_scalar(graph: &Graph, id: NodeId) -> bool {
    match &graph.node(id).ty {
        Ty::Scalar => false,
        Ty::Tensor(s) => s.last().is_none_or(Dim::is_one),
    }
}

impl KernelIr {
    pub fn size_index(&self, d: &Dim) -> usize {
        self.sizes
            .iter()
            .position(|s| s == d)
            .expect("every size a kernel uses is collected")
    }

    /// Whether `id` is a per-row scalar this kernel computes (a local of the row, not a load).
    pub fn is_row_local(&self, id: NodeId) -> bool {
        self.row_scalars.contains(&id)
    }

    pub fn input_index(&self, id: NodeId) -> Option<usize> {
        self.inputs.iter().position(|(n, _)| *n == id)
    }

    /// The indices of the inputs read with `access`, in order.
    pub fn inputs_read(&self, access: Access) -> impl Iterator<Item = usize> + '_ {
        (0..self.inputs.len()).filter(move |i| self.inputs[*i].1 == access)
    }

    /// The index in [`KernelIr::sizes`] of node `id`'s row length (its last dim; 1 for rank 0).
    pub fn len_index(&self, graph: &Graph, id: NodeId) -> usize {
        self.size_index(&last_dim(graph, id))
    }

    /// Whether the kernel reads columns other than the one it computes (`narrow`, `cat`).
    pub fn remaps(&self, graph: &Graph) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(graph.node(*n).op, Op::Narrow(..) | Op::Cat(_)))
    }
}

/// Node `id`'s last dim, 1 for rank 0.
fn last_dim(graph: &Graph, id: NodeId) -> Dim {
    *graph
        .node(id)
        .ty
        .shape()
        .and_then(<[Dim]>::last)
        .unwrap_or(&Dim::lit(1))
}

pub fn schedule(graph: &Graph, plan: &KernelPlan, name: String) -> KernelIr {
    let last = |id: NodeId| last_dim(graph, id);
    let inputs: Vec<(NodeId, Access)> = plan
        .inputs
        .iter()
        .map(|&id| {
            let access = match graph.node(id).ty {
                Ty::Scalar => Access::Scalar,
                _ if is_row_scalar(graph, id) => Access::RowScalar,
                _ => Access::Column,
            };
            (id, access)
        })
        .collect();

    // Stage of each node: how many reductions deep it is.
    let mut stage: BTreeMap<NodeId, usize> = BTreeMap::new();
    for &id in &plan.nodes {
        let node = graph.node(id);
        let deepest = node
            .args
            .iter()
            .filter_map(|a| stage.get(a))
            .max()
            .copied()
            .unwrap_or(0);
        let s = if node.op.class() == OpClass::Reduce {
            deepest + 1
        } else {
            deepest
        };
        stage.insert(id, s);
    }
    let row_scalars: Vec<NodeId> = plan
        .nodes
        .iter()
        .copied()
        .filter(|id| is_row_scalar(graph, *id))
        .collect();

    let mut sizes: Vec<Dim> = Vec::new();
    let mut size = |d: Dim| match sizes.iter().position(|s| *s == d) {
        Some(i) => i,
        None => {
            sizes.push(d);
            sizes.len() - 1
        }
    };
    for &(id, access) in &inputs {
        if access == Access::Column {
            size(last(id));
        }
    }
    for &id in &plan.nodes {
        match graph.node(id).op {
            Op::Narrow(_, start) => {
                size(start);
            }
            Op::Cat(_) => {
                for a in &graph.node(id).args {
                    size(last(*a));
                }
            }
            _ => {}
        }
    }

    let mut stmts = Vec::new();
    let max_stage = stage.values().copied().max().unwrap_or(0);
    for s in 0..=max_stage {
        // Reductions finishing at stage s, one loop per row length.
        let mut loops: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
        for &id in &plan.nodes {
            if stage[&id] == s && s > 0 && graph.node(id).op.class() == OpClass::Reduce {
                let len = size(last(graph.node(id).args[0]));
                loops.entry(len).or_default().push(id);
            }
        }
        for (len, reductions) in loops {
            stmts.push(Stmt::Reduce { len, reductions });
        }
        let scalars: Vec<NodeId> = row_scalars
            .iter()
            .copied()
            .filter(|id| stage[id] == s && graph.node(*id).op.class() != OpClass::Reduce)
            .collect();
        if !scalars.is_empty() {
            stmts.push(Stmt::RowScalars(scalars));
        }
    }
    let mut writes: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut scalar_writes = Vec::new();
    for (i, &o) in plan.outputs.iter().enumerate() {
        if is_row_scalar(graph, o) {
            scalar_writes.push(i);
        } else {
            writes.entry(size(last(o))).or_default().push(i);
        }
    }
    for (len, outputs) in writes {
        stmts.push(Stmt::Write { len, outputs });
    }
    if !scalar_writes.is_empty() {
        stmts.push(Stmt::WriteRowScalars(scalar_writes));
    }
    KernelIr {
        name,
        kind: plan.kind,
        prefix: plan.prefix.clone(),
        nodes: plan.nodes.clone(),
        inputs,
        outputs: plan.outputs.clone(),
        sizes,
        row_scalars: row_scalars.into_iter().collect(),
        stmts,
    }
}
