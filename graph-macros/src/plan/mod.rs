//! Partitions the optimised graph into steps: fused kernels and library steps.
//!
//! Every non-leaf tensor node lands in exactly one step; scalar arithmetic (on parameters and
//! sizes) is left to the host. Rules:
//! - fusable: pointwise ops, reductions over the last axis, and `narrow`/`cat` on the last axis
//!   (row-local index arithmetic). Everything else (matmul, transpose, reshape, broadcast, layout
//!   on other axes, reductions over other axes) is a library step.
//! - a kernel iterates over rows (the shape before the last dim, its *prefix*) and columns. Fusable
//!   nodes with the same prefix that feed each other join one kernel, unless that would make a
//!   kernel wait on a step that waits on itself (checked with each step's ancestors).
//! - a reduction-free group whose prefix broadcasts into the only kernel that uses it (rope's
//!   `cat([cos, cos])` table, `[S, D]` inside a `[B, H, S, D]` kernel) is recomputed inside that
//!   kernel instead of being written out.
//! - a kernel with a reduction or a row-local layout op is a row kernel, otherwise pointwise.
//! - a reduction over another axis (a weight's gradient summed over rows) is a column kernel,
//!   with the pointwise values only it reads (`dy * x * rstd`) computed inside it rather than
//!   written out; column reductions over the same values' shape and axis share one kernel
//!   (layer norm's `dw` and `db`). A column kernel's own users are other steps. A narrow of an
//!   input that it reads is a library step (a view), not an output of another kernel.

mod columns;
mod cycles;

pub use columns::{column_reduction, ColumnReduction};

use std::collections::{BTreeMap, BTreeSet};

use graph_ir::{Dim, Op, OpClass};

use crate::ir::{Graph, NodeId, Ty};
use crate::kernel::{Kernel, Step};
use crate::schedule::schedule;
use columns::column_groups;
use cycles::creates_cycle;

/// Whether a node can join a fused kernel.
pub fn fusable(graph: &Graph, id: NodeId) -> bool {
    let node = graph.node(id);
    let last = |a: u8| node.ty.shape().is_some_and(|s| a as usize + 1 == s.len());
    node.ty != Ty::Scalar
        && match node.op.class() {
            OpClass::Pointwise => true,
            OpClass::Reduce => matches!(node.op, Op::Reduce(_, a) if last(a)),
            OpClass::Layout => matches!(node.op, Op::Narrow(a, _) | Op::Cat(a) if last(a)),
            OpClass::Leaf | OpClass::Matmul => false,
        }
}

fn prefix(graph: &Graph, id: NodeId) -> Vec<Dim> {
    let shape = graph.node(id).ty.shape().unwrap_or_default();
    shape[..shape.len().saturating_sub(1)].to_vec()
}

/// Whether `small` right-aligns into `big` with equal dims or literal 1s.
fn broadcasts_into(small: &[Dim], big: &[Dim]) -> bool {
    small.len() <= big.len()
        && small
            .iter()
            .rev()
            .zip(big.iter().rev())
            .all(|(s, b)| s == b || s.is_one())
}

