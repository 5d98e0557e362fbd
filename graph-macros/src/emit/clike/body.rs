//! Kernel bodies in the C family: the statements that compute a kernel's nodes at one column,
//! shared by the CUDA and Metal dialects.
//!
//! A body is dialect-neutral text over a small API that each dialect's runtime prelude defines
//! (`C` the compute type, `lg_exp`, `lg_ld`, `lg_round_bf16`, ...): the two dialects differ in
//! how a kernel walks its rows and reduces across threads, not in how it computes a value, so
//! the math is written once. Values are `const C` locals; a node is computed once per column and
//! scope (memoised), and per-row scalars (reductions and what follows them) are the locals
//! `r{node}` that the kernel skeleton computes between column loops.
//!
//! Kernels that remap columns compute a chunk of `LG_VEC` columns at a time: a value that varies
//! along the row is an array `C e[LG_VEC]` (loads read it as one vector), and the branches of a
//! `cat` are taken once per chunk. The runtime picks `LG_VEC > 1` there only when every narrow
//! start and cat seam is a multiple of it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use graph_ir::{Access, BinaryCForm, BinaryOp, CForm, DType, Op};

use crate::ir::{Graph, NodeId};
use crate::kernel::Kernel;

/// How a body reads a column-indexed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// The skeleton has the current column's value of input `k` in the local `v{k}`: every
    /// column input is read at the current column (kernels without `narrow`/`cat`).
    Values,
    /// The body loads input `k` at any column from its row pointer `x{k}` with column stride
    /// `cs{k}` (kernels that remap columns), a chunk of `LG_VEC` columns at a time.
    Loads,
}

/// Statements of one block, and the values already bound in it.
#[derive(Clone, Default)]
pub struct Scope {
    pub stmts: Vec<String>,
    memo: HashMap<(NodeId, String), String>,
    /// With [`Columns::Loads`]: whether this scope computes a chunk of `LG_VEC` columns (inside
    /// a column loop), so that values varying along the row are arrays. `false` for per-row
    /// scalars, which read single elements.
    pub chunk: bool,
    /// The locals that are `LG_VEC`-element arrays.
    arrays: HashSet<String>,
}

impl Scope {
    /// An empty scope computing a chunk of columns.
    pub fn chunk() -> Scope {
        Scope {
            chunk: true,
            ..Scope::default()
        }
    }

    /// Whether local `name` is an array of `LG_VEC` elements.
    pub fn is_array(&self, name: &str) -> bool {
        self.arrays.contains(name)
    }

    /// `name` as an element expression inside a loop over `lg_v`.
    pub fn at(&self, name: &str) -> String {
        if self.is_array(name) {
            format!("{name}[lg_v]")
        } else {
            name.to_string()
        }
    }

    /// Binds `expr` (over the element expressions of `args`) to `name`: an array when any
    /// argument is one.
    fn bind(&mut self, name: &str, expr: &str, array: bool) {
        if array {
            self.stmts.push(format!(
                "C {name}[LG_VEC]; LG_UNROLL for (int lg_v = 0; lg_v < LG_VEC; ++lg_v) {name}[lg_v] = {expr};"
            ));
            self.arrays.insert(name.to_string());
        } else {
            self.stmts.push(format!("const C {name} = {expr};"));
        }
    }
}

