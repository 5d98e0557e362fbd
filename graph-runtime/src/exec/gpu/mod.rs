//! What the GPU backends share: the [`LaunchRequest`] a call builds from its bound shapes
//! (`request`), the configuration chosen for it (`config`: the `LG_*` defines that the CUDA and
//! Metal preludes share) and, with a GPU feature, the cache of compiled kernels (`cache`). `cuda`
//! and `metal` add what differs: addresses or buffers, scalar widths, device limits, grid sizes,
//! the compiler. No GPU in it: plain Rust, with the request and configuration built everywhere,
//! so that the Metal host side is tested on machines without Metal.

#[cfg(any(feature = "cuda", feature = "metal"))]
pub mod cache;
pub mod config;
pub mod request;

pub use config::{Config, Limits, Shape};
pub use request::{Input, LaunchRequest, Operand};

/// Sizes along a kernel's row prefix, or its run-time sizes: a handful, kept on the stack (a
/// launch on a small input is latency-bound, so its host work allocates only the outputs).
pub type Dims = smallvec::SmallVec<[usize; 4]>;

/// A launch's argument words, on the stack for kernels of ordinary size.
pub type Words = smallvec::SmallVec<[i64; 64]>;

/// The error of a kernel that its GPU could not compile, load or launch: `message` says why.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub fn error(graph: &graph_ir::Graph, k: &graph_ir::Kernel, message: String) -> crate::Error {
    crate::Error::Gpu {
        func: graph.name(),
        kernel: k.name,
        message,
    }
}
