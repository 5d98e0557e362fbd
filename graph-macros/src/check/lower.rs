//! Expressions: name resolution, argument kinds, shape rules, and lowering of composite ops
//! (`softmax`, `var`, `clamp`, ...) to the primitives of `graph_ir::Op`.

use graph_ir::{BinaryOp, DType, Dim, Lit, Op, ReduceOp, UnaryOp};
use quote::ToTokens;
use syn::{BinOp, Expr, Ident, UnOp};

use super::builtins::{ArgKind, Builtin};
use super::shape::Shapes;
use super::{strip, Checker, Val};
use crate::diag::Diag;
use crate::ir::{NodeId, Ty};

/// A checked argument, by kind.
enum Arg {
    Val(NodeId),
    Axis(i64),
    Size(Dim),
    Shape(Vec<Dim>),
    Tensors(Vec<NodeId>),
    DType(DType),
}

impl Checker<'_> {
    pub(super) fn expr(&mut self, e: &Expr) -> Val {
        match e {
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Group(g) => self.expr(&g.expr),
            Expr::Lit(l) => {
                let v = match &l.lit {
                    syn::Lit::Float(f) => f.base10_parse::<f64>().ok(),
                    syn::Lit::Int(i) => i.base10_parse::<f64>().ok(),
                    _ => None,
                };
                match v {
                    Some(v) => Some(self.push(Op::Const(Lit::new(v)), vec![], Ty::Scalar)),
                    None => {
                        self.errors.at(e, Diag::UnsupportedExpr { what: "this literal" });
                        None
                    }
                }
            }
            Expr::Path(p) => match p.path.get_ident() {
                Some(id) => self.name(id),
                None => {
                    self.errors.at(e, Diag::UnsupportedExpr { what: "a path" });
                    None
                }
            },
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let x = self.expr(&u.expr)?;
                    let ty = self.ty(x).clone();
                    Some(self.push(Op::Unary(UnaryOp::Neg), vec![x], ty))
                }
                _ => {
                    self.errors.at(
                        e,
                        Diag::UnsupportedExpr {
                            what: "this unary operator",
                        },
                    );
                    None
                }
            },
            Expr::Binary(b) => {
                let op = match b.op {
                    BinOp::Add(_) => BinaryOp::Add,
                    BinOp::Sub(_) => BinaryOp::Sub,
                    BinOp::Mul(_) => BinaryOp::Mul,
                    BinOp::Div(_) => BinaryOp::Div,
                    BinOp::Lt(_) => BinaryOp::Lt,
                    BinOp::Le(_) => BinaryOp::Le,
                    BinOp::Gt(_) => BinaryOp::Gt,
                    BinOp::Ge(_) => BinaryOp::Ge,
                    BinOp::Eq(_) => BinaryOp::Eq,
                    BinOp::Ne(_) => BinaryOp::Ne,
                    _ => {
                        self.errors.at(
                            b.op,
                            Diag::UnsupportedExpr {
                                what: "this operator",
                            },
                        );
                        return None;
                    }
                };
                let (l, r) = (self.expr(&b.left), self.expr(&b.right));
                self.binary(op, l?, r?, e)
            }
            Expr::Call(c) => {
                let name = match strip(&c.func) {
                    Expr::Path(p) => p.path.get_ident(),
                    _ => None,
                };
                let Some(name) = name else {
                    self.errors
                        .at(&c.func, Diag::UnsupportedExpr { what: "calling this" });
                    return None;
                };
                let args: Vec<&Expr> = c.args.iter().collect();
                self.call(name, &args, e)
            }
            Expr::MethodCall(m) => {
                if m.turbofish.is_some() {
                    self.errors
                        .at(&m.turbofish, Diag::UnsupportedExpr { what: "a turbofish" });
                    return None;
                }
                let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(&m.args).collect();
                self.call(&m.method, &args, e)
            }
            Expr::Array(_) => {
                self.errors.at(
                    e,
                    Diag::UnsupportedExpr {
                        what: "an array outside `cat`, `reshape` or `broadcast`",
                    },
                );
                None
            }
            Expr::Tuple(_) => {
                self.errors.at(
                    e,
                    Diag::UnsupportedExpr {
                        what: "a tuple outside the returned expression",
                    },
                );
                None
            }
            _ => {
                self.errors.at(
                    e,
                    Diag::UnsupportedExpr {
                        what: "this kind of expression",
                    },
                );
                None
            }
        }
    }

    /// A variable, a parameter, or a shape symbol used as a scalar (`x / D`).
    fn name(&mut self, id: &Ident) -> Val {
        let name = id.to_string();
        if let Some(&node) = self.scope.get(&name) {
            if let Some(p) = self.param_nodes.iter().position(|&n| n == node) {
                self.used[p] = true;
            }
            return Some(node);
        }
        if self.poisoned.contains(&name) {
            return None;
        }
        if let Some(s) = self.symbols.get(&name) {
            return Some(self.push(Op::Size(Dim::sym(s)), vec![], Ty::Scalar));
        }
        let scope: Vec<&str> = self.scope.keys().map(String::as_str).collect();
        let suggestion = self.symbols.suggest(&name, scope);
        self.errors.at(id, Diag::UnknownName { name, suggestion });
        None
    }

    fn call(&mut self, name: &Ident, args: &[&Expr], whole: &Expr) -> Val {
        let Some(builtin) = Builtin::lookup(&name.to_string()) else {
            let suggestion = crate::diag::nearest(&name.to_string(), Builtin::names());
            self.errors.at(
                name,
                Diag::UnknownOp {
                    name: name.to_string(),
                    suggestion,
                },
            );
            args.iter().for_each(|a| self.mark_used(a));
            return None;
        };
        let sig = builtin.signature();
        if sig.len() != args.len() {
            let diag = Diag::WrongArity {
                op: builtin.name(),
                expected: sig.len(),
                found: args.len(),
                signature: builtin.usage(),
            };
            self.errors.at(name, diag);
            args.iter().for_each(|a| self.mark_used(a));
            return None;
        }
        let checked: Vec<Option<Arg>> = sig
            .iter()
            .zip(args)
            .map(|(&(_, kind), e)| self.arg(kind, e))
            .collect();
        let checked: Option<Vec<Arg>> = checked.into_iter().collect();
        self.lower(builtin, checked?, args, whole)
    }

    /// Marks parameters mentioned anywhere in `e` as used, for calls that failed before their
    /// arguments were checked (so one mistake does not add "unused parameter" errors).
    fn mark_used(&mut self, e: &Expr) {
        for tt in e.to_token_stream() {
            self.mark_used_tokens(tt);
        }
    }

    fn mark_used_tokens(&mut self, tt: proc_macro2::TokenTree) {
        match tt {
            proc_macro2::TokenTree::Ident(id) => {
                if let Some(&node) = self.scope.get(&id.to_string()) {
                    if let Some(p) = self.param_nodes.iter().position(|&n| n == node) {
                        self.used[p] = true;
                    }
                }
            }
            proc_macro2::TokenTree::Group(g) => g.stream().into_iter().for_each(|t| self.mark_used_tokens(t)),
            _ => {}
        }
    }

    fn arg(&mut self, kind: ArgKind, e: &Expr) -> Option<Arg> {
        match kind {
            ArgKind::Value => self.expr(e).map(Arg::Val),
            ArgKind::Tensor => {
                let v = self.expr(e)?;
                if *self.ty(v) == Ty::Scalar {
                    let what = format!("the scalar `{}`", e.to_token_stream());
                    self.errors.at(e, Diag::ExpectedTensor { what });
                    return None;
                }
                Some(Arg::Val(v))
            }
            ArgKind::Scalar => {
                let v = self.expr(e)?;
                if let Ty::Tensor(shape) = self.ty(v) {
                    let shape = Shapes { names: &self.names() }.show(shape);
                    let what = format!("the tensor `{}` of shape {shape}", e.to_token_stream());
                    self.errors.at(e, Diag::ExpectedScalar { what });
                    return None;
                }
                Some(Arg::Val(v))
            }
            ArgKind::Axis => match axis_literal(e) {
                Some(a) => Some(Arg::Axis(a)),
                None => {
                    self.mark_used(e);
                    self.errors.at(e, Diag::ExpectedAxis);
                    None
                }
            },
            ArgKind::Size => self.size(e).map(Arg::Size),
            ArgKind::Shape => match strip(e) {
                Expr::Array(a) => {
                    let dims: Vec<Option<Dim>> = a.elems.iter().map(|d| self.size(d)).collect();
                    dims.into_iter().collect::<Option<Vec<_>>>().map(Arg::Shape)
                }
                _ => {
                    self.mark_used(e);
                    self.errors.at(e, Diag::ExpectedShapeList);
                    None
                }
            },
            ArgKind::Tensors => match strip(e) {
                Expr::Array(a) => {
                    let parts: Vec<Option<Arg>> =
                        a.elems.iter().map(|t| self.arg(ArgKind::Tensor, t)).collect();
                    let parts: Option<Vec<Arg>> = parts.into_iter().collect();
                    let ids = parts?.into_iter().filter_map(|p| match p {
                        Arg::Val(v) => Some(v),
                        _ => None,
                    });
                    Some(Arg::Tensors(ids.collect()))
                }
                _ => {
                    self.mark_used(e);
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
                    Diag::UnknownSymbol { name } if self.scope.contains_key(&name) => {
                        self.mark_used(e);
                        Diag::ExpectedSize
                    }
                    Diag::UnknownSymbol { name } => {
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

    fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId, at: &Expr) -> Val {
        let ty = self.broadcast(&[a, b], at)?;
        Some(self.push(Op::Binary(op), vec![a, b], ty))
    }

    /// The broadcast type of several values (scalars broadcast to anything).
    fn broadcast(&mut self, values: &[NodeId], at: &Expr) -> Option<Ty> {
        let names = self.names();
        let sh = Shapes { names: &names };
        let mut out = Ty::Scalar;
        for v in values {
            out = match (out, self.ty(*v)) {
                (t, Ty::Scalar) => t,
                (Ty::Scalar, t) => t.clone(),
                (Ty::Tensor(a), Ty::Tensor(b)) => match sh.broadcast(&a, b) {
                    Ok(s) => Ty::Tensor(s),
                    Err(diag) => {
                        self.errors.at(at, diag);
                        return None;
                    }
                },
            };
        }
        Some(out)
    }

    fn shape_of(&self, v: NodeId) -> Vec<Dim> {
        self.ty(v).shape().map(<[Dim]>::to_vec).unwrap_or_default()
    }

    fn axis_of(&mut self, x: NodeId, axis: i64, at: &Expr) -> Option<u8> {
        let rank = self.shape_of(x).len();
        match (Shapes { names: &self.names() }).axis(axis, rank) {
            Ok(a) => Some(a as u8),
            Err(diag) => {
                self.errors.at(at, diag);
                None
            }
        }
    }

    fn reduce(&mut self, r: ReduceOp, x: NodeId, axis: u8) -> NodeId {
        let shape = (Shapes { names: &[] }).reduce(&self.shape_of(x), axis as usize);
        self.push(Op::Reduce(r, axis), vec![x], Ty::Tensor(shape))
    }

    fn unary(&mut self, u: UnaryOp, x: NodeId) -> NodeId {
        let ty = self.ty(x).clone();
        self.push(Op::Unary(u), vec![x], ty)
    }

    /// Applies a shape rule; a failure is reported at `at`.
    fn rule(&mut self, at: &Expr, f: impl FnOnce(&Shapes) -> Result<Vec<Dim>, Diag>) -> Option<Ty> {
        let names = self.names();
        let result = f(&Shapes { names: &names });
        match result {
            Ok(s) => Some(Ty::Tensor(s)),
            Err(diag) => {
                self.errors.at(at, diag);
                None
            }
        }
    }

    fn lower(&mut self, b: Builtin, args: Vec<Arg>, exprs: &[&Expr], at: &Expr) -> Val {
        use Arg::*;
        match (b, args.as_slice()) {
            (Builtin::Unary(u), [Val(x)]) => Some(self.unary(u, *x)),
            (Builtin::Binary(op), [Val(a), Val(b)]) => self.binary(op, *a, *b, at),
            (Builtin::Clamp, [Val(x), Val(lo), Val(hi)]) => {
                let low = self.binary(BinaryOp::Maximum, *x, *lo, at)?;
                self.binary(BinaryOp::Minimum, low, *hi, at)
            }
            (Builtin::Where, [Val(c), Val(t), Val(f)]) => {
                let ty = self.broadcast(&[*c, *t, *f], at)?;
                Some(self.push(Op::Where, vec![*c, *t, *f], ty))
            }
            (Builtin::Reduce(r), [Val(x), Axis(a)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                Some(self.reduce(r, *x, axis))
            }
            (Builtin::Var, [Val(x), Axis(a)]) => {
                // Population variance: mean((x - mean(x))^2), as layer norm uses.
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let m = self.reduce(ReduceOp::Mean, *x, axis);
                let d = self.binary(BinaryOp::Sub, *x, m, at)?;
                let d2 = self.unary(UnaryOp::Sqr, d);
                Some(self.reduce(ReduceOp::Mean, d2, axis))
            }
            (Builtin::Softmax, [Val(x), Axis(a)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let m = self.reduce(ReduceOp::Max, *x, axis);
                let s = self.binary(BinaryOp::Sub, *x, m, at)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce(ReduceOp::Sum, e, axis);
                self.binary(BinaryOp::Div, e, z, at)
            }
            (Builtin::LogSoftmax, [Val(x), Axis(a)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let m = self.reduce(ReduceOp::Max, *x, axis);
                let s = self.binary(BinaryOp::Sub, *x, m, at)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce(ReduceOp::Sum, e, axis);
                let lz = self.unary(UnaryOp::Log, z);
                self.binary(BinaryOp::Sub, s, lz, at)
            }
            (Builtin::LogSumExp, [Val(x), Axis(a)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let m = self.reduce(ReduceOp::Max, *x, axis);
                let s = self.binary(BinaryOp::Sub, *x, m, at)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce(ReduceOp::Sum, e, axis);
                let lz = self.unary(UnaryOp::Log, z);
                self.binary(BinaryOp::Add, m, lz, at)
            }
            (Builtin::Matmul, [Val(a), Val(b)]) => {
                let (sa, sb) = (self.shape_of(*a), self.shape_of(*b));
                let ty = self.rule(at, |s| s.matmul(&sa, &sb))?;
                Some(self.push(Op::Matmul, vec![*a, *b], ty))
            }
            (Builtin::Transpose, [Val(x), Axis(a0), Axis(a1)]) => {
                let a0 = self.axis_of(*x, *a0, exprs[1]);
                let a1 = self.axis_of(*x, *a1, exprs[2]);
                let (a0, a1) = (a0?, a1?);
                let sx = self.shape_of(*x);
                let ty = self.rule(at, |s| s.transpose(&sx, a0 as usize, a1 as usize))?;
                Some(self.push(Op::Transpose(a0, a1), vec![*x], ty))
            }
            (Builtin::Reshape, [Val(x), Shape(to)]) => {
                let sx = self.shape_of(*x);
                let ty = self.rule(at, |s| s.reshape(&sx, to))?;
                Some(self.push(Op::Reshape, vec![*x], ty))
            }
            (Builtin::Broadcast, [Val(x), Shape(to)]) => {
                let sx = self.shape_of(*x);
                let ty = self.rule(at, |s| s.broadcast_to(&sx, to))?;
                Some(self.push(Op::Broadcast, vec![*x], ty))
            }
            (Builtin::Narrow, [Val(x), Axis(a), Size(start), Size(len)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let sx = self.shape_of(*x);
                let ty = self.rule(at, |s| s.narrow(&sx, axis as usize, *start, *len))?;
                Some(self.push(Op::Narrow(axis, *start), vec![*x], ty))
            }
            (Builtin::Cat, [Tensors(parts), Axis(a)]) => {
                let Some(&first) = parts.first() else {
                    self.errors.at(exprs[0], Diag::EmptyCat);
                    return None;
                };
                let axis = self.axis_of(first, *a, exprs[1])?;
                let shapes: Vec<Vec<Dim>> = parts.iter().map(|p| self.shape_of(*p)).collect();
                let refs: Vec<&[Dim]> = shapes.iter().map(Vec::as_slice).collect();
                let names = self.names();
                match (Shapes { names: &names }).cat(&refs, axis as usize) {
                    Ok(s) => Some(self.push(Op::Cat(axis), parts.clone(), Ty::Tensor(s))),
                    Err((i, diag)) => {
                        let blame = match strip(exprs[0]) {
                            Expr::Array(arr) if i > 0 => arr.elems.iter().nth(i).map(|e| e.to_token_stream()),
                            _ => None,
                        };
                        match blame {
                            Some(t) => self.errors.at(t, diag),
                            None => self.errors.at(at, diag),
                        }
                        None
                    }
                }
            }
            (Builtin::Cast, [Val(x), DType(t)]) => {
                let ty = self.ty(*x).clone();
                Some(self.push(Op::Cast(*t), vec![*x], ty))
            }
            _ => unreachable!("argument kinds follow the builtin's signature"),
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
