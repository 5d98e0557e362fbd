//! Checks one function and lowers it to the IR. All user errors of the macro come from here.
//!
//! The checks, each with an example of what it rejects:
//! - signature: duplicate parameters (`x: .., x: ..`); symbols that only appear inside expressions
//!   (`Tensor[D / 2]` with no plain `D` anywhere); return-type symbols no input defines.
//! - names: unknown variables (`y` with no `let y`), unknown ops (`sofmax`, with a suggestion),
//!   unused parameters (an error, since stable proc macros cannot warn: rename to `_x` to keep).
//! - arity and argument kinds: `narrow(x, -1, 0)`; a tensor where a scalar belongs (`clamp(x, y, 1.0)`)
//!   and the reverse (`sum(eps, -1)`); axes that are not integer literals.
//! - shapes (rules in `shape.rs`): broadcasting, matmul inner dims, axes in range, reshape counts,
//!   narrow ranges, cat, and the declared return count and shapes.
//! - axes (`axes.rs`): a reduction's list of axes with one twice (`sum(x, [-1, 1])` of a rank-2
//!   `x`) or none (`sum(x, [])`).
//! - leading dims `..` (`leading.rs`, `axes.rs`): `..` other than first (`Tensor[B, .., D]`), in a
//!   return type or shape with no parameter declaring it; an axis of a `..` tensor that is not a
//!   negative one among the dims after `..` (`sum(x, 0)`, `sum(x, -2)` of `x: Tensor[.., D]`); a
//!   value whose dims would line up with `..` (`[.., D] + [S, D]`, `[.., K] x [B, K, N]`); a
//!   reshape dropping `..` (`reshape(x, [N, D])` of `x: Tensor[.., D]`).
//!
//! Errors are collected; an expression with an error yields no node, and its users stay silent
//! instead of cascading.

mod args;
mod axes;
pub(crate) mod builtins;
mod dims;
mod leading;
mod lower;
pub mod shape;

use std::collections::{BTreeMap, HashMap, HashSet};

use graph_ir::{Dim, Op};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Expr, Pat, Stmt};

use crate::diag::{Diag, Errors};
use crate::ir::{Graph, Node, NodeId, Param, ParamKind, Ty};
use crate::limits::{MAX_PARAMS, MAX_RANK, MAX_SYMBOLS};
use crate::syntax::{Function, ParamType, TensorType};
use dims::Symbols;

/// The built-in infinity: `inf` in an expression is the literal, `-inf` its negation. Declaring a
/// parameter, a `let` or a shape symbol of that name is an error (rather than a shadowing rule),
/// so `where_(mask, x, -inf)` always means infinity.
pub(crate) const INF: &str = "inf";

/// Reports each function named like an item generated for another function of the block: its
/// asynchronous twin `f_async` and, for a function with a tensor parameter (with the `backward`
/// feature), its backward `f_backward` (which rustc would otherwise reject as defined twice).
pub fn check_names(functions: &[Function], errors: &mut Errors) {
    let names: BTreeMap<String, &Function> = functions
        .iter()
        .map(|f| (f.name.unraw().to_string(), f))
        .collect();
    for f in functions {
        let name = f.name.unraw().to_string();
        for (suffix, what) in [
            ("_async", "asynchronous twin"),
            ("_backward", "backward function"),
        ] {
            let Some(owner) = name.strip_suffix(suffix).and_then(|o| names.get(o)) else {
                continue;
            };
            let tensors = owner.params.iter().any(|p| matches!(p.ty, ParamType::Tensor(_)));
            if suffix == "_async" || (tensors && cfg!(feature = "backward")) {
                let diag = Diag::GeneratedName {
                    name: name.clone(),
                    owner: owner.name.unraw().to_string(),
                    what,
                };
                errors.at(&f.name, diag);
            }
        }
    }
}

/// Checks `f`; on success the graph holds every node the body computes (unoptimised).
pub fn check_function(f: &Function, errors: &mut Errors) -> Graph {
    let mut cx = Checker {
        errors,
        symbols: Symbols::default(),
        graph: Graph::default(),
        scope: HashMap::new(),
        poisoned: HashSet::new(),
        param_nodes: Vec::new(),
        used: Vec::new(),
    };
    cx.signature(f);
    cx.body(f);
    cx.graph.symbols = cx.symbols.names.clone();
    cx.graph.leading = cx.symbols.leading;
    cx.graph
}

