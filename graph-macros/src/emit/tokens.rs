//! graph-ir values as tokens: expressions of the same values in `graph_runtime::__private`.

use graph_ir::{BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

pub fn dim(d: &Dim) -> TokenStream {
    let (num, den, factors) = d.parts();
    quote!(::graph_runtime::__private::Dim::from_parts(#num, #den, [#(#factors),*]))
}

fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

pub fn dtype_tokens(t: DType) -> TokenStream {
    let v = ident(&format!("{t:?}"));
    quote!(::graph_runtime::__private::DType::#v)
}

pub fn op(op: &Op) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    match op {
        Op::Input(i) => quote!(#p::Op::Input(#i)),
        Op::Scalar(i) => quote!(#p::Op::Scalar(#i)),
        Op::Const(v) => {
            let bits = v.bits();
            quote!(#p::Op::Const(#p::Lit::from_bits(#bits)))
        }
        Op::Size(d) => {
            let d = dim(d);
            quote!(#p::Op::Size(#d))
        }
        Op::Unary(u) => {
            let v = ident(&format!("{u:?}"));
            let _: UnaryOp = *u;
            quote!(#p::Op::Unary(#p::UnaryOp::#v))
        }
        Op::Binary(b) => {
            let v = ident(&format!("{b:?}"));
            let _: BinaryOp = *b;
            quote!(#p::Op::Binary(#p::BinaryOp::#v))
        }
        Op::Where => quote!(#p::Op::Where),
        Op::Reduce(r, axis) => {
            let v = ident(&format!("{r:?}"));
            let _: ReduceOp = *r;
            quote!(#p::Op::Reduce(#p::ReduceOp::#v, #axis))
        }
        Op::Matmul => quote!(#p::Op::Matmul),
        Op::Transpose(a, b) => quote!(#p::Op::Transpose(#a, #b)),
        Op::Reshape => quote!(#p::Op::Reshape),
        Op::Broadcast => quote!(#p::Op::Broadcast),
        Op::Narrow(axis, start) => {
            let start = dim(start);
            quote!(#p::Op::Narrow(#axis, #start))
        }
        Op::Cat(axis) => quote!(#p::Op::Cat(#axis)),
        Op::Cast(t) => {
            let t = dtype_tokens(*t);
            quote!(#p::Op::Cast(#t))
        }
    }
}
