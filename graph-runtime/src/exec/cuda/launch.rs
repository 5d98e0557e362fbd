//! Launching a generated kernel on a CUDA device: binds the arguments' device addresses, gets
//! the compiled function (`compile`) for the configuration chosen (`config`), allocates the
//! outputs, fills the argument words and launches on Candle's stream for the device.
//!
//! The launch passes device addresses inside one by-value argument, so it goes through
//! `cuLaunchKernel` directly rather than cudarc's argument builder. Ordering is Candle's: every
//! address comes from `device_ptr`, which makes the stream wait on the buffer's last write when
//! Candle's device tracks streams with events (its default single stream needs none), and its
//! guard records our read (or write) when dropped after the launch.

use std::ffi::c_void;

use candle_core::cuda_backend::cudarc::driver::{result, DevicePtr, DevicePtrMut, DeviceRepr};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage};
use candle_core::{DType, Storage, WithDType};
use graph_ir::{Graph, Kernel, KernelKind};
use smallvec::SmallVec;

use super::compile::function;
use super::config::{choose, dtype_code, groups, words};
use super::device_state;
use crate::bind::Bound;
use crate::error::Result;
use crate::exec::gpu::config::Chunks;
use crate::exec::gpu::request::{self, LaunchRequest};
use crate::exec::gpu::{self, Operand, Words};
use crate::exec::{Arg, Sink};
use crate::profile::{Clock, Phase};

