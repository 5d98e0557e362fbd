//! The loops of a row kernel in the C family, shared by the CUDA and Metal dialects: the text of
//! the column loops (what each reads and which inputs stay in registers is in the schedule),
//! the reductions and the writes. The dialects differ only in what [`Dialect`] names; the rest
//! is prelude macros (`LG_ROW_CHUNKS`, `LG_FETCH`, ...) that each prelude defines.

use std::collections::BTreeSet;

use graph_ir::{Access, ArgLayout, BinaryCForm, Op, ReduceFinish, ReduceInfo};

use super::{row_local, Body, Columns, Dialect, Scope, Writer};
use crate::ir::NodeId;
use crate::kernel::{Kernel, Stmt};

/// One row's work inside a row kernel's grid-stride loop over rows (`lg_base`, `lg_group` and
/// `lg_lane` set by the skeleton): the row's pointers, bounds and cached inputs, then each
/// statement's loop.
pub(super) fn row_body(w: &mut Writer, d: &Dialect, body: &Body, l: &ArgLayout) {
    let (graph, k, long) = (body.graph, body.k, d.long);
    let remap = body.columns == Columns::Loads;
    w.line("const bool lg_live = lg_base + lg_group < rows;");
    w.line(&format!("const {long} lg_r = lg_live ? lg_base + lg_group : 0;"));
    row_pointers(w, d, k, l, "lg_r");
    for o in 0..k.outputs.len() {
        w.line(&format!("{} y{o} = q{o} + lg_r * ol{o};", d.out_ptr));
    }
    // Loop bounds: zero for a group past the last row.
    for s in 0..k.sizes.len() {
        w.line(&format!("const {long} m{s} = lg_live ? n{s} : 0;"));
    }
    for i in k.inputs_read(Access::RowScalar) {
        w.line(&format!("const C in{i} = lg_live ? lg_ld(x{i}[0]) : (C)0;"));
    }
    for &i in &k.cached {
        let len = k.len_index(graph, k.inputs[i].0);
        w.line(&format!("LG_CACHE_ROW(c{i}, x{i}, cs{i}, m{len});"));
    }
    let none = BTreeSet::new();
    for s in &k.stmts {
        let cols = Loop {
            reads: s.reads().unwrap_or(&none),
            cached: &k.cached,
            remap,
        };
        match s {
            Stmt::Reduce { len, reductions, .. } => reduce(w, d, body, *len, reductions, &cols),
            Stmt::RowScalars(nodes) => row_scalars(w, body, nodes),
            Stmt::Write { len, outputs, .. } => write(w, d, body, *len, outputs, &cols),
            Stmt::Accumulate { .. } => unreachable!("row kernels write their rows"),
            Stmt::WriteRowScalars(outputs) => {
                w.open("if (lg_live && lg_lane == 0)");
                for o in outputs {
                    let r = row_local(k.outputs[*o]);
                    w.line(&format!("y{o}[0] = lg_st({r});"));
                }
                w.close();
            }
        }
    }
}

/// The row multi-index of row `r` (`lg_i{d}`), then each tensor input's row pointer. Indices
/// divide in 32 bits by multiply and shift unless `LG_WIDE`.
pub(super) fn row_pointers(w: &mut Writer, d: &Dialect, k: &Kernel, l: &ArgLayout, r: &str) {
    let (long, ulong, uint) = (d.long, d.ulong, d.uint);
    let rank = l.rank;
    if rank > 0 {
        w.line("#if LG_WIDE");
        w.line(&format!("{ulong} lg_t = {r};"));
        for i in (1..rank).rev() {
            let p = d.word(l.prefix(i));
            w.line(&format!("const {long} lg_i{i} = lg_t % {p};"));
            w.line(&format!("lg_t /= {p};"));
        }
        w.line("#else");
        w.line(&format!("{uint} lg_t = ({uint}){r};"));
        for i in (1..rank).rev() {
            let (p, m) = (d.word(l.prefix(i)), d.word(l.prefix_magic(i)));
            w.line(&format!("const {uint} lg_d{i} = lg_udiv(lg_t, {m});"));
            w.line(&format!("const {long} lg_i{i} = lg_t - lg_d{i} * ({uint}){p};"));
            w.line(&format!("lg_t = lg_d{i};"));
        }
        w.line("#endif");
        w.line(&format!("const {long} lg_i0 = lg_t;"));
    }
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        if *access == Access::Scalar {
            continue;
        }
        let offset: Vec<String> = (0..rank)
            .map(|dim| format!("lg_i{dim} * {}", d.word(l.row_stride(i, dim))))
            .collect();
        let offset = if offset.is_empty() {
            "0".to_string()
        } else {
            offset.join(" + ")
        };
        w.line(&format!("{} x{i} = p{i} + ({offset});", d.in_ptr));
    }
}

/// `const C r{n} = ...;` for each per-row scalar node.
pub(super) fn row_scalars(w: &mut Writer, body: &Body, nodes: &[NodeId]) {
    // One scope for all: the statements share one C block, so each value's name must be unique
    // in it (a value read at two columns, `n2` and `n3`, was `e9_0` twice), and a later node may
    // reuse what an earlier one bound.
    let mut scope = Scope::default();
    for id in nodes {
        let v = body.value_of_op(&mut scope, *id, "0");
        w.lines(&std::mem::take(&mut scope.stmts));
        w.line(&format!("const C {} = {v};", row_local(*id)));
    }
}

/// How one column loop reads its inputs.
struct Loop<'a> {
    /// The column inputs the loop reads.
    reads: &'a BTreeSet<usize>,
    /// The inputs in registers.
    cached: &'a BTreeSet<usize>,
    remap: bool,
}

