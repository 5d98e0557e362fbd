//! Runs the phases in order: parse, check (all errors collected), optimise, plan, emit.
//! No phase calls another.

use proc_macro2::TokenStream;

use crate::check::check_function;
use crate::diag::Errors;
use crate::emit;
use crate::passes::optimise;
use crate::plan::plan;
use crate::syntax::Module;

pub fn expand(input: TokenStream) -> TokenStream {
    let module: Module = match syn::parse2(input) {
        Ok(m) => m,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::new();
    let graphs: Vec<_> = module
        .functions
        .iter()
        .map(|f| check_function(f, &mut errors))
        .collect();
    if let Err(e) = errors.propagate() {
        let placeholders = module.functions.iter().map(emit::rust::placeholder);
        let errors = e.to_compile_error();
        return quote::quote!(#errors #(#placeholders)*);
    }
    let mut out = TokenStream::new();
    for (f, graph) in module.functions.iter().zip(graphs) {
        let graph = optimise(graph);
        let plan = plan(&graph);
        let name = f.name.to_string();
        let plan_tokens = emit::plan::plan(&name, &graph, &plan);
        out.extend(emit::rust::function(
            f,
            emit::graph::graph(&name, &graph, plan_tokens),
        ));
    }
    out
}
