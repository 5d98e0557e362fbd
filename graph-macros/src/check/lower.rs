//! Expressions: name resolution, shape rules, and lowering of composite ops (`softmax`, `var`,
//! `clamp`, ...) to the primitives of `graph_ir::Op`. Arguments are checked in `args.rs`.

use graph_ir::{BinaryOp, Dim, Lit, Op, ReduceOp, UnaryOp};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{BinOp, Expr, Ident, UnOp};

use super::args::Arg;
use super::builtins::Builtin;
use super::shape::Shapes;
use super::{strip, Checker, Val, INF};
use crate::diag::Diag;
use crate::ir::{NodeId, Ty};

impl Checker<'_> {
    pub(super) fn expr(&mut self, e: &Expr) -> Val {
        let v = self.expr_inner(e);
        if v.is_none() {
            // The error is already reported; the parameters it mentions count as used, so one
            // mistake does not add "unused parameter" errors.
            self.mark_used(e);
        }
        v
    }

    fn expr_inner(&mut self, e: &Expr) -> Val {
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
                    None => self.unsupported(e, "this literal", "numbers are written as `1.0` or `2`"),
                }
            }
            Expr::Path(p) => match p.path.get_ident() {
                Some(id) => self.name(id),
                None => self.unsupported(e, "a path", "name a parameter, a `let` binding or a shape symbol"),
            },
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let x = self.expr(&u.expr)?;
                    let ty = self.ty(x).clone();
                    Some(self.push(Op::Unary(UnaryOp::Neg), vec![x], ty))
                }
                op => {
                    let what = format!("the operator `{}`", op.to_token_stream());
                    self.unsupported(op, what, "the only unary operator is `-`")
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
                    op => {
                        let what = format!("the operator `{}`", op.to_token_stream());
                        return self.unsupported(
                            op,
                            what,
                            "the operators are `+ - * /` and the comparisons `< <= > >= == !=`",
                        );
                    }
                };
                let (l, r) = (self.expr(&b.left), self.expr(&b.right));
                self.binary(op, l?, r?, &b.op)
            }
            Expr::Call(c) => {
                let name = match strip(&c.func) {
                    Expr::Path(p) => p.path.get_ident(),
                    _ => None,
                };
                let Some(name) = name else {
                    return self.unsupported(
                        &c.func,
                        "calling this",
                        "call an op by its name, such as `exp(x)`",
                    );
                };
                let args: Vec<&Expr> = c.args.iter().collect();
                self.call(name, &args, false)
            }
            Expr::MethodCall(m) => {
                if let Some(turbofish) = &m.turbofish {
                    return self.unsupported(turbofish, "a turbofish", "ops take no type arguments");
                }
                let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(&m.args).collect();
                self.call(&m.method, &args, true)
            }
            Expr::Array(_) => self.unsupported(
                e,
                "an array outside `cat`, `reshape` or `broadcast`",
                "brackets only list the tensors of `cat` or the dims of a shape",
            ),
            Expr::Tuple(_) => self.unsupported(
                e,
                "a tuple outside the returned expression",
                "only the final expression may be a tuple, one value per output",
            ),
            Expr::If(i) => self.unsupported(
                i.if_token,
                "`if`",
                "select between values with `where_(cond, on_true, on_false)`",
            ),
            Expr::Match(m) => self.unsupported(
                m.match_token,
                "`match`",
                "select between values with `where_(cond, on_true, on_false)`",
            ),
            Expr::ForLoop(l) => self.unsupported(l.for_token, "a loop", "a graph runs straight through"),
            Expr::While(l) => self.unsupported(l.while_token, "a loop", "a graph runs straight through"),
            Expr::Loop(l) => self.unsupported(l.loop_token, "a loop", "a graph runs straight through"),
            Expr::Index(_) => self.unsupported(
                e,
                "indexing",
                "take a part of a tensor with `narrow(x, axis, start, len)`",
            ),
            Expr::Field(_) => self.unsupported(
                e,
                "a field access",
                "shapes are declared in the signature, not read",
            ),
            Expr::Reference(r) => {
                self.unsupported(r.and_token, "a reference", "write the value itself, without `&`")
            }
            Expr::Macro(m) => self.unsupported(m, "a macro call", "call ops by name, such as `exp(x)`"),
            _ => self.unsupported(
                e,
                "this kind of expression",
                "use ops, arithmetic, comparisons, literals and `let`",
            ),
        }
    }

    /// Reports an expression the DSL has no meaning for, at `at` (its keyword when it has one).
    fn unsupported(&mut self, at: impl ToTokens, what: impl Into<String>, instead: &'static str) -> Val {
        let what = what.into();
        self.errors.at(at, Diag::UnsupportedExpr { what, instead });
        None
    }

    /// The built-in constant `inf`, a variable, a parameter, or a shape symbol used as a scalar
    /// (`x / D`). `inf` cannot name anything else (see `Checker::reserved`), so it needs no scope;
    /// after a rejected declaration of it, its uses stay silent (they may mean the declaration).
    fn name(&mut self, id: &Ident) -> Val {
        if id.unraw() == INF {
            if self.poisoned.contains(INF) {
                return None;
            }
            return Some(self.push(Op::Const(Lit::new(f64::INFINITY)), vec![], Ty::Scalar));
        }
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

    /// `name(args)`, or `args[0].name(args[1..])` when `method` is set.
    fn call(&mut self, name: &Ident, args: &[&Expr], method: bool) -> Val {
        let Some(builtin) = Builtin::lookup(&name.to_string()) else {
            let text = name.to_string();
            let (suggestion, instead) = match super::builtins::spelled_elsewhere(&text) {
                Some(hint) => (None, Some(hint)),
                None => (crate::diag::nearest(&text, Builtin::names()), None),
            };
            self.errors.at(
                name,
                Diag::UnknownOp {
                    name: text,
                    suggestion,
                    instead,
                },
            );
            return None;
        };
        let sig = builtin.signature();
        if sig.len() != args.len() {
            // In method syntax the receiver is no argument of the user's count.
            let skip = usize::from(method);
            let diag = Diag::WrongArity {
                op: builtin.name(),
                expected: sig.len() - skip,
                found: args.len() - skip,
                usage: builtin.usage(method),
            };
            self.errors.at(name, diag);
            return None;
        }
        let checked: Vec<Option<Arg>> = sig
            .iter()
            .zip(args)
            .map(|(&(arg, kind), e)| self.arg(builtin, arg, kind, e))
            .collect();
        let checked: Option<Vec<Arg>> = checked.into_iter().collect();
        self.lower(builtin, checked?, args, name)
    }

    /// Marks parameters mentioned anywhere in `e` as used, for code that failed to check (so one
    /// mistake does not add "unused parameter" errors).
    pub(super) fn mark_used(&mut self, e: &impl ToTokens) {
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

    /// `a op b`; a broadcast error is reported at `at`, the operator or the op's name.
    fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId, at: &dyn ToTokens) -> Val {
        let ty = self.broadcast(&[a, b], at)?;
        Some(self.push(Op::Binary(op), vec![a, b], ty))
    }

    /// The broadcast type of several values (scalars broadcast to anything).
    fn broadcast(&mut self, values: &[NodeId], at: &dyn ToTokens) -> Option<Ty> {
        let names = self.names();
        let sh = Shapes { names: &names };
        let mut out = Ty::Scalar;
        for v in values {
            out = match (out, self.ty(*v)) {
                (t, Ty::Scalar) => t,
                (Ty::Scalar, t) => t.clone(),
                (Ty::Tensor(a), Ty::Tensor(b)) => match sh.broadcast(&a, b) {
                    Ok(s) if !self.leading_moved(&s) => Ty::Tensor(s),
                    result => {
                        let diag = self.leading_broadcast(&a, b).unwrap_or_else(|| match result {
                            Err(diag) => diag,
                            Ok(_) => unreachable!("a moved `..` comes from an operand holding it"),
                        });
                        self.errors.at(at, diag);
                        return None;
                    }
                },
            };
        }
        Some(out)
    }

    pub(super) fn shape_of(&self, v: NodeId) -> Vec<Dim> {
        self.ty(v).shape().map(<[Dim]>::to_vec).unwrap_or_default()
    }

    fn unary(&mut self, u: UnaryOp, x: NodeId) -> NodeId {
        let ty = self.ty(x).clone();
        self.push(Op::Unary(u), vec![x], ty)
    }

    /// Applies a shape rule; a failure is reported at `at`.
    fn rule(&mut self, at: &dyn ToTokens, f: impl FnOnce(&Shapes) -> Result<Vec<Dim>, Diag>) -> Option<Ty> {
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

    /// Lowers a checked call to primitives. Shape errors point at the argument at fault when one
    /// is, and at the op's `name` otherwise.
    fn lower(&mut self, b: Builtin, args: Vec<Arg>, exprs: &[&Expr], name: &Ident) -> Val {
        use Arg::*;
        match (b, args.as_slice()) {
            (Builtin::Unary(u), [Val(x)]) => Some(self.unary(u, *x)),
            (Builtin::Binary(op), [Val(a), Val(b)]) => self.binary(op, *a, *b, name),
            (Builtin::Clamp, [Val(x), Val(lo), Val(hi)]) => {
                let low = self.binary(BinaryOp::Maximum, *x, *lo, name)?;
                self.binary(BinaryOp::Minimum, low, *hi, name)
            }
            (Builtin::Where, [Val(c), Val(t), Val(f)]) => {
                let ty = self.broadcast(&[*c, *t, *f], name)?;
                Some(self.push(Op::Where, vec![*c, *t, *f], ty))
            }
            (Builtin::Reduce(r), [Val(x), Axes(a)]) => {
                let axes = self.axes_of(*x, a, exprs[1])?;
                Some(self.reduce_axes(r, *x, &axes))
            }
            (Builtin::Var, [Val(x), Axes(a)]) => {
                // Population variance: mean((x - mean(x))^2), as layer norm uses.
                let axes = self.axes_of(*x, a, exprs[1])?;
                let m = self.reduce_axes(ReduceOp::Mean, *x, &axes);
                let d = self.binary(BinaryOp::Sub, *x, m, name)?;
                let d2 = self.unary(UnaryOp::Sqr, d);
                Some(self.reduce_axes(ReduceOp::Mean, d2, &axes))
            }
            (Builtin::Softmax, [Val(x), Axes(a)]) => {
                let axes = self.axes_of(*x, a, exprs[1])?;
                let m = self.reduce_axes(ReduceOp::Max, *x, &axes);
                let s = self.binary(BinaryOp::Sub, *x, m, name)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce_axes(ReduceOp::Sum, e, &axes);
                self.binary(BinaryOp::Div, e, z, name)
            }
            (Builtin::LogSoftmax, [Val(x), Axes(a)]) => {
                let axes = self.axes_of(*x, a, exprs[1])?;
                let m = self.reduce_axes(ReduceOp::Max, *x, &axes);
                let s = self.binary(BinaryOp::Sub, *x, m, name)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce_axes(ReduceOp::Sum, e, &axes);
                let lz = self.unary(UnaryOp::Log, z);
                self.binary(BinaryOp::Sub, s, lz, name)
            }
            (Builtin::LogSumExp, [Val(x), Axes(a)]) => {
                // As PyTorch: an infinite max is replaced by 0 before it is subtracted, so a row
                // of -inf gives -inf and a row with +inf gives +inf (x - max would be NaN
                // there). `max - max` is 0 exactly where the max is finite, and NaN (not 0, so
                // `where_` takes its first branch) where it is infinite or NaN; there
                // `recip(max)` is the 0 (`1 / ±inf = ±0`), or NaN for a NaN max, which comes
                // from a NaN in the row and keeps the result NaN. No literal: the whole rule is
                // row scalars computed from the max.
                let axes = self.axes_of(*x, a, exprs[1])?;
                let max = self.reduce_axes(ReduceOp::Max, *x, &axes);
                let not_finite = self.binary(BinaryOp::Sub, max, max, name)?;
                let zero = self.unary(UnaryOp::Recip, max);
                let ty = self.ty(max).clone();
                let m = self.push(Op::Where, vec![not_finite, zero, max], ty);
                let s = self.binary(BinaryOp::Sub, *x, m, name)?;
                let e = self.unary(UnaryOp::Exp, s);
                let z = self.reduce_axes(ReduceOp::Sum, e, &axes);
                let lz = self.unary(UnaryOp::Log, z);
                self.binary(BinaryOp::Add, m, lz, name)
            }
            (Builtin::Matmul, [Val(a), Val(b)]) => {
                let (sa, sb) = (self.shape_of(*a), self.shape_of(*b));
                let names = self.names();
                let batch = |s: &[Dim]| s[..s.len().saturating_sub(2)].to_vec();
                // For a matmul, the two sides in order.
                let sh = Shapes { names: &names };
                let leading = Diag::LeadingBroadcast {
                    lead: sh.show(&sa),
                    other: sh.show(&sb),
                    named: 0,
                    matmul: true,
                };
                let batches = self.leading_broadcast(&batch(&sa), &batch(&sb)).is_some();
                let result = match (Shapes { names: &names }).matmul(&sa, &sb) {
                    // Batch dims that would line up with `..`, or a matrix `[.., K]` times a batch
                    // of matrices (its `..` would be their rows): the leading dims' own message.
                    Ok(s) if self.leading_moved(&s) => Err(leading),
                    Err(Diag::BroadcastMismatch { .. }) if batches => Err(leading),
                    result => result,
                };
                let ty = match result {
                    Ok(s) => Ty::Tensor(s),
                    Err(diag) => {
                        // A side of too low a rank is the argument at fault.
                        match &diag {
                            Diag::MatmulRank { side: "left", .. } => self.errors.at(exprs[0], diag),
                            Diag::MatmulRank { .. } => self.errors.at(exprs[1], diag),
                            _ => self.errors.at(name, diag),
                        }
                        return None;
                    }
                };
                Some(self.push(Op::Matmul, vec![*a, *b], ty))
            }
            (Builtin::Transpose, [Val(x), Axis(a0), Axis(a1)]) => {
                let (first, second) = (*a0, *a1);
                let a0 = self.axis_of(*x, first, exprs[1]);
                let a1 = self.axis_of(*x, second, exprs[2]);
                let (a0, a1) = (a0?, a1?);
                let sx = self.shape_of(*x);
                let (e0, e1) = (exprs[1], exprs[2]);
                let ty = self.rule(&quote::quote!(#e0, #e1), |s| {
                    s.transpose(&sx, (first, a0 as usize), (second, a1 as usize))
                })?;
                Some(self.push(Op::Transpose(a0, a1), vec![*x], ty))
            }
            (Builtin::Reshape, [Val(x), Shape(to)]) => {
                let sx = self.shape_of(*x);
                if self.has_leading(&sx) && !self.has_leading(to) {
                    let sh = Shapes { names: &self.names() };
                    let diag = Diag::LeadingReshape {
                        from: sh.show(&sx),
                        to: sh.show(to),
                    };
                    self.errors.at(exprs[1], diag);
                    return None;
                }
                let ty = self.rule(exprs[1], |s| s.reshape(&sx, to))?;
                Some(self.push(Op::Reshape, vec![*x], ty))
            }
            (Builtin::Broadcast, [Val(x), Shape(to)]) => {
                let sx = self.shape_of(*x);
                let ty = self.rule(exprs[1], |s| s.broadcast_to(&sx, to))?;
                Some(self.push(Op::Broadcast, vec![*x], ty))
            }
            (Builtin::Narrow, [Val(x), Axis(a), Size(start), Size(len)]) => {
                let axis = self.axis_of(*x, *a, exprs[1])?;
                let sx = self.shape_of(*x);
                let (e_start, e_len) = (exprs[2], exprs[3]);
                let ty = self.rule(&quote::quote!(#e_start, #e_len), |s| {
                    s.narrow(&sx, axis as usize, *start, *len)
                })?;
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
                        // A mismatched part is at fault; a size that does not add up is the list's.
                        let blame = match strip(exprs[0]) {
                            Expr::Array(arr) if i > 0 => arr.elems.iter().nth(i).map(|e| e.to_token_stream()),
                            _ => None,
                        };
                        match blame {
                            Some(t) => self.errors.at(t, diag),
                            None => self.errors.at(exprs[0], diag),
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
