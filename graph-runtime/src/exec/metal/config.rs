//! What a Metal launch is, decided on the host from its [`LaunchRequest`]: the dtypes Metal
//! kernels compute in, the configuration within the pipeline's limit, the threadgroups, and the
//! argument words. Plain Rust with no Metal in it, so that it builds, and is tested, everywhere:
//! `tests/msl.rs` checks every generated kernel in [`covering_configs`] against a shim of the
//! Metal types.

use candle_core::DType;
use graph_ir::Kernel;

use crate::exec::gpu::{self, Config, LaunchRequest, Limits, Words};

/// The `LG_DTYPE` code and element size of a storage dtype Metal kernels handle: not f64, which
/// Metal cannot compute in (such graphs run eagerly, as far as Candle's Metal ops go).
pub fn dtype_code(dtype: DType) -> Option<(u8, usize)> {
    match dtype {
        DType::F32 => Some((0, 4)),
        DType::F16 => Some((2, 2)),
        DType::BF16 => Some((3, 2)),
        _ => None,
    }
}

/// Threadgroups a grid-stride launch is capped at: past a few per GPU core, more threadgroups
/// only add scheduling (untuned: the largest Apple GPUs have 80 cores).
const MAX_GROUPS: usize = 8192;

/// The configuration for launch `req` with at most `max_threads` (a power of two, at least 32)
/// threads per threadgroup: the pipeline's limit, which depends on the configuration's register
/// use, so the caller lowers it and chooses again when a compiled pipeline allows fewer threads
/// than chosen. See [`gpu::config::choose`].
pub fn choose(req: &LaunchRequest, max_threads: u32) -> Config {
    let limits = Limits {
        max_threads: max_threads as usize,
        max_groups: MAX_GROUPS,
        // Not measured on a Mac: the shapes chosen before these knobs existed.
        remap_chunks: 1,
        few_rows: 0,
    };
    gpu::config::choose(req, limits)
}

/// Threadgroups for launch `req` in `config`.
pub fn groups(req: &LaunchRequest, config: &Config) -> usize {
    gpu::config::blocks(req, config).clamp(1, MAX_GROUPS)
}

/// Launch `req`'s argument words in `config` (see [`graph_ir::ArgLayout`]), for Metal: the
/// pointer words stay 0 (tensors are bound as buffers) and scalar words hold f32 bits, as the
/// prelude reads them.
pub fn words(req: &LaunchRequest, config: &Config) -> Words {
    req.words(config, |s| i64::from((s as f32).to_bits())).1
}

/// Configurations that between them cover every code path of kernel `k`'s template in every
/// dtype Metal computes in (see [`gpu::config::covering_configs`]).
pub fn covering_configs(k: &Kernel) -> Vec<Config> {
    gpu::config::covering_configs(k, &[(0, 4), (2, 2), (3, 2)])
}