/// Writes bodies for one kernel.
pub struct Body<'a> {
    pub graph: &'a Graph,
    pub k: &'a Kernel,
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
        self.k.is_row_local(id)
    }

    /// Whether `id` has one value for a whole row: a per-row scalar, or a scalar or per-row
    /// input.
    fn is_row_constant(&self, id: NodeId) -> bool {
        self.is_row_local(id)
            || self
                .k
                .input_index(id)
                .is_some_and(|i| self.k.inputs[i].1 != Access::Column)
    }

    /// The value of `id` at column `col` (a chunk's first column, in chunk scopes), as a local
    /// bound by `scope`'s statements: an array where [`Scope::is_array`] says so.
    ///
    /// The values it depends on are bound first, deepest first, by a loop: binding one then finds
    /// its arguments bound, so the recursion stays shallow however long a chain of `let`s is.
    pub fn value(&self, scope: &mut Scope, id: NodeId, col: &str) -> String {
        // Each value is named by how many were bound when it was first needed, as a recursive
        // walk would name it: `slot` keeps that count until its arguments are bound.
        let mut todo = vec![(id, col.to_string(), None)];
        while let Some((n, c, slot)) = todo.pop() {
            if self.is_row_local(n) || scope.memo.contains_key(&(n, c.clone())) {
                continue;
            }
            if let Some(slot) = slot {
                self.value_here(scope, n, &c, slot);
                continue;
            }
            todo.push((n, c.clone(), Some(scope.memo.len())));
            if self.k.input_index(n).is_some() {
                continue;
            }
            let node = self.graph.node(n);
            match node.op {
                Op::Narrow(_, start) => {
                    let s = format!("n{}", self.k.size_index(&start));
                    todo.push((node.args[0], format!("{c} + {s}"), None));
                }
                // Each part is bound in a branch of its own (see `cat`).
                Op::Cat(_) => {}
                _ => todo.extend(node.args.iter().rev().map(|a| (*a, c.clone(), None))),
            }
        }
        let slot = scope.memo.len();
        self.value_here(scope, id, col, slot)
    }

    /// Binds `id` at `col` in `scope` as `e{id}_{slot}`, its arguments by [`Body::value`].
    fn value_here(&self, scope: &mut Scope, id: NodeId, col: &str, slot: usize) -> String {
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
        let name = format!("e{}_{slot}", id.0);
        if let Some(i) = self.k.input_index(id) {
            if scope.chunk {
                scope.stmts.push(format!(
                    "C {name}[LG_VEC]; lg_ldv({name}, x{i} + ({col}) * cs{i});"
                ));
                scope.arrays.insert(name.clone());
            } else {
                scope
                    .stmts
                    .push(format!("const C {name} = lg_ld(x{i}[({col}) * cs{i}]);"));
            }
        } else {
            match self.op_value(scope, id, col) {
                Expr::Value(e, array) => scope.bind(&name, &e, array),
                Expr::Bound(v) => {
                    scope.memo.insert(key, v.clone());
                    return v;
                }
            }
        }
        scope.memo.insert(key, name.clone());
        name
    }

    /// The value of node `id` computed from its arguments at `col`, even where `id` is a per-row
    /// scalar (whose local this computes), as a scalar expression.
    pub fn value_of_op(&self, scope: &mut Scope, id: NodeId, col: &str) -> String {
        match self.op_value(scope, id, col) {
            Expr::Value(e, _) => e,
            Expr::Bound(v) => scope.at(&v),
        }
    }

    fn op_value(&self, scope: &mut Scope, id: NodeId, col: &str) -> Expr {
        let node = self.graph.node(id);
        let mut array = false;
        let mut arg = |k: usize, scope: &mut Scope| {
            let v = self.value(scope, node.args[k], col);
            array |= scope.is_array(&v);
            scope.at(&v)
        };
        let expr = match node.op {
            Op::Unary(u) => {
                let x = arg(0, scope);
                match u.info().c {
                    CForm::Neg => format!("-{x}"),
                    CForm::Square => format!("{x} * {x}"),
                    CForm::Call(f) => format!("{f}({x})"),
                }
            }
            Op::Binary(b) => {
                let (x, y) = (arg(0, scope), arg(1, scope));
                match b.info().c {
                    // An emitter's choice, not the op's spelling: by a per-row or kernel-wide
                    // value, times its reciprocal, which the compiler hoists out of the column
                    // loop (within 1 ulp of the quotient, in the compute type; a division per
                    // element costs softmax a tenth of its speed in halves).
                    _ if b == BinaryOp::Div && self.is_row_constant(node.args[1]) => {
                        format!("{x} * ((C)1 / {y})")
                    }
                    BinaryCForm::Infix(op) => format!("{x} {op} {y}"),
                    BinaryCForm::Call(f) => format!("{f}({x}, {y})"),
                    BinaryCForm::Compare(op) => format!("{x} {op} {y} ? (C)1 : (C)0"),
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
        };
        Expr::Value(expr, array)
    }

    /// `cat(parts)` at `col`: the part whose range holds the column, read at the column less the
    /// lengths of the parts before it. In chunk scopes the branch holds for the whole chunk.
    fn cat(&self, scope: &mut Scope, id: NodeId, parts: &[NodeId], col: &str) -> String {
        let name = format!("e{}_{}", id.0, scope.memo.len());
        if scope.chunk {
            scope.stmts.push(format!("C {name}[LG_VEC];"));
            scope.arrays.insert(name.clone());
        } else {
            scope.stmts.push(format!("C {name};"));
        }
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
                chunk: scope.chunk,
                arrays: scope.arrays.clone(),
            };
            let v = self.value(&mut inner, *part, &at);
            let len = format!("n{}", self.k.len_index(self.graph, *part));
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
            if scope.chunk {
                let _ = write!(
                    text,
                    " LG_UNROLL for (int lg_v = 0; lg_v < LG_VEC; ++lg_v) {name}[lg_v] = {}; }}",
                    inner.at(&v)
                );
            } else {
                let _ = write!(text, " {name} = {v}; }}");
            }
            offset = guard;
        }
        scope.stmts.push(text);
        name
    }
}

/// What an op's text is: an expression to bind (over array elements if the flag says so), or a
/// value already bound (narrow, cat).
enum Expr {
    Value(String, bool),
    Bound(String),
}
