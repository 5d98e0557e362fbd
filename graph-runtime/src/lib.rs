#![doc = include_str!("../docs/language.md")]

mod bind;
mod cache_dir;
mod error;
mod exec;
mod future;
mod mode;
pub mod profile;

#[cfg(feature = "cuda")]
pub mod cuda_graph;

pub use cache_dir::{kernel_cache_dir, set_kernel_cache_dir};

/// Where generated functions run: CPU, CUDA and asynchronous calls (docs only).
pub mod devices {
    #![doc = include_str!("../docs/devices.md")]
}
pub use candle_core::Tensor;
pub use error::{Error, LeadingMismatch, Result, SymbolMismatch};
pub use graph_ir::Graph;
pub use graph_macros::lazy_graph;
pub use mode::{mode, set_mode, with_mode, Mode};

/// The parts of a [`Graph`], for tools that inspect what the macro generated: its nodes and
/// their ops, its symbolic dims, and its fused plan of steps and kernels.
pub mod ir {
    pub use graph_ir::plan::{Access, Kernel, KernelKind, Step};
    pub use graph_ir::{
        BinaryOp, DType, Dim, Graph, Lit, Node, Op, Param, ParamKind, ReduceOp, ScalarType, Source, UnaryOp,
    };
}

#[doc(hidden)]
pub mod __private {
    //! What generated code calls. Not a stable API.
    pub use graph_ir::cpu;
    pub use graph_ir::gpu::GpuKernel;
    pub use graph_ir::plan::{Access, Kernel, KernelKind, Step};
    pub use graph_ir::{
        BinaryOp, DType, Dim, Graph, Lit, Node, Op, Param, ParamKind, ReduceOp, ScalarType, Source, UnaryOp,
    };

    pub use crate::future::{run_async, GraphFuture};
    pub use linkme;

    /// Every generated graph linked into the program; see [`crate::graphs`].
    #[linkme::distributed_slice]
    pub static GRAPHS: [&'static Graph];

    use crate::{Result, Tensor};

    /// Runs `graph` on the arguments and returns its `N` outputs.
    pub fn run<const N: usize>(
        graph: &'static Graph,
        tensors: &[&Tensor],
        scalars: &[f64],
    ) -> Result<[Tensor; N]> {
        let mut outputs = crate::exec::Outputs::new();
        crate::run(graph, tensors, scalars, &mut outputs)?;
        assert_eq!(
            outputs.len(),
            N,
            "{} returned {} outputs, its signature declares {N}",
            graph.name(),
            outputs.len()
        );
        let mut outputs = outputs.into_iter();
        Ok(std::array::from_fn(|_| {
            outputs.next().expect("N outputs, checked above")
        }))
    }
}

#[doc(hidden)]
pub mod testing {
    //! Hooks for this workspace's tests: backend compilers and launch configurations, checked
    //! without running a kernel, and the count of live asynchronous jobs. Not a stable API.

    pub use crate::exec::autograd::tied_outputs;
    pub use crate::future::live_jobs;
    pub use graph_ir::cpu::{LANES, PIPELINE_BLOCK};

    /// The CUDA backend's compiler, for tests that check every generated kernel compiles.
    #[cfg(feature = "cuda")]
    pub mod cuda {
        pub use crate::exec::cuda::compile::{compile, full_source, nvrtc_version, Image};
        pub use crate::exec::cuda::config::covering_configs;
        pub use crate::exec::gpu::{Config, Shape};
    }

