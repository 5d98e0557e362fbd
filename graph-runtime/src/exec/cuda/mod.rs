//! The CUDA backend: generated kernels compiled by NVRTC and launched on Candle's stream.
//!
//! - `compile`: the kernel's source to a loaded function, cached in memory and on disk;
//! - `config`: the launch configuration, grid and argument words, from the bound shapes;
//! - `launch`: binding the arguments, allocating the outputs, launching;
//! - `done`: observing when the stream has run a call's work, for asynchronous calls.

pub mod compile;
pub mod config;
pub mod done;
mod launch;

use std::cell::Cell;
use std::sync::{Mutex, PoisonError};

use candle_core::backend::BackendDevice;
use candle_core::cuda_backend::cudarc::driver::{sys, CudaStream};
use candle_core::CudaDevice;
use futures_channel::oneshot;
use graph_ir::{Graph, Kernel};

use crate::bind::Bound;
use crate::error::Result;
use crate::exec::backend::{Backend, Completion};
use crate::exec::{Arg, Sink};

/// Kernels queue on Candle's stream for the device; an asynchronous call queues on the caller's
/// thread and an event behind its work completes it (see `done`).
impl Backend for CudaDevice {
    fn launch(
        &self,
        graph: &'static Graph,
        k: &'static Kernel,
        bound: &Bound,
        args: &[Arg<'_>],
        out: &mut dyn Sink,
    ) -> Result<bool> {
        launch::run(graph, k, bound, args, self, out)
    }

    fn wait(&self) -> candle_core::Result<()> {
        BackendDevice::synchronize(self)
    }

    fn reports_completion(&self) -> bool {
        true
    }

    fn when_done(&self) -> std::result::Result<oneshot::Receiver<Completion>, String> {
        done::when_done(self)
    }
}

/// What the runtime needs to know of a CUDA GPU, read once per GPU.
#[derive(Clone, Copy, Debug)]
pub struct DeviceState {
    /// The GPU's ordinal: Candle's devices for one GPU share its primary context, in which
    /// loaded modules stay valid (the kernel cache keeps the context alive), so it is what
    /// kernels are cached by.
    pub ordinal: usize,
    /// Compute capability as `major * 10 + minor`.
    pub arch: i32,
    /// Streaming multiprocessors.
    pub sms: u32,
}

/// The state of the GPU that `stream` runs on, read on first use and kept for the process. Each
/// thread remembers the last one it asked for, so a call takes no lock.
pub fn device_state(stream: &CudaStream) -> std::result::Result<DeviceState, String> {
    thread_local! {
        static LAST: Cell<Option<DeviceState>> = const { Cell::new(None) };
    }
    let ordinal = stream.context().ordinal();
    if let Some(state) = LAST.get() {
        if state.ordinal == ordinal {
            return Ok(state);
        }
    }
    static DEVICES: Mutex<Vec<DeviceState>> = Mutex::new(Vec::new());
    let mut devices = DEVICES.lock().unwrap_or_else(PoisonError::into_inner);
    let state = match devices.iter().find(|s| s.ordinal == ordinal) {
        Some(state) => *state,
        None => {
            let ctx = stream.context();
            let (major, minor) = ctx.compute_capability().map_err(|e| format!("{e:?}"))?;
            let sms = ctx
                .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_err(|e| format!("{e:?}"))?;
            let state = DeviceState {
                ordinal,
                arch: major * 10 + minor,
                sms: sms.max(1) as u32,
            };
            devices.push(state);
            state
        }
    };
    LAST.set(Some(state));
    Ok(state)
}
