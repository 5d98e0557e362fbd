//! Executors: `eager` runs node by node through Candle (the oracle); `fused` runs the plan, with
//! generated kernels from `cpu` and, with the `cuda` feature, `cuda`; with the `metal` feature,
//! `metal` (whose launch configuration is built everywhere, for tests).

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod eager;
pub mod fused;
pub mod launch;
pub mod metal;
