//! Arguments of a call, checked by the kind the builtin's signature gives each: a value, a
//! tensor, a scalar, an axis or a list of axes, a size, a shape, a list of tensors, or a dtype.

use graph_ir::{DType, Dim};
use quote::ToTokens;
use syn::{Expr, UnOp};

use super::builtins::{ArgKind, Builtin};
use super::shape::Shapes;
use super::{strip, Checker};
use crate::diag::Diag;
use crate::ir::{NodeId, Ty};
use crate::limits::{MAX_CAT_PARTS, MAX_RANK};

/// A checked argument, by kind.
pub(super) enum Arg {
    Val(NodeId),
    Axis(i64),
    /// One axis (`-1`) or a list of them (`[-2, -1]`), as written.
    Axes(Vec<i64>),
    Size(Dim),
    Shape(Vec<Dim>),
    Tensors(Vec<NodeId>),
    DType(DType),
}

impl Checker<'_> {
    pub(super) fn arg(&mut self, op: Builtin, arg: &'static str, kind: ArgKind, e: &Expr) -> Option<Arg> {
        match kind {
            ArgKind::Value => self.expr(e).map(Arg::Val),
            ArgKind::Tensor => {
                let v = self.expr(e)?;
                if *self.ty(v) == Ty::Scalar {
                    let diag = Diag::ExpectedTensor {
                        usage: op.usage(false),
                        arg,
                        what: format!("the scalar `{}`", e.to_token_stream()),
                    };
                    self.errors.at(e, diag);
                    return None;
                }
                Some(Arg::Val(v))
            }
            ArgKind::Scalar => {
                let v = self.expr(e)?;
                if let Ty::Tensor(shape) = self.ty(v) {
                    let shape = Shapes { names: &self.names() }.show(shape);
                    let diag = Diag::ExpectedScalar {
                        usage: op.usage(false),
                        arg,
                        what: format!("the tensor `{}` of shape {shape}", e.to_token_stream()),
                        instead: op.tensor_alternative(),
                    };
                    self.errors.at(e, diag);
                    return None;
                }
                Some(Arg::Val(v))
            }
            ArgKind::Axis => match axis_literal(e) {
                Some(a) => Some(Arg::Axis(a)),
                None => {
                    let twin = super::builtins::elementwise_twin(op).map(|t| (op.name(), t));
                    self.errors.at(e, Diag::ExpectedAxis { twin });
                    None
                }
            },
            ArgKind::Axes => match strip(e) {
                Expr::Array(a) if a.elems.is_empty() => {
                    self.errors.at(e, Diag::EmptyAxes);
                    None
                }
                Expr::Array(a) => {
                    let axes: Vec<Option<i64>> = (a.elems.iter())
                        .map(|d| {
                            let axis = axis_literal(d);
                            if axis.is_none() {
                                self.errors.at(d, Diag::ExpectedAxis { twin: None });
                            }
                            axis
                        })
                        .collect();
                    axes.into_iter().collect::<Option<Vec<_>>>().map(Arg::Axes)
                }
                _ => match self.arg(op, arg, ArgKind::Axis, e)? {
                    Arg::Axis(a) => Some(Arg::Axes(vec![a])),
                    _ => unreachable!("an axis argument checks to an axis"),
                },
            },
            ArgKind::Size => self.size(e).map(Arg::Size),
            ArgKind::Shape => match strip(e) {
                Expr::Array(a) if a.elems.len() > MAX_RANK => {
                    let diag = Diag::RankTooLarge {
                        rank: a.elems.len(),
                        limit: MAX_RANK,
                    };
                    self.errors.at(&a.elems[MAX_RANK], diag);
                    None
                }
                Expr::Array(a) => {
                    let dims: Vec<Option<Dim>> = (a.elems.iter().enumerate())
                        .map(|(i, d)| match i == 0 && super::dims::is_leading(d) {
                            true => self
                                .shape_dim(d, true)
                                .map_err(|(at, diag)| self.errors.at(at, diag))
                                .ok(),
                            false => self.size(d),
                        })
                        .collect();
                    dims.into_iter().collect::<Option<Vec<_>>>().map(Arg::Shape)
                }
                _ => {
                    self.errors.at(e, Diag::ExpectedShapeList);
                    None
                }
            },
            ArgKind::Tensors => match strip(e) {
                Expr::Array(a) if a.elems.len() > MAX_CAT_PARTS => {
                    let diag = Diag::TooManyCatParts {
                        parts: a.elems.len(),
                        limit: MAX_CAT_PARTS,
                    };
                    self.errors.at(&a.elems[MAX_CAT_PARTS], diag);
                    self.mark_used(e);
                    None
                }
                Expr::Array(a) => {
                    let parts: Vec<Option<Arg>> = a
                        .elems
                        .iter()
                        .map(|t| self.arg(op, arg, ArgKind::Tensor, t))
                        .collect();
                    let parts: Option<Vec<Arg>> = parts.into_iter().collect();
                    let ids = parts?.into_iter().filter_map(|p| match p {
                        Arg::Val(v) => Some(v),
                        _ => None,
                    });
                    Some(Arg::Tensors(ids.collect()))
                }
                _ => {
                    self.errors.at(e, Diag::ExpectedTensorList);
                    None
                }
            },
            ArgKind::DType => {
                let name = match strip(e) {
                    Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                    _ => None,
                };
                match name.as_deref().and_then(DType::from_name) {
                    Some(t) => Some(Arg::DType(t)),
                    None => {
                        let name = e.to_token_stream().to_string();
                        self.errors.at(e, Diag::UnknownDType { name });
                        None
                    }
                }
            }
        }
    }

    fn size(&mut self, e: &Expr) -> Option<Dim> {
        match self.symbols.dim(e) {
            Ok(d) => Some(d),
            Err((at, diag)) => {
                // A variable where a size belongs reads better as "expected a size".
                let diag = match diag {
                    Diag::UnknownSymbol { name, .. } if self.scope.contains_key(&name) => Diag::ExpectedSize,
                    Diag::UnknownSymbol { name, .. } => {
                        let suggestion = self.symbols.suggest(&name, []);
                        Diag::UnknownName { name, suggestion }
                    }
                    d => d,
                };
                self.errors.at(at, diag);
                None
            }
        }
    }
}

/// `-1`, `0`, `2`: an integer literal, possibly negated.
fn axis_literal(e: &Expr) -> Option<i64> {
    match strip(e) {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => axis_literal(&u.expr).map(|a| -a),
        _ => None,
    }
}
