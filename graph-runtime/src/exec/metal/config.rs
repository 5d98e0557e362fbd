//! What a Metal launch is, decided on the host from the bound shapes: the configuration a kernel
//! is compiled with (`LG_*` defines), the threadgroups it runs as, and its argument words. Plain
//! Rust with no Metal in it, so that it builds, and is tested, everywhere: `tests/msl.rs` checks
//! every generated kernel in [`covering_configs`] against a shim of the Metal types.

use candle_core::DType;
use graph_ir::gpu::magic;
use graph_ir::{Access, ArgLayout, Kernel, KernelKind};

/// The prelude every generated kernel is compiled with.
pub const PRELUDE: &str = include_str!("prelude.metal");

/// The full text Metal compiles: configuration defines, prelude, kernel.
pub fn full_source(defines: &str, kernel: &str) -> String {
    format!("{defines}{PRELUDE}\n{kernel}")
}

/// How one launch is shaped; becomes the defines a kernel is compiled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// `LG_DTYPE`: 0 f32, 2 f16, 3 bf16 (the CUDA codes; Metal has no f64).
    pub dtype: u8,
    /// Elements per memory access.
    pub vec: u32,
    /// 64-bit index arithmetic (`LG_WIDE`): flat or row indices may pass 2^31 - 1.
    pub wide: bool,
    pub shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    Pointwise {
        block: u32,
    },
    Row {
        group: u32,
        rows_per_block: u32,
        cache: u32,
    },
}

impl Config {
    /// The `#define` lines of this configuration.
    pub fn defines(&self) -> String {
        let mut d = format!(
            "#define LG_DTYPE {}\n#define LG_VEC {}\n#define LG_WIDE {}\n",
            self.dtype,
            self.vec,
            u8::from(self.wide)
        );
        match self.shape {
            Shape::Pointwise { block } => d += &format!("#define LG_BLOCK {block}\n"),
            Shape::Row {
                group,
                rows_per_block,
                cache,
            } => {
                d += &format!(
                    "#define LG_GROUP {group}\n#define LG_RPB {rows_per_block}\n#define LG_CACHE {cache}\n"
                );
            }
        }
        d
    }

    /// Threads per threadgroup.
    pub fn threads(&self) -> u32 {
        match self.shape {
            Shape::Pointwise { block } => block,
            Shape::Row {
                group,
                rows_per_block,
                ..
            } => group * rows_per_block,
        }
    }
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

/// One tensor input as the kernel reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Byte offset of its first element in its buffer (Metal buffers start page-aligned, so this
    /// decides 16-byte alignment).
    pub offset: usize,
    pub col_stride: usize,
    /// One per kernel prefix dim (0 where it broadcasts).
    pub row_strides: Vec<usize>,
    /// Its row length (last dim), for column inputs.
    pub len: usize,
}

/// Indices past this need 64-bit arithmetic.
const NARROW_INDEX: usize = (1 << 31) - 1;

/// 32-bit registers a thread may spend on cached rows; past this a row is re-read instead.
const CACHE_REGISTERS: usize = 64;

/// Threadgroups a grid-stride launch is capped at: past a few per GPU core, more threadgroups
/// only add scheduling (untuned: the largest Apple GPUs have 80 cores).
const MAX_GROUPS: usize = 8192;

