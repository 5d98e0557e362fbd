//! Narrows moved towards the inputs, so that only the slice a graph uses is computed.
//!
//! - `narrow(cat([a, b], k), k, ..)` selecting exactly one part -> that part;
//! - `narrow(f(a, b), k, ..)` for a pointwise `f` -> `f(narrow(a, k, ..), narrow(b, k, ..))`
//!   (an argument broadcast along `k`, or without that axis, stays whole);
//! - `narrow(reduce(x, r), k, ..)` with `k != r` -> `reduce(narrow(x, k, ..), r)`;
//! - `narrow(reshape(x), last, ..)` where the reshape keeps the last dim -> `reshape(narrow(x,
//!   last, ..))`.
//!
//! Each is exact: the same operations on the same elements. Pushing past a node happens only
//! where every use of that node is a narrow or a node pushed past itself, so nothing is computed
//! twice: the whole value is no longer needed. The backward of anything sliced (rotate-half
//! RoPE's `cat` of halves, a `cat([cos, cos])`) sums a cotangent's halves; without this pass the
//! full products were materialised to be narrowed afterwards.

use std::collections::HashMap;

use graph_ir::{Dim, Op, OpClass};

use crate::ir::{Graph, Node, NodeId, Ty};

/// The graph with its narrows moved towards the inputs, and whether any moved.
pub fn push_narrows(graph: &Graph) -> (Graph, bool) {
    let sliced = sliced_only(graph);
    let mut out = Graph {
        params: graph.params.clone(),
        symbols: graph.symbols.clone(),
        ..Graph::default()
    };
    let mut p = Pusher {
        old: graph,
        sliced: &sliced,
        out: &mut out,
        map: Vec::with_capacity(graph.nodes.len()),
        memo: HashMap::new(),
        moved: false,
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = match (node.op, node.args.as_slice()) {
            (Op::Narrow(axis, start), &[v]) => p.narrowed(v, axis, start, &node.ty),
            _ => {
                let args = node.args.iter().map(|a| p.map[a.index()]).collect();
                p.out.push(Node { args, ..node.clone() })
            }
        };
        debug_assert_eq!(p.map.len(), i);
        p.map.push(id);
    }
    let (map, moved) = (std::mem::take(&mut p.map), p.moved);
    // The outputs keep their nodes: an output is never `sliced_only`.
    out.outputs = graph.outputs.iter().map(|o| map[o.index()]).collect();
    (out, moved)
}

struct Pusher<'g> {
    old: &'g Graph,
    sliced: &'g [bool],
    out: &'g mut Graph,
    /// Old node -> its copy in `out`.
    map: Vec<NodeId>,
    /// (old node, axis, start, narrowed type) -> the narrowed value in `out`.
    memo: HashMap<(NodeId, u8, Dim, Ty), NodeId>,
    moved: bool,
}

