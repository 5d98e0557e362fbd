//! The Rust items of one function: the function itself, its asynchronous twin `name_async`, and a
//! module holding its static graph (`name::GRAPH`); where the macro could derive it, also the graph
//! of its backward (`name::BACKWARD`) and the function running it (`name_backward`).

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;

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

/// A function's backward graph, as the macro derived it.
pub struct Backward {
    /// The `Graph { .. }` expression.
    pub graph: TokenStream,
    /// The names of its cotangent parameters, after the function's own: `dy`, or `d0`, `d1`, ...
    pub cotangents: Vec<String>,
    /// For each output, the tensor parameters its gradient reaches (`Graph::reached`).
    pub reached: Vec<Vec<u16>>,
}

/// The name of the backward function, spanned at the user's function name.
fn backward_name(f: &Function) -> Ident {
    format_ident!("{}_backward", f.name, span = f.name.span())
}

/// What the backward function produces on success: the gradient of each tensor parameter, a
/// tensor for one, a tuple for several.
fn gradients(f: &Function) -> TokenStream {
    let n = f
        .params
        .iter()
        .filter(|p| matches!(p.ty, ParamType::Tensor(_)))
        .count();
    if n == 1 {
        return quote!(::graph_runtime::Tensor);
    }
    let t = (0..n).map(|_| quote!(::graph_runtime::Tensor));
    quote!((#(#t,)*))
}

/// The signature of the backward function, with `body` as its block.
fn backward_signature(f: &Function, cotangents: &[Ident], body: TokenStream) -> TokenStream {
    let vis = &f.vis;
    let name = &f.name;
    let backward_name = backward_name(f);
    let params = params(f);
    let ret = gradients(f);
    let outs = f.ret.items().len();
    let takes = if outs == 1 {
        "then the cotangent `dy` of its output (the gradient of the loss with respect to it)".to_string()
    } else {
        format!(
            "then one cotangent per output, `d0` to `d{}`, each of its output's shape",
            outs - 1
        )
    };
    let summary = format!(" The backward of [`{name}()`], derived at compile time and fused like it.");
    let detail = format!(
        " Takes the parameters of `{name}()`, {takes}, and returns the gradient of the loss with          respect to each tensor parameter, in order, each of that parameter's shape: the          vector-Jacobian product that `loss.backward()` computes through `{name}()`. Its graph is          `{name}::BACKWARD`."
    );
    quote! {
        #[doc = #summary]
        #[doc = ""]
        #[doc = #detail]
        #[allow(clippy::too_many_arguments)]
        #vis fn #backward_name(
            #(#params,)*
            #(#cotangents: &::graph_runtime::Tensor),*
        ) -> ::graph_runtime::Result<#ret> #body
    }
}

/// The function and its graph module. `graph` is the `Graph { .. }` expression, `backward` its
/// backward graph, if it has one.
pub fn function(f: &Function, graph: TokenStream, backward: Option<Backward>) -> TokenStream {
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
    let (graph, backward_static, backward_item) = match backward {
        Some(b) => {
            let doc = format!(
                " The backward graph of `{name}()`, derived at compile time: it takes the \
                 parameters of `{name}()` in order, then one cotangent per output, of that \
                 output's shape, and returns the gradient of each tensor parameter, in order, of \
                 its shape. `{name}_backward()` runs it; so does `loss.backward()` through a call \
                 of `{name}()` whose inputs track gradients."
            );
            let bgraph = &b.graph;
            let backward_static = quote! {
                #[doc = #doc]
                pub static BACKWARD: ::graph_runtime::Graph = #bgraph;
            };
            let cotangents: Vec<_> = b
                .cotangents
                .iter()
                .map(|c| format_ident!("{}", c, span = f.name.span()))
                .collect();
            let g = tensors.len();
            let grads: Vec<_> = (0..g).map(|i| format_ident!("__grad{}", i)).collect();
            let value = if g == 1 {
                quote!(#(#grads)*)
            } else {
                quote!((#(#grads,)*))
            };
            let body = quote!({
                let [#(#grads),*] = ::graph_runtime::__private::run::<#g>(
                    &#name::BACKWARD,
                    &[#(#tensors,)* #(#cotangents),*],
                    &[#(::core::convert::From::from(#scalars)),*],
                )?;
                ::core::result::Result::Ok(#value)
            });
            let item = backward_signature(f, &cotangents, body);
            let reached = b.reached.iter().map(|r| quote!(&[#(#r),*]));
            let graph = quote!(#graph.with_backward(&BACKWARD, &[#(#reached),*]));
            (graph, backward_static, item)
        }
        None => (graph, quote!(), quote!()),
    };
    let doc = if tensors.is_empty() {
        doc
    } else if backward_static.is_empty() && !cfg!(feature = "backward") {
        format!(
            "{doc} It has no `BACKWARD`: `graph-runtime` was built without its `backward` \
             feature, so gradients through `{name}()` are computed by Candle's autograd over its \
             ops."
        )
    } else if backward_static.is_empty() {
        format!(
            "{doc} It has no `BACKWARD`: the graph language cannot write its backward (a `narrow` \
             whose remainder after the window is not one monomial, such as `D - 4`), so \
             gradients through `{name}()` are computed by Candle's autograd over its ops."
        )
    } else {
        format!("{doc} Its backward graph is `{name}::BACKWARD`.")
    };
    quote! {
        #item

        #async_item

        #backward_item

        #[doc = #doc]
        #vis mod #name {
            /// The checked, optimised and planned graph.
            pub static GRAPH: ::graph_runtime::Graph = #graph;

            #backward_static

            // Lists the graph in `graph_runtime::graphs()`.
            #[::graph_runtime::__private::linkme::distributed_slice(::graph_runtime::__private::GRAPHS)]
            #[linkme(crate = ::graph_runtime::__private::linkme)]
            static REGISTERED: &::graph_runtime::Graph = &GRAPH;
        }
    }
}

/// A well-typed stand-in for a function whose body had errors, so the user's calls to it do not
/// add errors of their own. `taken` says whether another function of the block has a name: the
/// asynchronous twin is left out where one is named like it (reported by `check_names`), so that
/// rustc adds no "defined multiple times" of its own.
pub fn placeholder(f: &Function, taken: impl Fn(&str) -> bool) -> TokenStream {
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
    let async_item = match taken(&async_name(f).unraw().to_string()) {
        true => quote!(),
        false => quote!(#[allow(unused_variables, unreachable_code)] #async_item),
    };
    quote! {
        #[allow(unused_variables)]
        #item

        #async_item
    }
}
