//! The C family: one emitter for every kernel dialect whose text is C-like (CUDA, Metal).
//!
//! The kernels are the same in every dialect: they walk the same rows, read the same inputs and
//! compute each value the same way. A dialect is the handful of words that differ (see
//! `cuda.rs` and `metal.rs` one level up); everything else is written once, here:
//!
//! - `body.rs`: the statements computing a kernel's nodes at one column;
//! - `rows.rs`: a row kernel's column loops, reductions and writes.

mod body;
mod rows;

pub use body::{row_local, Body, Columns, Scope};
pub use rows::cached_inputs;
pub(crate) use rows::{layout, row_body, row_scalars, Dialect, Writer};