struct Checker<'a> {
    errors: &'a mut Errors,
    symbols: Symbols,
    graph: Graph,
    scope: HashMap<String, NodeId>,
    /// Names whose `let` had an error: uses stay silent instead of cascading.
    poisoned: HashSet<String>,
    param_nodes: Vec<NodeId>,
    used: Vec<bool>,
}

/// A checked value: a node, or `None` when an error was already reported for it.
type Val = Option<NodeId>;

impl Checker<'_> {
    fn signature(&mut self, f: &Function) {
        for p in &f.params {
            if let ParamType::Tensor(t) = &p.ty {
                for (i, d) in t.dims.iter().enumerate() {
                    match i == 0 && dims::is_leading(d) {
                        true => self.symbols.intern_leading(d),
                        false => self.symbols.collect(d),
                    }
                }
            }
        }
        if let Some((span, name)) = self.symbols.overflow.clone() {
            self.errors.at_span(
                span,
                Diag::TooManySymbols {
                    name,
                    limit: MAX_SYMBOLS,
                },
            );
        }
        if let Some(p) = f.params.get(MAX_PARAMS) {
            let diag = Diag::TooManyParams {
                count: f.params.len(),
                limit: MAX_PARAMS,
            };
            self.errors.at(&p.name, diag);
        }
        let mut plain = vec![false; self.symbols.names.len()];
        let mut seen = BTreeMap::new();
        for (i, p) in f.params.iter().enumerate() {
            // Past the limit (reported above), parameters are known names with no value.
            if i >= MAX_PARAMS {
                self.poisoned.insert(p.name.to_string());
                self.used.push(true);
                continue;
            }
            let index = u16::try_from(i).expect("MAX_PARAMS fits in u16");
            let name = p.name.to_string();
            if self.reserved(&p.name, "parameter") {
                // Reported: it counts as used, and `inf` stays silent from here on.
                self.poisoned.insert(name.clone());
                self.poisoned.insert(INF.to_string());
            }
            if let Some(first) = seen.insert(name.clone(), i) {
                self.errors
                    .at(&p.name, Diag::DuplicateParam { name: name.clone() });
                // The later one shadows it: one mistake, so no "unused" error for the first.
                self.used[first] = true;
            }
            let (kind, op, ty) = match &p.ty {
                ParamType::Tensor(t) => {
                    let mut shape = self.tensor_type(t);
                    for d in &shape {
                        if let Some(s) = d.as_sym() {
                            plain[s as usize] = true;
                        }
                    }
                    // A misplaced `..` (reported) leaves no shape to check the uses against.
                    if shape.len() > MAX_RANK || t.dims.iter().skip(1).any(dims::is_leading) {
                        // Reported: the parameter keeps a valid shape, and its uses stay silent.
                        shape.truncate(MAX_RANK);
                        self.poisoned.insert(name.clone());
                    }
                    (
                        ParamKind::Tensor(shape.clone()),
                        Op::Input(index),
                        Ty::Tensor(shape),
                    )
                }
                ParamType::Scalar(s) => (ParamKind::Scalar(s.kind), Op::Scalar(index), Ty::Scalar),
            };
            self.graph.params.push(Param {
                name: name.clone(),
                kind,
            });
            let node = self.graph.push(Node { op, args: vec![], ty });
            self.param_nodes.push(node);
            self.used.push(false);
            if self.poisoned.contains(&name) {
                self.used[i] = true;
            } else {
                self.scope.insert(name, node);
            }
        }
        let inf = f.params.iter().find_map(|p| match &p.ty {
            ParamType::Tensor(t) => t.dims.iter().find_map(|d| mention(d, INF)),
            ParamType::Scalar(_) => None,
        });
        if let Some(d) = inf {
            let diag = Diag::ReservedName {
                name: INF,
                what: "shape symbol",
            };
            self.errors.at(d, diag);
        }
        for (s, is_plain) in plain.iter().enumerate() {
            if !is_plain {
                let name = self.symbols.names[s].clone();
                let at = f.params.iter().find_map(|p| match &p.ty {
                    ParamType::Tensor(t) => t.dims.iter().find_map(|d| mention(d, &name)),
                    ParamType::Scalar(_) => None,
                });
                match at {
                    Some(d) => self.errors.at(d, Diag::UnboundSymbol { name }),
                    None => self.errors.at(&f.name, Diag::UnboundSymbol { name }),
                }
            }
        }
    }

    /// Reports `id` if it is the name of a built-in constant, which cannot name a `what`.
    fn reserved(&mut self, id: &syn::Ident, what: &'static str) -> bool {
        let reserved = id.unraw() == INF;
        if reserved {
            self.errors.at(id, Diag::ReservedName { name: INF, what });
        }
        reserved
    }

    /// Reports a declared rank above [`MAX_RANK`], at the first dim past it.
    fn check_rank(&mut self, t: &TensorType) -> bool {
        match t.dims.get(MAX_RANK) {
            Some(d) => {
                let diag = Diag::RankTooLarge {
                    rank: t.dims.len(),
                    limit: MAX_RANK,
                };
                self.errors.at(d, diag);
                false
            }
            None => true,
        }
    }

    /// The shape a `Tensor[...]` declares; errors are reported and the dim replaced by `1`.
    fn tensor_type(&mut self, t: &TensorType) -> Vec<Dim> {
        self.check_rank(t);
        t.dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                self.shape_dim(d, i == 0).unwrap_or_else(|(at, diag)| {
                    self.errors.at(at, diag);
                    Dim::lit(1)
                })
            })
            .collect()
    }

    fn body(&mut self, f: &Function) {
        let stmts = &f.body.stmts;
        let mut tail = None;
        for (i, stmt) in stmts.iter().enumerate() {
            if let Some(attr) = first_attribute(stmt.to_token_stream()) {
                self.errors.at(attr, Diag::AttributeInBody);
            }
            match stmt {
                Stmt::Local(local) => self.local(local),
                Stmt::Expr(e, None) if i + 1 == stmts.len() => tail = Some(e),
                Stmt::Expr(e, Some(semi)) if i + 1 == stmts.len() => {
                    // The value the user meant to return: check it, then blame the semicolon.
                    self.expr(e);
                    self.errors.at(semi, Diag::TrailingSemicolon);
                    return;
                }
                other => {
                    self.mark_used(other);
                    self.errors.at(other, Diag::UnsupportedStmt);
                }
            }
        }
        let Some(tail) = tail else {
            self.errors
                .at_span(f.body.brace_token.span.close(), Diag::MissingTail);
            return;
        };
        let (items, values): (Vec<&Expr>, Vec<Val>) = match strip(tail) {
            Expr::Tuple(t) => t.elems.iter().map(|e| (e, self.expr(e))).unzip(),
            e => (vec![e], vec![self.expr(e)]),
        };
        self.returns(f, &items, &values);
        for (i, p) in f.params.iter().enumerate() {
            let name = p.name.to_string();
            if !self.used[i] && !name.starts_with('_') {
                self.errors.at(&p.name, Diag::UnusedParam { name });
            }
        }
    }

    /// `let name = expr;`. A binding with an error poisons its names, so their uses stay silent.
    fn local(&mut self, local: &syn::Local) {
        let value = match &local.init {
            Some(init) if init.diverge.is_none() => self.expr(&init.expr),
            Some(init) => {
                self.mark_used(&init.expr);
                None
            }
            None => None,
        };
        let name = match &local.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                if let Some(mutability) = &pat.mutability {
                    self.errors.at(mutability, Diag::MutBinding);
                    self.poison(&local.pat);
                    return;
                }
                if self.reserved(&pat.ident, "`let` binding") {
                    self.poisoned.insert(INF.to_string());
                    return;
                }
                pat.ident.to_string()
            }
            other => {
                self.errors.at(other, Diag::UnsupportedStmt);
                self.poison(other);
                return;
            }
        };
        let Some(init) = &local.init else {
            self.errors.at(local, Diag::UnsupportedStmt);
            self.poison(&local.pat);
            return;
        };
        if let Some((_, diverge)) = &init.diverge {
            self.errors.at(diverge, Diag::UnsupportedStmt);
            self.poison(&local.pat);
            return;
        }
        match value {
            Some(v) => {
                self.poisoned.remove(&name);
                self.scope.insert(name, v);
            }
            None => {
                self.scope.remove(&name);
                self.poisoned.insert(name);
            }
        }
    }

    /// Every name a pattern binds becomes poisoned: its uses stay silent.
    fn poison(&mut self, pat: &Pat) {
        for tt in pat.to_token_stream() {
            if let proc_macro2::TokenTree::Ident(id) = tt {
                let name = id.to_string();
                if name != "mut" && name != "ref" {
                    self.scope.remove(&name);
                    self.poisoned.insert(name);
                }
            }
        }
    }

    fn returns(&mut self, f: &Function, items: &[&Expr], values: &[Val]) {
        let declared = f.ret.items();
        if declared.len() != items.len() {
            let diag = Diag::ReturnCount {
                declared: declared.len(),
                found: items.len(),
            };
            match items.len() {
                1 => self.errors.at(items[0], diag),
                _ => self.errors.at(f.body.stmts.last(), diag),
            }
            return;
        }
        for ((t, e), v) in declared.iter().zip(items).zip(values) {
            let shape = self.tensor_type_in_return(t);
            let (Some(v), Some(shape)) = (*v, shape) else {
                continue;
            };
            let names = self.names();
            let sh = shape::Shapes { names: &names };
            let diag = match &self.graph.node(v).ty {
                Ty::Scalar => Diag::ReturnScalar {
                    what: format!("the scalar `{}`", e.to_token_stream()),
                    declared: sh.show(&shape),
                },
                Ty::Tensor(found) if *found != shape => {
                    let squeeze = |s: &[Dim]| s.iter().filter(|d| !d.is_one()).copied().collect::<Vec<_>>();
                    Diag::ReturnShape {
                        declared: sh.show(&shape),
                        found: sh.show(found),
                        kept_axis: squeeze(found) == squeeze(&shape),
                    }
                }
                Ty::Tensor(_) => {
                    self.graph.outputs.push(v);
                    continue;
                }
            };
            self.errors.at(e, diag);
        }
    }

    /// A return type's shape; `None` (reported) when it names unknown symbols.
    fn tensor_type_in_return(&mut self, t: &TensorType) -> Option<Vec<Dim>> {
        let mut ok = self.check_rank(t);
        let shape = t
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                self.shape_dim(d, i == 0).unwrap_or_else(|(at, diag)| {
                    self.errors.at(at, diag);
                    ok = false;
                    Dim::lit(1)
                })
            })
            .collect();
        ok.then_some(shape)
    }

    fn names(&self) -> Vec<&str> {
        self.symbols.names.iter().map(String::as_str).collect()
    }

    fn ty(&self, v: NodeId) -> &Ty {
        &self.graph.node(v).ty
    }

    fn push(&mut self, op: Op, args: Vec<NodeId>, ty: Ty) -> NodeId {
        self.graph.push(Node { op, args, ty })
    }
}

