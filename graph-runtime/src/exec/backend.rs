//! The one device dispatch: [`of`] maps a Candle device to the [`Backend`] that runs generated
//! kernels on it, for the synchronous path (`fused`) and the asynchronous one
//! ([`crate::future`]), which also asks it how a call's end is observed there.

use candle_core::Device;
use futures_channel::oneshot;
use graph_ir::{Graph, Kernel};

use crate::bind::Bound;
use crate::error::Result;
use crate::exec::{cpu, Arg, Sink};

/// What an asynchronous call learns once its device work has run: `Err` if the device reported
/// an error instead (the future then surfaces it).
pub type Completion = std::result::Result<(), String>;

/// What runs generated kernels on one kind of device, and how the end of a call's work is
/// observed there.
pub trait Backend {
    /// Runs kernel `k` of `graph` as generated code on `args` (bound as `bound`), pushing its
    /// outputs, in order, to `out`; `false`, with nothing pushed, where no generated code applies
    /// (the caller then runs the kernel's nodes through Candle).
    fn launch(
        &self,
        graph: &'static Graph,
        k: &'static Kernel,
        bound: &Bound,
        args: &[Arg<'_>],
        out: &mut dyn Sink,
    ) -> Result<bool>;

    /// Blocks until the device has finished the work the calling thread gave it.
    fn wait(&self) -> candle_core::Result<()>;

    /// Whether the device reports when queued work has run ([`Backend::when_done`]). Then an
    /// asynchronous call queues its work from the caller's thread (queuing is quick) and nothing
    /// waits; otherwise the call runs on a worker, which then [`wait`](Backend::wait)s.
    fn reports_completion(&self) -> bool {
        false
    }

    /// A receiver that completes once the device has run the work the calling thread queued
    /// so far. An error means none could be made; the caller then waits instead.
    fn when_done(&self) -> std::result::Result<oneshot::Receiver<Completion>, String> {
        Err("this device reports no completion".to_string())
    }
}

/// The backend of `device`.
pub fn of(device: &Device) -> &dyn Backend {
    match device {
        Device::Cpu => &cpu::Cpu,
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => cuda,
        #[cfg(feature = "metal")]
        Device::Metal(metal) => metal,
        #[allow(unreachable_patterns)]
        _ => device,
    }
}

/// A device whose backend this build leaves out (CUDA or Metal without this crate's feature):
/// no generated code, so every kernel runs through Candle, and Candle's own synchronize.
impl Backend for Device {
    fn launch(
        &self,
        _: &'static Graph,
        _: &'static Kernel,
        _: &Bound,
        _: &[Arg<'_>],
        _: &mut dyn Sink,
    ) -> Result<bool> {
        Ok(false)
    }

    fn wait(&self) -> candle_core::Result<()> {
        self.synchronize()
    }
}
