//! Fused tensor kernels for Candle, written as `lazy_graph!` blocks.
//!
//! See the crate README and `lazy_graph!` for the language.

mod bind;
mod error;
mod exec;

pub use candle_core::Tensor;
pub use error::{Error, Result, SymbolMismatch};
pub use graph_ir::Graph;
pub use graph_macros::lazy_graph;

#[doc(hidden)]
pub mod __private {
    //! What generated code calls. Not a stable API.
    pub use graph_ir::plan::{Kernel, KernelKind, Step};
    pub use graph_ir::{
        BinaryOp, DType, Dim, Graph, Lit, Node, Op, Param, ParamKind, ReduceOp, ScalarType, UnaryOp,
    };

    use crate::{Result, Tensor};

    /// Runs `graph` on the arguments and returns its `N` outputs.
    pub fn run<const N: usize>(
        graph: &'static Graph,
        tensors: &[&Tensor],
        scalars: &[f64],
    ) -> Result<[Tensor; N]> {
        let outputs = crate::run(graph, tensors, scalars)?;
        Ok(outputs.try_into().unwrap_or_else(|v: Vec<Tensor>| {
            unreachable!(
                "{} returned {} outputs, its signature declares {N}",
                graph.name,
                v.len()
            )
        }))
    }
}

fn run(graph: &'static Graph, tensors: &[&Tensor], scalars: &[f64]) -> Result<Vec<Tensor>> {
    let bound = bind::bind(graph, tensors)?;
    exec::eager::run(graph, &bound, tensors, scalars)
}
