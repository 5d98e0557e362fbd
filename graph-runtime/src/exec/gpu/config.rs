//! Choosing a launch's configuration from its [`LaunchRequest`], for every GPU backend: how a
//! kernel's threads split its rows, whether it reads vectors, whether it needs 64-bit indices;
//! and the [`Config`] that becomes the `LG_*` defines the CUDA and Metal preludes share. The
//! backends supply their device's [`Limits`] and size the grid from [`blocks`].

use graph_ir::{Access, Kernel, KernelKind};
use smallvec::SmallVec;

use super::{Input, LaunchRequest};

/// How one launch is shaped; becomes the defines a kernel is compiled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// `LG_DTYPE`: 0 f32, 1 f64, 2 f16, 3 bf16.
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
        /// Chunks a thread of a kernel that remaps columns takes a step (`LG_UNROLL_COLS`).
        unroll: u32,
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
                unroll,
            } => {
                d += &format!(
                    "#define LG_GROUP {group}\n#define LG_RPB {rows_per_block}\n#define LG_CACHE {cache}\n#define LG_UNROLL_COLS {unroll}\n"
                );
            }
        }
        d
    }

    /// Threads per block (threadgroup).
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

/// What a device allows a launch.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Threads per block (threadgroup), a power of two from 32 to 1024.
    pub max_threads: usize,
    /// Blocks a grid-stride launch is capped at.
    pub max_groups: usize,
    /// Chunks of 16 bytes a thread of a kernel that remaps columns takes a step, for more loads
    /// in flight per thread (a kernel that reads single elements takes 4 on every device).
    pub remap_chunks: usize,
    /// Launches of at most this many rows give each row one chunk a thread, up to a whole block
    /// (0: never): they cannot fill the device, so their time is one row's latency.
    pub few_rows: usize,
}

/// Indices past this need 64-bit arithmetic.
const NARROW_INDEX: usize = (1 << 31) - 1;

/// 32-bit registers a thread may spend on cached rows; past this a row is re-read instead.
const CACHE_REGISTERS: usize = 64;

