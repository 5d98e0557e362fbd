//! The loops of a CPU kernel: the statements of a row, column writes (split into segments where
//! `cat`s pick parts by column), and reductions in independent lanes.

use graph_ir::cpu::{LANES, NARROW_LANES, PIPELINE_BLOCK};
use graph_ir::{Access, BinaryCpuForm, Op, ReduceCpuStep, ReduceFinish, ReduceInfo};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use super::{local, operator, Col, Cx, Pick, Scope, Segment, MAX_PICKS};
use crate::ir::NodeId;
use crate::kernel::Stmt;

impl Cx<'_> {
    /// The column inputs whose rows have `sizes[len]` columns: those a loop over that length
    /// reads, and may cut into chunks. A kernel's inputs may differ in length (a reduction over
    /// `[N, 2 * N]` next to a write of `[N, D]`): cutting the others by this loop's bounds
    /// would index past their rows.
    fn columns_of(&self, len: usize) -> impl Iterator<Item = usize> + '_ {
        self.k
            .inputs_read(Access::Column)
            .filter(move |&i| self.k.len_index(self.graph, self.k.inputs[i].0) == len)
    }

    pub(super) fn stmt(&self, s: &Stmt) -> TokenStream {
        match s {
            Stmt::RowScalars(nodes) => {
                let mut scope = Scope::default();
                let col = Col {
                    tokens: quote!(0usize),
                    key: "0".into(),
                    plus: Vec::new(),
                    minus: Vec::new(),
                };
                // One flat scope: the memo may hand a later node a value an earlier node's
                // statements bound, so those statements must stay visible (no `{ }` per node).
                let lets = nodes.iter().map(|id| {
                    let v = self.op_value(&mut scope, *id, &col);
                    let stmts = std::mem::take(&mut scope.stmts);
                    let r = local(*id);
                    quote!(#(#stmts)* let #r = #v;)
                });
                quote!(#(#lets)*)
            }
            Stmt::Reduce { len, reductions, .. } => self.reduce(*len, reductions, None),
            Stmt::Write { len, outputs, .. } => self.write(*len, outputs),
            Stmt::Accumulate { .. } => unreachable!("column kernels have a function of their own"),
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
    pub(super) fn write(&self, len: usize, outputs: &[usize]) -> TokenStream {
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
            graph_ir::KernelKind::Column { .. } => unreachable!("column kernels accumulate"),
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

    /// Writes `outputs` of the previous row inside a pipelined reduction (see
    /// [`super::pipelined`]): columns `start..end`, or, without an end, from `start` to the
    /// row's end. The previous row's inputs are `xc{i}` (this row's are `x{i}`); its outputs and
    /// scratch row are bound to its row length.
    pub(super) fn pipelined_write(
        &self,
        len: usize,
        outputs: &[usize],
        start: TokenStream,
        end: Option<TokenStream>,
    ) -> TokenStream {
        let n = format_ident!("n{}", len);
        self.inputs.set("xc");
        let (stmts, stores) = self.write_body(outputs, &Col::at("c"), |o| quote!(#o[c]));
        self.inputs.set("x");
        let Some(end) = end else {
            return quote!(for c in #start..#n { #(#stmts)* #(#stores)* });
        };
        // Every slice exactly as long as the loop: indices need no checks, and it vectorises.
        let columns = self.columns_of(len).map(|i| format_ident!("xc{}", i));
        let outs = outputs.iter().map(|i| format_ident!("o{}", i));
        let stash = self.stash.map(|_| quote!(let stash = &stash[#start..#end];));
        quote!({
            #(let #columns: &[T] = &#columns[#start..#end];)*
            #(let #outs: &mut [::core::mem::MaybeUninit<T>] = &mut #outs[#start..#end];)*
            #stash
            for c in 0..#end - #start {
                #(#stmts)*
                #(#stores)*
            }
        })
    }

    /// The statements computing `outputs` at `col`, and their stores (`at(o)` is the element
    /// output `o` is stored into).
    pub(super) fn write_body(
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

    /// A column kernel's loop body at column `c`: the statements computing each output's
    /// reduction argument, and each accumulator's update by the reduction's combine (a max or
    /// min that meets a NaN keeps it, as the row reductions do).
    pub(super) fn accumulate_body(
        &self,
        outputs: &[usize],
        values: &[NodeId],
    ) -> (Vec<TokenStream>, Vec<TokenStream>) {
        let mut scope = Scope::default();
        let col = Col::at("c");
        let updates: Vec<TokenStream> = outputs
            .iter()
            .zip(values)
            .map(|(&i, &value)| {
                let r = self.k.outputs[i];
                let Op::Reduce(op, _) = self.graph.node(r).op else {
                    unreachable!("a column kernel's outputs are its reductions")
                };
                let v = self.value(&mut scope, value, &col);
                let acc = format_ident!("acc{}", i);
                let next = match op.info().combine.info().cpu {
                    BinaryCpuForm::Infix(o) => {
                        let o = operator(o);
                        quote!(#acc[c] #o #v)
                    }
                    BinaryCpuForm::Method(m) => {
                        let m = Ident::new(m, Span::call_site());
                        quote!(#acc[c].#m(#v))
                    }
                    BinaryCpuForm::Compare(_) => unreachable!("no reduction combines by comparing"),
                };
                quote!(#acc[c] = #next;)
            })
            .collect();
        (scope.stmts, updates)
    }

    /// The write loop of a row kernel whose `cat`s pick parts by column (rotate-half RoPE).
    ///
    /// Each pick is `col < n`, where `col` is the loop's column `c` plus and minus some sizes,
    /// so it holds for `c` below a bound computed once per row. The bounds cut the row into
    /// segments; in each, every pick is known, and one of the `2^picks` specialised loops runs
    /// it: no branch per column, and every input read through a slice exactly as long as the
    /// segment, so the loop vectorises like a pointwise one.
    pub(super) fn segmented_write(&self, n: &Ident, outputs: &[usize], picks: &[Pick]) -> TokenStream {
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

    /// The loop accumulating `reductions` over a row of `sizes[len]` columns, binding each
    /// reduction's value. With `interleaved`, the wide pass also writes those outputs of the
    /// previous row (see [`Self::pipelined_write`]), block by block, and the columns it leaves
    /// are written after the reduction.
    pub(super) fn reduce(
        &self,
        len: usize,
        reductions: &[NodeId],
        interleaved: Option<&[usize]>,
    ) -> TokenStream {
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
        let ops: Vec<&ReduceInfo> = reductions
            .iter()
            .map(|r| match self.graph.node(*r).op {
                Op::Reduce(op, _) => op.info(),
                _ => unreachable!("reduce statements hold reductions"),
            })
            .collect();
        let identity = |op: &&ReduceInfo| {
            let v = Ident::new(op.cpu.identity, Span::call_site());
            quote!(#c::#v)
        };
        let combine = |op: &ReduceInfo, a: TokenStream, b: TokenStream| match op.combine.info().cpu {
            BinaryCpuForm::Infix(o) => {
                let o = operator(o);
                quote!(#a #o #b)
            }
            BinaryCpuForm::Method(m) => {
                let m = Ident::new(m, Span::call_site());
                quote!(#c::#m(#a, #b))
            }
            BinaryCpuForm::Compare(_) => unreachable!("no reduction combines by a comparison"),
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
        // Max and min propagate NaN (as PyTorch's) by keeping it apart: `nan{pass}_{i}` holds 0,
        // or a NaN met in that lane, which the result becomes at the end. The order select then
        // compiles to one max/min instruction per lane and the NaN select to two, where one
        // select taking a NaN in and keeping it vectorises badly. Counted with callgrind on
        // 1024x1024 f32 rows (AVX2): a lone row max runs 1.55x the instructions of the NaN-skipping
        // kernel this replaced (4.5x with the single select), softmax 1.065x (1.09x).
        let tracks_nan = |op: &ReduceInfo| matches!(op.cpu.step, ReduceCpuStep::Select(_));
        let nans = |pass: &str| -> Vec<Ident> {
            (0..reductions.len())
                .map(|i| format_ident!("nan{}_{}", pass, i))
                .collect()
        };
        let step = |pass: &str, lane: TokenStream| -> Vec<TokenStream> {
            let (accs, nans) = (accs(pass), nans(pass));
            ops.iter()
                .zip(accs.iter().zip(&nans).zip(&vs))
                .map(|(op, ((acc, nan), v))| {
                    let keep = quote!(#nan[#lane] = if #v != #v { #v } else { #nan[#lane] };);
                    match op.cpu.step {
                        ReduceCpuStep::Combine => {
                            let sum = combine(op, quote!(#acc[#lane]), quote!(#v));
                            quote!(#acc[#lane] = #sum;)
                        }
                        ReduceCpuStep::Select(cmp) => {
                            let cmp = operator(cmp);
                            quote!(#acc[#lane] = if #v #cmp #acc[#lane] { #v } else { #acc[#lane] }; #keep)
                        }
                    }
                })
                .collect()
        };
        // Without index remapping (narrow/cat), every column input is read at `j`: the passes
        // then hand the body fixed-length chunks of the inputs, whose indices need no checks, so
        // the body (exp included) vectorises.
        let remaps = self.k.remaps;
        let columns: Vec<Ident> = self.columns_of(len).map(|i| format_ident!("x{}", i)).collect();
        let chunked = !self.strided && !remaps;
        let tail = step("n", quote!(0));
        let ct = quote!(<T as ::graph_runtime::__private::cpu::Elem>::C);
        let stash_row = keep.map(|_| {
            quote! {
                let stash: &mut [#ct] = &mut stash_row[..#n];
            }
        });
        let block = PIPELINE_BLOCK;
        let loops = passes.map(|(pass, width)| {
            let main = step(pass, quote!(l));
            if chunked {
                let widths = std::iter::repeat_n(width, columns.len());
                let stash_chunk = keep.map(|_| quote!(let stash_chunk = &mut stash[jj..jj + #width];));
                let keep_chunk = keep_stmt(quote!(stash_chunk[l]));
                let lanes = quote! {
                    #(let #columns: &[T] = &#columns[jj..jj + #widths];)*
                    #stash_chunk
                    for l in 0..#width {
                        let (#(#pattern,)*) = chunk(l, #(#columns),*);
                        #(#main)*
                        #keep_chunk
                    }
                    jj += #width;
                };
                match interleaved.filter(|_| width == LANES) {
                    // The wide pass, in blocks of columns: each block's reduction, then the
                    // previous row's write of the same columns (a loop of its own, which the
                    // compiler vectorises as it does a plain write loop).
                    Some(outputs) => {
                        let write = self.pipelined_write(len, outputs, quote!(block), Some(quote!(jj)));
                        quote! {
                            while jj + #width <= #n {
                                let block = jj;
                                let stop = (jj + #block).min(#n);
                                while jj + #width <= stop {
                                    #lanes
                                }
                                #write
                            }
                        }
                    }
                    None => quote! {
                        while jj + #width <= #n {
                            #lanes
                        }
                    },
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
        let (nanw, nann) = (nans("w"), nans("n"));
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
        // The NaN lanes hold 0 or NaN: summed, NaN if any is.
        let merge_nan = ops
            .iter()
            .zip(nanw.iter().zip(&nann))
            .filter(|(op, _)| tracks_nan(op))
            .map(|(_, (w, nw))| {
                let parts = (0..LANES / NARROW_LANES).map(|k| {
                    let at = k * NARROW_LANES;
                    quote!(#w[l + #at])
                });
                quote!(let mut #nw = [#c::ZERO; #nl]; for l in 0..#nl { #nw[l] = #(#parts)+*; })
            });
        let init_nan = ops
            .iter()
            .zip(&nanw)
            .filter(|(op, _)| tracks_nan(op))
            .map(|(_, w)| w);
        let finish = ops
            .iter()
            .zip(accn.iter().zip(&nann))
            .zip(reductions)
            .map(|((op, (nw, nan)), r)| {
                let out = local(*r);
                let all = combine(op, quote!(s), quote!(*x));
                let all = quote!(#nw[1..].iter().fold(#nw[0], |s, x| #all));
                let value = match op.finish {
                    ReduceFinish::Total => all,
                    ReduceFinish::DivideByCount => quote!(#all / #c::from_usize(#n)),
                };
                let nan_check = tracks_nan(op).then(|| {
                    quote! {
                        let #nan = #nan.iter().fold(#c::ZERO, |s, x| s + *x);
                        let #out = if #nan != #nan { #nan } else { #out };
                    }
                });
                quote!(let #out = #value; #nan_check)
            });
        // The previous row's last columns, written before this row's values are bound (its
        // write may read the previous row's value of these reductions).
        let tail_write = interleaved.map(|outputs| self.pipelined_write(len, outputs, quote!(wrote), None));
        let wrote = interleaved.map(|_| quote!(let wrote = jj;));
        let chunk = chunked
            .then(|| quote!(let chunk = |j: usize, #(#columns: &[T]),*| { #(#stmts)* (#(#values,)*) };));
        quote! {
            let body = |j: usize| { #(#stmts)* (#(#values,)*) };
            #chunk
            #stash_row
            let mut jj = 0usize;
            #(let mut #accw = [#init_wide; #lanes];)*
            #(let mut #init_nan = [#c::ZERO; #lanes];)*
            #wide
            #wrote
            #(#merge)*
            #(#merge_nan)*
            #narrow
            while jj < #n {
                let (#(#pattern,)*) = body(jj);
                #(#tail)*
                #keep_tail
                jj += 1;
            }
            #tail_write
            #(#finish)*
        }
    }
}
