//! Column kernels: reductions over an axis other than the last (a weight's gradient summed over
//! rows), each planned as its own kernel that computes the pointwise values only it reads.

use graph_ir::{Dim, Op, OpClass};

use super::cycles::creates_cycle;
use super::{merge, prefix};
use crate::ir::{Graph, NodeId};

/// A reduction over prefix axes (not the last): what a column kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnReduction {
    /// The values reduced, of the kernel's domain shape.
    pub source: NodeId,
    /// The first reduced axis of the source, and how many consecutive axes are reduced.
    pub axis: u8,
    pub axes: u8,
    /// A reshape between the source and the reduction that merged the reduced axes into one
    /// (a broadcast weight's gradient, summed over `[B, S]` as one axis of `B * S`): the kernel
    /// reads through it.
    pub through: Option<NodeId>,
}

/// What node `id` reduces when it is a reduction over an axis other than the last: a column
/// reduction, which a column kernel computes.
pub fn column_reduction(graph: &Graph, id: NodeId) -> Option<ColumnReduction> {
    let node = graph.node(id);
    let rank = node.ty.shape()?.len();
    let Op::Reduce(_, axis) = node.op else { return None };
    if axis as usize + 1 >= rank {
        return None;
    }
    let arg = node.args[0];
    let single = ColumnReduction {
        source: arg,
        axis,
        axes: 1,
        through: None,
    };
    // Through a reshape that only merged axes `axis..hi` of its argument into axis `axis`,
    // and that nothing else reads.
    let merged = graph.node(arg);
    let (Op::Reshape, [from]) = (&merged.op, &merged.args[..]) else {
        return Some(single);
    };
    let (Some(to), Some(shape)) = (merged.ty.shape(), graph.node(*from).ty.shape()) else {
        return Some(single);
    };
    let a = axis as usize;
    let Some(extra) = shape.len().checked_sub(to.len()).filter(|e| *e > 0) else {
        return Some(single);
    };
    let hi = a + extra + 1;
    let merges = hi < shape.len()
        && shape[..a] == to[..a]
        && shape[hi..] == to[a + 1..]
        && Dim::product(&shape[a..hi]).is_ok_and(|d| d == to[a])
        && graph.ids().filter(|u| graph.node(*u).args.contains(&arg)).count() == 1
        && !graph.outputs.contains(&arg);
    match merges {
        true => Some(ColumnReduction {
            source: *from,
            axis,
            axes: u8::try_from(hi - a).expect("ranks fit u8"),
            through: Some(arg),
        }),
        false => Some(single),
    }
}

/// Makes a group of each column reduction, merges those over values of one shape along one
/// axis, and moves into each the pointwise values of that shape that only it reads.
///
/// Moving a value that only the column group reads cannot close a cycle of steps: any path back
/// into the group enters it through a reduction's users, and would have been a cycle through the
/// reduction's library step before. Merging two column groups can, and is checked.
pub(super) fn column_groups(
    graph: &Graph,
    group: &mut [Option<usize>],
    groups: &mut Vec<Vec<NodeId>>,
    users: &[Vec<NodeId>],
) {
    // (domain shape, axes, group) of each column group made so far.
    let mut made: Vec<(Vec<Dim>, (u8, u8), usize)> = Vec::new();
    for id in graph.ids() {
        let Some(c) = column_reduction(graph, id) else {
            continue;
        };
        let domain = graph.node(c.source).ty.shape().unwrap_or_default().to_vec();
        groups.push(c.through.into_iter().chain([id]).collect());
        let g = groups.len() - 1;
        for n in &groups[g] {
            group[n.index()] = Some(g);
        }
        let axes = (c.axis, c.axes);
        let same = made
            .iter()
            .filter(|(d, a, _)| *d == domain && *a == axes)
            .map(|m| m.2)
            .find(|&h| !creates_cycle(graph, (group, groups, users), id, h, g, false));
        match same {
            Some(h) => merge(group, groups, h, g),
            None => made.push((domain, axes, g)),
        }
    }
    for (domain, _, g) in made {
        // Producers, deepest last: a value joins once every user is in the group.
        let mut todo: Vec<NodeId> = groups[g]
            .iter()
            .filter_map(|r| column_reduction(graph, *r))
            .map(|c| c.source)
            .collect();
        while let Some(x) = todo.pop() {
            let node = graph.node(x);
            let movable = group[x.index()] != Some(g)
                && node.op.class() == OpClass::Pointwise
                && node.ty.shape() == Some(&domain[..])
                && !graph.outputs.contains(&x)
                && users[x.index()].iter().all(|u| group[u.index()] == Some(g))
                && leaves_rows_alone(graph, group, groups, users, x);
            if !movable {
                continue;
            }
            if let Some(h) = group[x.index()] {
                groups[h].retain(|n| *n != x);
            }
            group[x.index()] = Some(g);
            groups[g].push(x);
            todo.extend(node.args.iter().copied());
        }
        groups[g].sort();
        groups[g].dedup();
        // A narrow of an input (or of a library step's value) that the column group reads from
        // another group would be written out by that group for it: it becomes a library step
        // instead, a view both kernels read (a backward's slices of `dy` and `x`).
        let read: Vec<NodeId> = (groups[g].iter())
            .flat_map(|n| graph.node(*n).args.iter().copied())
            .filter(|a| group[a.index()].is_some_and(|h| h != g))
            .collect();
        for a in read {
            let node = graph.node(a);
            let view =
                matches!(node.op, Op::Narrow(..)) && node.args.iter().all(|x| group[x.index()].is_none());
            if let (true, Some(h)) = (view, group[a.index()]) {
                groups[h].retain(|n| *n != a);
                group[a.index()] = None;
            }
        }
    }
}

