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

use std::cell::RefCell;
use std::collections::HashMap;

use graph_ir::cpu::{LANES, NARROW_LANES};
use graph_ir::{Access, BinaryOp, DType, Op, ReduceOp, UnaryOp};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Graph, NodeId};
use crate::kernel::{KernelIr, Stmt};

/// The two variants of `k` as items named `{name}` (contiguous) and `{name}_strided`.
pub fn kernel_fns(graph: &Graph, k: &KernelIr) -> TokenStream {
    let contiguous = function(graph, k, false);
    let strided = function(graph, k, true);
    quote!(#contiguous #strided)
}

pub fn fn_name(k: &KernelIr, strided: bool) -> Ident {
    if strided {
        format_ident!("{}_strided", k.name)
    } else {
        format_ident!("{}", k.name)
    }
}

fn function(graph: &Graph, k: &KernelIr, strided: bool) -> TokenStream {
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
    };
    // Once per call: sizes, scalars, column strides, each output's row length.
    let mut prologue = Vec::new();
    // Once per row: each input's row, each output's row.
    let mut per_row = Vec::new();
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        let x = format_ident!("x{}", i);
        let s = format_ident!("s{}", i);
        // Scalars and row scalars become locals: a load inside a loop that writes an output would
        // be repeated every iteration (the compiler cannot rule out aliasing) and block vectorising.
        let v = format_ident!("in{}", i);
        match access {
            Access::Scalar => prologue.push(quote!(let #v = a.scalars[#i];)),
            Access::RowScalar => per_row.push(quote!(let #v = a.ins[#i][r * a.row_steps[#i]].load();)),
            Access::Column => {
                per_row.push(quote!(let #x: &[T] = &a.ins[#i][r * a.row_steps[#i]..];));
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
    if !strided {
        // Bound each contiguous input to its row so indexing by column needs no checks.
        for (i, (id, access)) in k.inputs.iter().enumerate() {
            if *access == Access::Column {
                let x = format_ident!("x{}", i);
                let n = size_ident(k, graph, *id);
                per_row.push(quote!(let #x: &[T] = &#x[..#n];));
            }
        }
    }
    let outs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("o{}", i)).collect();
    let runs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("run{}", i)).collect();
    let lens: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("len{}", i)).collect();
    let body: Vec<TokenStream> = k.stmts.iter().map(|s| cx.stmt(s)).collect();
    let p = quote!(::graph_runtime::__private::cpu);
    let args = quote!(a: &#p::RowArgs<'_, T>, outs: &mut [&mut [::core::mem::MaybeUninit<T>]]);
    let row = quote! {
        use #p::{Elem as _, Float as _};
        let [#(#runs),*] = outs else {
            ::core::unreachable!("the runtime passes one row run per output")
        };
        #(#prologue)*
        #(let #lens: usize = #runs.len() / a.rows;)*
        for r in 0..a.rows {
            #(let #outs: &mut [::core::mem::MaybeUninit<T>] = &mut #runs[r * #lens..][..#lens];)*
            #(#per_row)*
            #(#body)*
        }
    };
    let allow = quote!(#[allow(unused_variables, unused_mut, non_snake_case, clippy::all)]);
    if strided {
        return quote! {
            #allow
            #[inline(never)]
            fn #name<T: #p::Elem>(#args) {
                const FMA: bool = false;
                #row
            }
        };
    }
    // The contiguous variant is the hot path: `dispatch` runs it compiled for AVX2 and FMA
    // where the CPU has them.
    quote! {
        #allow
        #[inline(never)]
        fn #name<T: #p::Elem>(#args) {
            #allow
            #[inline(always)]
            fn row<T: #p::Elem, const FMA: bool>(#args) { #row }
            #p::dispatch(a, outs, row::<T, false>, row::<T, true>)
        }
    }
}

/// The column value worth keeping from the last reduction pass for the write pass after it: a
/// reduction's argument that costs a transcendental function per element and that the write
/// pass reads, as `exp(x - max)` in softmax. Kept in a scratch row of the compute type, so
/// reading it back gives exactly what computing it again would. Only for kernels without index
/// remapping (every value is read at the column being written) and one row length.
fn stash(graph: &Graph, k: &KernelIr) -> Option<(NodeId, usize)> {
    if k.remaps(graph) {
        return None;
    }
    let (at, len, reductions) = k.stmts.iter().enumerate().rev().find_map(|(i, s)| match s {
        Stmt::Reduce { len, reductions } => Some((i, *len, reductions)),
        _ => None,
    })?;
    let outputs: Vec<NodeId> = k.stmts[at..]
        .iter()
        .filter_map(|s| match s {
            Stmt::Write { len: l, outputs } if *l == len => Some(outputs),
            _ => None,
        })
        .flatten()
        .map(|&i| k.outputs[i])
        .collect();
    // The column nodes a value is computed from, itself included (row scalars and inputs end
    // the walk: they are read, not computed, in a column loop).
    let column_nodes = |from: &[NodeId]| {
        let mut seen: Vec<NodeId> = Vec::new();
        let mut todo = from.to_vec();
        while let Some(id) = todo.pop() {
            if seen.contains(&id) || !k.nodes.contains(&id) || k.row_scalars.contains(&id) {
                continue;
            }
            seen.push(id);
            todo.extend(graph.node(id).args.iter().copied());
        }
        seen
    };
    let written = column_nodes(&outputs);
    let kept = reductions.iter().map(|r| graph.node(*r).args[0]).find(|v| {
        written.contains(v)
            && column_nodes(&[*v]).iter().any(|n| {
                matches!(
                    graph.node(*n).op,
                    Op::Unary(
                        UnaryOp::Exp
                            | UnaryOp::Log
                            | UnaryOp::Tanh
                            | UnaryOp::Erf
                            | UnaryOp::Sin
                            | UnaryOp::Cos
                            | UnaryOp::Sigmoid
                            | UnaryOp::Silu
                            | UnaryOp::Gelu
                            | UnaryOp::GeluErf
                    ) | Op::Binary(BinaryOp::Pow)
                )
            })
    });
    kept.map(|v| (v, len))
}

fn size_ident(k: &KernelIr, graph: &Graph, id: NodeId) -> Ident {
    format_ident!("n{}", k.len_index(graph, id))
}

struct Cx<'a> {
    graph: &'a Graph,
    k: &'a KernelIr,
    strided: bool,
    /// A column value the last reduction pass keeps for the write pass, which would otherwise
    /// compute it again.
    stash: Option<NodeId>,
    /// The `cat` picks met while generating the current write loop.
    picks: RefCell<Vec<Pick>>,
    /// While generating one segment of a segmented write loop: see [`Cx::segmented_write`].
    segment: RefCell<Option<Segment>>,
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

fn local(id: NodeId) -> Ident {
    format_ident!("r{}", id.0)
}

impl Cx<'_> {
    fn c(&self) -> TokenStream {
        quote!(<<T as ::graph_runtime::__private::cpu::Elem>::C as ::graph_runtime::__private::cpu::Float>)
    }

    fn stmt(&self, s: &Stmt) -> TokenStream {
        match s {
            Stmt::RowScalars(nodes) => {
                let mut scope = Scope::default();
                let col = Col {
                    tokens: quote!(0usize),
                    key: "0".into(),
                    plus: Vec::new(),
                    minus: Vec::new(),
                };
                let lets = nodes.iter().map(|id| {
                    let v = self.op_value(&mut scope, *id, &col);
                    let stmts = std::mem::take(&mut scope.stmts);
                    let r = local(*id);
                    quote!(let #r = { #(#stmts)* #v };)
                });
                quote!(#(#lets)*)
            }
            Stmt::Reduce { len, reductions } => self.reduce(*len, reductions),
            Stmt::Write { len, outputs } => self.write(*len, outputs),
            Stmt::WriteRowScalars(outputs) => {
                let stores = outputs.iter().map(|&i| {
                    let o = format_ident!("o{}", i);
                    let r = local(self.k.outputs[i]);
                    quote!(#o[0] = ::core::mem::MaybeUninit::new(T::store(#r));)
                });
                quote!(#(#stores)*)
            }
        }
    }

    /// One loop over the columns writing `outputs`. Where `cat` picks a part by column, the
    /// loop is split into segments of columns within which every pick is the same, each a
    /// branch-free loop over slices of equal length: see [`Self::segmented_write`].
    fn write(&self, len: usize, outputs: &[usize]) -> TokenStream {
        let n = format_ident!("n{}", len);
        self.picks.borrow_mut().clear();
        let (stmts, stores) = self.write_body(outputs, &Col::at("c"), |o| quote!(#o[c - c0]));
        let picks = std::mem::take(&mut *self.picks.borrow_mut());
        if !self.strided && self.k.kind == graph_ir::KernelKind::Row && (1..=MAX_PICKS).contains(&picks.len())
        {
            return self.segmented_write(&n, outputs, &picks);
        }
        // Pointwise kernels may get a chunk of a row: outputs then start at `a.cols.start`.
        // Bounding the loop by `n` (the inputs' row length) lets the compiler drop bounds
        // checks and vectorise.
        let (range, first, count) = match self.k.kind {
            graph_ir::KernelKind::Pointwise => (
                quote!(c0..a.cols.end.min(#n)),
                quote!(a.cols.start),
                quote!(a.cols.end.min(#n) - c0),
            ),
            graph_ir::KernelKind::Row => (quote!(0..#n), quote!(0usize), quote!(#n)),
        };
        let bounds = outputs.iter().map(|&i| {
            let o = format_ident!("o{}", i);
            quote!(let #o: &mut [::core::mem::MaybeUninit<T>] = &mut #o[..#count];)
        });
        quote!({
            let c0: usize = #first;
            #(#bounds)*
            for c in #range {
                #(#stmts)*
                #(#stores)*
            }
        })
    }

    /// The statements computing `outputs` at `col`, and their stores (`at(o)` is the element
    /// output `o` is stored into).
    fn write_body(
        &self,
        outputs: &[usize],
        col: &Col,
        at: impl Fn(&Ident) -> TokenStream,
    ) -> (Vec<TokenStream>, Vec<TokenStream>) {
        let mut scope = Scope::default();
        let stores: Vec<TokenStream> = outputs
            .iter()
            .map(|&i| {
                let v = self.value(&mut scope, self.k.outputs[i], col);
                let o = at(&format_ident!("o{}", i));
                quote!(#o = ::core::mem::MaybeUninit::new(T::store(#v));)
            })
            .collect();
        (scope.stmts, stores)
    }

    /// The write loop of a row kernel whose `cat`s pick parts by column (rotate-half RoPE).
    ///
    /// Each pick is `col < n`, where `col` is the loop's column `c` plus and minus some sizes,
    /// so it holds for `c` below a bound computed once per row. The bounds cut the row into
    /// segments; in each, every pick is known, and one of the `2^picks` specialised loops runs
    /// it: no branch per column, and every input read through a slice exactly as long as the
    /// segment, so the loop vectorises like a pointwise one.
    fn segmented_write(&self, n: &Ident, outputs: &[usize], picks: &[Pick]) -> TokenStream {
        let count = picks.len();
        let bounds = picks.iter().map(|p| {
            let (size, plus, minus) = (&p.size, &p.plus, &p.minus);
            quote!((#size #(+ #minus)*).saturating_sub(0usize #(+ #plus)*).min(#n))
        });
        let arms = (0..1usize << picks.len()).map(|mask| {
            let decided: Vec<(String, bool)> = picks
                .iter()
                .enumerate()
                .map(|(i, p)| (p.key.clone(), mask >> i & 1 == 1))
                .collect();
            *self.segment.borrow_mut() = Some(Segment {
                decided,
                slices: Vec::new(),
            });
            let (stmts, stores) = self.write_body(outputs, &Col::at("c"), |o| {
                let s = format_ident!("{}s", o);
                quote!(#s[i])
            });
            let segment = self.segment.borrow_mut().take().expect("set above");
            let slices = segment.slices.iter().enumerate().map(|(k, (input, col))| {
                let x = format_ident!("x{}", input);
                let xs = format_ident!("xs{}", k);
                let (plus, minus) = (&col.plus, &col.minus);
                quote! {
                    let #xs: &[T] = &#x[(lo #(+ #plus)*) #(- #minus)*..][..len];
                }
            });
            let outs = outputs.iter().map(|&i| {
                let o = format_ident!("o{}", i);
                let os = format_ident!("o{}s", i);
                quote!(let #os: &mut [::core::mem::MaybeUninit<T>] = &mut #o[lo..hi];)
            });
            quote! {
                #mask => {
                    #(#slices)*
                    #(#outs)*
                    for i in 0..len {
                        let c = lo + i;
                        #(#stmts)*
                        #(#stores)*
                    }
                }
            }
        });
        let tests = (0..picks.len()).map(|i| quote!(((lo < bounds[#i]) as usize) << #i));
        quote!({
            let bounds: [usize; #count] = [#(#bounds),*];
            let mut lo = 0usize;
            while lo < #n {
                let hi = bounds.iter().fold(#n, |hi, &b| if b > lo && b < hi { b } else { hi });
                let len = hi - lo;
                match 0usize #(| #tests)* {
                    #(#arms)*
                    _ => ::core::unreachable!("one arm per combination of picks"),
                }
                lo = hi;
            }
        })
    }

    fn reduce(&self, len: usize, reductions: &[NodeId]) -> TokenStream {
        let c = self.c();
        let n = format_ident!("n{}", len);
        let mut scope = Scope::default();
        let col = Col::at("j");
        let values: Vec<TokenStream> = reductions
            .iter()
            .map(|r| self.value(&mut scope, self.graph.node(*r).args[0], &col))
            .collect();
        // The stashed value goes last in the tuple each column returns.
        let keep = self
            .stash
            .filter(|v| reductions.iter().any(|r| self.graph.node(*r).args[0] == *v));
        let kept = keep.map(|v| self.value(&mut scope, v, &col));
        let stmts = scope.stmts;
        let vs: Vec<Ident> = (0..reductions.len()).map(|i| format_ident!("v{}", i)).collect();
        let pattern: Vec<Ident> = vs
            .iter()
            .cloned()
            .chain(keep.map(|_| format_ident!("kept")))
            .collect();
        let values: Vec<TokenStream> = values.into_iter().chain(kept).collect();
        let keep_stmt = |at: TokenStream| keep.map(|_| quote!(#at = kept;));
        let ops: Vec<ReduceOp> = reductions
            .iter()
            .map(|r| match self.graph.node(*r).op {
                Op::Reduce(op, _) => op,
                _ => unreachable!("reduce statements hold reductions"),
            })
            .collect();
        let identity = |op: &ReduceOp| match op {
            ReduceOp::Sum | ReduceOp::Mean => quote!(#c::ZERO),
            ReduceOp::Max => quote!(#c::NEG_INFINITY),
            ReduceOp::Min => quote!(#c::INFINITY),
        };
        // One accumulator array per reduction and pass: a wide pass for long rows (LANES
        // independent additions in flight hide their latency), then a narrow one so rows of a
        // few dozen columns still vectorise; a scalar tail adds into the narrow array's lane 0.
        // Each array has one width, so the compiler keeps it in vector registers.
        let passes = [("w", LANES), ("n", NARROW_LANES)];
        let accs = |pass: &str| -> Vec<Ident> {
            (0..reductions.len())
                .map(|i| format_ident!("acc{}_{}", pass, i))
                .collect()
        };
        let step = |accs: &[Ident], lane: TokenStream| -> Vec<TokenStream> {
            ops.iter()
                .zip(accs.iter().zip(&vs))
                .map(|(op, (acc, v))| match op {
                    ReduceOp::Sum | ReduceOp::Mean => quote!(#acc[#lane] = #acc[#lane] + #v;),
                    // The select form compiles to one max/min instruction per lane.
                    ReduceOp::Max => quote!(#acc[#lane] = if #v > #acc[#lane] { #v } else { #acc[#lane] };),
                    ReduceOp::Min => quote!(#acc[#lane] = if #v < #acc[#lane] { #v } else { #acc[#lane] };),
                })
                .collect()
        };
        // Without index remapping (narrow/cat), every column input is read at `j`: the passes
        // then hand the body fixed-length chunks of the inputs, whose indices need no checks, so
        // the body (exp included) vectorises.
        let remaps = self.k.remaps(self.graph);
        let columns: Vec<Ident> = (0..self.k.inputs.len())
            .filter(|i| self.k.inputs[*i].1 == Access::Column)
            .map(|i| format_ident!("x{}", i))
            .collect();
        let chunked = !self.strided && !remaps;
        let tail = step(&accs("n"), quote!(0));
        let ct = quote!(<T as ::graph_runtime::__private::cpu::Elem>::C);
        let stash_row = keep.map(|_| {
            quote! {
                let stash: &mut [#ct] = &mut stash_row[..#n];
            }
        });
        let loops = passes.map(|(pass, width)| {
            let accs = accs(pass);
            let main = step(&accs, quote!(l));
            if chunked {
                let widths = std::iter::repeat_n(width, columns.len());
                let stash_chunk = keep.map(|_| quote!(let stash_chunk = &mut stash[jj..jj + #width];));
                let keep_chunk = keep_stmt(quote!(stash_chunk[l]));
                quote! {
                    while jj + #width <= #n {
                        #(let #columns: &[T] = &#columns[jj..jj + #widths];)*
                        #stash_chunk
                        for l in 0..#width {
                            let (#(#pattern,)*) = chunk(l, #(#columns),*);
                            #(#main)*
                            #keep_chunk
                        }
                        jj += #width;
                    }
                }
            } else {
                let keep_body = keep_stmt(quote!(stash[jj + l]));
                quote! {
                    while jj + #width <= #n {
                        for l in 0..#width {
                            let (#(#pattern,)*) = body(jj + l);
                            #(#main)*
                            #keep_body
                        }
                        jj += #width;
                    }
                }
            }
        });
        let [wide, narrow] = loops;
        let keep_tail = keep_stmt(quote!(stash[jj]));
        let (accw, accn) = (accs("w"), accs("n"));
        let combine = |op: &ReduceOp, a: TokenStream, b: TokenStream| match op {
            ReduceOp::Sum | ReduceOp::Mean => quote!(#a + #b),
            // As in the lanes: a NaN is never selected (IEEE maxNum/minNum).
            ReduceOp::Max => quote!(#a.max(#b)),
            ReduceOp::Min => quote!(#a.min(#b)),
        };
        let init_wide = ops.iter().map(identity);
        // The wide lanes fold lane-aligned into the narrow ones (whole vector registers added
        // together), and the narrow lanes in order: a shuffling fold here would make the
        // compiler pack the accumulators in pairs inside the loop.
        let (lanes, nl) = (LANES, NARROW_LANES);
        let merge = ops.iter().zip(accw.iter().zip(&accn)).map(|(op, (w, nw))| {
            let parts: Vec<TokenStream> = (0..LANES / NARROW_LANES)
                .map(|k| {
                    let at = k * NARROW_LANES;
                    quote!(#w[l + #at])
                })
                .collect();
            let all = parts
                .into_iter()
                .reduce(|a, b| combine(op, a, b))
                .expect("LANES is a multiple of NARROW_LANES");
            quote!(let mut #nw = [#c::ZERO; #nl]; for l in 0..#nl { #nw[l] = #all; })
        });
        let finish = ops.iter().zip(&accn).zip(reductions).map(|((op, nw), r)| {
            let out = local(*r);
            let all = combine(op, quote!(s), quote!(*x));
            let all = quote!(#nw[1..].iter().fold(#nw[0], |s, x| #all));
            match op {
                ReduceOp::Mean => quote!(let #out = #all / #c::from_usize(#n);),
                _ => quote!(let #out = #all;),
            }
        });
        let chunk = chunked
            .then(|| quote!(let chunk = |j: usize, #(#columns: &[T]),*| { #(#stmts)* (#(#values,)*) };));
        quote! {
            let body = |j: usize| { #(#stmts)* (#(#values,)*) };
            #chunk
            #stash_row
            let mut jj = 0usize;
            #(let mut #accw = [#init_wide; #lanes];)*
            #wide
            #(#merge)*
            #narrow
            while jj < #n {
                let (#(#pattern,)*) = body(jj);
                #(#tail)*
                #keep_tail
                jj += 1;
            }
            #(#finish)*
        }
    }

    /// The value of `id` at column `col`, as an identifier bound in `scope`.
    fn value(&self, scope: &mut Scope, id: NodeId, col: &Col) -> TokenStream {
        if self.k.row_scalars.contains(&id) && self.k.nodes.contains(&id) {
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

    fn load(&self, i: usize, col: &Col) -> TokenStream {
        let x = format_ident!("x{}", i);
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
    fn op_value(&self, scope: &mut Scope, id: NodeId, col: &Col) -> TokenStream {
        let node = self.graph.node(id);
        let c = self.c();
        let arg = |k: usize, scope: &mut Scope| self.value(scope, node.args[k], col);
        match node.op {
            Op::Unary(u) => {
                let x = arg(0, scope);
                match u {
                    UnaryOp::Neg => quote!(-#x),
                    // Computed with fused multiply-adds in the copy compiled for them.
                    UnaryOp::Exp | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Silu | UnaryOp::Gelu => {
                        let m = format_ident!("{}_with", method(u));
                        quote!(#x.#m::<FMA>())
                    }
                    _ => {
                        let m = method(u);
                        quote!(#x.#m())
                    }
                }
            }
            Op::Binary(b) => {
                let (x, y) = (arg(0, scope), arg(1, scope));
                match b {
                    BinaryOp::Add => quote!(#x + #y),
                    BinaryOp::Sub => quote!(#x - #y),
                    BinaryOp::Mul => quote!(#x * #y),
                    BinaryOp::Div => quote!(#x / #y),
                    BinaryOp::Pow => quote!(#x.powf(#y)),
                    BinaryOp::Maximum => quote!(#x.max(#y)),
                    BinaryOp::Minimum => quote!(#x.min(#y)),
                    BinaryOp::Eq => quote!(#c::flag(#x == #y)),
                    BinaryOp::Ne => quote!(#c::flag(#x != #y)),
                    BinaryOp::Lt => quote!(#c::flag(#x < #y)),
                    BinaryOp::Le => quote!(#c::flag(#x <= #y)),
                    BinaryOp::Gt => quote!(#c::flag(#x > #y)),
                    BinaryOp::Ge => quote!(#c::flag(#x >= #y)),
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
                let v = v.value();
                quote!(#c::from_f64(#v))
            }
            Op::Reduce(..) => unreachable!("reductions are row scalars"),
            op => unreachable!("{op:?} is not fused"),
        }
    }

    /// `cat(parts)` at `col`: the part whose range holds the column, at the column less the
    /// lengths before it.
    fn cat(&self, scope: &mut Scope, parts: &[NodeId], col: &Col) -> TokenStream {
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

fn method(u: UnaryOp) -> Ident {
    let name = match u {
        UnaryOp::Neg => "neg",
        UnaryOp::Abs => "abs",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "ln",
        UnaryOp::Sqrt => "sqrt",
        UnaryOp::Rsqrt => "rsqrt",
        UnaryOp::Recip => "recip",
        UnaryOp::Sqr => "sqr",
        UnaryOp::Sin => "sin",
        UnaryOp::Cos => "cos",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Erf => "erf",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Silu => "silu",
        UnaryOp::Gelu => "gelu",
        UnaryOp::GeluErf => "gelu_erf",
        UnaryOp::Relu => "relu",
    };
    Ident::new(name, Span::call_site())
}
