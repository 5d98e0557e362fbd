//! Code generation: the Rust items of each function (`rust.rs`), its static graph and plan
//! (`graph.rs`, `steps.rs`, with `tokens.rs` for graph-ir values), and each kernel in every dialect: CPU Rust (`cpu/`), and the C family
//! (`clike/`: bodies and row loops) for CUDA (`cuda.rs`) and Metal (`metal.rs`).

pub mod clike;
pub mod cpu;
pub mod cuda;
pub mod graph;
pub mod metal;
pub mod rust;
pub mod steps;
pub mod tokens;
