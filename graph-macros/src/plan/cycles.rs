//! The check that keeps the step graph acyclic: whether merging nodes into a group would make
//! the group wait on a step that waits on it.

use std::collections::BTreeSet;

use crate::ir::{Graph, NodeId};

/// Each node's group, each group's nodes, and each node's users.
type Grouping<'a> = (&'a [Option<usize>], &'a [Vec<NodeId>], &'a [Vec<NodeId>]);

/// Whether putting `id` (and group `g`) into group `target` would make the group depend on itself
/// through another step: a path through nodes outside the merged set joins two of its members.
///
/// The path runs through steps, not only through nodes: another group is one step, which waits
/// for all its arguments before any of its values exist, so reaching one of its nodes reaches
/// all of them (`dw = sum(dy * x)` feeding `dx` in a group that also computes what `dw`'s
/// argument needs is a cycle with no path between nodes).
///
/// Each group is already a step with no such path of its own, so a new one joins two different
/// parts (`groups[target]`, `groups[g]`, `id`), and one of its ends is in a part other than the
/// largest: walking back through arguments from the smaller parts, and forward through users into
/// them, finds it. While the groups are being formed (`ordered`), every grouped node comes before
/// `id`, the newest and largest member, so a path into a member runs through nodes below it; that
/// keeps planning near linear when one group grows along a long chain. Later merges walk the
/// whole graph.
pub(super) fn creates_cycle(
    graph: &Graph,
    (group, groups, users): Grouping,
    id: NodeId,
    target: usize,
    g: usize,
    ordered: bool,
) -> bool {
    let member = |x: NodeId| x == id || group[x.index()].is_some_and(|h| h == target || h == g);
    let mut parts: Vec<&[NodeId]> = vec![&groups[target], std::slice::from_ref(&id)];
    if g != target {
        parts.push(&groups[g]);
    }
    // Groups hold their nodes in order, so a part's last node is its largest.
    let limit = match ordered {
        true => parts
            .iter()
            .filter_map(|p| p.last())
            .max()
            .map_or(0, |m| m.index()),
        false => graph.nodes.len(),
    };
    parts.sort_by_key(|p| p.len());
    parts.pop();
    let small = || parts.iter().flat_map(|p| p.iter().copied());
    // The walks are short next to the graph: sets, not a flag per node.
    let mut seen = BTreeSet::new();
    let mut entered = BTreeSet::new();
    // The nodes of `x`'s step: `x`, or its whole group.
    let step = |x: NodeId, entered: &mut BTreeSet<usize>| -> Vec<NodeId> {
        match group[x.index()] {
            Some(h) if entered.insert(h) => groups[h].clone(),
            Some(_) => Vec::new(),
            None => vec![x],
        }
    };
    // Back through arguments from the smaller parts: reaching a member closes a path.
    let mut stack: Vec<NodeId> = small()
        .flat_map(|m| graph.node(m).args.iter().copied())
        .filter(|a| !member(*a))
        .collect();
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        for y in step(x, &mut entered) {
            for &a in &graph.node(y).args {
                if member(a) {
                    return true;
                }
                stack.push(a);
            }
        }
    }
    // Forward through users from the smaller parts, below the largest member.
    seen.clear();
    entered.clear();
    let below = |u: &NodeId| u.index() < limit;
    let mut stack: Vec<NodeId> = small()
        .flat_map(|m| users[m.index()].iter().copied())
        .filter(|u| below(u) && !member(*u))
        .collect();
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        for y in step(x, &mut entered) {
            for &u in &users[y.index()] {
                // A member ends the path, the largest one included.
                if member(u) {
                    return true;
                }
                if below(&u) {
                    stack.push(u);
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{kernels, planned};

    #[test]
    fn a_library_step_between_a_node_and_its_argument_splits_them() {
        // `x * w` feeds the column max (a library step) and the subtraction after it: the
        // subtraction cannot join `x * w`'s kernel, which the max must wait for. Found by the
        // fuzzer, when the cycle check missed a path ending at the newest member.
        let steps =
            planned("fn f(x: Tensor[N, D], w: Tensor[D]) -> Tensor[N, D] { softmax(x * w, -2) + 0.25 }");
        let ks = kernels(&steps);
        assert!(ks.iter().all(|k| k.nodes.len() < 4), "{steps:#?}");
        assert!(ks.len() >= 2, "{steps:#?}");
    }
}