fn next_pow2(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Launch-shape knobs read once from the environment, for experiments on a GPU (the
/// `tune-launch` feature only; without it every knob is unset and [`choose`] is as documented):
/// - `LAZY_GRAPH_TUNE_ROW_GROUP`: a cached row kernel's threads per row (where the row's cache
///   still fits in registers);
/// - `LAZY_GRAPH_TUNE_REMAP_GROUP`: threads per row of a kernel that remaps columns;
/// - `LAZY_GRAPH_TUNE_UNROLL`: chunks such a kernel's thread takes a step (`LG_UNROLL_COLS`);
/// - `LAZY_GRAPH_TUNE_BLOCK`: threads per block of pointwise kernels and of short rows (several
///   rows a block);
/// - `LAZY_GRAPH_TUNE_WAVES`: the grid cap, in blocks resident at once (CUDA).
///
/// Each is a power of two; another value is reported and ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tune {
    pub row_group: Option<usize>,
    pub remap_group: Option<usize>,
    pub unroll: Option<usize>,
    pub block: Option<usize>,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub waves: Option<usize>,
}

#[cfg(feature = "tune-launch")]
pub fn tune() -> Tune {
    static TUNE: std::sync::OnceLock<Tune> = std::sync::OnceLock::new();
    *TUNE.get_or_init(|| {
        let knob = |name: &str| {
            let v = std::env::var(name).ok()?;
            let n = v.parse::<usize>().ok().filter(|n| n.is_power_of_two());
            if n.is_none() {
                eprintln!("{name}={v}: not a power of two, ignored");
            }
            n
        };
        Tune {
            row_group: knob("LAZY_GRAPH_TUNE_ROW_GROUP"),
            remap_group: knob("LAZY_GRAPH_TUNE_REMAP_GROUP"),
            unroll: knob("LAZY_GRAPH_TUNE_UNROLL"),
            block: knob("LAZY_GRAPH_TUNE_BLOCK"),
            waves: knob("LAZY_GRAPH_TUNE_WAVES"),
        }
    })
}

#[cfg(not(feature = "tune-launch"))]
pub fn tune() -> Tune {
    Tune::default()
}

/// A cached row kernel's threads per row and chunks per thread forced by [`Tune::row_group`],
/// where the row's cache still fits in registers. `registers` is what one cached chunk of every
/// cached input takes.
fn tuned(chunks: usize, registers: usize, max_threads: usize) -> Option<(usize, usize)> {
    let group = tune().row_group?.min(max_threads);
    let cache = next_pow2(chunks.div_ceil(group));
    (cache * registers <= CACHE_REGISTERS).then_some((group, cache))
}

/// The configuration of launch `req` within `limits`.
pub fn choose(req: &LaunchRequest, limits: Limits) -> Config {
    let (k, dtype, size, rows) = (req.kernel, req.dtype, req.elem_bytes, req.rows);
    let (inputs, out_lens, sizes) = (&req.inputs, &req.out_lens, &req.sizes);
    let max_threads = limits.max_threads.clamp(32, 1024);
    let columns: SmallVec<[&Input; 8]> = inputs
        .iter()
        .zip(k.access)
        .filter(|(_, a)| **a == Access::Column)
        .filter_map(|(i, _)| i.tensor())
        .collect();
    // Row length of the loops: every column input and written row, when they agree.
    let written = out_lens.iter().copied().filter(|l| *l != 1);
    let lens: SmallVec<[usize; 8]> = columns.iter().map(|c| c.len).chain(written).collect();
    let n = lens.iter().copied().max().unwrap_or(1);
    let uniform = lens.iter().all(|l| *l == n);
    let wide = 16 / size;
    // Whole vectors: unit column strides, aligned rows, and (for remapped columns) every size,
    // so that a chunk of columns never straddles a narrow's start or a cat's seam.
    let vectorisable = n % wide == 0
        && (uniform || k.gpu.remaps)
        && (!k.gpu.remaps || sizes.iter().all(|s| s % wide == 0))
        && columns
            .iter()
            .all(|c| c.col_stride == 1 && c.start % 16 == 0 && c.row_strides.iter().all(|s| s % wide == 0));
    let vec = if vectorisable { wide } else { 1 };
    let (shape, wide_index) = match k.kind {
        KernelKind::Pointwise => {
            // One 16-byte piece a thread and chunk: two (more bytes in flight) measured slower
            // on an H100 (gelu 8192x8192: 94% -> 91% of a copy in bf16, 96% -> 86% in f32).
            let block = tune().block.unwrap_or(256).min(max_threads);
            let wide_index = rows * n + limits.max_groups * block * vec > NARROW_INDEX;
            (Shape::Pointwise { block: block as u32 }, wide_index)
        }
        KernelKind::Row => {
            let chunks = n.div_ceil(vec);
            // Registers a cached chunk takes (it is kept as stored: 16 bytes, or one element).
            let chunk_registers = (vec * size).div_ceil(4);
            let (group, cache) = if chunks <= 256 {
                // A warp or less per row, up to 8 chunks a thread.
                let group = next_pow2(chunks).min(32);
                (group, next_pow2(chunks.div_ceil(group)))
            } else if rows <= limits.few_rows {
                // A row per block with one chunk a thread, so that the row's loads are all in
                // flight at once: on an H200, 100 rms_norm 1x4096 replayed from a CUDA graph
                // took 1.68 µs a kernel in bf16 (512 threads) against 2.4 with 128.
                let group = next_pow2(chunks).clamp(32, max_threads);
                (group, next_pow2(chunks.div_ceil(group)))
            } else {
                // A block per row with about 16 registers of each cached input a thread, and
                // at most 512 threads, so that two rows share a multiprocessor and one's loads
                // overlap the other's arithmetic.
                let per_thread = (16 / chunk_registers).max(1);
                let group = next_pow2(chunks.div_ceil(per_thread)).clamp(32, max_threads.min(512));
                (group, next_pow2(chunks.div_ceil(group)))
            };
            let fits = cache * chunk_registers * k.gpu.cached_inputs <= CACHE_REGISTERS;
            // Chunks a thread of a kernel that remaps columns takes a step; 1 elsewhere.
            let unroll = match (k.gpu.remaps, vec) {
                (false, _) => 1,
                (true, 1) => tune().unroll.unwrap_or(4),
                (true, _) => tune().unroll.unwrap_or(limits.remap_chunks.max(1)),
            };
            let (group, cache) = if k.gpu.remaps {
                // Each thread takes `unroll` chunks a group apart a step (LG_UNROLL_COLS).
                let group = tune().remap_group.unwrap_or(next_pow2(chunks.div_ceil(unroll)));
                (group.clamp(1, max_threads), 0)
            } else if !uniform || !fits {
                // Re-read: enough threads for the row, a block at most.
                (next_pow2(chunks.div_ceil(4)).clamp(32, max_threads), 0)
            } else {
                tuned(chunks, chunk_registers * k.gpu.cached_inputs, max_threads).unwrap_or((group, cache))
            };
            // Blocks of at least 128 threads; past a warp, one row per block (the reductions'
            // shared memory is per block).
            let rows_per_block = if group > 32 {
                1
            } else {
                let block = tune().block.unwrap_or(128).max(group);
                (block / group).min(max_threads / group)
            };
            let shape = Shape::Row {
                group: group as u32,
                rows_per_block: rows_per_block as u32,
                cache: cache as u32,
                unroll: unroll as u32,
            };
            (shape, rows + limits.max_groups * rows_per_block > NARROW_INDEX)
        }
        // One element a thread (its column, down a chunk of rows).
        KernelKind::Column { .. } => {
            let block = 256.min(max_threads);
            let shape = Shape::Pointwise { block: block as u32 };
            let config = Config {
                dtype,
                vec: 1,
                wide: rows > NARROW_INDEX,
                shape,
            };
            return config;
        }
    };
    Config {
        dtype,
        vec: vec as u32,
        wide: wide_index,
        shape,
    }
}

/// Blocks (threadgroups) that cover launch `req` in `config` in one pass: the backends cap
/// this, and grid-stride loops cover the rest.
pub fn blocks(req: &LaunchRequest, config: &Config) -> usize {
    if let KernelKind::Column { .. } = req.kernel.kind {
        let c = Chunks::of(req, config);
        return c.out_rows * c.parts * c.tiles;
    }
    match config.shape {
        Shape::Pointwise { block } => {
            let n = req.out_lens.iter().copied().max().unwrap_or(1);
            (req.rows * n / config.vec as usize).div_ceil(block as usize)
        }
        Shape::Row { rows_per_block, .. } => req.rows.div_ceil(rows_per_block as usize),
    }
}

/// How a column kernel's launch cuts its reduced axis: `parts` chunks of `chunk` rows, for
/// `out_rows` output rows of `tiles` tiles of a block's columns. A function of the shape only,
/// so that the partial results, and their combination, are the same at every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunks {
    pub chunk: usize,
    pub parts: usize,
    pub out_rows: usize,
    pub tiles: usize,
    /// The reduced axis' length.
    pub along: usize,
}

