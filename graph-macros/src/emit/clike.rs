//! Kernel bodies in the C family: the statements that compute a kernel's nodes at one column,
//! shared by the CUDA and Metal dialects.
//!
//! A body is dialect-neutral text over a small API that each dialect's runtime prelude defines
//! (`C` the compute type, `lg_exp`, `lg_ld`, `lg_round_bf16`, ...): the two dialects differ in
//! how a kernel walks its rows and reduces across threads, not in how it computes a value, so
//! the math is written once. Values are `const C` locals; a node is computed once per column and
//! scope (memoised), and per-row scalars (reductions and what follows them) are the locals
//! `r{node}` that the kernel skeleton computes between column loops.

use std::collections::HashMap;
use std::fmt::Write as _;

use graph_ir::{Access, BinaryOp, DType, Op, UnaryOp};

use crate::ir::{Graph, NodeId};
use crate::kernel::KernelIr;

/// How a body reads a column-indexed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// The skeleton has the current column's value of input `k` in the local `v{k}`: every
    /// column input is read at the current column (kernels without `narrow`/`cat`).
    Values,
    /// The body loads input `k` at any column from its row pointer `x{k}` with column stride
    /// `cs{k}` (kernels that remap columns).
    Loads,
}

/// Statements of one block, and the values already bound in it.
#[derive(Clone, Default)]
pub struct Scope {
    pub stmts: Vec<String>,
    memo: HashMap<(NodeId, String), String>,
}

/// Writes bodies for one kernel.
pub struct Body<'a> {
    pub graph: &'a Graph,
    pub k: &'a KernelIr,
    pub columns: Columns,
}

/// The local holding per-row scalar `id`.
pub fn row_local(id: NodeId) -> String {
    format!("r{}", id.0)
}

/// A float literal as C text: the shortest decimal that reads back as the same `f64`, or the
/// prelude's constant for infinities and NaN.
pub fn literal(v: f64) -> String {
    if v.is_nan() {
        "(C)LG_NAN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "(C)LG_INF" } else { "(C)(-LG_INF)" }.to_string()
    } else {
        format!("((C){v:?})")
    }
}

