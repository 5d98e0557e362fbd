//! The leading dims `..` (`x: Tensor[.., D]`): one symbol standing for any number of dims, which
//! the call flattens into one. Everything about them that the checks need: reading `..` in types
//! and shapes, and keeping it first (broadcasts and matmuls must not line other dims up with it).
//! Axes are checked in `axes.rs`.

use graph_ir::Dim;
use syn::Expr;

use super::dims::is_leading;
use super::shape::Shapes;
use super::Checker;
use crate::diag::Diag;

impl Checker<'_> {
    /// One dim of a type or a shape argument: a size, or the leading dims `..` where `first`.
    pub(super) fn shape_dim<'e>(&self, d: &'e Expr, first: bool) -> Result<Dim, (&'e Expr, Diag)> {
        if first && is_leading(d) {
            return match self.symbols.leading {
                Some(l) => Ok(Dim::sym(l)),
                None => Err((d, Diag::LeadingUnbound)),
            };
        }
        self.symbols.dim(d)
    }

    /// Whether a shape starts with the leading dims `..`.
    pub(super) fn has_leading(&self, shape: &[Dim]) -> bool {
        self.symbols
            .leading
            .is_some_and(|l| shape.first() == Some(&Dim::sym(l)))
    }

    /// Whether a shape holds the leading dims `..` elsewhere than first: a broadcast or a
    /// matmul would line them up with other dims, which flattening them into one cannot keep.
    pub(super) fn leading_moved(&self, shape: &[Dim]) -> bool {
        self.symbols
            .leading
            .is_some_and(|l| shape.iter().skip(1).any(|d| *d == Dim::sym(l)))
    }

    /// Why two shapes, one of them holding the leading dims `..`, do not broadcast with them
    /// first; `None` where neither holds them (or they agree, both the same shape of `..`).
    pub(super) fn leading_broadcast(&self, a: &[Dim], b: &[Dim]) -> Option<Diag> {
        let (lead, other) = match (self.has_leading(a), self.has_leading(b)) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            (true, true) if a.len() != b.len() => match a.len() < b.len() {
                true => (a, b),
                false => (b, a),
            },
            _ => return None,
        };
        let sh = Shapes { names: &self.names() };
        let conflict = other.len() > lead.len()
            || (other.len() == lead.len() && !other[0].is_one() && !self.has_leading(other));
        conflict.then(|| Diag::LeadingBroadcast {
            lead: sh.show(lead),
            other: sh.show(other),
            named: lead.len() - 1,
            matmul: false,
        })
    }
}