/// The steps of function `name`'s optimised graph, its kernels named `{name}_k{step}`.
pub fn plan(graph: &Graph, name: &str) -> Vec<Step> {
    let n = graph.nodes.len();
    // group[i]: the fused group of node i (indices into `groups`), or None.
    let mut group: Vec<Option<usize>> = vec![None; n];
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    let users = users(graph);
    for id in graph.ids() {
        if !fusable(graph, id) {
            continue;
        }
        let p = prefix(graph, id);
        let mut mine: Option<usize> = None;
        for &a in &graph.node(id).args {
            let Some(g) = group[a.index()] else { continue };
            if Some(g) == mine || prefix(graph, a) != p {
                continue;
            }
            let target = mine.unwrap_or(g);
            if creates_cycle(graph, (&group, &groups, &users), id, target, g, true) {
                continue;
            }
            match mine {
                None => mine = Some(g),
                Some(m) => merge(&mut group, &mut groups, m, g),
            }
        }
        let g = mine.unwrap_or_else(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(id);
        group[id.index()] = Some(g);
    }
    absorb_broadcast_groups(graph, &mut group, &mut groups);
    split_deep_groups(graph, &mut group, &mut groups);
    column_groups(graph, &mut group, &mut groups, &users);
    merge_siblings(graph, &mut group, &mut groups, &users);
    order_steps(graph, name, &group, &groups)
}

/// The most reductions one kernel chains (a row kernel's stages). A kernel recomputes its column
/// values in each stage's loop, so its code grows with the square of its stages; longer chains
/// are cut into several kernels.
pub const MAX_STAGES: usize = 8;

/// Cuts each group whose nodes are more than [`MAX_STAGES`] reductions deep into bands of that
/// many. A node's depth (reductions on its longest path from the inputs, through any steps) never
/// decreases along an edge, so no band reads a later one, directly or through other steps: the
/// steps stay acyclic.
fn split_deep_groups(graph: &Graph, group: &mut [Option<usize>], groups: &mut Vec<Vec<NodeId>>) {
    let mut depth = vec![0usize; graph.nodes.len()];
    for id in graph.ids() {
        let node = graph.node(id);
        let deepest = node.args.iter().map(|a| depth[a.index()]).max().unwrap_or(0);
        depth[id.index()] = deepest + usize::from(node.op.class() == OpClass::Reduce);
    }
    for g in 0..groups.len() {
        let Some(low) = groups[g].iter().map(|id| depth[id.index()]).min() else {
            continue;
        };
        // Band 0 is depths low..=low + MAX_STAGES - 1 (a first reduction at `low` included).
        let band = |id: &NodeId| (depth[id.index()] - low) / MAX_STAGES;
        if groups[g].iter().all(|id| band(id) == 0) {
            continue;
        }
        let mut bands: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
        for id in std::mem::take(&mut groups[g]) {
            bands.entry(band(&id)).or_default().push(id);
        }
        for (b, nodes) in bands {
            let into = if b == 0 {
                g
            } else {
                groups.push(Vec::new());
                groups.len() - 1
            };
            for id in &nodes {
                group[id.index()] = Some(into);
            }
            groups[into] = nodes;
        }
    }
}

/// Merges pointwise groups of one shape that read a common value and do not feed each other
/// (a backward's `du = dy * silu(g)` and `dg = dy * u * silu'(g)`): one kernel reads the shared
/// inputs once and writes both.
fn merge_siblings(
    graph: &Graph,
    group: &mut [Option<usize>],
    groups: &mut [Vec<NodeId>],
    users: &[Vec<NodeId>],
) {
    // The shape every node of a pointwise group has, or `None` for any other group.
    let shape_of = |nodes: &[NodeId]| -> Option<Vec<Dim>> {
        let first = graph.node(*nodes.first()?).ty.shape()?.to_vec();
        nodes
            .iter()
            .all(|n| {
                let node = graph.node(*n);
                node.op.class() == OpClass::Pointwise && node.ty.shape() == Some(&first[..])
            })
            .then_some(first)
    };
    let reads = |nodes: &[NodeId], group: &[Option<usize>], g: usize| -> BTreeSet<NodeId> {
        nodes
            .iter()
            .flat_map(|n| graph.node(*n).args.iter().copied())
            .filter(|a| group[a.index()] != Some(g))
            .collect()
    };
    for g in 0..groups.len() {
        let Some(shape) = shape_of(&groups[g]) else {
            continue;
        };
        for h in g + 1..groups.len() {
            if groups[g].is_empty() || shape_of(&groups[h]).as_ref() != Some(&shape) {
                continue;
            }
            let shared = reads(&groups[g], group, g)
                .intersection(&reads(&groups[h], group, h))
                .any(|a| graph.node(*a).ty != Ty::Scalar);
            if shared && !creates_cycle(graph, (group, groups, users), groups[h][0], g, h, false) {
                merge(group, groups, g, h);
            }
        }
    }
}

/// Moves every node of group `from` into group `into`.
fn merge(group: &mut [Option<usize>], groups: &mut [Vec<NodeId>], into: usize, from: usize) {
    let moved = std::mem::take(&mut groups[from]);
    for id in &moved {
        group[id.index()] = Some(into);
    }
    groups[into].extend(moved);
    groups[into].sort();
}

/// Recomputes small broadcast groups inside the one kernel that reads them.
fn absorb_broadcast_groups(graph: &Graph, group: &mut [Option<usize>], groups: &mut [Vec<NodeId>]) {
    let users = users(graph);
    loop {
        let mut changed = false;
        for g in 0..groups.len() {
            if groups[g].is_empty() {
                continue;
            }
            let has_reduction = groups[g]
                .iter()
                .any(|id| graph.node(*id).op.class() == OpClass::Reduce);
            let is_output = groups[g].iter().any(|id| graph.outputs.contains(id));
            if has_reduction || is_output {
                continue;
            }
            let outside: BTreeSet<Option<usize>> = groups[g]
                .iter()
                .flat_map(|id| &users[id.index()])
                .map(|u| group[u.index()])
                .filter(|ug| *ug != Some(g))
                .collect();
            let [Some(h)] = outside.into_iter().collect::<Vec<_>>()[..] else {
                continue;
            };
            let p = prefix(graph, groups[g][0]);
            let q = prefix(graph, groups[h][0]);
            let same_prefix = groups[g].iter().all(|id| prefix(graph, *id) == p);
            if !same_prefix
                || !broadcasts_into(&p, &q)
                || creates_cycle(graph, (group, groups, &users), groups[g][0], h, g, false)
            {
                continue;
            }
            merge(group, groups, h, g);
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

fn users(graph: &Graph) -> Vec<Vec<NodeId>> {
    let mut users = vec![Vec::new(); graph.nodes.len()];
    for id in graph.ids() {
        for a in &graph.node(id).args {
            users[a.index()].push(id);
        }
    }
    users
}

/// Emits the steps in a topological order of the step graph (ties broken by node order, so
/// the plan is deterministic).
fn order_steps(graph: &Graph, name: &str, group: &[Option<usize>], groups: &[Vec<NodeId>]) -> Vec<Step> {
    let users = users(graph);
    // Step ids: groups first, then one per library node.
    let library: Vec<NodeId> = graph
        .ids()
        .filter(|id| group[id.index()].is_none())
        .filter(|id| graph.node(*id).op.class() != OpClass::Leaf && graph.node(*id).ty != Ty::Scalar)
        .collect();
    let step_of = |id: NodeId| -> Option<usize> {
        group[id.index()].or_else(|| library.iter().position(|l| *l == id).map(|i| groups.len() + i))
    };
    let count = groups.len() + library.len();
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
    let mut first: Vec<Option<NodeId>> = vec![None; count];
    for id in graph.ids() {
        let Some(s) = step_of(id) else { continue };
        first[s] = Some(first[s].map_or(id, |f| f.min(id)));
        for a in &graph.node(id).args {
            if let Some(t) = step_of(*a).filter(|t| *t != s) {
                deps[s].insert(t);
            }
        }
    }
    // Groups emptied by merging are not steps.
    let mut done: Vec<bool> = first.iter().map(Option::is_none).collect();
    let live = done.iter().filter(|d| !**d).count();
    let mut steps = Vec::with_capacity(live);
    while steps.len() < live {
        let next = (0..count)
            .filter(|&s| !done[s] && deps[s].iter().all(|d| done[*d]))
            .min_by_key(|&s| first[s])
            .expect("the cycle check keeps the step graph acyclic");
        done[next] = true;
        steps.push(if next < groups.len() {
            let name = format!("{name}_k{}", steps.len());
            Step::Kernel(Box::new(kernel(graph, name, &groups[next], &users)))
        } else {
            Step::Library(library[next - groups.len()])
        });
    }
    steps
}

/// The kernel computing `nodes`: what it reads from other steps and what they read from it.
fn kernel(graph: &Graph, name: String, nodes: &[NodeId], users: &[Vec<NodeId>]) -> Kernel {
    let members: BTreeSet<NodeId> = nodes.iter().copied().collect();
    let mut inputs = Vec::new();
    for id in nodes {
        for a in &graph.node(*id).args {
            if !members.contains(a) && !inputs.contains(a) {
                inputs.push(*a);
            }
        }
    }
    let outputs: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|id| graph.outputs.contains(id) || users[id.index()].iter().any(|u| !members.contains(u)))
        .collect();
    schedule(graph, name, nodes.to_vec(), inputs, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_function;
    use crate::diag::Errors;
    use crate::passes::optimise;
    use crate::syntax::Module;
    use graph_ir::KernelKind;

    /// The plan of the single function in `src`, through the real pipeline.
    pub(super) fn planned(src: &str) -> Vec<Step> {
        let module: Module = syn::parse_str(src).expect("test source parses");
        let mut errors = Errors::new();
        let graph = check_function(&module.functions[0], &mut errors);
        errors.propagate().expect("test source checks");
        plan(&optimise(graph), "f")
    }

    pub(super) fn kernels(steps: &[Step]) -> Vec<&Kernel> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Kernel(k) => Some(&**k),
                Step::Library(_) => None,
            })
            .collect()
    }

    fn one_kernel(src: &str, kind: KernelKind, outputs: usize) {
        let steps = planned(src);
        assert_eq!(steps.len(), 1, "{src}\n{steps:#?}");
        let k = kernels(&steps)[0];
        assert_eq!(k.kind, kind, "{src}");
        assert_eq!(k.outputs.len(), outputs, "{src}");
    }

    #[test]
    fn norms_and_softmaxes_are_one_row_kernel() {
        for src in [
            "fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }",
            "fn log_softmax(x: Tensor[N, D]) -> Tensor[N, D] { log_softmax(x, -1) }",
            "fn rms(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
                x * rsqrt(mean(x * x, -1) + eps) * w
            }",
            "fn ln(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
                (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
            }",
        ] {
            one_kernel(src, KernelKind::Row, 1);
        }
    }

    #[test]
    fn add_rms_norm_is_one_kernel_with_two_outputs() {
        one_kernel(
            "fn add_rms(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
                let h = x + r;
                (h, h * rsqrt(mean(h * h, -1) + eps) * w)
            }",
            KernelKind::Row,
            2,
        );
    }

    #[test]
    fn activations_are_one_pointwise_kernel() {
        for src in [
            "fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }",
            "fn gelu_erf(x: Tensor[N, D]) -> Tensor[N, D] { x.gelu_erf() }",
            "fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] { silu(g) * u }",
        ] {
            one_kernel(src, KernelKind::Pointwise, 1);
        }
    }

    #[test]
    fn rope_with_half_tables_is_one_row_kernel() {
        // The `[S, D]` tables broadcast into the `[B, H, S, D]` rows and are recomputed there.
        one_kernel(
            "fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
                let c = cat([cos, cos], -1);
                let s = cat([sin, sin], -1);
                let x1 = narrow(x, -1, 0, D / 2);
                let x2 = narrow(x, -1, D / 2, D / 2);
                x * c + cat([-x2, x1], -1) * s
            }",
            KernelKind::Row,
            1,
        );
    }

    #[test]
    fn independent_pointwise_kernels_reading_one_value_merge() {
        // swiglu's backward: `du` and `dg` both read `dy` and `g`.
        let steps = planned(
            "fn f(g: Tensor[N, F], u: Tensor[N, F], dy: Tensor[N, F]) -> (Tensor[N, F], Tensor[N, F]) {
                (dy * silu(g), dy * u * sigmoid(g) * (1.0 + g * (1.0 - sigmoid(g))))
            }",
        );
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(kernels(&steps)[0].outputs.len(), 2);
    }

    #[test]
    fn lora_is_matmuls_and_one_pointwise_kernel() {
        let steps = planned(
            "fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
                x.matmul(w) + x.matmul(a).matmul(b) * scale
            }",
        );
        let libraries = steps.iter().filter(|s| matches!(s, Step::Library(_))).count();
        assert_eq!(libraries, 3, "{steps:#?}");
        let ks = kernels(&steps);
        assert_eq!(ks.len(), 1);
        assert_eq!(ks[0].kind, KernelKind::Pointwise);
        assert!(
            matches!(steps.last(), Some(Step::Kernel(_))),
            "the kernel reads every matmul"
        );
    }

    #[test]
    fn different_prefixes_do_not_share_a_kernel_output() {
        // `s` is a graph output of prefix [N]; the [M, N] product cannot also write it.
        let steps = planned(
            "fn two(x: Tensor[N, D], y: Tensor[M, N, D]) -> (Tensor[N, D], Tensor[M, N, D]) {
                let s = exp(x);
                (s, y * s)
            }",
        );
        assert_eq!(kernels(&steps).len(), 2, "{steps:#?}");
    }

    #[test]
    fn every_node_is_in_exactly_one_step() {
        let module: Module = syn::parse_str(
            "fn attn(q: Tensor[B, S, E], k: Tensor[B, S, E], scale: f32) -> Tensor[B, S, S] {
                let s = q.matmul(k.transpose(-1, -2)) * scale;
                let i = s - s;
                softmax(where_(i > 0.0, s, s), -1)
            }",
        )
        .unwrap();
        let mut errors = Errors::new();
        let graph = optimise(check_function(&module.functions[0], &mut errors));
        errors.propagate().unwrap();
        let mut seen = vec![0; graph.nodes.len()];
        for step in plan(&graph, "f") {
            match step {
                Step::Library(id) => seen[id.index()] += 1,
                Step::Kernel(k) => k.nodes.iter().for_each(|id| seen[id.index()] += 1),
            }
        }
        for id in graph.ids() {
            let node = graph.node(id);
            let expected = usize::from(node.op.class() != OpClass::Leaf && node.ty != Ty::Scalar);
            assert_eq!(seen[id.index()], expected, "node %{} ({:?})", id.0, node.op);
        }
    }
}