/// Runs kernel `k` on CUDA tensors of `bound.dtype`, pushing its outputs, in order, to `out`;
/// `false`, with nothing pushed, when some output is empty (the caller then runs the kernel's
/// nodes through Candle).
pub fn run(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[Arg<'_>],
    device: &CudaDevice,
    out: &mut dyn Sink,
) -> Result<bool> {
    match bound.dtype {
        DType::F32 => run_typed::<f32>(graph, k, bound, args, device, out),
        DType::F64 => run_typed::<f64>(graph, k, bound, args, device, out),
        DType::F16 => run_typed::<half::f16>(graph, k, bound, args, device, out),
        DType::BF16 => run_typed::<half::bf16>(graph, k, bound, args, device, out),
        other => unreachable!("binding accepts float dtypes only, found {other:?}"),
    }
}

fn run_typed<T: CudaDType + DeviceRepr + WithDType>(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[Arg<'_>],
    device: &CudaDevice,
    out: &mut dyn Sink,
) -> Result<bool> {
    let fail = |m: String| gpu::error(graph, k, m);
    let mut clock = Clock::start();
    let dtype = dtype_code(bound.dtype).expect("float dtype");
    let Some(mut req) = LaunchRequest::of(graph, k, bound, dtype)? else {
        return Ok(false);
    };

    let stream = device.cuda_stream();
    let state = device_state(&stream).map_err(fail)?;

    // Inputs: storage guards and read guards live until after the launch.
    let guards = request::guards(args);
    let mut reads: SmallVec<[_; 8]> = SmallVec::new();
    req.bind(&guards, args, |storage| {
        let Storage::Cuda(cuda) = storage else {
            unreachable!("binding keeps every tensor on the inputs' CUDA device")
        };
        let slice = cuda.as_cuda_slice::<T>().map_err(|e| fail(e.to_string()))?;
        let (base, read) = slice.device_ptr(&stream);
        reads.push(read);
        Ok(base)
    })?;

    // A column kernel's reduced axis is one of its prefix dims: kept apart.
    let columns = matches!(k.kind, KernelKind::Column { .. });
    if !columns {
        req.collapse();
    }
    let config = choose(&req, &state);
    clock.lap(Phase::CudaPrepare);
    let function = function(device, &state, k, &config).map_err(fail)?;
    clock.lap(Phase::CudaFunction);

    // Outputs, contiguous.
    let mut outs: SmallVec<[_; 2]> = SmallVec::new();
    for shape in &req.out_shapes {
        let n: usize = shape.iter().product();
        // SAFETY: uninitialised device memory is only unspecified values, never read before the
        // kernel writes every element of it (the contract of `graph_ir::GpuKernel`); `n` was
        // checked against `isize::MAX` bytes in `LaunchRequest::of`.
        // At least one element: the driver refuses an allocation of none.
        let slice = unsafe { device.alloc::<T>(n.max(1)) }.map_err(|e| fail(e.to_string()))?;
        outs.push(slice);
    }

    clock.lap(Phase::CudaAlloc);
    // The words, then the inputs' and outputs' device addresses.
    let (l, mut words) = words(&req, &config);
    for (i, input) in req.inputs.iter().enumerate() {
        if let Operand::Tensor(input) = input {
            words[l.in_ptr(i)] = input.start as i64;
        }
    }
    let mut writes: SmallVec<[_; 2]> = SmallVec::new();
    for (o, slice) in outs.iter_mut().enumerate() {
        let (addr, write) = slice.device_ptr_mut(&stream);
        words[l.out_ptr(o)] = addr as i64;
        writes.push(write);
    }

    // A column kernel's partial results, in the compute type; freed (stream-ordered) once both
    // of its launches are queued.
    let mut partials: SmallVec<[_; 2]> = SmallVec::new();
    let mut partial_writes: SmallVec<[_; 2]> = SmallVec::new();
    let chunks = columns.then(|| Chunks::of(&req, &config));
    if let Some(c) = chunks {
        // Bytes: f64 kernels compute in f64, the others in f32.
        let compute = if bound.dtype == DType::F64 { 8 } else { 4 };
        let bytes = c.out_rows * c.parts * req.out_lens[0] * compute;
        for _ in 0..k.outputs.len() {
            // SAFETY: uninitialised device memory is only unspecified values; the first stage
            // writes every partial result (each (row, chunk, column) unit once) before the
            // second reads it. At least one byte: the driver refuses an allocation of none.
            let buffer = unsafe { device.alloc::<u8>(bytes.max(1)) }.map_err(|e| fail(e.to_string()))?;
            partials.push(buffer);
        }
        for (o, p) in partials.iter_mut().enumerate() {
            let (addr, write) = p.device_ptr_mut(&stream);
            words[l.partials(o)] = addr as i64;
            partial_writes.push(write);
        }
    }

    let (grid, block) = (groups(&req, &config, &state), config.threads());
    // Outputs without elements need no work, and a grid of no blocks is an invalid launch.
    let empty = req.out_shapes.iter().all(|s| s.contains(&0));
    stream
        .context()
        .bind_to_thread()
        .map_err(|e| fail(format!("{e:?}")))?;
    // One launch of the function with the words as they are now (the driver copies them).
    let launch = |words: &mut Words, grid: u32| {
        let mut params = [words.as_mut_ptr() as *mut c_void];
        // SAFETY: the function takes one argument, `LgArgs<words>`, which `params` points at;
        // every address in it is a live allocation of the sizes the words describe (held by
        // `guards`, `outs` and `partials` until the launches are queued, and stream-ordered
        // after them); a column kernel's second launch reads the partial results its first,
        // queued before it on the stream, wrote.
        unsafe {
            result::launch_kernel(
                function.cu_function(),
                (grid, 1, 1),
                (block, 1, 1),
                0,
                stream.cu_stream(),
                &mut params,
            )
        }
        .map_err(|e| fail(format!("launch: {e:?}")))
    };
    if !empty && grid > 0 {
        launch(&mut words, grid)?;
    }
    if let (Some(c), false) = (chunks, empty) {
        // The second stage: a thread per output element combines its partial results.
        words[l.stage()] = 1;
        let elements = c.out_rows * req.out_lens[0];
        let grid = elements
            .div_ceil(block as usize)
            .clamp(1, state.sms as usize * 64) as u32;
        launch(&mut words, grid)?;
    }
    drop(partial_writes);
    drop(partials);
    drop(writes);
    drop(reads);
    drop(guards);
    clock.lap(Phase::CudaLaunch);
    for (slice, shape) in outs.into_iter().zip(req.out_shapes) {
        let storage = CudaStorage::wrap_cuda_slice(slice, device.clone());
        out.put(Storage::Cuda(storage), shape.to_vec());
    }
    clock.lap(Phase::CudaWrap);
    Ok(true)
}