/// Where a dim expression mentions the symbol `name`.
fn mention<'e>(e: &'e Expr, name: &str) -> Option<&'e Expr> {
    match e {
        Expr::Path(p) => p.path.is_ident(name).then_some(e),
        Expr::Binary(b) => mention(&b.left, name).or_else(|| mention(&b.right, name)),
        Expr::Paren(p) => mention(&p.expr, name),
        Expr::Group(g) => mention(&g.expr, name),
        _ => None,
    }
}

/// The first attribute (`#` and its brackets) in a statement's tokens, at any depth. The language
/// has no other use for `#`.
fn first_attribute(tokens: proc_macro2::TokenStream) -> Option<proc_macro2::TokenStream> {
    use proc_macro2::TokenTree;
    let mut todo = vec![tokens];
    while let Some(stream) = todo.pop() {
        let tts: Vec<TokenTree> = stream.into_iter().collect();
        for (i, tt) in tts.iter().enumerate() {
            match tt {
                TokenTree::Punct(p) if p.as_char() == '#' => {
                    return Some(tts[i..(i + 2).min(tts.len())].iter().cloned().collect());
                }
                TokenTree::Group(g) => todo.push(g.stream()),
                _ => {}
            }
        }
    }
    None
}

/// Looks through parentheses and invisible groups.
fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        e => e,
    }
}
