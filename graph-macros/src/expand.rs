//! Runs the phases in order: parse, check (all errors collected), optimise, plan, emit.
//! No phase calls another.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;

use crate::check::{check_function, check_names};
use crate::diag::Errors;
use crate::differentiate::{differentiate, reached};
use crate::emit;
use crate::limits;
use crate::passes::optimise;
use crate::plan::plan;
use crate::syntax::Module;

pub fn expand(input: TokenStream) -> TokenStream {
    if let Err(e) = limits::check_nesting(&input) {
        return e.to_compile_error();
    }
    let module: Module = match syn::parse2(input) {
        Ok(m) => m,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::new();
    check_names(&module.functions, &mut errors);
    let graphs: Vec<_> = module
        .functions
        .iter()
        .map(|f| check_function(f, &mut errors))
        .collect();
    if let Err(e) = errors.propagate() {
        let names: Vec<String> = module
            .functions
            .iter()
            .map(|f| f.name.unraw().to_string())
            .collect();
        let taken = |n: &str| names.iter().any(|m| m == n);
        let placeholders = module.functions.iter().map(|f| emit::rust::placeholder(f, taken));
        let errors = e.to_compile_error();
        return quote::quote!(#errors #(#placeholders)*);
    }
    let mut out = TokenStream::new();
    for (f, graph) in module.functions.iter().zip(graphs) {
        let graph = optimise(graph);
        // Kernel and static names derive from it: `r#match` names the kernels `match_k0`, ...
        let name = f.name.unraw().to_string();
        let derived = if cfg!(feature = "backward") {
            differentiate(&graph)
        } else {
            None
        };
        let backward = derived.map(|b| {
            let b = optimise(b);
            let cotangents = b.params[graph.params.len()..]
                .iter()
                .map(|p| p.name.clone())
                .collect();
            emit::rust::Backward {
                graph: planned(&format!("{name}_backward"), &b),
                cotangents,
                reached: reached(&graph),
            }
        });
        out.extend(emit::rust::function(f, planned(&name, &graph), backward));
    }
    out
}

/// The `Graph { .. }` expression of an optimised graph, planned with kernels named after `name`.
fn planned(name: &str, graph: &crate::ir::Graph) -> TokenStream {
    let steps = plan(graph, name);
    let plan_tokens = emit::steps::steps(graph, &steps);
    let single = emit::graph::single(graph, &steps);
    emit::graph::graph(name, graph, plan_tokens, single)
}
