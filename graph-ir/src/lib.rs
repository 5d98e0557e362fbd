//! Shared vocabulary of `lazy_graph`: the op table, symbolic dims, and the static graph that the
//! `lazy_graph!` macro emits and the runtime executes.
//!
//! Users do not depend on this crate directly; `graph-runtime` re-exports what they need.
//!
//! # The op tables
//!
//! Everything the code knows about a unary op, a binary op or a reduction is its row in
//! `src/ops/unary.rs` ([`UnaryOp::info`]), `src/ops/binary.rs` ([`BinaryOp::info`]) or
//! `src/ops/reduce.rs` ([`ReduceOp::info`]): the DSL name, the f64 math (for a reduction, its
//! identity, the binary op it combines with and how it finishes: a mean divides by the count),
//! how the CPU kernels and the CUDA/Metal kernels spell it, whether it is costly enough to keep
//! between passes, whether a binary op is a comparison, its derivative (a vector-Jacobian rule
//! for reverse mode, written against [`ops::vjp::Builder`]) and the eager executor's Candle ops
//! (with the `eager` feature, which only the runtime enables). Name lookup, constant folding,
//! the three emitters, the CPU planner and the eager executor read the row; only rewrites and
//! lowerings that use particular ops (`x * -1` to `-x`, `softmax`'s `exp`, `a + b` to `add`)
//! name them, and so does the one emitter choice that is no op's spelling (the C-family
//! kernels divide by a per-row value as a product with its reciprocal).
//!
//! # Adding a unary op
//!
//! 1. **The table** (`src/ops/unary.rs`): a variant in `unary_ops!` and its row in `TABLE`, in
//!    the same position. The f64 math has PyTorch's special values; Candle compositions longer
//!    than a line go in `src/ops/candle.rs`. A variant without a row does not compile. The
//!    row's vjp rule is PyTorch's `derivatives.yaml` formula, masking included, built from the
//!    table's ops (`Vjp::Zero` for a step function). `graph-ir/tests/vjp.rs` holds it to central
//!    differences once the op has its interval in `unary_domain` (which does not compile
//!    without one); a point they cannot judge (a kink) goes in `special_points_follow_pytorch`,
//!    and the rule's formula into the `rules_read_as_formulas` snapshot.
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
//!
//! # Adding a binary op
//!
//! 1. **The table** (`src/ops/binary.rs`): a variant in `binary_ops!` and its row in `TABLE`, in
//!    the same position: the f64 math with PyTorch's special values, whether it is a
//!    comparison, its spellings, and its Candle ops (`eager` on two tensors that broadcast, and
//!    `eager_scalar` where Candle has an op of its own for a scalar right side that computes
//!    the same). Candle compositions longer than a line go in `src/ops/candle.rs`. Its vjp
//!    rules, one for each side, are PyTorch's formulas (`Vjp::NotDifferentiable` for a
//!    comparison); `graph-ir/tests/vjp.rs` holds them to central differences once the op has
//!    its domain in `binary_domain`, ties and edges go in `special_points_follow_pytorch`, and
//!    the formulas into the `rules_read_as_formulas` snapshot.
//! 2. **The backends' math:** a [`BinaryCpuForm::Method`] in [`cpu::Float`], a
//!    [`BinaryCForm::Call`] (two arguments) in both preludes. `tests/op_table.rs` fails while
//!    either lacks it, and runs the row's Candle ops against its f64 math on special values.
//! 3. **The DSL:** the row's name works in both call syntaxes (`pow(a, b)`, `a.pow(b)`); an
//!    operator spelling (`a + b`) is the parser's, lowered in graph-macros `check/lower.rs`.
//! 4. **The tests:** a graph and PyTorch's results in `binary()` of `tests/special.rs`
//!    (`every_binary_op_and_reduction_has_a_row` fails without them; with them the op runs on
//!    every device, fused and eager); a call in both syntaxes in `tests/ui/pass/pointwise.rs`;
//!    for the random graphs, the op in graph-gen's `binary_op` (its interval and error rule)
//!    and in the reference `r::bin` of `tests/random.rs` (no test checks that they draw every
//!    binary op).
//! 5. **The docs:** its line in the op reference of `graph-runtime/docs/language.md`.
//!
//! # Adding a reduction
//!
//! 1. **The table** (`src/ops/reduce.rs`): a variant in `reduce_ops!` and its row in `TABLE`:
//!    its identity, the binary op it combines with (whose row spells it everywhere: a CPU
//!    kernel's lanes and a GPU row's threads combine by it too), its finish, the CPU identity
//!    constant and how a lane takes in a value, the C identity and cross-thread reduction, and
//!    its Candle ops (along one axis, kept; the executor keeps axes of one element, empty
//!    tensors and ranks past Candle's from them), and its vjp rule (PyTorch's formula; `y` and
//!    `dy` keep the axis with size 1), which `graph-ir/tests/vjp.rs` holds to central
//!    differences once `reduce_smooth` there says which rows the reduction is smooth at.
//! 2. **The backends:** the CPU identity as a constant of [`cpu::Float`], and
//!    `lg_reduce_{across}` in both preludes (with its struct of `apply` and `identity`, as
//!    `LgSum`). `tests/op_table.rs` fails while either lacks it, and runs the row's Candle ops
//!    against [`ReduceOp::eval`].
//! 3. **The tests:** a graph per axis and PyTorch's results in `REDUCTIONS` of
//!    `tests/special.rs` (`every_binary_op_and_reduction_has_a_row` fails without them); a call
//!    in both syntaxes in `tests/ui/pass/reductions.rs`; for the random graphs, the reduction
//!    in graph-gen's list of reductions and in the reference `r::reduce` of `tests/random.rs`.
//! 4. **The docs:** its line in the op reference of `graph-runtime/docs/language.md`.

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
