//! What a GPU launch is, decided on the host from the bound shapes, for every GPU backend: the
//! extents of a kernel's rows, how it reads each input, the configuration it is compiled with
//! (the `LG_*` defines that the CUDA and Metal preludes share) and its argument words. Plain Rust
//! with no GPU in it, so that it builds, and is tested, everywhere; the backends add what
//! differs (addresses or buffers, scalar widths, grid sizes).

use candle_core::Layout;
use graph_ir::gpu::magic;
use graph_ir::{Access, ArgLayout, Kernel, KernelKind};
use smallvec::SmallVec;

/// Sizes along a kernel's row prefix, or its run-time sizes: a handful, kept on the stack (a
/// launch on a small input is latency-bound, so its host work allocates only the outputs).
pub type Dims = SmallVec<[usize; 4]>;

/// A launch's argument words, on the stack for kernels of ordinary size.
pub type Words = SmallVec<[i64; 64]>;

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

/// One tensor input as the kernel reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Where its first element starts, in bytes: the device address (CUDA) or the offset in its
    /// page-aligned buffer (Metal). It decides 16-byte alignment.
    pub start: u64,
    pub col_stride: usize,
    /// One per kernel prefix dim (0 where it broadcasts).
    pub row_strides: Dims,
    /// Its row length (last dim), for column inputs.
    pub len: usize,
}

impl Input {
    /// How a kernel with a row prefix of rank `rank` reads a tensor laid out as `layout` with
    /// `access`: its dims right-align with the prefix, and dims of 1 broadcast.
    pub fn of(layout: &Layout, access: Access, rank: usize, start: u64) -> Input {
        let (dims, strides) = (layout.dims(), layout.stride());
        let r = dims.len();
        let (row_dims, col_stride, len) = match access {
            Access::Column => (
                &dims[..r - 1],
                if dims[r - 1] == 1 { 1 } else { strides[r - 1] },
                dims[r - 1],
            ),
            _ => (&dims[..r.saturating_sub(1)], 0, 1),
        };
        let mut row_strides: Dims = smallvec::smallvec![0; rank];
        for (j, d) in row_dims.iter().enumerate() {
            if *d != 1 {
                row_strides[rank + j - row_dims.len()] = strides[j];
            }
        }
        Input {
            start,
            col_stride,
            row_strides,
            len,
        }
    }
}

/// A kernel's extents under the bound symbols.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub struct Extents {
    /// The kernel's run-time sizes ([`Kernel::sizes`] evaluated).
    pub sizes: Dims,
    /// The row prefix and the number of rows.
    pub prefix: Dims,
    pub rows: usize,
    /// Each output's shape and row length.
    pub out_shapes: SmallVec<[Dims; 2]>,
    pub out_lens: SmallVec<[usize; 2]>,
}

#[cfg(any(feature = "cuda", feature = "metal"))]
impl Extents {
    /// Kernel `k`'s extents, or `None` when an output is empty (GPU backends launch nothing for
    /// those; the caller runs the kernel's nodes through Candle).
    pub fn of(
        graph: &graph_ir::Graph,
        k: &Kernel,
        bound: &crate::bind::Bound,
    ) -> crate::error::Result<Option<Extents>> {
        let sizes = bound.dims(graph, k.sizes, || format!("kernel {}", k.name))?;
        let prefix = bound.dims(graph, k.prefix, || format!("kernel {} rows", k.name))?;
        let out_shapes = k
            .outputs
            .iter()
            .map(|&o| bound.dims(graph, graph.nodes()[o as usize].shape, || format!("output %{o}")))
            .collect::<crate::error::Result<_>>()?;
        let out_shapes: SmallVec<[Dims; 2]> = out_shapes;
        // Checked, so that no size the launch computes from them wraps.
        for (&o, shape) in k.outputs.iter().zip(&out_shapes) {
            let what = || crate::bind::describe_node(graph, o as usize);
            crate::bind::elements(graph.name(), shape, bound.dtype, what)?;
        }
        if out_shapes.iter().any(|s| s.contains(&0)) {
            return Ok(None);
        }
        let out_lens = out_shapes
            .iter()
            .map(|s| s.last().copied().unwrap_or(1))
            .collect();
        Ok(Some(Extents {
            rows: prefix.iter().product(),
            sizes,
            prefix,
            out_shapes,
            out_lens,
        }))
    }
}

/// What a device allows a launch.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Threads per block (threadgroup), a power of two from 32 to 1024.
    pub max_threads: usize,
    /// Blocks a grid-stride launch is capped at.
    pub max_groups: usize,
}

