//! Axes: normalising them (negative from the end), the rule for tensors with leading dims `..`
//! (only negative axes that stay among the dims after them), lists of axes for reductions, and
//! reductions over several axes lowered to reductions over one.

use graph_ir::{BinaryOp, Lit, Op, ReduceOp};
use syn::Expr;

use super::shape::Shapes;
use super::{strip, Checker};
use crate::diag::Diag;
use crate::ir::{NodeId, Ty};

impl Checker<'_> {
    pub(super) fn axis_of(&mut self, x: NodeId, axis: i64, at: &Expr) -> Option<u8> {
        let shape = self.shape_of(x);
        let rank = shape.len();
        // Only the dims after `..` have a known position: negative axes that stay among them.
        if self.has_leading(&shape) && (axis >= 0 || axis < 1 - rank as i64) {
            let diag = Diag::LeadingAxis {
                axis,
                shape: (Shapes { names: &self.names() }).show(&shape),
                named: rank - 1,
            };
            self.errors.at(at, diag);
            return None;
        }
        match (Shapes { names: &self.names() }).axis(axis, rank) {
            Ok(a) => Some(u8::try_from(a).expect("ranks are at most MAX_RANK, so axes fit in u8")),
            Err(diag) => {
                self.errors.at(at, diag);
                None
            }
        }
    }

    /// Normalises a list of axes as written at `at` (a list literal, or one axis); each error
    /// points at its axis, and an axis listed twice at its second mention.
    pub(super) fn axes_of(&mut self, x: NodeId, axes: &[i64], at: &Expr) -> Option<Vec<u8>> {
        let items: Vec<&Expr> = match strip(at) {
            Expr::Array(a) => a.elems.iter().collect(),
            _ => vec![at],
        };
        // Each normalised axis with the axis as written.
        let mut out: Vec<(u8, i64)> = Vec::with_capacity(axes.len());
        let mut ok = true;
        for (&axis, e) in axes.iter().zip(&items) {
            let Some(a) = self.axis_of(x, axis, e) else {
                ok = false;
                continue;
            };
            if let Some(&(_, first)) = out.iter().find(|(b, _)| *b == a) {
                let diag = Diag::DuplicateAxis {
                    axis,
                    first,
                    normalized: a as usize,
                    rank: self.shape_of(x).len(),
                };
                self.errors.at(e, diag);
                ok = false;
                continue;
            }
            out.push((a, axis));
        }
        ok.then(|| out.into_iter().map(|(a, _)| a).collect())
    }

    /// A reduction over several axes as successive reductions over one, the last axis first
    /// (the row kernel's), each kept as size 1. The mean is the sum over all of them divided by
    /// the product of their sizes, as one mean would compute it.
    pub(super) fn reduce_axes(&mut self, r: ReduceOp, x: NodeId, axes: &[u8]) -> NodeId {
        if let [axis] = axes {
            return self.reduce(r, x, *axis);
        }
        let mut order = axes.to_vec();
        order.sort_unstable_by(|a, b| b.cmp(a));
        let step = match r {
            ReduceOp::Mean => ReduceOp::Sum,
            r => r,
        };
        let shape = self.shape_of(x);
        let mut v = x;
        for &axis in &order {
            v = self.reduce(step, v, axis);
        }
        if r != ReduceOp::Mean {
            return v;
        }
        let mut count: Option<NodeId> = None;
        for &axis in &order {
            let d = shape[axis as usize];
            let size = match d.as_lit() {
                Some(n) => self.push(Op::Const(Lit::new(n as f64)), vec![], Ty::Scalar),
                None => self.push(Op::Size(d), vec![], Ty::Scalar),
            };
            count = Some(match count {
                None => size,
                Some(c) => self.push(Op::Binary(BinaryOp::Mul), vec![c, size], Ty::Scalar),
            });
        }
        let count = count.expect("at least one axis");
        let ty = self.ty(v).clone();
        self.push(Op::Binary(BinaryOp::Div), vec![v, count], ty)
    }

    pub(super) fn reduce(&mut self, r: ReduceOp, x: NodeId, axis: u8) -> NodeId {
        let shape = (Shapes { names: &[] }).reduce(&self.shape_of(x), axis as usize);
        self.push(Op::Reduce(r, axis), vec![x], Ty::Tensor(shape))
    }
}
