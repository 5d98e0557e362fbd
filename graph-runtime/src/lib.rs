#![doc = include_str!("../docs/language.md")]

mod bind;
mod error;
mod exec;
mod future;
mod mode;

pub use candle_core::Tensor;
pub use error::{Error, Result, SymbolMismatch};
pub use graph_ir::Graph;
pub use graph_macros::lazy_graph;
pub use mode::{mode, set_mode, with_mode, Mode};

#[doc(hidden)]
pub mod __private {
    //! What generated code calls. Not a stable API.
    pub use graph_ir::cpu;
    pub use graph_ir::plan::{Access, Kernel, KernelKind, Step};
    pub use graph_ir::{
        BinaryOp, DType, Dim, Graph, Lit, Node, Op, Param, ParamKind, ReduceOp, ScalarType, UnaryOp,
    };

    pub use crate::future::{live_jobs, run_async, GraphFuture};

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
    match mode() {
        Mode::Fused => exec::fused::run(graph, &bound, tensors, scalars),
        Mode::Eager => exec::eager::run(graph, &bound, tensors, scalars),
    }
}
