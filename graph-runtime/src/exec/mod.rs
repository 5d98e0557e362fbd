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

/// A kernel's output tensors, in order: a list on the stack for the usual one or two.
pub type Outputs = smallvec::SmallVec<[candle_core::Tensor; 2]>;
