//! The static plan: each step of one function, with its kernels' generated code, as a `&[Step]`
//! expression (a block holding the kernel items, so nothing leaks into the user's module).

use graph_ir::{Access, KernelKind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::emit::tokens::dim;
use crate::emit::{cpu, cuda, metal};
use crate::ir::Graph;
use crate::kernel::Step;

/// `&[Step]` for `steps`, in a block that holds each kernel's statics and CPU functions.
pub fn steps(graph: &Graph, steps: &[Step]) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    let mut items = Vec::new();
    let steps: Vec<TokenStream> = steps
        .iter()
        .map(|s| match s {
            Step::Library(id) => {
                let i = id.0;
                quote!(#p::Step::Library(#i))
            }
            Step::Kernel(k) => {
                items.push(cpu::kernel_fns(graph, k));
                let cpu_static = format_ident!("{}_CPU", k.name.to_uppercase());
                let gpu_static = format_ident!("{}_GPU", k.name.to_uppercase());
                let cuda_source = cuda::source(graph, k);
                let metal_source = metal::source(graph, k);
                let remaps = k.remaps;
                let cached_inputs = k.cached.len();
                let kernel_static = format_ident!("{}", k.name.to_uppercase());
                let cpu_table = cpu::table(k);
                let name = &k.name;
                let kind = match k.kind {
                    KernelKind::Pointwise => quote!(#p::KernelKind::Pointwise),
                    KernelKind::Row => quote!(#p::KernelKind::Row),
                    KernelKind::Column { axis, axes } => {
                        quote!(#p::KernelKind::Column { axis: #axis, axes: #axes })
                    }
                };
                let prefix = k.prefix.iter().map(dim);
                let nodes = k.nodes.iter().map(|n| n.0);
                let inputs = k.inputs.iter().map(|(n, _)| n.0);
                let access = k.inputs.iter().map(|(_, a)| match a {
                    Access::Column => quote!(#p::Access::Column),
                    Access::RowScalar => quote!(#p::Access::RowScalar),
                    Access::Scalar => quote!(#p::Access::Scalar),
                });
                let outputs = k.outputs.iter().map(|n| n.0);
                let sizes = k.sizes.iter().map(dim);
                items.push(quote! {
                    static #cpu_static: #p::cpu::CpuKernel = #cpu_table;
                    static #gpu_static: #p::GpuKernel = #p::GpuKernel {
                        cuda: #cuda_source,
                        metal: #metal_source,
                        remaps: #remaps,
                        cached_inputs: #cached_inputs,
                    };
                    static #kernel_static: #p::Kernel = #p::Kernel {
                        name: #name,
                        kind: #kind,
                        prefix: &[#(#prefix),*],
                        nodes: &[#(#nodes),*],
                        inputs: &[#(#inputs),*],
                        access: &[#(#access),*],
                        outputs: &[#(#outputs),*],
                        sizes: &[#(#sizes),*],
                        cpu: &#cpu_static,
                        gpu: &#gpu_static,
                    };
                });
                quote!(#p::Step::Kernel(&#kernel_static))
            }
        })
        .collect();
    quote!({
        #(#items)*
        &[#(#steps),*]
    })
}
