//! What a CUDA launch is, decided on the host from its [`LaunchRequest`]: the dtypes CUDA kernels
//! compute in, the configuration within the GPU's limits, the grid, and the argument words but
//! for the device addresses, which `launch` adds.

use candle_core::DType;
use graph_ir::{ArgLayout, Kernel};

use super::DeviceState;
use crate::exec::gpu::{self, Config, LaunchRequest, Limits, Shape, Words};

/// The `LG_DTYPE` code and element size of a storage dtype.
pub fn dtype_code(dtype: DType) -> Option<(u8, usize)> {
    match dtype {
        DType::F32 => Some((0, 4)),
        DType::F64 => Some((1, 8)),
        DType::F16 => Some((2, 2)),
        DType::BF16 => Some((3, 2)),
        _ => None,
    }
}

/// The configuration of launch `req` on GPU `state`: blocks of up to 1024 threads, and a
/// grid-stride launch capped at 32 blocks per multiprocessor. See [`gpu::config::choose`].
pub fn choose(req: &LaunchRequest, state: &DeviceState) -> Config {
    let limits = Limits {
        max_threads: 1024,
        max_groups: state.sms as usize * 32,
        // Measured on an H200: rope 8x32x2048x128 bf16 102.8 -> 92.8 µs, f32 162.4 -> 154.7.
        remap_chunks: 2,
        // Measured on an H200: 100 rms_norm 1x4096 replayed, 2.4 -> 1.7 µs a kernel in bf16.
        few_rows: 32,
    };
    gpu::config::choose(req, limits)
}

/// The blocks (grid size) of launch `req` in `config` on GPU `state`.
pub fn groups(req: &LaunchRequest, config: &Config, state: &DeviceState) -> u32 {
    let block = config.threads();
    let per_sm = (2048 / block).clamp(1, 32) as usize;
    let resident = state.sms as usize * per_sm;
    let needed = gpu::config::blocks(req, config);
    // Grid-stride past several waves: fewer blocks, each with more work. Measured on an H200
    // (µs, before -> after): silu(g)*u 8192x11008 bf16 132.9 -> 128.5 and gelu_tanh 8192x8192
    // f32 137.7 -> 132.1 at 16 waves (from 4); rms_norm 8192x4096 f32 72.2 -> 70.2 and rope
    // 8x32x2048x128 f32 156.4 -> 146.2 at 8 (from 2). Fewer waves were slower.
    let waves = match config.shape {
        Shape::Pointwise { .. } => 16,
        Shape::Row { .. } => 8,
    };
    let grid = needed.min(resident * gpu::config::tune().waves.unwrap_or(waves));
    grid.max(1) as u32
}

/// Launch `req`'s argument words in `config` (see [`ArgLayout`]), for CUDA: scalars as f64
/// bits; the pointer words are the caller's to fill.
pub fn words(req: &LaunchRequest, config: &Config) -> (ArgLayout, Words) {
    req.words(config, |s| s.to_bits() as i64)
}

/// Configurations that between them cover every code path of kernel `k`'s template in every
/// dtype CUDA computes in (see [`gpu::config::covering_configs`]).
pub fn covering_configs(k: &Kernel) -> Vec<Config> {
    gpu::config::covering_configs(k, &[(0, 4), (1, 8), (2, 2), (3, 2)])
}
