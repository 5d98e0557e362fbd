//! CUDA graphs: record the GPU work of a closure once, then replay it with one launch.
//!
//! A decode step of a model is hundreds of tiny kernels, and on a GPU each costs a few
//! microseconds of host time to launch, more than it runs. [`capture`] records what a closure
//! queues on a CUDA device's stream (generated calls and ordinary Candle ops alike) into a CUDA
//! graph; [`CudaGraph::replay`] runs all of it again with one launch.
//!
//! ```no_run
//! # use candle_core::{DType, Device, Tensor};
//! # graph_runtime::lazy_graph! {
//! #     pub fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
//! #         x * rsqrt(mean(x * x, -1) + eps) * w
//! #     }
//! # }
//! # fn main() -> graph_runtime::Result<()> {
//! # let device = Device::new_cuda(0).map_err(|e| graph_runtime::Error::Capture(e.to_string()))?;
//! # let x = Tensor::zeros((1, 4096), DType::BF16, &device).unwrap();
//! # let w = Tensor::ones(4096, DType::BF16, &device).unwrap();
//! # let next = x.clone();
//! // Warm up, then record: the outputs are the tensors the replays write.
//! // SAFETY: this thread alone uses the device while it records, and the closure drops no
//! // tensor made before the capture.
//! let graph = unsafe {
//!     graph_runtime::cuda_graph::capture(&device, || {
//!         let y = rms_norm(&x, &w, 1e-6)?;
//!         (y * 2.0)?.exp()
//!     })
//! }?;
//! // New input values go into the captured input tensors; then replay and read the output.
//! graph_runtime::cuda_graph::write(&x, &next)?;
//! graph.replay()?;
//! let y: &Tensor = graph.outputs();
//! # Ok(())
//! # }
//! ```
//!
//! The contract is that of CUDA graphs everywhere (PyTorch's `torch.cuda.CUDAGraph` too):
//! - **Static buffers.** A replay reads the tensors the closure read and writes the tensors it
//!   returned, at the same device addresses. Give it new inputs by writing into those tensors
//!   ([`write`], or Candle's `slice_set`), never by making new ones; read its results from
//!   [`CudaGraph::outputs`] (each replay overwrites them: copy what must outlive the next).
//! - **A warm-up, then a recording.** [`capture`] runs the closure twice: once uncaptured, so
//!   that generated kernels compile (per launch configuration, which depends on the shapes),
//!   Candle loads the modules of its own ops and uploads the layouts its strided ops and
//!   reductions read from device memory (kept in Candle's cache of the capturing thread); then
//!   recorded, which runs nothing. It then replays once itself, so that the outputs hold the
//!   closure's results for the inputs as they were. So the closure's results must depend on its
//!   inputs only, and in-place writes it makes (a cache update) happen twice.
//! - **A compile in the recorded run fails.** A kernel the warm-up did not compile (a closure
//!   whose second run takes another path) cannot be recorded: that is an [`Error::Capture`]
//!   saying so, and the device stays usable.
//! - **No host copies.** While the capture runs, Candle refuses a copy between host and device
//!   memory (`to_vec`, `Tensor::new` from host data) with an error. (The driver alone does not:
//!   on an H200 a `to_vec` inside a capture without Candle's checks was recorded as a copy into
//!   host memory that every replay writes after it was freed.) It stays part of [`capture`]'s
//!   safety contract for copies made around Candle (through cudarc directly).
//! - **Lifetimes.** A graph keeps the closure (and what it owns) and its outputs, and borrows what
//!   the closure borrows: the tensors a replay reads outlive it.
//! - **Memory.** Tensors the closure allocates and drops are the graph's scratch memory; those it
//!   returns live while the graph or a clone of them does.
//! - **What [`capture`] cannot check** (its safety contract): a capture records whatever is
//!   queued on the device's stream, from any thread. Work another thread queues on a tensor of
//!   the same device while a capture runs (Candle has one stream per device) would be recorded
//!   instead of run, and the frees it queues replayed; and a tensor made before the capture whose
//!   last handle the closure drops would be freed by every replay. Candle's cross-stream event
//!   tracking is off while a capture runs (a capture cannot wait on work recorded outside it), so
//!   tensors the closure allocates carry no events: right as long as they stay on that stream.
//!
//! This module exists with the `cuda` feature.

use std::sync::Arc;

