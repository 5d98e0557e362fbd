//! What a Metal launch is, decided on the host from the bound shapes: the configuration a kernel
//! is compiled with (`LG_*` defines), the threadgroups it runs as, and its argument words. Plain
//! Rust with no Metal in it, so that it builds, and is tested, everywhere: `tests/msl.rs` checks
//! every generated kernel in [`covering_configs`] against a shim of the Metal types.

use candle_core::DType;
use graph_ir::Kernel;

use crate::exec::launch::{self, Limits};
pub use crate::exec::launch::{Config, Input, Shape};

/// The prelude every generated kernel is compiled with.
pub const PRELUDE: &str = include_str!("prelude.metal");

/// The full text Metal compiles: configuration defines, prelude, kernel.
pub fn full_source(defines: &str, kernel: &str) -> String {
    format!("{defines}{PRELUDE}\n{kernel}")
}

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

/// The configuration for kernel `k` on inputs of `size`-byte elements, with at most
/// `max_threads` (a power of two, at least 32) threads per threadgroup: the pipeline's limit,
/// which depends on the configuration's register use, so the caller lowers it and chooses again
/// when a compiled pipeline allows fewer threads than chosen. See [`launch::choose`].
#[allow(clippy::too_many_arguments)]
pub fn choose(
    k: &Kernel,
    dtype: u8,
    size: usize,
    rows: usize,
    inputs: &[Option<Input>],
    out_lens: &[usize],
    sizes: &[usize],
    max_threads: u32,
) -> Config {
    let limits = Limits {
        max_threads: max_threads as usize,
        max_groups: MAX_GROUPS,
    };
    launch::choose(k, dtype, size, rows, inputs, out_lens, sizes, limits)
}

/// Threadgroups for a launch of `config` over `rows` rows writing rows of `out_lens`.
pub fn groups(config: &Config, rows: usize, out_lens: &[usize]) -> usize {
    let needed = match config.shape {
        Shape::Pointwise { block } => {
            let n = out_lens.iter().copied().max().unwrap_or(1);
            (rows * n / config.vec as usize).div_ceil(block as usize)
        }
        Shape::Row { rows_per_block, .. } => rows.div_ceil(rows_per_block as usize),
    };
    needed.clamp(1, MAX_GROUPS)
}

/// A kernel launch's argument words (see [`ArgLayout`]), for Metal: the pointer words stay 0
/// (tensors are bound as buffers) and scalar words hold f32 bits, as the prelude reads them.
#[allow(clippy::too_many_arguments)]
pub fn words(
    k: &Kernel,
    config: &Config,
    inputs: &[Option<Input>],
    scalars: &[Option<f64>],
    prefix: &[usize],
    sizes: &[usize],
    out_lens: &[usize],
    rows: usize,
) -> launch::Words {
    let (l, mut words) = launch::words(k, config, inputs, prefix, sizes, out_lens, rows);
    for (i, scalar) in scalars.iter().enumerate() {
        if let Some(s) = scalar {
            words[l.scalar(i)] = i64::from((*s as f32).to_bits());
        }
    }
    words
}

/// Configurations that between them cover every code path of kernel `k`'s template in every
/// dtype Metal computes in (see [`launch::covering_configs`]).
pub fn covering_configs(k: &Kernel) -> Vec<Config> {
    launch::covering_configs(k, &[(0, 4), (2, 2), (3, 2)])
}