impl Pusher<'_> {
    /// `narrow(v, axis, start)` of type `ty` in `out`, computed from narrowed arguments where
    /// that is exact and computes nothing twice.
    fn narrowed(&mut self, v: NodeId, axis: u8, start: Dim, ty: &Ty) -> NodeId {
        let key = (v, axis, start, ty.clone());
        if let Some(&id) = self.memo.get(&key) {
            return id;
        }
        let id = match self.pushed(v, axis, start, ty) {
            Some(id) => {
                self.moved = true;
                id
            }
            None => self.out.push(Node {
                op: Op::Narrow(axis, start),
                args: vec![self.map[v.index()]],
                ty: ty.clone(),
            }),
        };
        self.memo.insert(key, id);
        id
    }

    fn pushed(&mut self, v: NodeId, axis: u8, start: Dim, ty: &Ty) -> Option<NodeId> {
        let node = self.old.node(v);
        let shape = node.ty.shape()?;
        let len = *ty.shape()?.get(axis as usize)?;
        let k = axis as usize;
        // A part of a cat along the same axis: no work to move, so no condition on uses.
        if let Op::Cat(c) = node.op {
            if c != axis {
                return None;
            }
            let part = |i: usize| {
                node.args
                    .get(i)
                    .and_then(|&a| Some((a, *self.old.node(a).ty.shape()?.get(k)?)))
            };
            let (a, da) = part(0)?;
            let whole = |p: NodeId| self.old.node(p).ty == *ty;
            if start.as_lit() == Some(0) && da == len && whole(a) {
                return Some(self.map[a.index()]);
            }
            if let (2, Some((b, db))) = (node.args.len(), part(1)) {
                if start == da && db == len && whole(b) {
                    return Some(self.map[b.index()]);
                }
            }
            return None;
        }
        if !self.sliced[v.index()] {
            return None;
        }
        let with_len = |s: &[Dim], at: usize| -> Ty {
            let mut s = s.to_vec();
            s[at] = len;
            Ty::Tensor(s)
        };
        match node.op.class() {
            OpClass::Pointwise => {
                let rank = shape.len();
                let mut args = Vec::with_capacity(node.args.len());
                for &a in &node.args {
                    let arg = self.old.node(a);
                    let Some(s) = arg.ty.shape() else {
                        args.push(self.map[a.index()]);
                        continue;
                    };
                    // Broadcasting aligns shapes from the right.
                    let at = (k + s.len()).checked_sub(rank);
                    match at {
                        None => args.push(self.map[a.index()]),
                        Some(at) if s[at].is_one() && !shape[k].is_one() => args.push(self.map[a.index()]),
                        Some(at) if s[at] == shape[k] => {
                            let t = with_len(s, at);
                            args.push(self.narrowed(a, at as u8, start, &t));
                        }
                        Some(_) => return None,
                    }
                }
                Some(self.out.push(Node {
                    op: node.op,
                    args,
                    ty: ty.clone(),
                }))
            }
            OpClass::Reduce => {
                let Op::Reduce(_, r) = node.op else { return None };
                let x = *node.args.first()?;
                let s = self.old.node(x).ty.shape()?;
                if r == axis || s.len() != shape.len() {
                    return None;
                }
                let t = with_len(s, k);
                let x = self.narrowed(x, axis, start, &t);
                Some(self.out.push(Node {
                    op: node.op,
                    args: vec![x],
                    ty: ty.clone(),
                }))
            }
            OpClass::Layout if node.op == Op::Reshape => {
                let x = *node.args.first()?;
                let s = self.old.node(x).ty.shape()?;
                let (last, x_last) = (shape.len().checked_sub(1)?, s.len().checked_sub(1)?);
                if k != last || s[x_last] != shape[last] {
                    return None;
                }
                let t = with_len(s, x_last);
                let x = self.narrowed(x, x_last as u8, start, &t);
                Some(self.out.push(Node {
                    op: Op::Reshape,
                    args: vec![x],
                    ty: ty.clone(),
                }))
            }
            _ => None,
        }
    }
}

/// Per node: whether every use of it is a narrow of it, or a pointwise op, reduction or reshape
/// that is itself only used that way (so a pushed narrow leaves the whole value unused).
fn sliced_only(graph: &Graph) -> Vec<bool> {
    let mut users: Vec<Vec<NodeId>> = vec![Vec::new(); graph.nodes.len()];
    for id in graph.ids() {
        for a in &graph.node(id).args {
            users[a.index()].push(id);
        }
    }
    let mut output = vec![false; graph.nodes.len()];
    for o in &graph.outputs {
        output[o.index()] = true;
    }
    let mut sliced = vec![false; graph.nodes.len()];
    for id in graph.ids().rev() {
        let i = id.index();
        let through = |u: &NodeId| {
            let op = graph.node(*u).op;
            matches!(op.class(), OpClass::Pointwise | OpClass::Reduce) || op == Op::Reshape
        };
        sliced[i] = !output[i]
            && !users[i].is_empty()
            && users[i]
                .iter()
                .all(|u| matches!(graph.node(*u).op, Op::Narrow(..)) || (sliced[u.index()] && through(u)));
    }
    sliced
}

#[cfg(test)]
mod tests {
    use graph_ir::{BinaryOp, Dim, Op, ReduceOp, UnaryOp};

    use super::push_narrows;
    use crate::ir::{Graph, NodeId, Param, ParamKind, Ty};
    use crate::passes::eliminate_dead;
    use crate::passes::test_util::node;

    /// `x: [N, 2 * D]` and `w: [1, 2 * D]` with `N` symbol 0 and `D` symbol 1.
    fn inputs() -> (Graph, NodeId, NodeId) {
        let mut g = Graph {
            symbols: vec!["N".into(), "D".into()],
            ..Graph::default()
        };
        let wide = Dim::sym(1).times(Dim::lit(2)).expect("2 * D");
        for (name, rows) in [("x", Dim::sym(0)), ("w", Dim::lit(1))] {
            g.params.push(Param {
                name: name.into(),
                kind: ParamKind::Tensor(vec![rows, wide]),
            });
        }
        let x = g.push(node(Op::Input(0), vec![], Ty::Tensor(vec![Dim::sym(0), wide])));
        let w = g.push(node(Op::Input(1), vec![], Ty::Tensor(vec![Dim::lit(1), wide])));
        (g, x, w)
    }

