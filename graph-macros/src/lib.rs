//! The `lazy_graph!` procedural macro. Use it through `graph_runtime`, which re-exports it and
//! documents the language.

mod check;
mod diag;
mod differentiate;
mod emit;
mod expand;
mod ir;
mod kernel;
mod limits;
mod parse;
mod passes;
mod plan;
mod schedule;
mod syntax;

/// Compiles a block of tensor functions into fused graphs. See `graph_runtime` for the language.
#[proc_macro]
pub fn lazy_graph(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand::expand(input.into()).into()
}

#[cfg(test)]
mod tests;