impl Body<'_> {
    /// Whether `id` is a per-row scalar the skeleton computes.
    fn is_row_local(&self, id: NodeId) -> bool {
        self.k.row_scalars.contains(&id) && self.k.nodes.contains(&id)
    }

    /// The value of `id` at column `col`, as an expression valid after `scope`'s statements.
    pub fn value(&self, scope: &mut Scope, id: NodeId, col: &str) -> String {
        if self.is_row_local(id) {
            return row_local(id);
        }
        if let Some(i) = self.k.input_index(id) {
            match (self.k.inputs[i].1, self.columns) {
                (Access::Scalar | Access::RowScalar, _) => return format!("in{i}"),
                (Access::Column, Columns::Values) => return format!("v{i}"),
                (Access::Column, Columns::Loads) => {}
            }
        }
        let key = (id, col.to_string());
        if let Some(v) = scope.memo.get(&key) {
            return v.clone();
        }
        let name = format!("e{}_{}", id.0, scope.memo.len());
        let expr = match self.k.input_index(id) {
            Some(i) => format!("lg_ld(x{i}[({col}) * cs{i}])"),
            None => match self.op_value(scope, id, col) {
                Expr::Value(e) => e,
                Expr::Bound(v) => {
                    scope.memo.insert(key, v.clone());
                    return v;
                }
            },
        };
        scope.stmts.push(format!("const C {name} = {expr};"));
        scope.memo.insert(key, name.clone());
        name
    }

    /// The value of node `id` computed from its arguments at `col`, even where `id` is a per-row
    /// scalar (whose local this computes).
    pub fn value_of_op(&self, scope: &mut Scope, id: NodeId, col: &str) -> String {
        match self.op_value(scope, id, col) {
            Expr::Value(e) | Expr::Bound(e) => e,
        }
    }

    fn op_value(&self, scope: &mut Scope, id: NodeId, col: &str) -> Expr {
        let node = self.graph.node(id);
        let arg = |k: usize, scope: &mut Scope| self.value(scope, node.args[k], col);
        Expr::Value(match node.op {
            Op::Unary(UnaryOp::Neg) => format!("-{}", arg(0, scope)),
            Op::Unary(UnaryOp::Sqr) => {
                let x = arg(0, scope);
                format!("{x} * {x}")
            }
            Op::Unary(u) => format!("lg_{}({})", u.name(), arg(0, scope)),
            Op::Binary(b) => {
                let (x, y) = (arg(0, scope), arg(1, scope));
                match b {
                    BinaryOp::Add => format!("{x} + {y}"),
                    BinaryOp::Sub => format!("{x} - {y}"),
                    BinaryOp::Mul => format!("{x} * {y}"),
                    BinaryOp::Div => format!("{x} / {y}"),
                    BinaryOp::Pow | BinaryOp::Maximum | BinaryOp::Minimum => {
                        format!("lg_{}({x}, {y})", b.name())
                    }
                    BinaryOp::Eq => format!("{x} == {y} ? (C)1 : (C)0"),
                    BinaryOp::Ne => format!("{x} != {y} ? (C)1 : (C)0"),
                    BinaryOp::Lt => format!("{x} < {y} ? (C)1 : (C)0"),
                    BinaryOp::Le => format!("{x} <= {y} ? (C)1 : (C)0"),
                    BinaryOp::Gt => format!("{x} > {y} ? (C)1 : (C)0"),
                    BinaryOp::Ge => format!("{x} >= {y} ? (C)1 : (C)0"),
                }
            }
            Op::Where => {
                let (w, x, y) = (arg(0, scope), arg(1, scope), arg(2, scope));
                format!("{w} != (C)0 ? {x} : {y}")
            }
            Op::Cast(t) => {
                let f = match t {
                    DType::F16 => "lg_round_f16",
                    DType::BF16 => "lg_round_bf16",
                    DType::F32 => "lg_round_f32",
                    DType::F64 => "lg_round_f64",
                };
                format!("{f}({})", arg(0, scope))
            }
            Op::Const(v) => literal(v.value()),
            Op::Narrow(_, start) => {
                let n = format!("n{}", self.k.size_index(&start));
                return Expr::Bound(self.value(scope, node.args[0], &format!("{col} + {n}")));
            }
            Op::Cat(_) => return Expr::Bound(self.cat(scope, id, &node.args, col)),
            Op::Reduce(..) => unreachable!("reductions are per-row scalars"),
            op => unreachable!("{op:?} is not fused"),
        })
    }

    /// `cat(parts)` at `col`: the part whose range holds the column, read at the column less the
    /// lengths of the parts before it.
    fn cat(&self, scope: &mut Scope, id: NodeId, parts: &[NodeId], col: &str) -> String {
        let name = format!("e{}_{}", id.0, scope.memo.len());
        scope.stmts.push(format!("C {name};"));
        let mut text = String::new();
        let mut offset = String::new();
        for (i, part) in parts.iter().enumerate() {
            let at = if offset.is_empty() {
                col.to_string()
            } else {
                format!("{col} - ({offset})")
            };
            let mut inner = Scope {
                stmts: Vec::new(),
                memo: scope.memo.clone(),
            };
            let v = self.value(&mut inner, *part, &at);
            let len = format!("n{}", self.k.size_index(&self.last_dim(*part)));
            let guard = if offset.is_empty() {
                len.clone()
            } else {
                format!("{offset} + {len}")
            };
            let open = match (i, i + 1 == parts.len()) {
                (0, _) => format!("if ({col} < {guard}) {{"),
                (_, true) => " else {".to_string(),
                _ => format!(" else if ({col} < {guard}) {{"),
            };
            text.push_str(&open);
            for s in &inner.stmts {
                let _ = write!(text, " {s}");
            }
            let _ = write!(text, " {name} = {v}; }}");
            offset = guard;
        }
        scope.stmts.push(text);
        name
    }

    fn last_dim(&self, id: NodeId) -> graph_ir::Dim {
        self.graph
            .node(id)
            .ty
            .shape()
            .and_then(|s| s.last().copied())
            .unwrap_or(graph_ir::Dim::lit(1))
    }
}

/// What an op's text is: an expression to bind, or a value already bound (narrow, cat).
enum Expr {
    Value(String),
    Bound(String),
}