/// Indices past this need 64-bit arithmetic.
const NARROW_INDEX: usize = (1 << 31) - 1;

/// 32-bit registers a thread may spend on cached rows; past this a row is re-read instead.
const CACHE_REGISTERS: usize = 64;

fn next_pow2(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The configuration of kernel `k` in storage dtype `dtype` (of `size`-byte elements) over
/// `rows` rows.
#[allow(clippy::too_many_arguments)]
pub fn choose(
    k: &Kernel,
    dtype: u8,
    size: usize,
    rows: usize,
    inputs: &[Option<Input>],
    out_lens: &[usize],
    sizes: &[usize],
    limits: Limits,
) -> Config {
    let max_threads = limits.max_threads.clamp(32, 1024);
    let columns: SmallVec<[&Input; 8]> = inputs
        .iter()
        .zip(k.access)
        .filter(|(_, a)| **a == Access::Column)
        .filter_map(|(i, _)| i.as_ref())
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
            let block = 256.min(max_threads);
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
            } else {
                // A block per row with about 16 registers of each cached input a thread, and
                // at most 512 threads, so that two rows share a multiprocessor and one's loads
                // overlap the other's arithmetic.
                let per_thread = (16 / chunk_registers).max(1);
                let group = next_pow2(chunks.div_ceil(per_thread)).clamp(32, max_threads.min(512));
                (group, next_pow2(chunks.div_ceil(group)))
            };
            let fits = cache * chunk_registers * k.gpu.cached_inputs <= CACHE_REGISTERS;
            let (group, cache) = if k.gpu.remaps {
                // Each thread takes LG_UNROLL_COLS chunks a step (see the preludes).
                let unroll = if vec == 1 { 4 } else { 1 };
                (next_pow2(chunks.div_ceil(unroll)).clamp(1, max_threads), 0)
            } else if !uniform || !fits {
                // Re-read: enough threads for the row, a block at most.
                (next_pow2(chunks.div_ceil(4)).clamp(32, max_threads), 0)
            } else {
                (group, cache)
            };
            // Blocks of at least 128 threads; past a warp, one row per block (the reductions'
            // shared memory is per block).
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
            (shape, rows + limits.max_groups * rows_per_block > NARROW_INDEX)
        }
    };
    Config {
        dtype,
        vec: vec as u32,
        wide: wide_index,
        shape,
    }
}

/// A launch's argument words (see [`ArgLayout`]): strides, sizes, rows and the division magic.
/// The backend adds pointers and scalars, whose encoding is its own.
#[allow(clippy::too_many_arguments)]
pub fn words(
    k: &Kernel,
    config: &Config,
    inputs: &[Option<Input>],
    prefix: &[usize],
    sizes: &[usize],
    out_lens: &[usize],
    rows: usize,
) -> (ArgLayout, Words) {
    let l = ArgLayout {
        inputs: k.inputs.len(),
        outputs: k.outputs.len(),
        rank: k.prefix.len(),
        sizes: k.sizes.len(),
    };
    let mut words: Words = smallvec::smallvec![0; l.words()];
    for (i, input) in inputs.iter().enumerate() {
        if let Some(input) = input {
            words[l.col_stride(i)] = input.col_stride as i64;
            for (d, s) in input.row_strides.iter().enumerate() {
                words[l.row_stride(i, d)] = *s as i64;
            }
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
    (l, words)
}

/// Configurations that between them cover every code path of kernel `k`'s template, for
/// checking that it compiles: each of `dtypes` (`LG_DTYPE` code, element size), scalar and
/// vector accesses, registers and re-reads, a warp split across rows and a block per row, 32-
/// and 64-bit indices.
pub fn covering_configs(k: &Kernel, dtypes: &[(u8, u32)]) -> Vec<Config> {
    let mut configs = Vec::new();
    for &(dtype, size) in dtypes {
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

/// The storage guards and layout of one tensor argument each, `None` for scalars.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub type Guards<'a> = SmallVec<[Option<(candle_core::StorageRef<'a>, &'a Layout)>; 8]>;

/// The layouts of a kernel's tensor arguments, `None` for scalars; the storage guards live as
/// long as the returned list.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub fn guards<'a>(args: &[crate::exec::Arg<'a>]) -> Guards<'a> {
    args.iter()
        .map(|v| match v {
            crate::exec::Arg::Tensor(t) => Some(t.storage_and_layout()),
            crate::exec::Arg::Scalar(_) => None,
        })
        .collect()
}
