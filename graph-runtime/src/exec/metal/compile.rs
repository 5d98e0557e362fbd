//! Turning a kernel's MSL source into a compute pipeline through Candle's Metal device, once per
//! GPU, kernel and configuration, kept in the GPU backends' kernel cache (see
//! [`crate::exec::gpu::cache`]) by the device's registry id: Candle's devices on one GPU share
//! its `MTLDevice`, for which pipelines are made. The source's text (prelude, defines, kernel) is
//! built everywhere, for `tests/msl.rs`; the pipelines need the `metal` feature.
//!
//! Compile options follow Candle's (`candle_metal_kernels::kernel::get_compile_options`) with
//! fast math off: relaxed math keeps infinities and NaNs, which reductions and masks rely on, and
//! the library functions are the precise ones (the prelude asks for `fast::exp` where it wants
//! it, in half-precision graphs).

#[cfg(feature = "metal")]
pub use pipelines::pipeline;

/// The prelude every generated kernel is compiled with.
pub const PRELUDE: &str = include_str!("prelude.metal");

/// The full text Metal compiles: configuration defines, prelude, kernel.
pub fn full_source(defines: &str, kernel: &str) -> String {
    format!("{defines}{PRELUDE}\n{kernel}")
}

#[cfg(feature = "metal")]
mod pipelines {
    use std::thread::LocalKey;

    use candle_core::MetalDevice;
    use candle_metal_kernels::metal::ComputePipeline;
    use graph_ir::Kernel;
    use objc2::available;
    use objc2_metal::{MTLCompileOptions, MTLMathFloatingPointFunctions, MTLMathMode};

    use super::full_source;
    use crate::exec::gpu::cache::{Compiled, KernelCache, Key, Recent};
    use crate::exec::gpu::Config;

    fn compile_options() -> objc2::rc::Retained<MTLCompileOptions> {
        let options = MTLCompileOptions::new();
        if available!(macos = 15, ios = 18) {
            options.setMathMode(MTLMathMode::Relaxed);
            options.setMathFloatingPointFunctions(MTLMathFloatingPointFunctions::Precise);
        } else {
            #[allow(deprecated)]
            options.setFastMathEnabled(false);
        }
        options
    }

    /// The pipeline of kernel `k` in `config`, compiled on `device` at first use. The error is
    /// Metal's message.
    pub fn pipeline(
        device: &MetalDevice,
        k: &'static Kernel,
        config: &Config,
    ) -> Result<ComputePipeline, String> {
        static PIPELINES: KernelCache<ComputePipeline> = KernelCache::new();
        let key = Key::new(device.registry_id(), k, *config);
        let name = k.name;
        PIPELINES.get(
            key,
            name,
            "Metal",
            || Ok(()),
            |defines| {
                let text = full_source(defines, k.gpu.metal);
                let metal = device.metal_device();
                let library = metal
                    .new_library_with_source(&text, Some(&compile_options()))
                    .map_err(|e| format!("compiling {name}: {e}"))?;
                let function = library
                    .get_function(name, None)
                    .map_err(|e| format!("finding {name}: {e}"))?;
                metal
                    .new_compute_pipeline_state_with_function(&function)
                    .map_err(|e| format!("making the pipeline of {name}: {e}"))
            },
        )
    }

    impl Compiled for ComputePipeline {
        fn recent() -> &'static LocalKey<Recent<Self>> {
            thread_local! {
                static RECENT: Recent<ComputePipeline> = Recent::default();
            }
            &RECENT
        }
    }
}
