//! The Rust items of one function: the public function itself and a module holding its static
//! graph (`name::GRAPH`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::syntax::{Function, ParamType, ReturnType, ScalarKind};

/// The signature of the generated function, with `body` as its block.
fn signature(f: &Function, body: TokenStream) -> TokenStream {
    let attrs = &f.attrs;
    let vis = &f.vis;
    let name = &f.name;
    let params = f.params.iter().map(|p| {
        let n = &p.name;
        match &p.ty {
            ParamType::Tensor(_) => quote!(#n: &::graph_runtime::Tensor),
            ParamType::Scalar(s) if s.kind == ScalarKind::F32 => quote!(#n: f32),
            ParamType::Scalar(_) => quote!(#n: f64),
        }
    });
    let ret = match &f.ret {
        ReturnType::Single(_) => quote!(::graph_runtime::Tensor),
        ReturnType::Tuple(items) => {
            let t = items.iter().map(|_| quote!(::graph_runtime::Tensor));
            quote!((#(#t,)*))
        }
    };
    quote! {
        #(#attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #name(#(#params),*) -> ::graph_runtime::Result<#ret> #body
    }
}

/// The function and its graph module. `graph` is the `Graph { .. }` expression.
pub fn function(f: &Function, graph: TokenStream) -> TokenStream {
    let name = &f.name;
    let vis = &f.vis;
    let tensors = f
        .params
        .iter()
        .filter(|p| matches!(p.ty, ParamType::Tensor(_)))
        .map(|p| &p.name);
    let scalars = f
        .params
        .iter()
        .filter(|p| matches!(p.ty, ParamType::Scalar(_)))
        .map(|p| &p.name);
    let n = f.ret.items().len();
    let outs: Vec<_> = (0..n).map(|i| format_ident!("__out{}", i)).collect();
    let value = match &f.ret {
        ReturnType::Single(_) => quote!(#(#outs)*),
        ReturnType::Tuple(_) => quote!((#(#outs,)*)),
    };
    let body = quote!({
        let [#(#outs),*] = ::graph_runtime::__private::run::<#n>(
            &#name::GRAPH,
            &[#(#tensors),*],
            &[#(::core::convert::From::from(#scalars)),*],
        )?;
        ::core::result::Result::Ok(#value)
    });
    let item = signature(f, body);
    let doc =
        format!("The static graph of [`{name}()`]: print it with `{name}::GRAPH.to_text()` or `.to_dot()`.");
    quote! {
        #item

        #[doc = #doc]
        #vis mod #name {
            /// The checked, optimised and planned graph.
            pub static GRAPH: ::graph_runtime::Graph = #graph;
        }
    }
}

/// A well-typed stand-in for a function whose body had errors, so the user's calls to it do not
/// add errors of their own.
pub fn placeholder(f: &Function) -> TokenStream {
    let item = signature(
        f,
        quote!({ ::core::unreachable!("lazy_graph reported errors for this function") }),
    );
    quote! {
        #[allow(unused_variables)]
        #item
    }
}
