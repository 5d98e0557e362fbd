//! The C family: one emitter for every kernel language whose text is C-like (CUDA, Metal).
//!
//! The kernels are the same in every dialect: they walk the same rows, read the same inputs and
//! compute each value the same way. A dialect is the handful of words that differ, one
//! [`Dialect`] value (`emit/cuda.rs`, `emit/metal.rs`); everything else is written once, here:
//!
//! - `skeleton.rs`: a kernel's signature, the arguments it reads once, its loop over rows;
//! - `rows.rs`: a row kernel's column loops, reductions and writes;
//! - `columns.rs`: a column kernel's two stages;
//! - `body.rs`: the statements computing a kernel's nodes at one column.

use std::fmt::Write as _;

mod body;
mod columns;
mod dialect;
mod rows;
mod skeleton;
#[cfg(test)]
pub(crate) mod snapshots;

pub use body::{row_local, Body, Columns, Scope};
pub use dialect::Dialect;
pub use skeleton::source;

/// Indented lines.
#[derive(Default)]
pub struct Writer {
    pub text: String,
    depth: usize,
}

impl Writer {
    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.text, "{:indent$}{s}", "", indent = 2 * self.depth);
    }

    pub fn open(&mut self, s: &str) {
        self.line(&format!("{s} {{"));
        self.depth += 1;
    }

    pub fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }

    pub fn lines(&mut self, stmts: &[String]) {
        for s in stmts {
            self.line(s);
        }
    }
}
