//! Size expressions in types and size arguments: `64`, `D`, `B * S`, `D / 2`, `2 * H`.

use graph_ir::Dim;
use syn::{BinOp, Expr, Lit};

use super::shape::too_complex;
use crate::diag::{nearest, Diag};

/// Shape symbols of one function, in order of first appearance in the signature.
#[derive(Default)]
pub struct Symbols {
    pub names: Vec<String>,
}

impl Symbols {
    pub fn get(&self, name: &str) -> Option<u16> {
        self.names.iter().position(|n| n == name).map(|i| i as u16)
    }

    fn intern(&mut self, name: &str) -> u16 {
        match self.get(name) {
            Some(id) => id,
            None => {
                self.names.push(name.to_string());
                self.names.len() as u16 - 1
            }
        }
    }

    /// Adds every symbol a parameter's dim mentions.
    pub fn collect(&mut self, e: &Expr) {
        match e {
            Expr::Path(p) => {
                if let Some(id) = p.path.get_ident() {
                    self.intern(&id.to_string());
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
                Lit::Int(i) => i
                    .base10_parse::<u64>()
                    .map(Dim::lit)
                    .map_err(|_| (e, Diag::ExpectedSize)),
                _ => Err((e, Diag::ExpectedSize)),
            },
            Expr::Path(p) => {
                let Some(id) = p.path.get_ident() else {
                    return Err((e, Diag::ExpectedSize));
                };
                let name = id.to_string();
                match self.get(&name) {
                    Some(s) => Ok(Dim::sym(s)),
                    None => {
                        let known: Vec<String> = self.names.iter().map(|n| format!("`{n}`")).collect();
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
                    BinOp::Mul(_) => left
                        .times(self.dim(&b.right)?)
                        .map_err(|err| (e, too_complex(err))),
                    BinOp::Div(_) => match self.dim(&b.right)?.as_lit() {
                        Some(d) => left.div_lit(d).map_err(|err| (e, too_complex(err))),
                        None => Err((&*b.right, Diag::ExpectedSize)),
                    },
                    _ => Err((e, Diag::ExpectedSize)),
                }
            }
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => Err((e, Diag::NegativeSize)),
            Expr::Paren(p) => self.dim(&p.expr),
            Expr::Group(g) => self.dim(&g.expr),
            _ => Err((e, Diag::ExpectedSize)),
        }
    }

    /// "Did you mean" among symbols and other known names.
    pub fn suggest<'a>(&'a self, name: &str, others: impl IntoIterator<Item = &'a str>) -> Option<String> {
        nearest(name, self.names.iter().map(String::as_str).chain(others))
    }
}