use candle_core::cuda_backend::cudarc::driver::{self, sys, CudaStream, DriverError};
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// Work recorded from a closure, replayed with one launch; holds the closure's outputs, which
/// every replay writes. See the [module docs](self) for the contract.
pub struct CudaGraph<'a, T> {
    exec: driver::CudaGraph,
    outputs: T,
    /// The closure, kept: what it owns lives as long as the graph that reads it (dropped after
    /// the graph, in stream order after any replay still running).
    _work: Box<dyn FnMut() -> candle_core::Result<T> + 'a>,
    /// Not `Send`: replays read the layouts Candle cached on the capturing thread.
    _thread: std::marker::PhantomData<*const ()>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for CudaGraph<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaGraph")
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl<T> CudaGraph<'_, T> {
    /// Queues the recorded work on the device's stream again: it reads the captured inputs as
    /// they are now and writes the outputs. Like any GPU work it is asynchronous: reading an
    /// output (`to_vec`, or another op on the stream) comes after it.
    pub fn replay(&self) -> Result<()> {
        self.exec
            .launch()
            .map_err(|e| Error::Capture(format!("replay: {e:?}")))
    }

    /// What the closure returned: the tensors every replay writes.
    pub fn outputs(&self) -> &T {
        &self.outputs
    }
}

/// Runs `work` once uncaptured (the warm-up), records the GPU work a second run queues on
/// `device`'s stream into a CUDA graph, replays it once (so that the outputs hold its results),
/// and returns it with the recorded run's outputs. The graph keeps `work` and borrows what it
/// borrows.
///
/// Errors: `device` is not a CUDA device; `work` failed (its error, with what a capture cannot
/// record when that was the cause); the recorded work did something a capture cannot hold; the
/// driver refused the graph. The device and its stream are usable after any of them.
///
/// # Safety
///
/// While the capture runs, no other thread queues work on `device` (a Candle op or a generated
/// call on a tensor of `device`): it would be recorded into this graph instead of run. `work`
/// does not drop the last handle to a tensor allocated before the capture (every replay would
/// free it again), and copies nothing between host and device memory other than through
/// Candle, which refuses such copies during a capture (a replay would write host memory that may
/// be gone). The layouts Candle uploaded in the warm-up live in a cache of the capturing thread,
/// which the graph reads: replays run on that thread (a `CudaGraph` is not `Send`).
pub unsafe fn capture<'a, T, F>(device: &Device, mut work: F) -> Result<CudaGraph<'a, T>>
where
    F: FnMut() -> candle_core::Result<T> + 'a,
{
    let Device::Cuda(cuda) = device else {
        return Err(Error::Capture(format!(
            "capture needs a CUDA device, not {:?}",
            device.location()
        )));
    };
    let stream = cuda.cuda_stream();
    // Candle's capture support, on this thread until the first replay is queued: the layouts its
    // strided ops and reductions read from device memory are uploaded once and cached (the
    // warm-up fills the cache, the capture reads it), and a copy between host and device memory
    // while the capture runs is an error instead of a recorded copy.
    let _layouts = cuda.enable_cuda_graph_htod_cache();
    // The warm-up: kernels compile, Candle loads its modules and uploads its layouts.
    drop(work().map_err(|e| {
        Error::Capture(format!(
            "the work failed in its warm-up run, before the capture: {e}"
        ))
    })?);
    let recording = Recording::start(&stream)?;
    let result = work();
    let graph = recording.finish();
    let outputs = result
        .map_err(|e| Error::Capture(format!("the captured work failed: {e}{}", hint(&e.to_string()))))?;
    let exec = graph?.ok_or_else(|| Error::Capture("the closure queued no GPU work".to_string()))?;
    let graph = CudaGraph {
        exec,
        outputs,
        _work: Box::new(work),
        _thread: std::marker::PhantomData,
    };
    graph.replay()?;
    Ok(graph)
}

/// Writes `src`'s values into `dst`, the way a captured input gets new values before a replay:
/// in place, on the device's stream (itself a copy a capture can record). Both have one shape
/// and dtype and live on one device; `dst` is contiguous (as the tensors of a graph's inputs
/// usually are), `src` may have any layout.
pub fn write(dst: &Tensor, src: &Tensor) -> Result<()> {
    let fail = |what: String| Error::Capture(format!("write: {what}"));
    if dst.shape() != src.shape() {
        return Err(fail(format!(
            "the source has shape {:?}, the tensor written {:?}",
            src.dims(),
            dst.dims()
        )));
    }
    if !dst.is_contiguous() {
        return Err(fail(format!(
            "the tensor written (shape {:?}) is not contiguous: it must be the tensor itself, not a view of it",
            dst.dims()
        )));
    }
    let n = dst.elem_count();
    if n == 0 {
        return Ok(());
    }
    // A source sharing the tensor's storage (a view of it, or the tensor itself) is copied first.
    let storage = |t: &Tensor| std::ptr::from_ref::<candle_core::Storage>(&t.storage_and_layout().0);
    let src = match storage(dst) == storage(src) {
        true => src.copy(),
        false => src.contiguous(),
    };
    let src = src.and_then(|s| s.reshape(n));
    let copied = src.and_then(|s| dst.reshape(n)?.slice_set(&s, 0, 0));
    copied.map_err(|e| fail(e.to_string()))
}

