//! Axes: normalising them (negative from the end), the rule for tensors with leading dims `..`
//! (only negative axes that stay among the dims after them), lists of axes for reductions, and
//! reductions over several axes lowered to reductions over one.

use graph_ir::{BinaryOp, Dim, Lit, Op, ReduceOp};
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

    /// A reduction over several axes: one reduction over all of their elements, as PyTorch's
    /// `sum(dim=(-2, -1))` does, with no intermediate rounded to a half type between axes.
    /// Consecutive axes are merged by a reshape and reduced as one; other axes are first
    /// transposed after the kept ones (in order), then merged. The result is reshaped back with
    /// each reduced axis kept as size 1. Where the merged size is not a dim (more symbol factors
    /// than a dim holds), successive reductions over one axis, the last axis first; the mean is
    /// then the sum over all of them divided by the product of their sizes.
    pub(super) fn reduce_axes(&mut self, r: ReduceOp, x: NodeId, axes: &[u8]) -> NodeId {
        if let [axis] = axes {
            return self.reduce(r, x, *axis);
        }
        if let Some(v) = self.reduce_merged(r, x, axes) {
            return v;
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

    /// [`Self::reduce_axes`] as one reduction of a reshape (after transposes where the axes are
    /// not consecutive); `None` where the merged size is not a dim. The leading dims `..` are
    /// never reduced (see [`Self::axis_of`]), so they stay first.
    fn reduce_merged(&mut self, r: ReduceOp, x: NodeId, axes: &[u8]) -> Option<NodeId> {
        let mut reduced: Vec<usize> = axes.iter().map(|&a| a as usize).collect();
        reduced.sort_unstable();
        let shape = self.shape_of(x);
        let rank = shape.len();
        let (lo, hi) = (reduced[0], reduced[reduced.len() - 1]);
        let merged = Dim::product(reduced.iter().map(|&a| &shape[a])).ok()?;
        let mut v = x;
        let at = if hi - lo + 1 == reduced.len() {
            lo
        } else {
            // Kept axes first, in order, then the reduced ones: each swap puts one axis in place.
            let target: Vec<usize> = (0..rank)
                .filter(|a| !reduced.contains(a))
                .chain(reduced.iter().copied())
                .collect();
            let mut now: Vec<usize> = (0..rank).collect();
            for (i, want) in target.iter().enumerate() {
                let j = (i..rank).find(|&j| now[j] == *want).expect("a permutation");
                if j != i {
                    now.swap(i, j);
                    let dims: Vec<Dim> = now.iter().map(|&a| shape[a]).collect();
                    let a0 = u8::try_from(i).expect("ranks fit u8");
                    let a1 = u8::try_from(j).expect("ranks fit u8");
                    v = self.push(Op::Transpose(a0, a1), vec![v], Ty::Tensor(dims));
                }
            }
            rank - reduced.len()
        };
        let dims: Vec<Dim> = self.shape_of(v);
        let mut flat = dims[..at].to_vec();
        flat.push(merged);
        flat.extend_from_slice(&dims[at + reduced.len()..]);
        let flat = self.push(Op::Reshape, vec![v], Ty::Tensor(flat));
        let one = self.reduce(r, flat, u8::try_from(at).expect("ranks fit u8"));
        let mut kept = shape;
        for &a in &reduced {
            kept[a] = Dim::lit(1);
        }
        Some(self.push(Op::Reshape, vec![one], Ty::Tensor(kept)))
    }

    pub(super) fn reduce(&mut self, r: ReduceOp, x: NodeId, axis: u8) -> NodeId {
        let shape = (Shapes { names: &[] }).reduce(&self.shape_of(x), axis as usize);
        self.push(Op::Reduce(r, axis), vec![x], Ty::Tensor(shape))
    }
}
