//! Executors: `eager` runs node by node through Candle (the oracle); `fused` runs the plan, with
//! generated kernels from `cpu` and, with the `cuda` feature, `cuda`.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod eager;
pub mod fused;
