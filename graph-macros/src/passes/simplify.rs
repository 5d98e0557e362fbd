//! Algebraic simplification, only where the result is bit-for-bit the same in IEEE arithmetic.
//!
//! Rewrites (`x` must already have the result's type, so no broadcast is lost):
//! `x * 1`, `1 * x`, `x / 1`, `x - 0`, `x + -0.0` -> `x`; `x * -1` -> `-x`; `--x` -> `x`;
//! `abs(-x)`, `abs(abs(x))` -> `abs(x)`; `pow(x, 1)` -> `x`; `pow(x, 2)` -> `sqr(x)`;
//! a transpose of the same transpose, and a reshape, broadcast or full-length narrow to the
//! shape `x` already has -> `x`; `cast(cast(x, t), t)` -> `cast(x, t)`; a reduction over an
//! axis of literal size 1 -> `x` (the one exception to bit-for-bit: the sum of one `-0.0`).
//!
//! Deliberately kept: `x + 0.0` (turns `-0.0` into `+0.0`), `x * 0` (NaN and infinities),
//! `x - x` and `x / x` (NaN and infinities).

use graph_ir::{BinaryOp, Op, UnaryOp};

use crate::ir::{Graph, NodeId};

pub fn simplify(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    let mut replace: Vec<NodeId> = g.ids().collect();
    for id in graph.ids() {
        let args: Vec<NodeId> = g.node(id).args.iter().map(|a| replace[a.index()]).collect();
        g.nodes[id.index()].args = args.clone();
        let node = g.node(id);
        let is = |a: NodeId, v: f64| g.constant(a).is_some_and(|c| c.to_bits() == v.to_bits());
        let same_ty = |a: NodeId| g.node(a).ty == node.ty;
        let op_of = |a: NodeId| g.node(a).op;
        let rewrite = match (node.op, args.as_slice()) {
            (Op::Binary(BinaryOp::Mul), &[x, one]) if is(one, 1.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Mul), &[one, x]) if is(one, 1.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Div), &[x, one]) if is(one, 1.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Sub), &[x, zero]) if is(zero, 0.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Add), &[x, z]) if is(z, -0.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Add), &[z, x]) if is(z, -0.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Mul), &[x, m]) | (Op::Binary(BinaryOp::Mul), &[m, x])
                if is(m, -1.0) && same_ty(x) =>
            {
                Rewrite::Op(Op::Unary(UnaryOp::Neg), vec![x])
            }
            (Op::Binary(BinaryOp::Pow), &[x, one]) if is(one, 1.0) && same_ty(x) => Rewrite::To(x),
            (Op::Binary(BinaryOp::Pow), &[x, two]) if is(two, 2.0) && same_ty(x) => {
                Rewrite::Op(Op::Unary(UnaryOp::Sqr), vec![x])
            }
            (Op::Unary(UnaryOp::Neg), &[n]) if op_of(n) == Op::Unary(UnaryOp::Neg) => {
                Rewrite::To(g.node(n).args[0])
            }
            (Op::Unary(UnaryOp::Abs), &[n])
                if matches!(op_of(n), Op::Unary(UnaryOp::Neg) | Op::Unary(UnaryOp::Abs)) =>
            {
                Rewrite::Op(Op::Unary(UnaryOp::Abs), vec![g.node(n).args[0]])
            }
            (Op::Transpose(a, b), &[t]) => match op_of(t) {
                Op::Transpose(c, d) if (a, b) == (c, d) || (a, b) == (d, c) => Rewrite::To(g.node(t).args[0]),
                _ => Rewrite::Keep,
            },
            (Op::Reshape | Op::Broadcast | Op::Narrow(..), &[x]) if same_ty(x) => match node.op {
                Op::Narrow(_, start) if start.as_lit() != Some(0) => Rewrite::Keep,
                _ => Rewrite::To(x),
            },
            (Op::Cast(t), &[c]) if op_of(c) == Op::Cast(t) => Rewrite::To(c),
            // A reduction over an axis that is already the literal 1 (the types then agree) is
            // its one element. Exact for max and min; a sum or mean of one `-0.0` keeps `-0.0`
            // where a running sum from `0.0` gives `+0.0`. The GPU row kernels also summed such a
            // one-column row once per thread of the row's group (found by the random graphs).
            (Op::Reduce(..), &[x]) if same_ty(x) => Rewrite::To(x),
            _ => Rewrite::Keep,
        };
        match rewrite {
            Rewrite::Keep => {}
            Rewrite::To(x) => replace[id.index()] = x,
            Rewrite::Op(op, args) => {
                let node = &mut g.nodes[id.index()];
                node.op = op;
                node.args = args;
            }
        }
    }
    g.rebuild(&vec![true; g.nodes.len()], &replace)
}

