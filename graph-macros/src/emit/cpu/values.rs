//! The values a CPU kernel computes at a column: loads, ops and `cat`s, memoised per scope.

use graph_ir::{Access, BinaryCpuForm, CpuForm, DType, Op};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use super::{local, operator, size_ident, Col, Cx, Pick, Scope};
use crate::ir::NodeId;

impl Cx<'_> {
    /// The value of `id` at column `col`, as an identifier bound in `scope`.
    ///
    /// The values it depends on are bound first, deepest first, by a loop: binding one then finds
    /// its arguments bound, so the recursion stays shallow however long a chain of `let`s is.
    pub(super) fn value(&self, scope: &mut Scope, id: NodeId, col: &Col) -> TokenStream {
        let mut todo = vec![(id, col.clone(), false)];
        while let Some((n, c, ready)) = todo.pop() {
            if self.bound(scope, n, &c) {
                continue;
            }
            if ready {
                self.value_here(scope, n, &c);
                continue;
            }
            todo.push((n, c.clone(), true));
            // Inputs and the stash take no arguments: `value_here` loads them.
            if self.k.input_index(n).is_some() || (self.stash == Some(n) && c.key == "c") {
                continue;
            }
            let node = self.graph.node(n);
            match node.op {
                Op::Narrow(_, start) => {
                    let s = format_ident!("n{}", self.k.size_index(&start));
                    todo.push((node.args[0], shift(&c, &s, "+"), false));
                }
                // Each part is bound in a branch of its own (see `cat`).
                Op::Cat(_) => {}
                _ => todo.extend(node.args.iter().rev().map(|a| (*a, c.clone(), false))),
            }
        }
        self.value_here(scope, id, col)
    }

    /// Whether `id` at `col` needs no statement in `scope`: a per-row local, or already bound.
    fn bound(&self, scope: &Scope, id: NodeId, col: &Col) -> bool {
        self.k.is_row_local(id) || scope.memo.contains_key(&(id, col.key.clone()))
    }

    /// Binds `id` at `col` in `scope`, its arguments by [`Cx::value`].
    fn value_here(&self, scope: &mut Scope, id: NodeId, col: &Col) -> TokenStream {
        if self.k.is_row_local(id) {
            let r = local(id);
            return quote!(#r);
        }
        let key = (id, col.key.clone());
        if let Some(v) = scope.memo.get(&key) {
            return quote!(#v);
        }
        if self.stash == Some(id) && col.key == "c" {
            let v = format_ident!("e{}_{}", id.0, scope.memo.len());
            scope.stmts.push(quote!(let #v = stash[c];));
            scope.memo.insert(key, v.clone());
            return quote!(#v);
        }
        let expr = match self.k.input_index(id) {
            Some(i) => self.load(i, col),
            None => self.op_value(scope, id, col),
        };
        let v = format_ident!("e{}_{}", id.0, scope.memo.len());
        scope.stmts.push(quote!(let #v = #expr;));
        scope.memo.insert(key, v.clone());
        quote!(#v)
    }

    pub(super) fn load(&self, i: usize, col: &Col) -> TokenStream {
        let x = format_ident!("{}{}", self.inputs.get(), i);
        let s = format_ident!("s{}", i);
        let c = &col.tokens;
        let v = format_ident!("in{}", i);
        if self.k.inputs[i].1 == Access::Column {
            if let Some(segment) = self.segment.borrow_mut().as_mut() {
                let slices = &mut segment.slices;
                let k = match slices.iter().position(|(j, s)| *j == i && s.key == col.key) {
                    Some(k) => k,
                    None => {
                        slices.push((i, col.clone()));
                        slices.len() - 1
                    }
                };
                let xs = format_ident!("xs{}", k);
                return quote!(#xs[i].load());
            }
        }
        match self.k.inputs[i].1 {
            Access::Scalar | Access::RowScalar => quote!(#v),
            Access::Column if self.strided => quote!(#x[(#c) * #s].load()),
            Access::Column => quote!(#x[#c].load()),
        }
    }

    /// The expression computing `id` from its arguments at `col`.
    pub(super) fn op_value(&self, scope: &mut Scope, id: NodeId, col: &Col) -> TokenStream {
        let node = self.graph.node(id);
        let c = self.c();
        let arg = |k: usize, scope: &mut Scope| self.value(scope, node.args[k], col);
        match node.op {
            Op::Unary(u) => {
                let x = arg(0, scope);
                match u.info().cpu {
                    CpuForm::Neg => quote!(-#x),
                    CpuForm::Method(m) => {
                        let m = Ident::new(m, Span::call_site());
                        quote!(#x.#m())
                    }
                    CpuForm::Fma(m) => {
                        let m = format_ident!("{m}_with");
                        quote!(#x.#m::<FMA>())
                    }
                }
            }
            Op::Binary(b) => {
                let (x, y) = (arg(0, scope), arg(1, scope));
                match b.info().cpu {
                    BinaryCpuForm::Infix(op) => {
                        let op = operator(op);
                        quote!(#x #op #y)
                    }
                    BinaryCpuForm::Method(m) => {
                        let m = Ident::new(m, Span::call_site());
                        quote!(#x.#m(#y))
                    }
                    BinaryCpuForm::Compare(op) => {
                        let op = operator(op);
                        quote!(#c::flag(#x #op #y))
                    }
                }
            }
            Op::Where => {
                let (w, x, y) = (arg(0, scope), arg(1, scope), arg(2, scope));
                quote!(#c::select(#w, #x, #y))
            }
            Op::Cast(t) => {
                let x = arg(0, scope);
                let ty = match t {
                    DType::F16 => quote!(::graph_runtime::__private::cpu::half::f16),
                    DType::BF16 => quote!(::graph_runtime::__private::cpu::half::bf16),
                    DType::F32 => quote!(f32),
                    DType::F64 => quote!(f64),
                };
                quote!(#c::from_f64(::graph_runtime::__private::cpu::round_through::<#ty>(#x.to_f64())))
            }
            Op::Narrow(_, start) => {
                let n = format_ident!("n{}", self.k.size_index(&start));
                let shifted = shift(col, &n, "+");
                self.value(scope, node.args[0], &shifted)
            }
            Op::Cat(_) => self.cat(scope, &node.args, col),
            Op::Const(v) => {
                let v = literal(v.value());
                quote!(#c::from_f64(#v))
            }
            Op::Reduce(..) => unreachable!("reductions are row scalars"),
            op => unreachable!("{op:?} is not fused"),
        }
    }

    /// `cat(parts)` at `col`: the part whose range holds the column, at the column less the
    /// lengths before it.
    pub(super) fn cat(&self, scope: &mut Scope, parts: &[NodeId], col: &Col) -> TokenStream {
        let (first, rest) = parts.split_first().expect("cat has parts");
        if rest.is_empty() {
            return self.value(scope, *first, col);
        }
        let n = size_ident(self.k, self.graph, *first);
        let shifted = shift(col, &n, "-");
        let key = format!("{}<{}", col.key, n);
        let decided = self.segment.borrow().as_ref().map(|s| {
            s.decided
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, first)| *first)
                .expect("a segment decides every pick")
        });
        match decided {
            Some(true) => return self.value(scope, *first, col),
            Some(false) => return self.cat(scope, rest, &shifted),
            None => {}
        }
        let mut picks = self.picks.borrow_mut();
        if !picks.iter().any(|p| p.key == key) {
            picks.push(Pick {
                key,
                size: n.clone(),
                plus: col.plus.clone(),
                minus: col.minus.clone(),
            });
        }
        drop(picks);
        // Each branch binds its values in a scope of its own: they are computed only there.
        let mut inner = Scope {
            stmts: Vec::new(),
            memo: scope.memo.clone(),
        };
        let a = self.value(&mut inner, *first, col);
        let a_stmts = inner.stmts;
        let mut inner = Scope {
            stmts: Vec::new(),
            memo: scope.memo.clone(),
        };
        let b = self.cat(&mut inner, rest, &shifted);
        let b_stmts = inner.stmts;
        let c = &col.tokens;
        quote!(if #c < #n { #(#a_stmts)* #a } else { #(#b_stmts)* #b })
    }
}

fn shift(col: &Col, n: &Ident, sign: &str) -> Col {
    let c = &col.tokens;
    let (mut plus, mut minus) = (col.plus.clone(), col.minus.clone());
    let tokens = if sign == "+" {
        plus.push(n.clone());
        quote!((#c + #n))
    } else {
        minus.push(n.clone());
        quote!((#c - #n))
    };
    Col {
        tokens,
        key: format!("({}{sign}{n})", col.key),
        plus,
        minus,
    }
}

/// A float literal as Rust tokens: `proc_macro2` has no token for infinities and NaN, which are
/// `f64`'s constants instead.
fn literal(v: f64) -> TokenStream {
    if v.is_nan() {
        quote!(f64::NAN)
    } else if v == f64::INFINITY {
        quote!(f64::INFINITY)
    } else if v == f64::NEG_INFINITY {
        quote!(f64::NEG_INFINITY)
    } else {
        quote!(#v)
    }
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn literals_of_every_class_are_tokens() {
        assert_eq!(literal(f64::NEG_INFINITY).to_string(), "f64 :: NEG_INFINITY");
        assert_eq!(literal(f64::INFINITY).to_string(), "f64 :: INFINITY");
        assert_eq!(literal(f64::NAN).to_string(), "f64 :: NAN");
        assert_eq!(literal(-0.5).to_string(), "- 0.5f64");
    }
}
