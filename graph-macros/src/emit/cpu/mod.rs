//! The CPU dialect: one generic Rust function per kernel and variant (contiguous inputs, or any
//! column strides), computing one row. rustc monomorphises it per storage type and vectorises the
//! contiguous loops, which run compiled for AVX2 where the CPU has it (`cpu::dispatch`).
//!
//! What keeps the loops vectorisable:
//! - reductions accumulate in independent lanes, so they vectorise without reassociation flags;
//! - a value a reduction pass computes at a transcendental's cost and the write pass needs again
//!   (softmax's `exp(x - max)`) is kept in a scratch row instead of computed twice ([`stash`]);
//! - a write loop whose `cat`s pick parts by column is split into segments without branches
//!   ([`Cx::segmented_write`]).
//!
//! Where it can, a row kernel's last write runs together with the next row's first reduction
//! ([`pipelined`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};

use graph_ir::{Access, Op};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Graph, NodeId};
use crate::kernel::{Kernel, Stmt};

mod loops;
mod values;

/// The two variants of `k` as items named `{name}` (contiguous) and `{name}_strided`.
pub fn kernel_fns(graph: &Graph, k: &Kernel) -> TokenStream {
    let contiguous = function(graph, k, false);
    let strided = function(graph, k, true);
    quote!(#contiguous #strided)
}

pub fn fn_name(k: &Kernel, strided: bool) -> Ident {
    if strided {
        format_ident!("{}_strided", k.name)
    } else {
        format_ident!("{}", k.name)
    }
}

fn function(graph: &Graph, k: &Kernel, strided: bool) -> TokenStream {
    let name = fn_name(k, strided);
    let (stash, stash_len) = match if strided { None } else { stash(graph, k) } {
        Some((id, len)) => (Some(id), Some(len)),
        None => (None, None),
    };
    let cx = Cx {
        graph,
        k,
        strided,
        stash,
        picks: RefCell::default(),
        segment: RefCell::default(),
        inputs: Cell::new("x"),
    };
    // Once per call: sizes, scalars, column strides, each output's row length.
    let mut prologue = Vec::new();
    // Once per row: each input's row, each output's row.
    let mut per_row = Vec::new();
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        let s = format_ident!("s{}", i);
        // Scalars and row scalars become locals: a load inside a loop that writes an output would
        // be repeated every iteration (the compiler cannot rule out aliasing) and block vectorising.
        let v = format_ident!("in{}", i);
        match access {
            Access::Scalar => prologue.push(quote!(let #v = a.scalars[#i];)),
            Access::RowScalar => per_row.push(quote!(let #v = a.ins[#i][r * a.row_steps[#i]].load();)),
            Access::Column => {
                per_row.push(column_row(graph, k, i, quote!(r), strided));
                if strided {
                    prologue.push(quote!(let #s: usize = a.strides[#i];));
                }
            }
        }
    }
    for i in 0..k.sizes.len() {
        let n = format_ident!("n{}", i);
        prologue.push(quote!(let #n: usize = a.sizes[#i];));
    }
    if let Some(len) = stash_len {
        // One scratch row per call, not per row.
        let n = format_ident!("n{}", len);
        let p = quote!(::graph_runtime::__private::cpu);
        prologue.push(quote!(
            let mut stash_row = <<T as #p::Elem>::C as #p::Float>::scratch(#n);
        ));
    }
    if let graph_ir::KernelKind::Column { .. } = k.kind {
        return column_function(&cx, &name, prologue, per_row);
    }
    let outs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("o{}", i)).collect();
    let runs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("run{}", i)).collect();
    let lens: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("len{}", i)).collect();
    let (before, body): (TokenStream, Vec<TokenStream>) = match pipelined(graph, k, strided, stash) {
        Some((len, reductions, written)) => {
            // Row r's last write runs in one loop with row r + 1's first reduction, whose
            // values are carried to the next iteration.
            let c = cx.c();
            let ct = quote!(<T as ::graph_runtime::__private::cpu::Elem>::C);
            let count = reductions.len();
            let locals: Vec<Ident> = reductions.iter().map(|r| local(*r)).collect();
            let first = cx.stmt(&k.stmts[0]);
            let middle: Vec<TokenStream> = k.stmts[1..k.stmts.len() - 1].iter().map(|s| cx.stmt(s)).collect();
            let last = cx.stmt(&k.stmts[k.stmts.len() - 1]);
            let merged = cx.reduce(len, reductions, Some(written));
            let n = format_ident!("n{}", len);
            let written: Vec<Ident> = written.iter().map(|i| format_ident!("o{}", i)).collect();
            let cols: Vec<usize> = k.inputs_read(Access::Column).collect();
            let xs: Vec<Ident> = cols.iter().map(|i| format_ident!("x{}", i)).collect();
            let xcs: Vec<Ident> = cols.iter().map(|i| format_ident!("xc{}", i)).collect();
            let next = cols
                .iter()
                .map(|&i| column_row(graph, k, i, quote!((r + 1)), false));
            let before = quote!(let mut carry: [#ct; #count] = [#c::ZERO; #count];);
            let row = quote! {
                if r == 0 {
                    carry = { #first [#(#locals),*] };
                }
                let [#(#locals),*] = carry;
                #(#middle)*
                if r + 1 < a.rows {
                    #(let #written: &mut [::core::mem::MaybeUninit<T>] = &mut #written[..#n];)*
                    #(let #xcs: &[T] = #xs;)*
                    #(#next)*
                    carry = { #merged [#(#locals),*] };
                } else {
                    #last
                }
            };
            (before, vec![row])
        }
        None => (quote!(), k.stmts.iter().map(|s| cx.stmt(s)).collect()),
    };
    let p = quote!(::graph_runtime::__private::cpu);
    let args = quote!(a: &#p::RowArgs<'_, T>, outs: &mut [&mut [::core::mem::MaybeUninit<T>]]);
    let row = quote! {
        use #p::{Elem as _, Float as _};
        let [#(#runs),*] = outs else {
            ::core::unreachable!("the runtime passes one row run per output")
        };
        #(#prologue)*
        #(let #lens: usize = #runs.len() / a.rows;)*
        #before
        for r in 0..a.rows {
            #(let #outs: &mut [::core::mem::MaybeUninit<T>] = &mut #runs[r * #lens..][..#lens];)*
            #(#per_row)*
            #(#body)*
        }
    };
    variant(k, &name, strided, &args, &quote!(outs), &row)
}

/// Variant `name` of kernel `k` taking `args` and computing `body`. The strided variant is
/// `body` itself. The contiguous variant is the hot path: on x86 it is compiled once, for AVX2
/// and FMA, and a CPU without them runs the strided variant (which takes any strides): a second
/// copy for baseline x86 cost as much build time as the first and paid only on CPUs from before
/// 2013. Elsewhere (aarch64: NEON is the baseline) it is compiled for the baseline. `outs` names
/// the outputs' argument, which `dispatch` passes on.
fn variant(
    k: &Kernel,
    name: &Ident,
    strided: bool,
    args: &TokenStream,
    outs: &TokenStream,
    body: &TokenStream,
) -> TokenStream {
    let p = quote!(::graph_runtime::__private::cpu);
    let allow = quote!(#[allow(unused_variables, unused_mut, non_snake_case, clippy::all)]);
    if strided {
        return quote! {
            #allow
            #[inline(never)]
            fn #name<T: #p::Elem>(#args) {
                const FMA: bool = false;
                #body
            }
        };
    }
    let strided = fn_name(k, true);
    quote! {
        #allow
        #[inline(never)]
        fn #name<T: #p::Elem>(#args) {
            #allow
            #[inline(always)]
            fn row<T: #p::Elem, const FMA: bool>(#args) { #body }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            let baseline = #strided::<T>;
            #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
            let baseline = row::<T, false>;
            #p::dispatch(a, #outs, baseline, row::<T, true>)
        }
    }
}

/// A column kernel's variant `name`: for each of the call's rows of the domain (consecutive along
/// the reduced axis), takes each column's value into the accumulators, one row of the compute
/// type per output (`graph_ir::cpu::ColFn`).
fn column_function(
    cx: &Cx,
    name: &Ident,
    prologue: Vec<TokenStream>,
    per_row: Vec<TokenStream>,
) -> TokenStream {
    let k = cx.k;
    let p = quote!(::graph_runtime::__private::cpu);
    let accs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("acc{}", i)).collect();
    let Stmt::Accumulate {
        len, outputs, values, ..
    } = &k.stmts[0]
    else {
        unreachable!("a column kernel is one accumulation")
    };
    let n = format_ident!("n{}", len);
    let (stmts, updates) = cx.accumulate_body(outputs, values);
    let args = quote!(a: &#p::RowArgs<'_, T>, accs: &mut [&mut [<T as #p::Elem>::C]]);
    let row = quote! {
        use #p::{Elem as _, Float as _};
        let [#(#accs),*] = accs else {
            ::core::unreachable!("the runtime passes one accumulator row per output")
        };
        #(#prologue)*
        #(let #accs: &mut [<T as #p::Elem>::C] = &mut #accs[..#n];)*
        for r in 0..a.rows {
            #(#per_row)*
            for c in 0..#n {
                #(#stmts)*
                #(#updates)*
            }
        }
    };
    variant(k, name, cx.strided, &args, &quote!(accs), &row)
}

/// The `CpuKernel` table of `k`: the contiguous variant where it pays, the strided one for every
/// layout and for the storage types without a contiguous variant.
///
/// Each variant is one more copy of the kernel for LLVM to optimise, and the copies are most of
/// what the kernels add to a release build. The contiguous variant (vector lanes, pipelined rows,
/// scratch rows) is generated for f32 and bf16, the types models run in on the CPU and the ones
/// the CPU benchmarks measure; f64 and f16 kernels run the strided variant, fused in one pass
/// like the others but without the hand-laid vector lanes.
pub fn table(k: &Kernel) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    let (contiguous, strided) = (fn_name(k, false), fn_name(k, true));
    let fns = match k.kind {
        graph_ir::KernelKind::Column { .. } => quote!(#p::cpu::CpuFns::Columns),
        _ => quote!(#p::cpu::CpuFns::Rows),
    };
    let fast = |t: TokenStream| quote!(#fns([#contiguous::<#t>, #strided::<#t>]));
    let generic = |t: TokenStream| quote!(#fns([#strided::<#t>, #strided::<#t>]));
    let (f32v, bf16v) = (fast(quote!(f32)), fast(quote!(#p::cpu::half::bf16)));
    let (f64v, f16v) = (generic(quote!(f64)), generic(quote!(#p::cpu::half::f16)));
    quote!(#p::cpu::CpuKernel { f32: #f32v, f64: #f64v, f16: #f16v, bf16: #bf16v })
}

/// Column input `i`'s elements from row `row` on, as `x{i}`; in the contiguous variant only its
/// row, so that indexing by column needs no checks.
fn column_row(graph: &Graph, k: &Kernel, i: usize, row: TokenStream, strided: bool) -> TokenStream {
    let x = format_ident!("x{}", i);
    if strided {
        return quote!(let #x: &[T] = &a.ins[#i][#row * a.row_steps[#i]..];);
    }
    let n = size_ident(k, graph, k.inputs[i].0);
    quote!(let #x: &[T] = &a.ins[#i][#row * a.row_steps[#i]..][..#n];)
}

/// Where rows can overlap: the first reduction of row r + 1 (which reads only inputs) and the
/// last write of row r (the columns of both are read at the column being computed), as
/// `(row length, reductions, outputs written)`.
///
/// Run one after the other, a row's write pass waits for the scalars its reductions end in (a
/// chain of dependent additions, a square root, a division), and the next row's first pass, which
/// reads the row from memory rather than cache, waits for the write. Alternated in blocks of
/// columns ([`graph_ir::cpu::PIPELINE_BLOCK`]), the reads of one row overlap the other's
/// arithmetic and stores, and a row's scalars are ready before its write starts: 1024x1024 f32
/// LayerNorm ran about 8% faster, RMSNorm about 3%. Only for the contiguous variant, without
/// index remapping or per-row scalar inputs, and where the first reduction does not keep a
/// scratch row the write reads (see [`stash`]).
fn pipelined<'k>(
    graph: &Graph,
    k: &'k Kernel,
    strided: bool,
    stash: Option<NodeId>,
) -> Option<(usize, &'k [NodeId], &'k [usize])> {
    if strided
        || k.kind != graph_ir::KernelKind::Row
        || k.remaps
        || k.inputs.iter().any(|(_, a)| *a == Access::RowScalar)
    {
        return None;
    }
    let (
        Stmt::Reduce { len, reductions, .. },
        Stmt::Write {
            len: written,
            outputs,
            ..
        },
    ) = (k.stmts.first()?, k.stmts.last()?)
    else {
        return None;
    };
    let kept = stash.is_some_and(|v| reductions.iter().any(|r| graph.node(*r).args[0] == v));
    (len == written && !kept).then_some((*len, reductions.as_slice(), outputs.as_slice()))
}

/// The column value worth keeping from the last reduction pass for the write pass after it: a
/// reduction's argument that costs a transcendental function per element and that the write
/// pass reads, as `exp(x - max)` in softmax. Kept in a scratch row of the compute type, so
/// reading it back gives exactly what computing it again would. Only for kernels without index
/// remapping (every value is read at the column being written) and one row length.
fn stash(graph: &Graph, k: &Kernel) -> Option<(NodeId, usize)> {
    if k.remaps {
        return None;
    }
    let (at, len, reductions) = k.stmts.iter().enumerate().rev().find_map(|(i, s)| match s {
        Stmt::Reduce { len, reductions, .. } => Some((i, *len, reductions)),
        _ => None,
    })?;
    let outputs: Vec<NodeId> = k.stmts[at..]
        .iter()
        .filter_map(|s| match s {
            Stmt::Write { len: l, outputs, .. } if *l == len => Some(outputs),
            _ => None,
        })
        .flatten()
        .map(|&i| k.outputs[i])
        .collect();
    // The column nodes a value is computed from, itself included (row scalars and inputs end
    // the walk: they are read, not computed, in a column loop).
    let members: BTreeSet<NodeId> = k.nodes.iter().copied().collect();
    let column_nodes = |from: &[NodeId]| {
        let mut seen: BTreeSet<NodeId> = BTreeSet::new();
        let mut todo = from.to_vec();
        while let Some(id) = todo.pop() {
            if seen.contains(&id) || !members.contains(&id) || k.is_row_local(id) {
                continue;
            }
            seen.insert(id);
            todo.extend(graph.node(id).args.iter().copied());
        }
        seen
    };
    let written = column_nodes(&outputs);
    let kept = reductions.iter().map(|r| graph.node(*r).args[0]).find(|v| {
        written.contains(v)
            && column_nodes(&[*v]).iter().any(|n| match graph.node(*n).op {
                Op::Unary(u) => u.info().costly,
                Op::Binary(b) => b.info().costly,
                _ => false,
            })
    });
    kept.map(|v| (v, len))
}

fn size_ident(k: &Kernel, graph: &Graph, id: NodeId) -> Ident {
    format_ident!("n{}", k.len_index(graph, id))
}

struct Cx<'a> {
    graph: &'a Graph,
    k: &'a Kernel,
    strided: bool,
    /// A column value the last reduction pass keeps for the write pass, which would otherwise
    /// compute it again.
    stash: Option<NodeId>,
    /// The `cat` picks met while generating the current write loop.
    picks: RefCell<Vec<Pick>>,
    /// While generating one segment of a segmented write loop: see [`Cx::segmented_write`].
    segment: RefCell<Option<Segment>>,
    /// The prefix of the column inputs' names in the code being generated: `x` (`x0`, `x1`, ...),
    /// or `xc` for the previous row's inputs in a pipelined write.
    inputs: Cell<&'static str>,
}

/// Write loops with more picks than this keep a branch per pick and column: each pick doubles
/// the specialised loops.
const MAX_PICKS: usize = 3;

/// One `cat` choosing its first part where `col < size`.
struct Pick {
    /// `col < size`, as text: picks with equal keys are one pick.
    key: String,
    size: Ident,
    plus: Vec<Ident>,
    minus: Vec<Ident>,
}

/// What one segment of a segmented write loop knows and needs.
struct Segment {
    /// Each pick's outcome, by key.
    decided: Vec<(String, bool)>,
    /// The input slices its loads read: input index and column; the `k`th is named `xs{k}`.
    slices: Vec<(usize, Col)>,
}

/// A column index expression and its canonical key, for memoisation.
#[derive(Clone)]
struct Col {
    tokens: TokenStream,
    key: String,
    /// The sizes added to and subtracted from the loop's column to give this one.
    plus: Vec<Ident>,
    minus: Vec<Ident>,
}

impl Col {
    /// The loop's own column, `var`.
    fn at(var: &str) -> Col {
        let v = Ident::new(var, Span::call_site());
        Col {
            tokens: quote!(#v),
            key: var.into(),
            plus: Vec::new(),
            minus: Vec::new(),
        }
    }
}

/// Statements of one block and the values already bound in it.
#[derive(Clone, Default)]
struct Scope {
    stmts: Vec<TokenStream>,
    memo: HashMap<(NodeId, String), Ident>,
}

/// An operator of the op table (`+`, `<=`) as tokens.
fn operator(op: &str) -> TokenStream {
    op.parse().expect("the op table's operators are Rust tokens")
}

fn local(id: NodeId) -> Ident {
    format_ident!("r{}", id.0)
}

impl Cx<'_> {
    fn c(&self) -> TokenStream {
        quote!(<<T as ::graph_runtime::__private::cpu::Elem>::C as ::graph_runtime::__private::cpu::Float>)
    }
}
