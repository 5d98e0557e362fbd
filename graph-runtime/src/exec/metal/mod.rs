//! The Metal backend: generated MSL kernels compiled through Candle's Metal device and encoded
//! the way Candle's own Metal custom ops do (candle-nn 0.11.1's `rms_norm` / `softmax`
//! `metal_fwd`, call by call): output buffers from `new_buffer_builder`, the pipeline set on
//! Candle's command encoder (`command_encoder()`), every tensor bound with `set_input_buffer` /
//! `set_output_buffer` so that Candle's hazard tracking (barriers within its encoder, fences
//! across encoders) orders our reads and writes against the rest of the queue, then
//! `dispatch_thread_groups`, and `MetalStorage::new` around each output.
//!
//! - `compile`: the kernel's source to a compute pipeline, cached in memory;
//! - `config`: the launch configuration, threadgroups and argument words, from the bound shapes;
//! - `launch`: binding the buffers, allocating the outputs, encoding.
//!
//! `config` and the source text in `compile` are plain Rust, built and tested on every
//! platform. The pipelines and `launch` need the `metal` feature (macOS only): they cannot be
//! built or run on the Linux machines this project is developed on; docs/testing.md ("Metal")
//! says what is checked where.
//!
//! Differences from the CUDA backend, and why:
//! - Tensors are passed as buffers (Candle tracks hazards per buffer), not as addresses inside
//!   the argument words; the words go in with `set_bytes` at buffer 0.
//! - f64 has no Metal kernels (Metal has no double): those graphs run eagerly.
//! - bf16 is loaded and stored as bits (see the prelude), so it needs no Metal 3.1 `bfloat`.
//! - No disk cache: Metal compiles MSL itself, on first use per GPU and configuration.
//! - The row prefix is launched as bound: CUDA first merges the dims every input steps through
//!   evenly (`LaunchRequest::collapse`), which no Mac has measured.

pub mod compile;
pub mod config;
#[cfg(feature = "metal")]
mod launch;

#[cfg(feature = "metal")]
mod device {
    use candle_core::MetalDevice;
    use graph_ir::{Graph, Kernel};

    use crate::bind::Bound;
    use crate::error::Result;
    use crate::exec::backend::Backend;
    use crate::exec::{Arg, Sink};

    /// Kernels are encoded on Candle's command encoder; an asynchronous call runs on a worker,
    /// which then waits (Candle 0.11.1 keeps its command buffers to itself, so no completion
    /// handler of ours can be added to one).
    impl Backend for MetalDevice {
        fn launch(
            &self,
            graph: &'static Graph,
            k: &'static Kernel,
            bound: &Bound,
            args: &[Arg<'_>],
            out: &mut dyn Sink,
        ) -> Result<bool> {
            super::launch::run(graph, k, bound, args, self, out)
        }

        /// Waits for the command buffer that holds this thread's work. (Candle's `synchronize`
        /// waits for the last buffer in flight, which a flush on another thread may have taken
        /// already: it can return before this thread's work ran.)
        fn wait(&self) -> candle_core::Result<()> {
            self.flush_and_wait_current()
        }
    }
}
