//! The Rust items of one function: the function itself, its asynchronous twin `name_async`, and a
//! module holding its static graph (`name::GRAPH`) and, where the macro could derive it, the graph
//! of its backward (`name::BACKWARD`).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::syntax::{Function, ParamType, ReturnType, ScalarKind};

/// The parameters of both generated functions: tensors by reference, scalars by value.
fn params(f: &Function) -> impl Iterator<Item = TokenStream> + '_ {
    f.params.iter().enumerate().map(|(i, p)| {
        // A repeated name only reaches a placeholder, `check` having reported it: there it is `_`,
        // so rustc adds no "bound more than once" error of its own.
        let repeated = f.params[..i].iter().any(|q| q.name == p.name);
        let name = &p.name;
        let n = if repeated { quote!(_) } else { quote!(#name) };
        match &p.ty {
            ParamType::Tensor(_) => quote!(#n: &::graph_runtime::Tensor),
            ParamType::Scalar(s) if s.kind == ScalarKind::F32 => quote!(#n: f32),
            ParamType::Scalar(_) => quote!(#n: f64),
        }
    })
}

/// What both generated functions produce on success: a tensor, or a tuple of them.
fn output(f: &Function) -> TokenStream {
    match &f.ret {
        ReturnType::Single(_) => quote!(::graph_runtime::Tensor),
        ReturnType::Tuple(items) => {
            let t = items.iter().map(|_| quote!(::graph_runtime::Tensor));
            quote!((#(#t,)*))
        }
    }
}

/// The signature of the generated function, with `body` as its block.
fn signature(f: &Function, body: TokenStream) -> TokenStream {
    let attrs = &f.attrs;
    let vis = &f.vis;
    let name = &f.name;
    let params = params(f);
    let ret = output(f);
    quote! {
        #(#attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #name(#(#params),*) -> ::graph_runtime::Result<#ret> #body
    }
}

/// The name of the asynchronous twin, spanned at the user's function name.
fn async_name(f: &Function) -> Ident {
    format_ident!("{}_async", f.name, span = f.name.span())
}

/// The signature of the asynchronous twin, with `body` as its block. It keeps the function's
/// attributes and docs, framed by a line naming the synchronous function and one on how the
/// future behaves.
fn async_signature(f: &Function, body: TokenStream) -> TokenStream {
    let attrs = &f.attrs;
    let vis = &f.vis;
    let name = &f.name;
    let async_name = async_name(f);
    let params = params(f);
    let ret = output(f);
    let summary = format!(
        " Asynchronous twin of [`{name}()`]: the same computation, resolving when the device has \
         finished it."
    );
    let behaviour = " The work starts at this call, off the calling thread, so calls made \
         before awaiting run concurrently. The future resolves to exactly what the synchronous \
         function returns, errors included, and works under any executor. Dropping it early \
         cancels work that has not started yet; work already running finishes and its result is \
         dropped.";
    quote! {
        #[doc = #summary]
        #[doc = ""]
        #(#attrs)*
        #[doc = ""]
        #[doc = #behaviour]
        #[allow(clippy::too_many_arguments)]
        #vis fn #async_name(#(#params),*) -> impl ::core::future::Future<
            Output = ::graph_runtime::Result<#ret>,
        > + ::core::marker::Send + 'static #body
    }
}

/// The function and its graph module. `graph` is the `Graph { .. }` expression, `backward` that of
/// its backward graph, if it has one.
pub fn function(f: &Function, graph: TokenStream, backward: Option<TokenStream>) -> TokenStream {
    let name = &f.name;
    let vis = &f.vis;
    let tensors: Vec<_> = f
        .params
        .iter()
        .filter(|p| matches!(p.ty, ParamType::Tensor(_)))
        .map(|p| &p.name)
        .collect();
    let scalars: Vec<_> = f
        .params
        .iter()
        .filter(|p| matches!(p.ty, ParamType::Scalar(_)))
        .map(|p| &p.name)
        .collect();
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
    // Tensors are cloned (an `Arc` each) so the future owns its inputs and is `'static`.
    let async_body = quote!({
        let __run = ::graph_runtime::__private::run_async::<#n>(
            &#name::GRAPH,
            ::std::vec![#(::core::clone::Clone::clone(#tensors)),*],
            ::std::vec![#(::core::convert::From::from(#scalars)),*],
        );
        async move {
            let [#(#outs),*] = __run.await?;
            ::core::result::Result::Ok(#value)
        }
    });
    let async_item = async_signature(f, async_body);
    let doc =
        format!("The static graph of [`{name}()`]: print it with `{name}::GRAPH.to_text()` or `.to_dot()`.");
    let backward = match backward {
        Some(b) => {
            let outs = f.ret.items().len();
            let cotangents = if outs == 1 {
                "one cotangent `dy`".to_string()
            } else {
                format!("one cotangent per output, `d0` to `d{}`", outs - 1)
            };
            let doc = format!(
                " The backward graph, derived at compile time: it takes the parameters of \
                 `{name}()` in order, then {cotangents} of the output's shape, \
                 and returns the gradient of each tensor parameter, in order, of its shape. Run \
                 it with `graph_runtime::__private::run`."
            );
            quote! {
                #[doc = #doc]
                pub static BACKWARD: ::graph_runtime::Graph = #b;
            }
        }
        None => quote!(),
    };
    let doc = if backward.is_empty() {
        format!(
            "{doc} It has no `BACKWARD`: the graph language cannot write its backward (a `narrow` \
             whose remainder after the window is not one monomial, such as `D - 4`)."
        )
    } else {
        format!("{doc} Its backward graph is `{name}::BACKWARD`.")
    };
    quote! {
        #item

        #async_item

        #[doc = #doc]
        #vis mod #name {
            /// The checked, optimised and planned graph.
            pub static GRAPH: ::graph_runtime::Graph = #graph;

            #backward

            // Lists the graph in `graph_runtime::graphs()`.
            #[::graph_runtime::__private::linkme::distributed_slice(::graph_runtime::__private::GRAPHS)]
            #[linkme(crate = ::graph_runtime::__private::linkme)]
            static REGISTERED: &::graph_runtime::Graph = &GRAPH;
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
    let ret = output(f);
    let async_item = async_signature(
        f,
        quote!({
            ::core::future::ready::<::graph_runtime::Result<#ret>>(::core::unreachable!(
                "lazy_graph reported errors for this function"
            ))
        }),
    );
    quote! {
        #[allow(unused_variables)]
        #item

        #[allow(unused_variables, unreachable_code)]
        #async_item
    }
}