enum Rewrite {
    Keep,
    To(NodeId),
    Op(Op, Vec<NodeId>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Ty;
    use crate::passes::eliminate_dead;
    use crate::passes::test_util::*;
    use graph_ir::Dim;

    fn simplified(build: impl FnOnce(&mut Graph, NodeId) -> NodeId) -> Graph {
        let (mut g, x) = tensor_graph();
        let y = build(&mut g, x);
        g.outputs = vec![y];
        eliminate_dead(&simplify(&g))
    }

    #[test]
    fn removes_exact_identities() {
        let g = simplified(|g, x| {
            let one = lit(g, 1.0);
            let zero = lit(g, 0.0);
            let a = bin(g, BinaryOp::Mul, x, one);
            let b = bin(g, BinaryOp::Sub, a, zero);
            let c = bin(g, BinaryOp::Div, b, one);
            let n = un(g, UnaryOp::Neg, c);
            un(g, UnaryOp::Neg, n)
        });
        assert_eq!(g.nodes.len(), 1, "{}", g.to_text());
        assert_eq!(g.outputs[0], NodeId(0));
    }

    #[test]
    fn keeps_inexact_rewrites() {
        let g = simplified(|g, x| {
            let zero = lit(g, 0.0);
            let a = bin(g, BinaryOp::Add, x, zero);
            bin(g, BinaryOp::Mul, a, zero)
        });
        assert_eq!(g.nodes.len(), 4, "x + 0.0 and x * 0 must stay: {}", g.to_text());
    }

    #[test]
    fn rewrites_to_cheaper_equal_ops() {
        let g = simplified(|g, x| {
            let m = lit(g, -1.0);
            let two = lit(g, 2.0);
            let n = bin(g, BinaryOp::Mul, x, m);
            bin(g, BinaryOp::Pow, n, two)
        });
        let out = g.node(g.outputs[0]);
        assert_eq!(out.op, Op::Unary(UnaryOp::Sqr));
        assert_eq!(g.node(out.args[0]).op, Op::Unary(UnaryOp::Neg));
    }

    #[test]
    fn keeps_broadcasting_identities() {
        // `broadcast(x, [M, N]) * 1.0`: the product is the broadcast, never `x` itself, whose
        // shape `[N]` has lost the broadcast; a reshape to another shape stays too.
        let wide = vec![Dim::sym(1), Dim::sym(0)];
        let g = simplified(|g, x| {
            let b = g.push(node(Op::Broadcast, vec![x], Ty::Tensor(wide.clone())));
            let one = lit(g, 1.0);
            let times_one = bin(g, BinaryOp::Mul, b, one);
            let r = g.push(node(
                Op::Reshape,
                vec![times_one],
                Ty::Tensor(vec![Dim::sym(0), Dim::sym(1)]),
            ));
            bin(g, BinaryOp::Mul, one, r)
        });
        let out = g.node(g.outputs[0]);
        assert_eq!(out.op, Op::Reshape, "{}", g.to_text());
        let b = g.node(out.args[0]);
        assert_eq!(
            (b.op, &b.ty),
            (Op::Broadcast, &Ty::Tensor(wide)),
            "{}",
            g.to_text()
        );
        assert_eq!(g.node(b.args[0]).op, Op::Input(0), "{}", g.to_text());
    }

    #[test]
    fn reductions_over_a_literal_one_are_their_element() {
        // `max(sum(reshape(x, [N, 1]), 1), 0)`: the sum runs over the literal 1 and goes; the max
        // runs over `N` and stays.
        let col = vec![Dim::sym(0), Dim::lit(1)];
        let g = simplified(|g, x| {
            let r = g.push(node(Op::Reshape, vec![x], Ty::Tensor(col.clone())));
            let s = g.push(node(
                Op::Reduce(graph_ir::ReduceOp::Sum, 1),
                vec![r],
                Ty::Tensor(col.clone()),
            ));
            let top = vec![Dim::lit(1), Dim::lit(1)];
            g.push(node(
                Op::Reduce(graph_ir::ReduceOp::Max, 0),
                vec![s],
                Ty::Tensor(top),
            ))
        });
        let out = g.node(g.outputs[0]);
        assert_eq!(out.op, Op::Reduce(graph_ir::ReduceOp::Max, 0), "{}", g.to_text());
        assert_eq!(g.node(out.args[0]).op, Op::Reshape, "{}", g.to_text());
    }
}
