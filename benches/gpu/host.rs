//! The GPU bench's rows on a call's host cost: what one launch costs the host here (the floor
//! under the 1x4096 rows), and a chain of calls replayed from a CUDA graph.

use candle_core::{DType, Device, Result, Tensor};

use super::common::rms_norm;
use super::{rand, time, Inputs};

/// What one launch costs the host on this machine, for the 1x4096 rows: an empty launch of one
/// of Candle's kernels through cudarc (no allocation, no tensor), and a whole Candle op on a
/// 1x4096 tensor (`affine`: an allocation and a launch), each back to back between two
/// synchronisations.
pub fn launch_floor(device: &Device, filter: &str) -> Result<()> {
    use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::kernels;
    let name = "launch floor 1x4096";
    if !name.contains(filter) {
        return Ok(());
    }
    let cuda = device.as_cuda_device()?;
    let func = cuda
        .get_or_load_func("affine_f32", &kernels::AFFINE)?
        .into_cuda_function();
    let stream = cuda.cuda_stream();
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (32, 1, 1),
        shared_mem_bytes: 0,
    };
    // No elements and no layout: the kernel returns at once.
    let (numel, dims, null, mul, add) = (0usize, 0usize, 0u64, 1f32, 0f32);
    let done = Tensor::zeros((), DType::F32, &Device::Cpu)?;
    let empty = |_: &Inputs| -> Result<Tensor> {
        let mut b = stream.launch_builder(&func);
        b.arg(&numel)
            .arg(&dims)
            .arg(&null)
            .arg(&null)
            .arg(&null)
            .arg(&mul)
            .arg(&add);
        // SAFETY: the arguments match `affine_f32`'s parameters; with no elements it touches no
        // memory.
        unsafe { b.launch(cfg) }.map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(done.clone())
    };
    let x = rand(device, &[1, 4096], DType::F32)?;
    let op = |_: &Inputs| x.affine(1.0, 0.0);
    let t = time(device, &[Inputs::new()], &[&empty, &op])?;
    println!(
        "{name}: an empty launch {:.2} µs, a Candle op (affine: allocation + launch) {:.2} µs",
        t[0] * 1e6,
        t[1] * 1e6
    );
    Ok(())
}

/// A chain of 100 rms_norm 1x4096 calls, each reading the last one's output as a model's
/// layers do: launched one by one, and captured into a CUDA graph then replayed; µs per call.
pub fn captured(device: &Device, filter: &str) -> Result<()> {
    let name = "captured rms_norm 1x4096 x100";
    if !name.contains(filter) {
        return Ok(());
    }
    for dtype in [DType::BF16, DType::F32] {
        let x = rand(device, &[1, 4096], dtype)?;
        let w = rand(device, &[4096], dtype)?;
        let chain = || -> Result<Tensor> {
            let mut h = x.clone();
            for _ in 0..100 {
                h = rms_norm(&h, &w, 1e-6)?;
            }
            Ok(h)
        };
        chain()?;
        // SAFETY: the bench uses the device from this thread only, and `chain` drops no tensor
        // made before the capture.
        let graph = unsafe { graph_runtime::cuda_graph::capture(device, chain) }?;
        let replay = || -> Result<Tensor> {
            graph.replay()?;
            Ok(graph.outputs().clone())
        };
        let sets = vec![Inputs::new()];
        let t = time(device, &sets, &[&|_| chain(), &|_| replay()])?;
        println!(
            "{name} {dtype:?}: launched one by one {:.2} µs per call, replayed from a CUDA graph {:.2} µs per call",
            t[0] / 100.0 * 1e6,
            t[1] / 100.0 * 1e6
        );
    }
    Ok(())
}
