//! A column kernel in the C family: reductions along a prefix axis, in two launches of one
//! function, told apart by the stage word.
//!
//! - Stage 0: a unit is one output row, one chunk of the reduced axis (`chunk` rows) and one tile
//!   of `LG_BLOCK` columns; a block takes units grid-stride, and each thread walks its column down
//!   the chunk's rows (reads along a row are coalesced across the block), accumulating in the
//!   compute type, and writes one partial result.
//! - Stage 1: a thread per output element combines its `parts` partial results in chunk order and
//!   finishes them (a mean divides by the axis' length).
//!
//! No atomics and a fixed order everywhere: the same bits at every run.

use graph_ir::{Access, ArgLayout, BinaryCForm, KernelKind, Op, ReduceFinish, ReduceInfo};

use super::rows::row_pointers;
use super::{Body, Dialect, Scope, Writer};
use crate::kernel::Stmt;

/// The reduction output `o` of column kernel `body.k` computes.
fn reduction(body: &Body, o: usize) -> &'static ReduceInfo {
    match body.graph.node(body.k.outputs[o]).op {
        Op::Reduce(op, _) => op.info(),
        _ => unreachable!("a column kernel's outputs are its reductions"),
    }
}

/// `a` combined with `b` by the reduction of output `o`.
fn combine(body: &Body, o: usize, a: &str, b: &str) -> String {
    match reduction(body, o).combine.info().c {
        BinaryCForm::Infix(f) => format!("{a} {f} {b}"),
        BinaryCForm::Call(f) => format!("{f}({a}, {b})"),
        BinaryCForm::Compare(_) => unreachable!("no reduction combines by comparing"),
    }
}