    /// The Metal backend's host side (launch configurations, argument words, prelude), for
    /// tests that check it and every generated kernel here, without the `metal` feature.
    pub mod metal {
        pub use crate::exec::gpu::{Config, Input, LaunchRequest, Operand, Shape};
        /// Metal's compiler, for the Mac test that compiles every generated kernel with it.
        #[cfg(feature = "metal")]
        pub use crate::exec::metal::compile::pipeline;
        pub use crate::exec::metal::compile::{full_source, PRELUDE};
        pub use crate::exec::metal::config::{choose, covering_configs, dtype_code, groups, words};
    }
}

/// Every graph that `lazy_graph!` generated in this program (its own crate and the crates it
/// links), for tools that inspect or precompile them: each function's `GRAPH`, followed by its
/// `BACKWARD` where it has one ([`Graph::backward`]); in no particular order otherwise.
///
/// ```
/// graph_runtime::lazy_graph! {
///     fn twice(x: Tensor[N]) -> Tensor[N] { x * 2.0 }
/// }
/// assert!(graph_runtime::graphs().any(|g| g.name() == "twice"));
/// ```
pub fn graphs() -> impl Iterator<Item = &'static Graph> {
    (__private::GRAPHS.iter()).flat_map(|g| std::iter::once(*g).chain(g.backward()))
}

/// Runs `graph` on the arguments, pushing its outputs to `out`.
fn run(graph: &'static Graph, tensors: &[&Tensor], scalars: &[f64], out: &mut exec::Outputs) -> Result<()> {
    run_needed(graph, tensors, scalars, None, out)
}

/// [`run`], computing only the outputs marked in `needed` in fused mode (see
/// [`exec::fused::run`]); eager mode computes them all.
fn run_needed(
    graph: &'static Graph,
    tensors: &[&Tensor],
    scalars: &[f64],
    needed: Option<&[bool]>,
    out: &mut exec::Outputs,
) -> Result<()> {
    let bound = profile::timed(profile::Phase::Bind, || bind::bind(graph, tensors))?;
    if graph.leading().is_some() {
        return run_flattened(graph, &bound, tensors, scalars, needed, out);
    }
    run_bound(graph, &bound, tensors, scalars, needed, out)
}

/// [`run_needed`] of a graph generic over leading dims ([`Graph::leading`]): each argument
/// declared with `..` runs with its leading dims flattened into one, and each output declared
/// with `..` gets the call's leading dims back (see [`bind::Bound::flatten`]).
fn run_flattened(
    graph: &'static Graph,
    bound: &bind::Bound,
    tensors: &[&Tensor],
    scalars: &[f64],
    needed: Option<&[bool]>,
    out: &mut exec::Outputs,
) -> Result<()> {
    use error::Context as _;
    let declared = graph.params().iter().filter_map(|p| match p.kind {
        graph_ir::ParamKind::Tensor(shape) => Some(shape),
        graph_ir::ParamKind::Scalar(_) => None,
    });
    let flat: Vec<Tensor> = (declared.zip(tensors))
        .map(|(shape, t)| bound.flatten(graph, shape, t))
        .collect::<candle_core::Result<_>>()
        .within(graph.name())?;
    let flat: Vec<&Tensor> = flat.iter().collect();
    run_bound(graph, bound, &flat, scalars, needed, out)?;
    for (k, (t, &o)) in out.iter_mut().zip(graph.outputs()).enumerate() {
        // An output not needed is a stand-in, not of its shape (see `exec::fused::run`).
        if graph.has_leading(graph.nodes()[o as usize].shape) && needed.is_none_or(|n| n[k]) {
            *t = bound.unflatten(t).within(graph.name())?;
        }
    }
    Ok(())
}

/// [`run_needed`] once the arguments are bound.
fn run_bound(
    graph: &'static Graph,
    bound: &bind::Bound,
    tensors: &[&Tensor],
    scalars: &[f64],
    needed: Option<&[bool]>,
    out: &mut exec::Outputs,
) -> Result<()> {
    match mode() {
        Mode::Fused => {
            if let Some(backward) = graph.backward() {
                if exec::autograd::run(graph, backward, bound, tensors, scalars, out)? {
                    return Ok(());
                }
            }
            exec::fused::run(graph, bound, tensors, scalars, needed, out)
        }
        Mode::Eager => {
            *out = exec::eager::run(graph, bound, tensors, scalars)?;
            Ok(())
        }
    }
}