/// Whether taking `x` out of its group leaves that group a kernel whose outputs share its rows:
/// the arguments `x` read inside it become its outputs, and one recomputed there from a narrower
/// prefix (a broadcast group absorbed into it) cannot be written row by row.
fn leaves_rows_alone(
    graph: &Graph,
    group: &[Option<usize>],
    groups: &[Vec<NodeId>],
    users: &[Vec<NodeId>],
    x: NodeId,
) -> bool {
    let Some(h) = group[x.index()] else { return true };
    let inside = |a: &NodeId| group[a.index()] == Some(h);
    let is_output =
        |n: &NodeId| graph.outputs.contains(n) || users[n.index()].iter().any(|u| !inside(u) && *u != x);
    let rows = groups[h]
        .iter()
        .find(|n| **n != x && is_output(n))
        .map_or_else(|| prefix(graph, x), |o| prefix(graph, *o));
    graph
        .node(x)
        .args
        .iter()
        .filter(|a| inside(a))
        .all(|a| prefix(graph, *a) == rows)
}

#[cfg(test)]
mod tests {
    use graph_ir::KernelKind;

    use crate::plan::tests::{kernels, planned};

    #[test]
    fn reductions_over_other_axes_are_column_kernels() {
        let steps = planned("fn colmean(x: Tensor[N, D]) -> Tensor[1, D] { exp(mean(x * x, 0)) }");
        let ks = kernels(&steps);
        assert_eq!(ks.len(), 2, "{steps:#?}");
        assert_eq!(ks[0].kind, KernelKind::Column { axis: 0, axes: 1 }, "{steps:#?}");
        assert_eq!(ks[0].nodes.len(), 2, "x * x is computed in the column kernel");
        assert_eq!(ks[1].kind, KernelKind::Pointwise, "the exp after it is a kernel");
    }

    #[test]
    fn a_norm_backward_sums_its_weight_gradient_in_a_column_kernel() {
        // `dw = sum(dy * x * rstd, 0)`, `db = sum(dy, 0)`: one column kernel reading `dy`, `x`
        // and the row kernel's `rstd`, no `[N, D]` product written out.
        let steps = planned(
            "fn f(x: Tensor[N, D], dy: Tensor[N, D], eps: f32) -> (Tensor[N, D], Tensor[1, D], Tensor[1, D]) {
                let r = rsqrt(mean(x * x, -1) + eps);
                (dy * r, sum(dy * x * r, 0), sum(dy, 0))
            }",
        );
        let ks = kernels(&steps);
        assert_eq!(ks.len(), 2, "{steps:#?}");
        let column = ks
            .iter()
            .find(|k| k.kind == KernelKind::Column { axis: 0, axes: 1 })
            .unwrap();
        assert_eq!(column.outputs.len(), 2, "{steps:#?}");
        assert_eq!(column.inputs.len(), 3, "dy, x and rstd: {steps:#?}");
    }

    #[test]
    fn a_column_kernel_reads_through_a_reshape_merging_the_axes_it_reduces() {
        // A `[D]` weight's gradient in a `[B, S, D]` kernel: one sum over `B * S` rows.
        let steps = planned(
            "fn f(x: Tensor[B, S, D], dy: Tensor[B, S, D]) -> Tensor[1, D] {
                sum(reshape(dy * x, [B * S, D]), 0)
            }",
        );
        assert_eq!(steps.len(), 1, "{steps:#?}");
        let k = kernels(&steps)[0];
        assert_eq!(k.kind, KernelKind::Column { axis: 0, axes: 2 }, "{steps:#?}");
        assert_eq!(k.prefix.len(), 2, "the domain is [B, S, D]");
    }
}