/// The body of column kernel `body.k` (after the header).
pub fn columns(w: &mut Writer, d: &Dialect, body: &Body, l: &ArgLayout) {
    let k = body.k;
    let long = d.long;
    let KernelKind::Column { axis, axes } = k.kind else {
        unreachable!("a column kernel")
    };
    let (axis, axes) = (axis as usize, axes as usize);
    let Stmt::Accumulate {
        len, outputs, values, ..
    } = &k.stmts[0]
    else {
        unreachable!("a column kernel is one accumulation")
    };
    if d.pointers_in_words {
        let ptr = d.out_ptr.replacen("T*", "C*", 1);
        for o in 0..k.outputs.len() {
            w.line(&format!("{ptr} r{o} = ({ptr}){};", d.word(l.partials(o))));
        }
    }
    w.line(&format!("const {long} lg_chunk = {};", d.word(l.chunk())));
    w.line(&format!("const {long} lg_parts = {};", d.word(l.parts())));
    w.line(&format!("const {long} lg_out_rows = {};", d.word(l.out_rows())));
    w.line(&format!("const {long} lg_cols = n{len};"));
    let along: Vec<String> = (axis..axis + axes).map(|i| d.word(l.prefix(i))).collect();
    w.line(&format!("const {long} lg_along = {};", along.join(" * ")));
    let inner: Vec<String> = (axis + axes..l.rank).map(|i| d.word(l.prefix(i))).collect();
    let inner = if inner.is_empty() {
        "1".to_string()
    } else {
        inner.join(" * ")
    };
    w.line(&format!("const {long} lg_inner = {inner};"));

    w.open(&format!("if ({} == 0)", d.word(l.stage())));
    w.line(&format!(
        "const {long} lg_tiles = (lg_cols + LG_BLOCK - 1) / LG_BLOCK;"
    ));
    w.line(&format!(
        "const {long} lg_units = lg_out_rows * lg_parts * lg_tiles;"
    ));
    w.open(&format!(
        "for ({long} lg_u = {}; lg_u < lg_units; lg_u += {})",
        d.block, d.blocks
    ));
    w.line(&format!("const {long} lg_rest = lg_u / lg_tiles;"));
    w.line(&format!(
        "const {long} lg_c = (lg_u - lg_rest * lg_tiles) * LG_BLOCK + {};",
        d.thread
    ));
    w.line(&format!("const {long} lg_orow = lg_rest / lg_parts;"));
    w.line(&format!("const {long} lg_part = lg_rest - lg_orow * lg_parts;"));
    w.line(&format!("const {long} lg_start = lg_part * lg_chunk;"));
    w.line(&format!("const {long} lg_before = lg_orow / lg_inner;"));
    w.line(&format!(
        "const {long} lg_after = lg_orow - lg_before * lg_inner;"
    ));
    w.line(&format!(
        "const {long} lg_end = lg_chunk < lg_along - lg_start ? lg_chunk : lg_along - lg_start;"
    ));
    // The whole block runs the loop (no early exit); a thread past the last column computes
    // and writes nothing.
    w.open("if (lg_c < lg_cols)");
    // One reduced axis: each input's row pointer steps along it. Several: each row's pointers
    // come from its index in the domain.
    let row = "((lg_before * lg_along + lg_start + lg_m) * lg_inner + lg_after)";
    if axes == 1 {
        w.line(&format!("const {long} lg_m = 0;"));
        row_pointers(w, d, k, l, row);
    }
    for o in outputs {
        w.line(&format!("C acc{o} = {};", reduction(body, *o).c.identity));
    }
    w.open(&format!("for ({long} lg_n = 0; lg_n < lg_end; ++lg_n)"));
    if axes > 1 {
        w.line(&format!("const {long} lg_m = lg_n;"));
        row_pointers(w, d, k, l, row);
    }
    for i in k.inputs_read(Access::RowScalar) {
        w.line(&format!("const C in{i} = lg_ld(x{i}[0]);"));
    }
    for i in k.inputs_read(Access::Column) {
        w.line(&format!("const C v{i} = lg_ld(x{i}[lg_c * cs{i}]);"));
    }
    let mut scope = Scope::default();
    let vals: Vec<String> = values
        .iter()
        .map(|v| body.value(&mut scope, *v, "lg_c"))
        .collect();
    w.lines(&scope.stmts);
    for (o, v) in outputs.iter().zip(vals) {
        let acc = format!("acc{o}");
        w.line(&format!("{acc} = {};", combine(body, *o, &acc, &v)));
    }
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        if axes == 1 && *access != Access::Scalar {
            w.line(&format!("x{i} += {};", d.word(l.row_stride(i, axis))));
        }
    }
    w.close();
    for o in outputs {
        w.line(&format!(
            "r{o}[(lg_orow * lg_parts + lg_part) * lg_cols + lg_c] = acc{o};"
        ));
    }
    w.close();
    w.close();
    w.close();

    w.open("else");
    w.line(&format!("const {long} lg_total = lg_out_rows * lg_cols;"));
    w.open(&format!(
        "for ({long} lg_e = ({long}){} * LG_BLOCK + {}; lg_e < lg_total; lg_e += ({long}){} * LG_BLOCK)",
        d.block, d.thread, d.blocks
    ));
    w.line(&format!("const {long} lg_orow = lg_e / lg_cols;"));
    w.line(&format!(
        "const {long} lg_first = lg_orow * lg_parts * lg_cols + (lg_e - lg_orow * lg_cols);"
    ));
    for o in outputs {
        let acc = format!("acc{o}");
        w.line(&format!("C {acc} = {};", reduction(body, *o).c.identity));
        w.open(&format!("for ({long} lg_p = 0; lg_p < lg_parts; ++lg_p)"));
        let part = format!("r{o}[lg_first + lg_p * lg_cols]");
        w.line(&format!("{acc} = {};", combine(body, *o, &acc, &part)));
        w.close();
        let v = match reduction(body, *o).finish {
            ReduceFinish::Total => acc,
            ReduceFinish::DivideByCount => format!("{acc} / (C)lg_along"),
        };
        w.line(&format!("q{o}[lg_e] = lg_st({v});"));
    }
    w.close();
    w.close();
}
