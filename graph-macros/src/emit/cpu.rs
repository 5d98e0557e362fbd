//! The CPU dialect: one generic Rust function per kernel and variant (contiguous inputs, or any
//! column strides), computing one row. rustc monomorphises it per storage type and vectorises the
//! contiguous loops; reductions accumulate in 8 lanes so they vectorise without reassociation
//! flags.

use std::collections::HashMap;

use graph_ir::{Access, BinaryOp, DType, Op, ReduceOp, UnaryOp};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Graph, NodeId};
use crate::kernel::{KernelIr, Stmt};

/// Reductions accumulate in this many independent lanes.
const LANES: usize = 8;

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
    let cx = Cx { graph, k, strided };
    let mut prologue = Vec::new();
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        let x = format_ident!("x{}", i);
        let s = format_ident!("s{}", i);
        // Scalars and row scalars become locals: a load inside a loop that writes an output would
        // be repeated every iteration (the compiler cannot rule out aliasing) and block vectorising.
        let v = format_ident!("in{}", i);
        match access {
            Access::Scalar => prologue.push(quote!(let #v = a.scalars[#i];)),
            Access::RowScalar => prologue.push(quote!(let #v = a.ins[#i][0].load();)),
            Access::Column => {
                prologue.push(quote!(let #x: &[T] = a.ins[#i];));
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
    if !strided {
        // Bound each contiguous input to its row so indexing by column needs no checks.
        for (i, (id, access)) in k.inputs.iter().enumerate() {
            if *access == Access::Column {
                let x = format_ident!("x{}", i);
                let n = size_ident(k, graph, *id);
                prologue.push(quote!(let #x: &[T] = &#x[..#n];));
            }
        }
    }
    let outs: Vec<Ident> = (0..k.outputs.len()).map(|i| format_ident!("o{}", i)).collect();
    let body: Vec<TokenStream> = k.stmts.iter().map(|s| cx.stmt(s)).collect();
    let p = quote!(::graph_runtime::__private::cpu);
    quote! {
        #[allow(unused_variables, unused_mut, non_snake_case, clippy::all)]
        #[inline(never)]
        fn #name<T: #p::Elem>(a: &#p::RowArgs<'_, T>, outs: &mut [&mut [::core::mem::MaybeUninit<T>]]) {
            use #p::{Elem as _, Float as _};
            let [#(#outs),*] = outs else {
                ::core::unreachable!("the runtime passes one row per output")
            };
            #(#prologue)*
            #(#body)*
        }
    }
}

fn size_ident(k: &KernelIr, graph: &Graph, id: NodeId) -> Ident {
    let last = graph
        .node(id)
        .ty
        .shape()
        .and_then(|s| s.last().copied())
        .unwrap_or(graph_ir::Dim::lit(1));
    format_ident!("n{}", k.size_index(&last))
}

struct Cx<'a> {
    graph: &'a Graph,
    k: &'a KernelIr,
    strided: bool,
}

/// A column index expression and its canonical key, for memoisation.
#[derive(Clone)]
struct Col {
    tokens: TokenStream,
    key: String,
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
            Stmt::Write { len, outputs } => {
                let n = format_ident!("n{}", len);
                let mut scope = Scope::default();
                let col = Col {
                    tokens: quote!(c),
                    key: "c".into(),
                };
                let stores: Vec<TokenStream> = outputs
                    .iter()
                    .map(|&i| {
                        let v = self.value(&mut scope, self.k.outputs[i], &col);
                        let o = format_ident!("o{}", i);
                        quote!(#o[c - c0] = ::core::mem::MaybeUninit::new(T::store(#v));)
                    })
                    .collect();
                let stmts = scope.stmts;
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

    fn reduce(&self, len: usize, reductions: &[NodeId]) -> TokenStream {
        let c = self.c();
        let n = format_ident!("n{}", len);
        let mut scope = Scope::default();
        let col = Col {
            tokens: quote!(j),
            key: "j".into(),
        };
        let values: Vec<TokenStream> = reductions
            .iter()
            .map(|r| self.value(&mut scope, self.graph.node(*r).args[0], &col))
            .collect();
        let stmts = scope.stmts;
        let accs: Vec<Ident> = (0..reductions.len()).map(|i| format_ident!("acc{}", i)).collect();
        let vs: Vec<Ident> = (0..reductions.len()).map(|i| format_ident!("v{}", i)).collect();
        let ops: Vec<ReduceOp> = reductions
            .iter()
            .map(|r| match self.graph.node(*r).op {
                Op::Reduce(op, _) => op,
                _ => unreachable!("reduce statements hold reductions"),
            })
            .collect();
        let init = ops.iter().map(|op| {
            let identity = match op {
                ReduceOp::Sum | ReduceOp::Mean => quote!(#c::ZERO),
                ReduceOp::Max => quote!(#c::NEG_INFINITY),
                ReduceOp::Min => quote!(#c::INFINITY),
            };
            quote!([#identity; #LANES])
        });
        let step = |lane: TokenStream| -> Vec<TokenStream> {
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
        let main = step(quote!(l));
        let tail = step(quote!(0));
        let finish = ops.iter().zip(&accs).zip(reductions).map(|((op, acc), r)| {
            let out = local(*r);
            let combine = match op {
                ReduceOp::Sum | ReduceOp::Mean => quote!(#acc.iter().fold(#c::ZERO, |s, x| s + *x)),
                ReduceOp::Max => quote!(#acc.iter().fold(#c::NEG_INFINITY, |s, x| s.max(*x))),
                ReduceOp::Min => quote!(#acc.iter().fold(#c::INFINITY, |s, x| s.min(*x))),
            };
            match op {
                ReduceOp::Mean => quote!(let #out = #combine / #c::from_usize(#n);),
                _ => quote!(let #out = #combine;),
            }
        });
        // Without index remapping (narrow/cat), every column input is read at `j`: the main loop
        // then hands the body 8-element chunks of the inputs, whose indices need no checks, so
        // the body (exp included) vectorises.
        let remaps = self
            .k
            .nodes
            .iter()
            .any(|n| matches!(self.graph.node(*n).op, Op::Narrow(..) | Op::Cat(_)));
        let columns: Vec<Ident> = (0..self.k.inputs.len())
            .filter(|i| self.k.inputs[*i].1 == Access::Column)
            .map(|i| format_ident!("x{}", i))
            .collect();
        let lanes = std::iter::repeat_n(LANES, columns.len());
        let main_loop = if self.strided || remaps {
            quote! {
                while jj + #LANES <= #n {
                    for l in 0..#LANES {
                        let (#(#vs,)*) = body(jj + l);
                        #(#main)*
                    }
                    jj += #LANES;
                }
            }
        } else {
            quote! {
                let chunk = |j: usize, #(#columns: &[T]),*| { #(#stmts)* (#(#values,)*) };
                while jj + #LANES <= #n {
                    #(let #columns: &[T] = &#columns[jj..jj + #lanes];)*
                    for l in 0..#LANES {
                        let (#(#vs,)*) = chunk(l, #(#columns),*);
                        #(#main)*
                    }
                    jj += #LANES;
                }
            }
        };
        quote! {
            #(let mut #accs = #init;)*
            let body = |j: usize| { #(#stmts)* (#(#values,)*) };
            let mut jj = 0usize;
            #main_loop
            while jj < #n {
                let (#(#vs,)*) = body(jj);
                #(#tail)*
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
        let mut inner = Scope {
            stmts: Vec::new(),
            memo: scope.memo.clone(),
        };
        let a = self.value(&mut inner, *first, col);
        let a_stmts = inner.stmts;
        if rest.is_empty() {
            return quote!({ #(#a_stmts)* #a });
        }
        let n = size_ident(self.k, self.graph, *first);
        let shifted = shift(col, &n, "-");
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
    let tokens = if sign == "+" {
        quote!((#c + #n))
    } else {
        quote!((#c - #n))
    };
    Col {
        tokens,
        key: format!("({}{sign}{n})", col.key),
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
