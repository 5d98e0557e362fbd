//! Random valid `lazy_graph!` functions, each with an independent f64 reference and a tolerance
//! model, for the random-graph tests (`tests/random.rs` compiles them through the root package's
//! build script).
//!
//! A function is drawn top-down from target shapes: every sub-expression has a shape that
//! broadcasts to the shape its parent asks for, so the result type-checks by construction. Each
//! value also carries an interval that bounds it and a first-order bound on its rounding error,
//! so the generator only applies an op where its result is well conditioned (`log` of values
//! bounded away from 0, `exp` of values at most 3, divisors away from 0, comparisons only of
//! values every mode computes exactly) and the tests compare against the f64 reference with a
//! tolerance derived from the error bound rather than guessed.
//!
//! The same `(seed, index)` always gives the same function: see [`generate`].

pub mod dim;
mod gen;
mod render;
pub mod rng;

pub use gen::{generate, generate_from, Function, Output, Param, ParamKind, Sym, UNARY_OPS};
pub use render::{module, module_from_choices};