/// About this many units (blocks) in a column kernel's first stage: enough to fill a large GPU
/// several times over.
const COLUMN_UNITS: usize = 2048;

/// At most this many chunks: each output element of the second stage combines that many
/// partial results, one thread each.
const MAX_PARTS: usize = 128;

impl Chunks {
    pub fn of(req: &LaunchRequest, config: &Config) -> Chunks {
        let KernelKind::Column { axis, axes } = req.kernel.kind else {
            unreachable!("chunks of a column kernel")
        };
        let reduced = axis as usize..(axis + axes) as usize;
        let along: usize = req.prefix[reduced.clone()].iter().product();
        let out_rows = req.prefix[..reduced.start].iter().product::<usize>()
            * req.prefix[reduced.end..].iter().product::<usize>();
        let cols = req.out_lens.first().copied().unwrap_or(1);
        let tiles = cols.div_ceil(config.threads() as usize).max(1);
        let wanted = (COLUMN_UNITS / (out_rows * tiles).max(1)).clamp(1, MAX_PARTS);
        let chunk = along.div_ceil(wanted).max(16).min(along.max(1));
        Chunks {
            chunk,
            parts: along.div_ceil(chunk),
            out_rows,
            tiles,
            along,
        }
    }
}

/// Configurations that between them cover every code path of kernel `k`'s template, for
/// checking that it compiles: each of `dtypes` (`LG_DTYPE` code, element size), scalar and
/// vector accesses, registers and re-reads, a warp split across rows and a block per row, 32-
/// and 64-bit indices.
pub fn covering_configs(k: &Kernel, dtypes: &[(u8, u32)]) -> Vec<Config> {
    let mut configs = Vec::new();
    for &(dtype, size) in dtypes {
        let v = 16 / size;
        let row = |group, rows_per_block, cache, unroll| Shape::Row {
            group,
            rows_per_block,
            cache,
            unroll,
        };
        let shapes: Vec<(u32, bool, Shape)> = match k.kind {
            KernelKind::Pointwise => vec![
                (1, true, Shape::Pointwise { block: 256 }),
                (v, false, Shape::Pointwise { block: 256 }),
            ],
            KernelKind::Row if k.gpu.remaps => vec![
                (1, true, row(32, 4, 0, 4)),
                (v, false, row(16, 8, 0, 1)),
                (v, false, row(8, 16, 0, 2)),
            ],
            KernelKind::Row => vec![
                (1, false, row(8, 16, 2, 1)),
                (v, false, row(256, 1, 4, 1)),
                (v, true, row(1024, 1, 0, 1)),
            ],
            KernelKind::Column { .. } => vec![
                (1, false, Shape::Pointwise { block: 256 }),
                (1, true, Shape::Pointwise { block: 256 }),
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