fn next_pow2(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The configuration for kernel `k` on inputs of `size`-byte elements, with at most
/// `max_threads` (a power of two, at least 32) threads per threadgroup: the pipeline's limit,
/// which depends on the configuration's register use, so the caller lowers it and chooses again
/// when a compiled pipeline allows fewer threads than chosen.
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
    let max_threads = max_threads.clamp(32, 1024) as usize;
    let columns: Vec<&Input> = inputs
        .iter()
        .zip(k.access)
        .filter(|(_, a)| **a == Access::Column)
        .filter_map(|(i, _)| i.as_ref())
        .collect();
    // Row length of the loops: every column input and written row, when they agree.
    let written = out_lens.iter().copied().filter(|l| *l != 1);
    let lens: Vec<usize> = columns.iter().map(|c| c.len).chain(written).collect();
    let n = lens.iter().copied().max().unwrap_or(1);
    let uniform = lens.iter().all(|l| *l == n);
    let wide = 16 / size;
    // Whole 16-byte vectors, as on CUDA: unit column strides, aligned rows, and (for remapped
    // columns) every size, so that a chunk never straddles a narrow's start or a cat's seam.
    let vectorisable = n % wide == 0
        && (uniform || k.gpu.remaps)
        && (!k.gpu.remaps || sizes.iter().all(|s| s % wide == 0))
        && columns
            .iter()
            .all(|c| c.col_stride == 1 && c.offset % 16 == 0 && c.row_strides.iter().all(|s| s % wide == 0));
    let vec = if vectorisable { wide } else { 1 };
    let (shape, wide_index) = match k.kind {
        KernelKind::Pointwise => {
            let block = 256.min(max_threads);
            let wide_index = rows * n + MAX_GROUPS * block * vec > NARROW_INDEX;
            (Shape::Pointwise { block: block as u32 }, wide_index)
        }
        KernelKind::Row => {
            let chunks = n.div_ceil(vec);
            // Registers a cached chunk takes (kept as stored: 16 bytes, or one element).
            let chunk_registers = (vec * size).div_ceil(4);
            let (group, cache) = if chunks <= 256 {
                // A simdgroup or less per row, up to 8 chunks a thread.
                let group = next_pow2(chunks).min(32);
                (group, next_pow2(chunks.div_ceil(group)))
            } else {
                // A threadgroup per row with about 16 registers of each cached input a thread.
                let per_thread = (16 / chunk_registers).max(1);
                let group = next_pow2(chunks.div_ceil(per_thread)).clamp(32, max_threads.min(512));
                (group, next_pow2(chunks.div_ceil(group)))
            };
            let fits = cache * chunk_registers * k.gpu.cached_inputs <= CACHE_REGISTERS;
            let (group, cache) = if k.gpu.remaps {
                // Each thread takes LG_UNROLL_COLS chunks a step (see the prelude).
                let unroll = if vec == 1 { 4 } else { 1 };
                (next_pow2(chunks.div_ceil(unroll)).clamp(1, max_threads), 0)
            } else if !uniform || !fits {
                // Re-read: enough threads for the row, a threadgroup at most.
                (next_pow2(chunks.div_ceil(4)).clamp(32, max_threads), 0)
            } else {
                (group, cache)
            };
            // Threadgroups of at least 128 threads; past a simdgroup, one row per threadgroup
            // (the reductions' threadgroup memory is per threadgroup).
            let rows_per_block = if group > 32 {
                1
            } else {
                (128 / group).min(max_threads / group)
            };
            let shape = Shape::Row {
                group: group as u32,
                rows_per_block: rows_per_block as u32,
                cache: cache as u32,
            };
            (shape, rows + MAX_GROUPS * rows_per_block > NARROW_INDEX)
        }
    };
    Config {
        dtype,
        vec: vec as u32,
        wide: wide_index,
        shape,
    }
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
) -> Vec<i64> {
    let l = ArgLayout {
        inputs: k.inputs.len(),
        outputs: k.outputs.len(),
        rank: k.prefix.len(),
        sizes: k.sizes.len(),
    };
    let mut words = vec![0i64; l.words()];
    for (i, (input, scalar)) in inputs.iter().zip(scalars).enumerate() {
        if let Some(input) = input {
            words[l.col_stride(i)] = input.col_stride as i64;
            for (d, s) in input.row_strides.iter().enumerate() {
                words[l.row_stride(i, d)] = *s as i64;
            }
        }
        if let Some(s) = scalar {
            words[l.scalar(i)] = i64::from((*s as f32).to_bits());
        }
    }
    for (d, p) in prefix.iter().enumerate() {
        words[l.prefix(d)] = *p as i64;
        if !config.wide {
            words[l.prefix_magic(d)] = magic(*p as u32) as i64;
        }
    }
    for (s, v) in sizes.iter().enumerate() {
        words[l.size(s)] = *v as i64;
    }
    for (o, len) in out_lens.iter().enumerate() {
        words[l.out_len(o)] = *len as i64;
    }
    words[l.rows()] = rows as i64;
    let width = out_lens.iter().copied().max().unwrap_or(1);
    if !config.wide && k.kind == KernelKind::Pointwise {
        words[l.width_magic()] = magic(width as u32) as i64;
    }
    words
}

/// Configurations that between them cover every code path of kernel `k`'s template, for
/// checking that it compiles: each dtype, scalar and vector accesses, registers and re-reads,
/// a simdgroup split across rows and a threadgroup per row, 32- and 64-bit indices.
pub fn covering_configs(k: &Kernel) -> Vec<Config> {
    let mut configs = Vec::new();
    for (dtype, size) in [(0u8, 4u32), (2, 2), (3, 2)] {
        let v = 16 / size;
        let row = |group, rows_per_block, cache| Shape::Row {
            group,
            rows_per_block,
            cache,
        };
        let shapes: Vec<(u32, bool, Shape)> = match k.kind {
            KernelKind::Pointwise => vec![
                (1, true, Shape::Pointwise { block: 256 }),
                (v, false, Shape::Pointwise { block: 256 }),
            ],
            KernelKind::Row if k.gpu.remaps => vec![(1, true, row(32, 4, 0)), (v, false, row(16, 8, 0))],
            KernelKind::Row => vec![
                (1, false, row(8, 16, 2)),
                (v, false, row(256, 1, 4)),
                (v, true, row(1024, 1, 0)),
            ],
        };
        configs.extend(shapes.into_iter().map(|(vec, wide, shape)| Config {
            dtype,
            vec,
            wide,
            shape,
        }));
    }
    configs
}
