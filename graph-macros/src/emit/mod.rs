//! Code generation: the Rust items of each function (`rust.rs`) and its static graph and plan
//! (`graph.rs`).

pub mod cpu;
pub mod graph;
pub mod plan;
pub mod rust;
