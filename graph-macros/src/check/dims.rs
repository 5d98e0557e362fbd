//! Size expressions in types and size arguments: `64`, `D`, `B * S`, `D / 2`, `2 * H`.

use std::collections::BTreeSet;

use graph_ir::Dim;
use proc_macro2::Span;
use syn::{BinOp, Expr, Ident, Lit};

use super::shape::dim_error;
use crate::diag::{nearest, Diag};
use crate::limits::MAX_SYMBOLS;

/// Shape symbols of one function, in order of first appearance in the signature.
#[derive(Default)]
pub struct Symbols {
    pub names: Vec<String>,
    /// The first symbol past [`MAX_SYMBOLS`], where the signature names it; it and every later
    /// new symbol are left out (their dims read as `1`, the function having an error).
    pub overflow: Option<(Span, String)>,
    dropped: BTreeSet<String>,
    /// The symbol standing for the leading dims `..`, once a parameter declares them.
    pub leading: Option<u16>,
}

/// The name of the leading-dims symbol in the symbol table: not an identifier, so no user symbol
/// can take it, and shapes holding it print as `[.., D]`.
pub const LEADING: &str = "..";

/// Whether a dim is written `..`: any number of leading dims.
pub fn is_leading(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Range(r) if r.start.is_none() && r.end.is_none() && matches!(r.limits, syn::RangeLimits::HalfOpen(_))
    )
}

impl Symbols {
    pub fn get(&self, name: &str) -> Option<u16> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(u16::try_from(i).expect("at most MAX_SYMBOLS symbols, below u16::MAX"))
    }

    fn intern(&mut self, id: &Ident) {
        let name = id.to_string();
        if self.get(&name).is_some() || self.dropped.contains(&name) {
            return;
        }
        if self.names.len() == MAX_SYMBOLS {
            self.overflow.get_or_insert_with(|| (id.span(), name.clone()));
            self.dropped.insert(name);
            return;
        }
        self.names.push(name);
    }

    /// Adds the leading-dims symbol `..`, where a parameter first declares it.
    pub fn intern_leading(&mut self, e: &Expr) {
        if self.leading.is_some() {
            return;
        }
        if self.names.len() == MAX_SYMBOLS {
            self.overflow
                .get_or_insert_with(|| (syn::spanned::Spanned::span(e), LEADING.to_string()));
            return;
        }
        self.leading = Some(u16::try_from(self.names.len()).expect("at most MAX_SYMBOLS symbols"));
        self.names.push(LEADING.to_string());
    }

    /// Adds every symbol a parameter's dim mentions.
    pub fn collect(&mut self, e: &Expr) {
        match e {
            Expr::Path(p) => {
                if let Some(id) = p.path.get_ident() {
                    self.intern(id);
                }
            }
            Expr::Binary(b) => {
                self.collect(&b.left);
                self.collect(&b.right);
            }
            Expr::Paren(p) => self.collect(&p.expr),
            Expr::Group(g) => self.collect(&g.expr),
            _ => {}
        }
    }

    /// Evaluates a size expression; the error names the offending sub-expression.
    pub fn dim<'e>(&self, e: &'e Expr) -> Result<Dim, (&'e Expr, Diag)> {
        match e {
            Expr::Lit(l) => match &l.lit {
                // The digits of an integer literal are digits: it can only be too large.
                Lit::Int(i) => i
                    .base10_parse::<u64>()
                    .map(Dim::lit)
                    .map_err(|_| (e, Diag::SizeOverflow)),
                _ => Err((e, Diag::ExpectedSize)),
            },
            Expr::Path(p) => {
                let Some(id) = p.path.get_ident() else {
                    return Err((e, Diag::ExpectedSize));
                };
                let name = id.to_string();
                if self.dropped.contains(&name) {
                    return Ok(Dim::lit(1));
                }
                match self.get(&name) {
                    Some(s) => Ok(Dim::sym(s)),
                    None => {
                        let known: Vec<String> = (self.names.iter())
                            .filter(|n| *n != LEADING)
                            .map(|n| format!("`{n}`"))
                            .collect();
                        let known = match known.is_empty() {
                            true => "none".to_string(),
                            false => known.join(", "),
                        };
                        Err((e, Diag::UnknownSymbol { name, known }))
                    }
                }
            }
            Expr::Binary(b) => {
                let left = self.dim(&b.left)?;
                match b.op {
                    BinOp::Mul(_) => left.times(self.dim(&b.right)?).map_err(|err| (e, dim_error(err))),
                    BinOp::Div(_) => match self.dim(&b.right)?.as_lit() {
                        Some(0) => Err((&*b.right, Diag::DivideByZero)),
                        Some(d) => left.div_lit(d).map_err(|err| (e, dim_error(err))),
                        None => Err((&*b.right, Diag::ExpectedSize)),
                    },
                    _ => Err((e, Diag::ExpectedSize)),
                }
            }
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => Err((e, Diag::NegativeSize)),
            Expr::Paren(p) => self.dim(&p.expr),
            Expr::Group(g) => self.dim(&g.expr),
            // Callers that accept `..` (first in a type or a shape) handle it before.
            _ if is_leading(e) => Err((e, Diag::LeadingNotFirst)),
            _ => Err((e, Diag::ExpectedSize)),
        }
    }

    /// "Did you mean" among symbols and other known names.
    pub fn suggest<'a>(&'a self, name: &str, others: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let symbols = self.names.iter().map(String::as_str).filter(|n| *n != LEADING);
        nearest(name, symbols.chain(others))
    }
}
