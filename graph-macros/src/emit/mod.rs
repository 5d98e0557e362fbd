//! Code generation: the Rust items of each function (`rust.rs`), its static graph and plan
//! (`graph.rs`, `plan.rs`), and each kernel in every dialect: CPU Rust (`cpu.rs`), and the C family
//! (`clike.rs` bodies) for CUDA (`cuda.rs`) and Metal (`metal.rs`).

pub mod clike;
pub mod cpu;
pub mod cuda;
pub mod graph;
pub mod metal;
pub mod plan;
pub mod rows;
pub mod rust;
