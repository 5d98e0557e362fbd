//! Observing when a CUDA stream has finished the work queued so far, without a thread waiting.
//!
//! [`when_done`] queues a host function (`cuLaunchHostFunc`) behind that work; the driver calls it
//! from its own thread once everything before it has run, and it completes a oneshot channel. The
//! host function makes no CUDA call, as the driver requires: it only sends `()` and frees its box.
//! Everything that owns device memory stays with the future on the caller's side.

use std::ffi::c_void;

use candle_core::cuda_backend::cudarc::driver::sys;
use candle_core::CudaDevice;
use futures_channel::oneshot;

/// A receiver that completes once `device`'s stream (the calling thread's, for Candle's default
/// per-thread stream) has run everything queued before this call. An error means the host
/// function could not be queued; the caller then synchronises instead.
pub fn when_done(device: &CudaDevice) -> Result<oneshot::Receiver<()>, String> {
    let (tx, rx) = oneshot::channel::<()>();
    let stream = device.cuda_stream();
    stream
        .context()
        .bind_to_thread()
        .map_err(|e| format!("{e:?}"))?;
    let data = Box::into_raw(Box::new(tx)) as *mut c_void;
    // SAFETY: `done` takes back the box exactly once, when the driver runs it.
    let queued = unsafe { sys::cuLaunchHostFunc(stream.cu_stream(), Some(done), data) };
    if queued != sys::CUresult::CUDA_SUCCESS {
        // SAFETY: not queued, so `done` will never run: the box is still ours.
        drop(unsafe { Box::from_raw(data as *mut oneshot::Sender<()>) });
        return Err(format!("cuLaunchHostFunc: {queued:?}"));
    }
    Ok(rx)
}

/// Runs on a driver thread once the stream reaches it.
unsafe extern "C" fn done(data: *mut c_void) {
    // SAFETY: `data` is the box `when_done` leaked, handed over once.
    let tx = unsafe { Box::from_raw(data as *mut oneshot::Sender<()>) };
    // The future may be gone; then there is nobody to tell.
    let _ = tx.send(());
}
