//! Constant folding: pointwise ops whose arguments are all literals become a literal, and sizes
//! of literal dims become literals.
//!
//! Scalar arithmetic is defined to run in f64 (the eager executor does the same), so folding in
//! f64 changes no result. Tensor ops are never folded: their arguments are never literals.

use graph_ir::{Lit, Op};

use crate::ir::{Graph, Ty};

pub fn fold_constants(graph: &Graph) -> Graph {
    let mut out = graph.clone();
    for i in 0..out.nodes.len() {
        let node = &out.nodes[i];
        if node.ty != Ty::Scalar {
            continue;
        }
        let args: Option<Vec<f64>> = node.args.iter().map(|a| out.constant(*a)).collect();
        let value = match (node.op, args.as_deref()) {
            (Op::Unary(u), Some([x])) => Some(u.eval(*x)),
            (Op::Binary(b), Some([x, y])) => Some(b.eval(*x, *y)),
            (Op::Where, Some([c, t, f])) => Some(if *c != 0.0 { *t } else { *f }),
            (Op::Size(d), _) => d.as_lit().map(|n| n as f64),
            _ => None,
        };
        if let Some(v) = value {
            let node = &mut out.nodes[i];
            node.op = Op::Const(Lit::new(v));
            node.args.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use graph_ir::{BinaryOp, Dim, UnaryOp};

    use super::*;
    use crate::passes::eliminate_dead;
    use crate::passes::test_util::*;

    #[test]
    fn folds_scalar_chains() {
        let (mut g, x) = tensor_graph();
        let two = lit(&mut g, 2.0);
        let half = lit(&mut g, 0.5);
        let prod = bin(&mut g, BinaryOp::Mul, two, half);
        let e = un(&mut g, UnaryOp::Exp, prod);
        let y = bin(&mut g, BinaryOp::Mul, x, e);
        g.outputs = vec![y];
        let out = eliminate_dead(&fold_constants(&g));
        assert_eq!(out.nodes.len(), 3, "{}", out.to_text());
        let c = out.node(out.outputs[0]).args[1];
        assert_eq!(out.constant(c), Some(1f64.exp()));
    }

    #[test]
    fn folds_special_values_as_the_kernels_compute_them() {
        // PyTorch's results, as tests/special.rs checks the kernels against: NaN propagates
        // through relu and maximum, log(0) is -inf, rsqrt(-0) is -inf.
        let (mut g, _) = tensor_graph();
        let zero = lit(&mut g, 0.0);
        let nan = bin(&mut g, BinaryOp::Div, zero, zero);
        let one = lit(&mut g, 1.0);
        let relu = un(&mut g, UnaryOp::Relu, nan);
        let max = bin(&mut g, BinaryOp::Maximum, one, nan);
        let min = bin(&mut g, BinaryOp::Minimum, nan, one);
        let log = un(&mut g, UnaryOp::Log, zero);
        let minus_zero = lit(&mut g, -0.0);
        let rsqrt = un(&mut g, UnaryOp::Rsqrt, minus_zero);
        g.outputs = vec![relu, max, min, log, rsqrt];
        let out = fold_constants(&g);
        for id in [relu, max, min] {
            assert!(out.constant(id).is_some_and(f64::is_nan), "{}", out.to_text());
        }
        assert_eq!(out.constant(log), Some(f64::NEG_INFINITY));
        assert_eq!(out.constant(rsqrt), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn leaves_tensors_and_parameters_alone() {
        let (mut g, x) = tensor_graph();
        let e = un(&mut g, UnaryOp::Exp, x);
        let n = g.push(node(Op::Size(Dim::sym(0)), vec![], Ty::Scalar));
        let y = bin(&mut g, BinaryOp::Div, e, n);
        g.outputs = vec![y];
        let out = fold_constants(&g);
        assert_eq!(out.node(e).op, Op::Unary(UnaryOp::Exp));
        assert_eq!(out.node(n).op, Op::Size(Dim::sym(0)));
    }

    #[test]
    fn folds_literal_sizes() {
        let (mut g, _) = tensor_graph();
        let n = g.push(node(Op::Size(Dim::lit(64)), vec![], Ty::Scalar));
        g.outputs = vec![n];
        assert_eq!(fold_constants(&g).constant(n), Some(64.0));
    }
}
