//! The static graph data of one function, as a `graph_runtime::__private::Graph` expression.

use graph_ir::{Dim, Op};
use proc_macro2::TokenStream;
use quote::quote;

use crate::emit::tokens::{dim, dtype_tokens, op};
use crate::ir::{Graph, ParamKind, Ty};
use crate::kernel::Step;
use crate::syntax::ScalarKind;

/// `Graph { .. }` for `graph`, named `name`; `plan` is the tokens of its `&[Step]`, `single` of
/// its `Graph::single` (see [`single`]).
pub fn graph(name: &str, graph: &Graph, plan: TokenStream, single: TokenStream) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    let params = graph.params.iter().map(|param| {
        let pname = &param.name;
        let kind = match &param.kind {
            ParamKind::Tensor(shape) => {
                let dims = shape.iter().map(dim);
                quote!(#p::ParamKind::Tensor(&[#(#dims),*]))
            }
            ParamKind::Scalar(ScalarKind::F32) => quote!(#p::ParamKind::Scalar(#p::ScalarType::F32)),
            ParamKind::Scalar(ScalarKind::F64) => quote!(#p::ParamKind::Scalar(#p::ScalarType::F64)),
        };
        quote!(#p::Param { name: #pname, kind: #kind })
    });
    let symbols = &graph.symbols;
    let dtypes = graph.dtypes();
    let nodes = graph.nodes.iter().zip(&dtypes).map(|(node, dtype)| {
        let op = op(&node.op);
        let args = node.args.iter().map(|a| a.0);
        let (scalar, shape) = match &node.ty {
            Ty::Scalar => (true, Vec::new()),
            Ty::Tensor(s) => (false, s.iter().map(dim).collect()),
        };
        let dtype = match dtype {
            Some(t) => {
                let t = dtype_tokens(*t);
                quote!(::core::option::Option::Some(#t))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(#p::Node { op: #op, args: &[#(#args),*], shape: &[#(#shape),*], scalar: #scalar, dtype: #dtype })
    });
    let outputs = graph.outputs.iter().map(|o| o.0);
    let checks = graph.nodes.iter().enumerate().filter_map(|(i, node)| {
        let shape: &[Dim] = match &node.ty {
            Ty::Scalar => &[],
            Ty::Tensor(s) => s,
        };
        graph_ir::needs_size_check(&node.op, shape).then_some(i as u32)
    });
    let leading = graph.leading.map(|l| quote!(.with_leading(#l)));
    quote! {
        #p::Graph::new(
            #name,
            &[#(#params),*],
            &[#(#symbols),*],
            &[#(#nodes),*],
            &[#(#outputs),*],
            #plan,
            &[#(#checks),*],
            #single,
        )#leading
    }
}

/// `Graph::single` for a graph planned as `steps`: where its kernel reads each input, for a plan
/// of one kernel that reads parameters and constants only and writes the graph's outputs in
/// order, in the storage dtype; `None` otherwise.
pub fn single(graph: &Graph, steps: &[Step]) -> TokenStream {
    let p = quote!(::graph_runtime::__private);
    let none = quote!(::core::option::Option::None);
    let [Step::Kernel(k)] = steps else {
        return none;
    };
    let dtypes = graph.dtypes();
    if k.outputs != graph.outputs || k.outputs.iter().any(|o| dtypes[o.index()].is_some()) {
        return none;
    }
    // The index of parameter `i` among the parameters of its kind.
    let slot = |i: u16, tensor: bool| {
        let n = graph.params[..i as usize]
            .iter()
            .filter(|q| matches!(q.kind, ParamKind::Tensor(_)) == tensor)
            .count();
        u16::try_from(n).expect("parameter counts fit u16")
    };
    let mut sources = Vec::new();
    for (n, _) in &k.inputs {
        sources.push(match graph.node(*n).op {
            Op::Input(i) => {
                let s = slot(i, true);
                quote!(#p::Source::Tensor(#s))
            }
            Op::Scalar(i) => {
                let s = slot(i, false);
                quote!(#p::Source::Scalar(#s))
            }
            Op::Const(v) => {
                let bits = v.bits();
                quote!(#p::Source::Const(#p::Lit::from_bits(#bits)))
            }
            _ => return none,
        });
    }
    quote!(::core::option::Option::Some(&[#(#sources),*]))
}
