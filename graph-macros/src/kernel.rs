//! The one kernel type, from the planner to every emitter: what a fused kernel computes, reads
//! and writes, and the schedule of one row, all computed once by [`crate::schedule`].

use std::collections::BTreeSet;

use graph_ir::{Access, Dim, KernelKind};

use crate::ir::{Graph, NodeId, Ty};

/// One step of a function's plan, in run order.
#[derive(Clone, Debug)]
pub enum Step {
    /// A fused kernel the macro generates.
    Kernel(Box<Kernel>),
    /// One node run through Candle (matmul, layout ops, reductions over other axes).
    Library(NodeId),
}

/// A fused kernel, planned and scheduled.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Unique within the function, e.g. `softmax_k0`; names the generated items.
    pub name: String,
    pub kind: KernelKind,
    /// The iteration space: every output has this shape before its last dim (for a column
    /// kernel, the shape of the values it reduces before their last dim).
    pub prefix: Vec<Dim>,
    /// Computed inside, topological order.
    pub nodes: Vec<NodeId>,
    /// Read from outside (tensors and scalars) in first-use order, with how each is indexed.
    pub inputs: Vec<(NodeId, Access)>,
    /// Written: graph outputs and values later steps read.
    pub outputs: Vec<NodeId>,
    /// Run-time sizes: row lengths, narrow starts and cat splits, deduplicated.
    pub sizes: Vec<Dim>,
    /// Nodes computed once per row (reductions and the scalar work after them).
    /// A set: the emitters look a node up here for every value they bind.
    pub row_scalars: BTreeSet<NodeId>,
    /// One row, in order.
    pub stmts: Vec<Stmt>,
    /// Whether the kernel reads columns other than the one it computes (`narrow`, `cat`).
    pub remaps: bool,
    /// The column inputs a GPU row kernel keeps in registers: those more than one column loop
    /// reads (the others are read once anyway). Empty for kernels that remap columns.
    pub cached: BTreeSet<usize>,
}

/// A statement of one row's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// One loop over columns `0..sizes[len]` accumulating these reductions.
    Reduce {
        len: usize,
        reductions: Vec<NodeId>,
        /// The column inputs the loop reads (indices into `inputs`).
        reads: BTreeSet<usize>,
    },
    /// Per-row scalar nodes, computed in this order.
    RowScalars(Vec<NodeId>),
    /// One loop over the columns writing these outputs (indices into `outputs`), all of row length
    /// `sizes[len]`.
    Write {
        len: usize,
        outputs: Vec<usize>,
        /// The column inputs the loop reads (indices into `inputs`).
        reads: BTreeSet<usize>,
    },
    /// Writes these one-per-row outputs.
    WriteRowScalars(Vec<usize>),
    /// A column kernel's one loop over columns `0..sizes[len]` of a row of its domain, taking
    /// each output's value at that column into the output's accumulator row.
    Accumulate {
        len: usize,
        outputs: Vec<usize>,
        /// The node each output reduces: its reduction's argument, or what a reshape merging the
        /// reduced axes reshaped.
        values: Vec<NodeId>,
        /// The column inputs the loop reads (indices into `inputs`).
        reads: BTreeSet<usize>,
    },
}

impl Stmt {
    /// The column inputs this statement's column loop reads; none for per-row statements.
    pub fn reads(&self) -> Option<&BTreeSet<usize>> {
        match self {
            Stmt::Reduce { reads, .. } | Stmt::Write { reads, .. } | Stmt::Accumulate { reads, .. } => {
                Some(reads)
            }
            Stmt::RowScalars(_) | Stmt::WriteRowScalars(_) => None,
        }
    }
}

/// Whether a tensor node has one value per row (last dim literally 1, or rank 0).
pub fn is_row_scalar(graph: &Graph, id: NodeId) -> bool {
    match &graph.node(id).ty {
        Ty::Scalar => false,
        Ty::Tensor(s) => s.last().is_none_or(Dim::is_one),
    }
}

/// Node `id`'s last dim, 1 for rank 0.
pub fn last_dim(graph: &Graph, id: NodeId) -> Dim {
    *graph
        .node(id)
        .ty
        .shape()
        .and_then(<[Dim]>::last)
        .unwrap_or(&Dim::lit(1))
}

impl Kernel {
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

    /// The index in [`Kernel::sizes`] of node `id`'s row length (its last dim; 1 for rank 0).
    pub fn len_index(&self, graph: &Graph, id: NodeId) -> usize {
        self.size_index(&last_dim(graph, id))
    }
}
