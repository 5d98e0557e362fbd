//! Shared vocabulary of `lazy_graph`: the op table, symbolic dims, and the static graph that the
//! `lazy_graph!` macro emits and the runtime executes.
//!
//! Users do not depend on this crate directly; `graph-runtime` re-exports what they need.
//!
//! # The op table
//!
//! Everything the code knows about a unary op is its row in `src/ops/unary.rs`
//! ([`UnaryOp::info`]): the DSL name, the f64 math, the CPU method, the CUDA/Metal function,
//! whether it is costly enough to keep between passes, and the eager executor's Candle ops
//! (with the `eager` feature, which only the runtime enables). Name lookup, constant folding,
//! the three emitters, the CPU planner and the eager executor read the row; only rewrites and
//! lowerings that use particular ops (`x * -1` to `-x`, `softmax`'s `exp`) name them.
//!
//! # Adding a unary op
//!
//! 1. **The table** (`src/ops/unary.rs`): a variant in `unary_ops!` and its row in `TABLE`, in
//!    the same position. The f64 math has PyTorch's special values; Candle compositions longer
//!    than a line go in `src/ops/candle.rs`. A variant without a row does not compile.
//! 2. **The backends' math:** the row's CPU method in [`cpu::Float`] (the trait method and its
//!    f32/f64 body in `float_impl!`), and its C function in both preludes,
//!    `graph-runtime/src/exec/cuda/prelude.cuh` and `graph-runtime/src/exec/metal/prelude.metal`
//!    (a Metal library function it calls is declared in the shim `tests/msl/metal_stdlib`).
//!    `tests/op_table.rs` fails while a prelude lacks it, and `tests/msl.rs` runs the Metal one
//!    against the f64 math on the host.
//! 3. **The tests:** a row in `tests/special.rs`, a graph and PyTorch's results at `0, -0, ±inf,
//!    NaN, -1, 0.5` (`every_unary_op_has_a_row` fails without it; with it the op runs on every
//!    device, fused and eager, against those results and against the f64 math); the op in
//!    graph-gen's `UNARY_OPS` with its interval and error bound (in `STEPS` too if it jumps),
//!    and in the reference `r::un` of `tests/random.rs` (`generator_covers_every_unary_op` fails
//!    without them); a call in both syntaxes in `tests/ui/pass/pointwise.rs`.
//! 4. **The docs:** its line in the op reference of `graph-runtime/docs/language.md`, and its
//!    special values there when they are worth knowing.

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
pub use ops::{
    BinaryCForm, BinaryCpuForm, BinaryInfo, BinaryOp, CForm, CpuForm, DType, Lit, Op, OpClass, ReduceCForm,
    ReduceCpuForm, ReduceCpuStep, ReduceFinish, ReduceInfo, ReduceOp, UnaryInfo, UnaryOp,
};
pub use plan::{Access, Kernel, KernelKind, Step};