/// A capture under way on a stream; ended (its graph discarded) if dropped unfinished, so that a
/// failing or panicking closure leaves the stream as it found it.
struct Recording<'s> {
    stream: &'s Arc<CudaStream>,
    tracking: bool,
    active: bool,
}

impl<'s> Recording<'s> {
    fn start(stream: &'s Arc<CudaStream>) -> Result<Recording<'s>> {
        let ctx = stream.context();
        let tracking = ctx.is_event_tracking();
        if tracking {
            // SAFETY: for the capture only, on the one stream the capture records (see the
            // module docs); restored when it ends.
            unsafe { ctx.disable_event_tracking() };
        }
        let mut recording = Recording {
            stream,
            tracking,
            active: false,
        };
        stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| Error::Capture(format!("starting the capture: {e:?}")))?;
        recording.active = true;
        Ok(recording)
    }

    /// Ends the capture: the graph, instantiated so that each launch first frees what the last
    /// one allocated and left allocated (the outputs, which the new launch writes at the same
    /// addresses).
    fn finish(mut self) -> Result<Option<driver::CudaGraph>> {
        self.active = false;
        let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
        self.stream.end_capture(flags).map_err(|e| {
            Error::Capture(format!(
                "the recorded work cannot be replayed: {e:?}{}",
                hint(&format!("{e:?}"))
            ))
        })
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        if self.active {
            let flags = sys::CUgraphInstantiate_flags(0);
            drop(self.stream.end_capture(flags));
        }
        if self.tracking {
            // SAFETY: restores what `start` found.
            unsafe { self.stream.context().enable_event_tracking() };
        }
    }
}

/// What a driver error met during a capture means, for the message.
fn hint(error: &str) -> &'static str {
    if error.contains("STREAM_CAPTURE_UNSUPPORTED") {
        " (an operation a capture cannot record: a synchronisation, or a copy between host and \
         device memory such as `to_vec` or `Tensor::new`; do it before or after the capture)"
    } else if error.contains("STREAM_CAPTURE_INVALIDATED") {
        " (an earlier operation in the closure could not be recorded, which invalidated the \
         capture: a synchronisation, or a copy between host and device memory)"
    } else if error.contains("STREAM_CAPTURE_ISOLATION") || error.contains("STREAM_CAPTURE_UNJOINED") {
        " (the recorded work waited on, or forked to, work on another stream)"
    } else if error.contains("STREAM_CAPTURE_WRONG_THREAD") {
        " (work was queued from another thread)"
    } else {
        ""
    }
}

/// Bytes of device memory CUDA graphs hold on `device` now (what their launches allocated and
/// did not free, and what the driver keeps for reuse); `None` off CUDA. For tests and
/// diagnostics, with [`trim`].
pub fn graph_memory(device: &Device) -> Option<u64> {
    let Device::Cuda(cuda) = device else { return None };
    let ctx = cuda.cuda_stream().context().clone();
    ctx.bind_to_thread().ok()?;
    let mut used: u64 = 0;
    // SAFETY: the attribute is a 64-bit value, written to `used`.
    let r = unsafe {
        sys::cuDeviceGetGraphMemAttribute(
            ctx.cu_device(),
            sys::CUgraphMem_attribute::CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
            &mut used as *mut u64 as *mut std::ffi::c_void,
        )
    };
    (r == sys::CUresult::CUDA_SUCCESS).then_some(used)
}

/// Returns the device memory that no live CUDA graph needs to the system (graphs keep freed
/// memory for their next launch). Synchronises the device first.
pub fn trim(device: &Device) -> Result<()> {
    let Device::Cuda(cuda) = device else { return Ok(()) };
    let stream = cuda.cuda_stream();
    let fail = |e: DriverError| Error::Capture(format!("trimming graph memory: {e:?}"));
    stream.synchronize().map_err(fail)?;
    let ctx = stream.context();
    ctx.bind_to_thread().map_err(fail)?;
    // SAFETY: a plain driver call on the current context's device.
    unsafe { sys::cuDeviceGraphMemTrim(ctx.cu_device()) }
        .result()
        .map_err(fail)
}
