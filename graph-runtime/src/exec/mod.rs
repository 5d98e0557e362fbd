//! Executors: `eager` runs node by node through Candle (the oracle); `fused` runs the plan, with
//! generated kernels from `cpu`.

pub mod cpu;
pub mod eager;
pub mod fused;