    fn half(g: &mut Graph, v: NodeId, second: bool) -> NodeId {
        let mut shape = g.node(v).ty.shape().expect("a tensor").to_vec();
        shape[1] = Dim::sym(1);
        let start = if second { Dim::sym(1) } else { Dim::lit(0) };
        g.push(node(Op::Narrow(1, start), vec![v], Ty::Tensor(shape)))
    }

    fn pushed(g: &Graph) -> Graph {
        let (out, moved) = push_narrows(g);
        assert!(moved, "nothing moved:\n{}", g.to_text());
        eliminate_dead(&out)
    }

    #[test]
    fn a_sliced_product_is_the_product_of_slices() {
        // narrow(exp(x) * w, 1, D, D): the broadcast row `w` is sliced too, `exp` is computed
        // on half of `x`.
        let (mut g, x, w) = inputs();
        let e = g.push(node(Op::Unary(UnaryOp::Exp), vec![x], g.node(x).ty.clone()));
        let p = g.push(node(Op::Binary(BinaryOp::Mul), vec![e, w], g.node(x).ty.clone()));
        let out = half(&mut g, p, true);
        g.outputs = vec![out];
        let g = pushed(&g);
        let top = g.node(g.outputs[0]);
        assert_eq!(top.op, Op::Binary(BinaryOp::Mul), "{}", g.to_text());
        let exp = g.node(top.args[0]);
        assert_eq!(exp.op, Op::Unary(UnaryOp::Exp), "{}", g.to_text());
        for n in [exp.args[0], top.args[1]] {
            assert_eq!(g.node(n).op, Op::Narrow(1, Dim::sym(1)), "{}", g.to_text());
        }
    }

    #[test]
    fn slices_of_a_column_sum_sum_slices() {
        // Both halves of sum(x * x, 0) added: two sums over halves, no full-width product.
        let (mut g, x, _) = inputs();
        let sq = g.push(node(Op::Binary(BinaryOp::Mul), vec![x, x], g.node(x).ty.clone()));
        let wide = g.node(x).ty.shape().expect("a tensor")[1];
        let s = g.push(node(
            Op::Reduce(ReduceOp::Sum, 0),
            vec![sq],
            Ty::Tensor(vec![Dim::lit(1), wide]),
        ));
        let (a, b) = (half(&mut g, s, false), half(&mut g, s, true));
        let ty = g.node(a).ty.clone();
        let out = g.push(node(Op::Binary(BinaryOp::Add), vec![a, b], ty));
        g.outputs = vec![out];
        let g = pushed(&g);
        let wide_nodes = g
            .nodes
            .iter()
            .filter(|n| n.ty.shape().is_some_and(|s| s[1] == wide));
        assert_eq!(wide_nodes.count(), 1, "only `x` is full width:\n{}", g.to_text());
    }

    #[test]
    fn a_value_used_whole_is_not_recomputed() {
        // exp(x) is an output too: its slice stays a narrow of it.
        let (mut g, x, _) = inputs();
        let e = g.push(node(Op::Unary(UnaryOp::Exp), vec![x], g.node(x).ty.clone()));
        let out = half(&mut g, e, false);
        g.outputs = vec![e, out];
        let (g, moved) = push_narrows(&g);
        assert!(!moved, "{}", g.to_text());
    }

    #[test]
    fn a_part_of_a_cat_is_that_part() {
        let (mut g, x, _) = inputs();
        let (a, b) = (half(&mut g, x, false), half(&mut g, x, true));
        let n = g.push(node(Op::Unary(UnaryOp::Neg), vec![b], g.node(b).ty.clone()));
        let c = g.push(node(Op::Cat(1), vec![n, a], g.node(x).ty.clone()));
        let first = half(&mut g, c, false);
        let second = half(&mut g, c, true);
        g.outputs = vec![first, second];
        let g = pushed(&g);
        assert_eq!(
            g.node(g.outputs[0]).op,
            Op::Unary(UnaryOp::Neg),
            "{}",
            g.to_text()
        );
        assert_eq!(
            g.node(g.outputs[1]).op,
            Op::Narrow(1, Dim::lit(0)),
            "{}",
            g.to_text()
        );
    }
}
