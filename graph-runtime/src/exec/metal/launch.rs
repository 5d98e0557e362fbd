//! Launching a generated kernel on a Metal device: gets the pipeline (`compile`) for the
//! configuration chosen (`config`), allocates the outputs, and encodes the kernel on Candle's
//! command encoder with every buffer bound, as Candle's own Metal ops do (see `super`).

use candle_core::{MetalDevice, MetalStorage, Storage};
use candle_metal_kernels::metal::ComputeCommandEncoder;
use graph_ir::gpu::metal::{input_buffer, output_buffer};
use graph_ir::{Graph, Kernel};
use objc2_metal::{MTLComputePipelineState, MTLSize};

use super::compile::pipeline;
use super::config::{choose, dtype_code, groups, words};
use crate::bind::Bound;
use crate::error::Result;
use crate::exec::gpu::request::{self, LaunchRequest};
use crate::exec::gpu::{self, Operand};
use crate::exec::{Arg, Sink};

/// Entries in a Metal function's buffer argument table.
const MAX_BUFFERS: usize = 31;

/// The most bytes `setBytes` passes.
const MAX_BYTES: usize = 4096;

/// Runs kernel `k` on Metal tensors of `bound.dtype`, pushing its outputs, in order, to `out`;
/// `false`, with nothing pushed, where no Metal kernel applies (the caller then runs the
/// kernel's nodes through Candle): f64, a column kernel (its MSL is emitted and checked, but its
/// two-stage launch has not run on a Mac yet), an empty output, more buffers or argument bytes than a Metal function takes, or a GPU whose
/// simdgroups are not 32 wide or whose pipelines allow fewer than 32 threads.
pub fn run(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[Arg<'_>],
    device: &MetalDevice,
    out: &mut dyn Sink,
) -> Result<bool> {
    let fail = |m: String| gpu::error(graph, k, m);
    let Some(dtype) = dtype_code(bound.dtype) else {
        return Ok(false);
    };
    if let graph_ir::KernelKind::Column { .. } = k.kind {
        return Ok(false);
    }
    if 1 + k.inputs.len() + k.outputs.len() > MAX_BUFFERS {
        return Ok(false);
    }
    let Some(mut req) = LaunchRequest::of(graph, k, bound, dtype)? else {
        return Ok(false);
    };

    // Inputs, at their offsets in their buffers: the storage guards live until every buffer is
    // bound.
    let guards = request::guards(args);
    req.bind(&guards, args, |_| Ok(0))?;

    // The pipeline: a configuration whose threadgroup the compiled pipeline allows.
    let mut max_threads = 1024;
    let (config, pipeline) = loop {
        let config = choose(&req, max_threads);
        let compiled = pipeline(device, k, &config).map_err(fail)?;
        let limit = compiled.max_total_threads_per_threadgroup();
        if config.threads() as usize <= limit {
            break (config, compiled);
        }
        // The largest power of two within the limit; strictly lower each time, so this ends.
        let lower = match limit {
            0 => 0,
            l => 1u32 << (usize::BITS - 1 - l.leading_zeros()).min(31),
        };
        if lower < 32 || lower >= max_threads {
            return Ok(false);
        }
        max_threads = lower;
    };
    if pipeline.as_ref().threadExecutionWidth() != 32 {
        return Ok(false);
    }
    let words = words(&req, &config);
    if std::mem::size_of_val(&words[..]) > MAX_BYTES {
        return Ok(false);
    }

    // Outputs, contiguous; the kernel writes every element.
    let mut outs = Vec::with_capacity(k.outputs.len());
    for shape in &req.out_shapes {
        let n: usize = shape.iter().product();
        let buffer = device
            .new_buffer_builder()
            .with_size_for(n, bound.dtype)
            .with_label(k.name)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        outs.push((buffer, n));
    }

    let encoder = device.command_encoder().map_err(|e| fail(e.to_string()))?;
    encoder.set_label(k.name);
    let enc: &ComputeCommandEncoder = encoder.as_ref();
    enc.set_compute_pipeline_state(&pipeline);
    enc.set_bytes_directly(0, std::mem::size_of_val(&words[..]), words.as_ptr().cast());
    for (i, (guard, input)) in guards.iter().zip(&req.inputs).enumerate() {
        if let (Some((storage, _)), Operand::Tensor(input)) = (guard, input) {
            let Storage::Metal(metal) = &**storage else {
                unreachable!("binding keeps every tensor on the inputs' Metal device")
            };
            enc.set_input_buffer(input_buffer(i), Some(metal.buffer()), input.start as usize);
        }
    }
    for (o, (buffer, _)) in outs.iter().enumerate() {
        enc.set_output_buffer(output_buffer(k.inputs.len(), o), Some(buffer), 0);
    }
    let size = |width| MTLSize {
        width,
        height: 1,
        depth: 1,
    };
    enc.dispatch_thread_groups(size(groups(&req, &config)), size(config.threads() as usize));
    drop(encoder);
    drop(guards);

    for ((buffer, n), shape) in outs.into_iter().zip(req.out_shapes) {
        let storage = MetalStorage::new(buffer, device.clone(), n, bound.dtype);
        out.put(Storage::Metal(storage), shape.to_vec());
    }
    Ok(true)
}
