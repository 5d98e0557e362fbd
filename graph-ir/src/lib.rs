//! Shared vocabulary of `lazy_graph`: the op table, symbolic dims, and the static graph that the
//! `lazy_graph!` macro emits and the runtime executes.
//!
//! Users do not depend on this crate directly; `graph-runtime` re-exports what they need.

pub mod cpu;
pub mod dim;
pub mod fast;
pub mod gpu;
pub mod graph;
mod inspect;
pub mod math;
pub mod ops;
pub mod plan;

pub use dim::{display_shape, Dim, DimError, EvalError};
pub use gpu::{ArgLayout, GpuKernel};
pub use graph::{needs_size_check, Graph, Node, Param, ParamKind, ScalarType, Source};
pub use ops::{BinaryOp, DType, Lit, Op, OpClass, ReduceOp, UnaryOp};
pub use plan::{Access, Kernel, KernelKind, Step};
