//! Schedules one planned kernel: how it reads each input, its run-time sizes, and the
//! statements of one row.
//!
//! A row is computed in stages. Stage k runs the reductions that depend on k - 1 earlier
//! reductions (one column loop per row length), then the per-row scalars that need them. The last
//! stage writes the outputs. Column values are recomputed from the inputs in every loop that needs
//! them rather than stored: a row stays in cache, and no scratch memory is needed.

use std::collections::{BTreeMap, BTreeSet};

use graph_ir::{Access, Dim, KernelKind, Op, OpClass};

use crate::ir::{Graph, NodeId, Ty};
use crate::kernel::{is_row_scalar, last_dim, Kernel, Stmt};
use crate::plan::{column_reduction, ColumnReduction};

/// The kernel named `name` that computes `nodes` (topological order), reading `inputs` (first-use
/// order) and writing `outputs`, as the planner grouped them.
pub fn schedule(
    graph: &Graph,
    name: String,
    nodes: Vec<NodeId>,
    inputs: Vec<NodeId>,
    outputs: Vec<NodeId>,
) -> Kernel {
    let reductions: Option<Vec<ColumnReduction>> =
        outputs.iter().map(|o| column_reduction(graph, *o)).collect();
    if let Some(reductions) = reductions.filter(|r| !r.is_empty()) {
        return columns(graph, name, reductions, nodes, inputs, outputs);
    }
    let last = |id: NodeId| last_dim(graph, id);
    let inputs = accesses(graph, &inputs);

    // Stage of each node: how many reductions deep it is.
    let mut stage: BTreeMap<NodeId, usize> = BTreeMap::new();
    for &id in &nodes {
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
    let row_scalars: Vec<NodeId> = nodes
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
    for &id in &nodes {
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
        for &id in &nodes {
            if stage[&id] == s && s > 0 && graph.node(id).op.class() == OpClass::Reduce {
                let len = size(last(graph.node(id).args[0]));
                loops.entry(len).or_default().push(id);
            }
        }
        for (len, reductions) in loops {
            stmts.push(Stmt::Reduce {
                len,
                reductions,
                reads: BTreeSet::new(),
            });
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
    for (i, &o) in outputs.iter().enumerate() {
        if is_row_scalar(graph, o) {
            scalar_writes.push(i);
        } else {
            writes.entry(size(last(o))).or_default().push(i);
        }
    }
    for (len, outputs) in writes {
        stmts.push(Stmt::Write {
            len,
            outputs,
            reads: BTreeSet::new(),
        });
    }
    if !scalar_writes.is_empty() {
        stmts.push(Stmt::WriteRowScalars(scalar_writes));
    }
    let row_scalars: BTreeSet<NodeId> = row_scalars.into_iter().collect();
    let remaps = nodes
        .iter()
        .any(|n| matches!(graph.node(*n).op, Op::Narrow(..) | Op::Cat(_)));
    let layout_or_reduce = nodes
        .iter()
        .any(|id| matches!(graph.node(*id).op.class(), OpClass::Reduce | OpClass::Layout));
    let kind = if layout_or_reduce {
        KernelKind::Row
    } else {
        KernelKind::Pointwise
    };
    let prefix = match outputs.first().and_then(|o| graph.node(*o).ty.shape()) {
        Some(s) => s[..s.len().saturating_sub(1)].to_vec(),
        None => Vec::new(),
    };
    let mut kernel = Kernel {
        name,
        kind,
        prefix,
        nodes,
        inputs,
        outputs,
        sizes,
        row_scalars,
        stmts,
        remaps,
        cached: BTreeSet::new(),
    };
    fill_reads(graph, &mut kernel);
    kernel.cached = cached(&kernel);
    kernel
}

/// How a kernel reads each input: a scalar, one value per row, or a value per column.
fn accesses(graph: &Graph, inputs: &[NodeId]) -> Vec<(NodeId, Access)> {
    inputs
        .iter()
        .map(|&id| {
            let access = match graph.node(id).ty {
                Ty::Scalar => Access::Scalar,
                _ if is_row_scalar(graph, id) => Access::RowScalar,
                _ => Access::Column,
            };
            (id, access)
        })
        .collect()
}

/// A column kernel: `outputs` are reductions along the same prefix axes of values of one shape
/// (the domain), computed from `inputs` through the pointwise `nodes`. One statement: every row
/// of the domain takes its columns into the accumulators.
fn columns(
    graph: &Graph,
    name: String,
    reductions: Vec<ColumnReduction>,
    nodes: Vec<NodeId>,
    inputs: Vec<NodeId>,
    outputs: Vec<NodeId>,
) -> Kernel {
    let (axis, axes) = (reductions[0].axis, reductions[0].axes);
    let domain = graph.node(reductions[0].source).ty.shape().unwrap_or_default();
    let inputs = accesses(graph, &inputs);
    let mut sizes: Vec<Dim> = vec![*domain.last().expect("a column reduction has rank 2 or more")];
    for &(id, access) in &inputs {
        let d = last_dim(graph, id);
        if access == Access::Column && !sizes.contains(&d) {
            sizes.push(d);
        }
    }
    let mut kernel = Kernel {
        name,
        kind: KernelKind::Column { axis, axes },
        prefix: domain[..domain.len() - 1].to_vec(),
        nodes,
        inputs,
        stmts: vec![Stmt::Accumulate {
            len: 0,
            outputs: (0..outputs.len()).collect(),
            values: reductions.iter().map(|r| r.source).collect(),
            reads: BTreeSet::new(),
        }],
        outputs,
        sizes,
        // Every value is computed at its column, even one of a domain one column wide.
        row_scalars: BTreeSet::new(),
        remaps: false,
        cached: BTreeSet::new(),
    };
    fill_reads(graph, &mut kernel);
    kernel
}

/// Sets what each column loop of `k` reads.
fn fill_reads(graph: &Graph, k: &mut Kernel) {
    let roots: Vec<Option<Vec<NodeId>>> = k
        .stmts
        .iter()
        .map(|s| match s {
            Stmt::Reduce { reductions, .. } => {
                Some(reductions.iter().map(|r| graph.node(*r).args[0]).collect())
            }
            Stmt::Write { outputs, .. } => Some(outputs.iter().map(|o| k.outputs[*o]).collect()),
            Stmt::Accumulate { values, .. } => Some(values.clone()),
            Stmt::RowScalars(_) | Stmt::WriteRowScalars(_) => None,
        })
        .collect();
    for (i, roots) in roots.into_iter().enumerate() {
        let Some(roots) = roots else { continue };
        let found = reads(graph, k, &roots);
        if let Stmt::Reduce { reads, .. } | Stmt::Write { reads, .. } | Stmt::Accumulate { reads, .. } =
            &mut k.stmts[i]
        {
            *reads = found;
        }
    }
}

/// The column inputs that computing `roots` at a column reads (stopping at per-row scalars).
fn reads(graph: &Graph, k: &Kernel, roots: &[NodeId]) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<NodeId> = roots.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(i) = k.input_index(id) {
            if k.inputs[i].1 == Access::Column {
                found.insert(i);
            }
            continue;
        }
        if k.is_row_local(id) {
            continue;
        }
        stack.extend(graph.node(id).args.iter().copied());
    }
    found
}

/// See [`Kernel::cached`].
fn cached(k: &Kernel) -> BTreeSet<usize> {
    if k.kind != KernelKind::Row || k.remaps {
        return BTreeSet::new();
    }
    k.inputs_read(Access::Column)
        .filter(|i| {
            k.stmts
                .iter()
                .filter(|s| s.reads().is_some_and(|r| r.contains(i)))
                .count()
                > 1
        })
        .collect()
}