/// Opens the loop over this thread's chunks of `LG_VEC` columns of a row of length `m{len}`
/// (`lg_q`). Inside it, without remapping, `v{i}c` holds each read input's chunk; with remapping,
/// `lg_col` is the chunk's first column (and the loop needs two more `close`s).
fn open_columns(w: &mut Writer, d: &Dialect, len: usize, cols: &Loop) {
    if cols.remap {
        w.open(&format!(
            "for ({} lg_q0 = lg_lane; lg_q0 * LG_VEC < m{len}; lg_q0 += LG_GROUP * LG_UNROLL_COLS)",
            d.long
        ));
        w.open("LG_UNROLL for (int lg_u = 0; lg_u < LG_UNROLL_COLS; ++lg_u)");
        w.line(&format!("const {} lg_q = lg_q0 + lg_u * LG_GROUP;", d.long));
        w.open(&format!("if (lg_q * LG_VEC < m{len})"));
        w.line(&format!("const {} lg_col = lg_q * LG_VEC;", d.long));
        return;
    }
    w.open(&format!("LG_ROW_CHUNKS(m{len})"));
    for &i in cols.reads {
        w.line(&format!("C v{i}c[LG_VEC];"));
        if cols.cached.contains(&i) {
            w.line(&format!("LG_FETCH(v{i}c, c{i}, x{i}, cs{i});"));
        } else {
            w.line(&format!("LG_LOAD(v{i}c, x{i}, cs{i});"));
        }
    }
}

fn close_columns(w: &mut Writer, cols: &Loop) {
    if cols.remap {
        w.close();
        w.close();
    }
    w.close();
}

/// Opens the per-element loop of a chunk (without remapping): element `lg_v`.
fn open_chunk(w: &mut Writer, cols: &Loop) {
    w.open("LG_UNROLL for (int lg_v = 0; lg_v < LG_VEC; ++lg_v)");
    for &i in cols.reads {
        w.line(&format!("const C v{i} = v{i}c[lg_v];"));
    }
}

fn reduce(w: &mut Writer, d: &Dialect, body: &Body, len: usize, reductions: &[NodeId], cols: &Loop) {
    let ops: Vec<&ReduceInfo> = reductions
        .iter()
        .map(|r| match body.graph.node(*r).op {
            Op::Reduce(op, _) => op.info(),
            _ => unreachable!("reduce statements hold reductions"),
        })
        .collect();
    // Accumulators are named by their reduction node: several loops share one scope.
    let acc: Vec<String> = reductions.iter().map(|r| format!("lg_acc{}", r.0)).collect();
    for (op, a) in ops.iter().zip(&acc) {
        w.line(&format!("C {a} = {};", op.c.identity));
    }
    open_columns(w, d, len, cols);
    let mut scope = element_scope(w, cols);
    let col = column(cols);
    let vals: Vec<String> = reductions
        .iter()
        .map(|r| body.value(&mut scope, body.graph.node(*r).args[0], col))
        .collect();
    w.lines(&scope.stmts);
    if cols.remap {
        w.open("LG_UNROLL for (int lg_v = 0; lg_v < LG_VEC; ++lg_v)");
    }
    for ((op, v), a) in ops.iter().zip(&vals).zip(&acc) {
        let v = scope.at(v);
        w.line(&match op.combine.info().c {
            BinaryCForm::Infix(o) => format!("{a} {o}= {v};"),
            BinaryCForm::Call(f) => format!("{a} = {f}({a}, {v});"),
            BinaryCForm::Compare(_) => unreachable!("no reduction combines by a comparison"),
        });
    }
    w.close();
    close_columns(w, cols);
    for ((op, r), a) in ops.iter().zip(reductions).zip(&acc) {
        let scale = match op.finish {
            ReduceFinish::Total => String::new(),
            ReduceFinish::DivideByCount => format!(" / (C)n{len}"),
        };
        w.line(&format!(
            "const C {} = {}{scale};",
            row_local(*r),
            (d.reduce)(op.c.across, a)
        ));
    }
}

/// The column expression of a loop body: a chunk's first column when remapping (the body then
/// computes the whole chunk), else the element's column.
fn column(cols: &Loop) -> &'static str {
    if cols.remap {
        "lg_col"
    } else {
        "lg_q * LG_VEC + lg_v"
    }
}

/// Without remapping, opens the per-element loop of a chunk and returns an element scope; with
/// remapping, returns a chunk scope (arrays), the loop being the caller's to open.
fn element_scope(w: &mut Writer, cols: &Loop) -> Scope {
    if cols.remap {
        Scope::chunk()
    } else {
        open_chunk(w, cols);
        Scope::default()
    }
}

fn write(w: &mut Writer, d: &Dialect, body: &Body, len: usize, outputs: &[usize], cols: &Loop) {
    let k = body.k;
    open_columns(w, d, len, cols);
    for o in outputs {
        w.line(&format!("C o{o}c[LG_VEC];"));
    }
    let mut scope = element_scope(w, cols);
    let vals: Vec<String> = outputs
        .iter()
        .map(|o| body.value(&mut scope, k.outputs[*o], column(cols)))
        .collect();
    w.lines(&scope.stmts);
    if cols.remap {
        w.open("LG_UNROLL for (int lg_v = 0; lg_v < LG_VEC; ++lg_v)");
    }
    for (o, v) in outputs.iter().zip(vals) {
        w.line(&format!("o{o}c[lg_v] = {};", scope.at(&v)));
    }
    w.close();
    for o in outputs {
        w.line(&format!("lg_stv(y{o} + lg_q * LG_VEC, o{o}c);"));
    }
    close_columns(w, cols);
}
