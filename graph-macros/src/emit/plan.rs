//! The static plan: the steps of one function as `&[Step]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::Graph;
use crate::plan::Step;

pub fn plan(_name: &str, _graph: &Graph, plan: &[Step]) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    let steps = plan.iter().map(|s| match s {
        Step::Library(id) => {
            let i = id.0;
            quote!(#p::Step::Library(#i))
        }
    });
    quote!(&[#(#steps),*])
}
