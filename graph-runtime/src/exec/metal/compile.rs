//! Turning a kernel's MSL source into a compute pipeline through Candle's Metal device, once per
//! GPU, kernel and configuration.
//!
//! The cache is a map of once-cells per GPU (keyed by the device's registry id: Candle's devices
//! on one GPU share its `MTLDevice`, for which pipelines are made), so that many threads making
//! the same first call compile once while the others wait, and different kernels compile in
//! parallel. A failure is kept too, so a kernel Metal rejects is not recompiled on every call.
//!
//! Compile options follow Candle's (`candle_metal_kernels::kernel::get_compile_options`) with
//! fast math off: relaxed math keeps infinities and NaNs, which reductions and masks rely on, and
//! the library functions are the precise ones (the prelude asks for `fast::exp` where it wants
//! it, in half-precision graphs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use candle_core::MetalDevice;
use candle_metal_kernels::metal::ComputePipeline;
use objc2::available;
use objc2_metal::{MTLCompileOptions, MTLMathFloatingPointFunctions, MTLMathMode};

use super::config::full_source;
use crate::exec::gpu::Config;

/// A pipeline, or why there is none.
type Slot = Arc<OnceLock<Result<ComputePipeline, String>>>;

/// The pipelines compiled for one GPU, by kernel (its static address) and configuration.
type Pipelines = Mutex<HashMap<(usize, Config), Slot>>;

fn pipelines(device: &MetalDevice) -> Arc<Pipelines> {
    static DEVICES: Mutex<Vec<(u64, Arc<Pipelines>)>> = Mutex::new(Vec::new());
    let id = device.registry_id();
    let mut devices = DEVICES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, p)) = devices.iter().find(|(d, _)| *d == id) {
        return p.clone();
    }
    let p = Arc::new(Mutex::new(HashMap::new()));
    devices.push((id, p.clone()));
    p
}

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

/// The pipeline of function `name` of `source` in `config`, compiled on `device` at first use.
/// `kernel` identifies the kernel (its static address). The error is Metal's message.
pub fn pipeline(
    device: &MetalDevice,
    kernel: usize,
    name: &str,
    config: &Config,
    source: &str,
) -> Result<ComputePipeline, String> {
    let slot = pipelines(device)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((kernel, *config))
        .or_default()
        .clone();
    slot.get_or_init(|| {
        let defines = config.defines();
        if std::env::var_os("LAZY_GRAPH_LOG_KERNELS").is_some() {
            eprintln!(
                "lazy_graph: compiling {name} for Metal with {}",
                defines.replace('\n', "; ")
            );
        }
        let text = full_source(&defines, source);
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
    })
    .clone()
}
