//! Runs a generated kernel on a CUDA device: picks a launch configuration from the bound shapes,
//! gets the compiled function (see `compile`), fills the argument words, allocates the outputs and
//! launches on Candle's stream for the device.
//!
//! The launch passes device addresses inside one by-value argument, so it goes through
//! `cuLaunchKernel` directly rather than cudarc's argument builder. Ordering is Candle's: every
//! address comes from `device_ptr`, which makes the stream wait on the buffer's last write when
//! Candle's device tracks streams with events (its default single stream needs none), and its
//! guard records our read (or write) when dropped after the launch.

pub mod compile;
pub mod done;

use std::ffi::c_void;

use candle_core::cuda_backend::cudarc::driver::{result, DevicePtr, DevicePtrMut, DeviceRepr};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{DType, Storage, Tensor, WithDType};
use graph_ir::gpu::magic;
use graph_ir::{Access, ArgLayout, Graph, Kernel, KernelKind};

use crate::bind::Bound;
use crate::error::{Error, Result};
use crate::exec::eager::Value;
use crate::profile::{Clock, Phase};

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
            Shape::Pointwise { block } => {
                d += &format!("#define LG_BLOCK {block}\n");
            }
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

    fn block(&self) -> u32 {
        match self.shape {
            Shape::Pointwise { block, .. } => block,
            Shape::Row {
                group,
                rows_per_block,
                ..
            } => group * rows_per_block,
        }
    }
}

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

/// One tensor input as the kernel reads it.
struct Input {
    /// Device address of its first element.
    addr: u64,
    col_stride: usize,
    /// One per kernel prefix dim (0 where it broadcasts).
    row_strides: Vec<usize>,
    /// Its row length (last dim), for column inputs.
    len: usize,
}

/// Runs kernel `k` on CUDA tensors of `bound.dtype`; returns its outputs in order, or `None`
/// when some output is empty (the caller then runs the kernel's nodes through Candle).
pub fn run(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[&Value],
    device: &CudaDevice,
) -> Result<Option<Vec<Tensor>>> {
    match bound.dtype {
        DType::F32 => run_typed::<f32>(graph, k, bound, args, device),
        DType::F64 => run_typed::<f64>(graph, k, bound, args, device),
        DType::F16 => run_typed::<half::f16>(graph, k, bound, args, device),
        DType::BF16 => run_typed::<half::bf16>(graph, k, bound, args, device),
        other => unreachable!("binding accepts float dtypes only, found {other:?}"),
    }
}

fn gpu_error(graph: &Graph, k: &Kernel, message: String) -> Error {
    Error::Gpu {
        func: graph.name,
        kernel: k.name,
        message,
    }
}

fn run_typed<T: CudaDType + DeviceRepr + WithDType>(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[&Value],
    device: &CudaDevice,
) -> Result<Option<Vec<Tensor>>> {
    let fail = |m: String| gpu_error(graph, k, m);
    let mut clock = Clock::start();
    let (code, size) = dtype_code(bound.dtype).expect("float dtype");
    let sizes = bound.shape(graph, k.sizes, || format!("kernel {}", k.name))?;
    let prefix = bound.shape(graph, k.prefix, || format!("kernel {} rows", k.name))?;
    let rows: usize = prefix.iter().product();
    let out_shapes: Vec<Vec<usize>> = k
        .outputs
        .iter()
        .map(|&o| bound.shape(graph, graph.nodes[o as usize].shape, || format!("output %{o}")))
        .collect::<Result<_>>()?;
    if out_shapes.iter().any(|s| s.contains(&0)) {
        return Ok(None);
    }
    let out_lens: Vec<usize> = out_shapes
        .iter()
        .map(|s| s.last().copied().unwrap_or(1))
        .collect();

    let stream = device.cuda_stream();
    let state = compile::device_state(device).map_err(fail)?;

    // Inputs: storage guards and read guards live until after the launch.
    let guards: Vec<_> = args
        .iter()
        .map(|v| match v {
            Value::Tensor(t) => Some(t.storage_and_layout()),
            Value::Scalar(_) => None,
        })
        .collect();
    let mut reads = Vec::new();
    let mut inputs: Vec<Option<Input>> = Vec::with_capacity(args.len());
    for (guard, access) in guards.iter().zip(k.access) {
        let Some((storage, layout)) = guard else {
            inputs.push(None);
            continue;
        };
        let Storage::Cuda(cuda) = &**storage else {
            unreachable!("binding keeps every tensor on the inputs' CUDA device")
        };
        let slice = cuda.as_cuda_slice::<T>().map_err(|e| fail(e.to_string()))?;
        let (base, read) = slice.device_ptr(&stream);
        reads.push(read);
        let (dims, strides) = (layout.dims(), layout.stride());
        let rank = dims.len();
        let (row_dims, col_stride, len) = match access {
            Access::Column => (
                &dims[..rank - 1],
                if dims[rank - 1] == 1 { 1 } else { strides[rank - 1] },
                dims[rank - 1],
            ),
            _ => (&dims[..rank.saturating_sub(1)], 0, 1),
        };
        let mut row_strides = vec![0; prefix.len()];
        for (j, d) in row_dims.iter().enumerate() {
            if *d != 1 {
                row_strides[prefix.len() + j - row_dims.len()] = strides[j];
            }
        }
        inputs.push(Some(Input {
            addr: base + (layout.start_offset() * size) as u64,
            col_stride,
            row_strides,
            len,
        }));
    }

    let prefix = collapse(&prefix, &mut inputs);
    let config = choose(k, code, size, rows, &inputs, &out_lens, &sizes, state.sms);
    clock.lap(Phase::CudaPrepare);
    let function = state
        .function(device, k as *const Kernel as usize, k.name, &config, k.gpu.cuda)
        .map_err(fail)?;
    clock.lap(Phase::CudaFunction);

    // Outputs, contiguous.
    let mut outs = Vec::with_capacity(k.outputs.len());
    for shape in &out_shapes {
        let n: usize = shape.iter().product();
        // SAFETY: the kernel writes every element before anything reads the tensor.
        let slice = unsafe { device.alloc::<T>(n) }.map_err(|e| fail(e.to_string()))?;
        outs.push(slice);
    }

    clock.lap(Phase::CudaAlloc);
    let l = ArgLayout {
        inputs: k.inputs.len(),
        outputs: k.outputs.len(),
        rank: k.prefix.len(),
        sizes: k.sizes.len(),
    };
    let mut words = vec![0i64; l.words()];
    for (i, (input, value)) in inputs.iter().zip(args).enumerate() {
        match (input, value) {
            (Some(input), _) => {
                words[l.in_ptr(i)] = input.addr as i64;
                words[l.col_stride(i)] = input.col_stride as i64;
                for (d, s) in input.row_strides.iter().enumerate() {
                    words[l.row_stride(i, d)] = *s as i64;
                }
            }
            (None, Value::Scalar(s)) => words[l.scalar(i)] = s.to_bits() as i64,
            (None, Value::Tensor(_)) => unreachable!("tensors have inputs"),
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
    let mut writes = Vec::with_capacity(outs.len());
    for (o, slice) in outs.iter_mut().enumerate() {
        let (addr, write) = slice.device_ptr_mut(&stream);
        words[l.out_ptr(o)] = addr as i64;
        writes.push(write);
    }

    let (grid, block) = launch_dims(&config, rows, &out_lens, state.sms);
    let mut params = [words.as_mut_ptr() as *mut c_void];
    stream
        .context()
        .bind_to_thread()
        .map_err(|e| fail(format!("{e:?}")))?;
    // SAFETY: the function takes one argument, `LgArgs<words>`, which `params` points at; every
    // address in it is a live allocation of the sizes the words describe (held by `guards` and
    // `outs` until the launch is queued, and stream-ordered after it).
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
    .map_err(|e| fail(format!("launch: {e:?}")))?;
    drop(writes);
    drop(reads);
    drop(guards);
    clock.lap(Phase::CudaLaunch);
    let outputs = Some(
        outs.into_iter()
            .zip(out_shapes)
            .map(|(slice, shape)| {
                let storage = CudaStorage::wrap_cuda_slice(slice, device.clone());
                Tensor::from_storage(Storage::Cuda(storage), shape, BackpropOp::none(), false)
            })
            .collect(),
    );
    clock.lap(Phase::CudaWrap);
    Ok(outputs)
}

fn next_pow2(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// 32-bit registers a thread may spend on cached rows; past this a row is re-read instead.
const CACHE_REGISTERS: usize = 64;

/// Merges adjacent row dims that every input steps through evenly (a contiguous `[B, H, S]`
/// prefix is one dim for an input that is contiguous there and one that broadcasts over it), so
/// kernels divide row indices by fewer dims. Returns the prefix right-aligned in its original
/// rank, padded with leading 1s; the inputs' row strides are rewritten to match.
fn collapse(prefix: &[usize], inputs: &mut [Option<Input>]) -> Vec<usize> {
    let rank = prefix.len();
    let mut dims: Vec<usize> = Vec::with_capacity(rank);
    let mut strides: Vec<Vec<usize>> = vec![Vec::with_capacity(rank); inputs.len()];
    for (d, &size) in prefix.iter().enumerate() {
        let mergeable = !dims.is_empty()
            && inputs.iter().zip(&strides).all(|(input, s)| match input {
                Some(i) => s[s.len() - 1] == i.row_strides[d] * size,
                None => true,
            });
        if mergeable {
            *dims.last_mut().expect("not empty") *= size;
            for (input, s) in inputs.iter().zip(&mut strides) {
                if let Some(i) = input {
                    *s.last_mut().expect("not empty") = i.row_strides[d];
                }
            }
        } else {
            dims.push(size);
            for (input, s) in inputs.iter().zip(&mut strides) {
                s.push(input.as_ref().map_or(0, |i| i.row_strides[d]));
            }
        }
    }
    let pad = rank - dims.len();
    for (input, s) in inputs.iter_mut().zip(strides) {
        if let Some(i) = input {
            i.row_strides = std::iter::repeat_n(0, pad).chain(s).collect();
        }
    }
    std::iter::repeat_n(1, pad).chain(dims).collect()
}

/// Indices past this need 64-bit arithmetic.
const NARROW_INDEX: usize = (1 << 31) - 1;

#[allow(clippy::too_many_arguments)]
fn choose(
    k: &Kernel,
    dtype: u8,
    size: usize,
    rows: usize,
    inputs: &[Option<Input>],
    out_lens: &[usize],
    sizes: &[usize],
    sms: u32,
) -> Config {
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
    // Whole vectors: unit column strides, aligned rows, and (for remapped columns) every size,
    // so that a chunk of columns never straddles a narrow's start or a cat's seam.
    let vectorisable = n % wide == 0
        && (uniform || k.gpu.remaps)
        && (!k.gpu.remaps || sizes.iter().all(|s| s % wide == 0))
        && columns
            .iter()
            .all(|c| c.col_stride == 1 && c.addr % 16 == 0 && c.row_strides.iter().all(|s| s % wide == 0));
    let vec = if vectorisable { wide } else { 1 };
    let (shape, wide_index) = match k.kind {
        KernelKind::Pointwise => {
            // One 16-byte piece a thread and chunk: two (more bytes in flight) measured slower
            // on an H100 (gelu 8192x8192: 94% -> 91% of a copy in bf16, 96% -> 86% in f32).
            let block = 256;
            let total = rows * n;
            let wide_index = total + (sms as usize) * 32 * block * vec > NARROW_INDEX;
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
                let group = next_pow2(chunks.div_ceil(per_thread)).clamp(32, 512);
                (group, next_pow2(chunks.div_ceil(group)))
            };
            let fits = cache * chunk_registers * k.gpu.cached_inputs <= CACHE_REGISTERS;
            let (group, cache) = if k.gpu.remaps {
                // Each thread takes LG_UNROLL_COLS chunks a step (see the prelude).
                let unroll = if vec == 1 { 4 } else { 1 };
                (next_pow2(chunks.div_ceil(unroll)).clamp(1, 1024), 0)
            } else if !uniform || !fits {
                // Re-read: enough threads for the row, a block at most.
                (next_pow2(chunks.div_ceil(4)).clamp(32, 1024), 0)
            } else {
                (group, cache)
            };
            // Blocks of at least 128 threads; past a warp, one row per block (the reductions'
            // shared memory is per block).
            let rows_per_block = if group > 32 { 1 } else { 128 / group };
            let shape = Shape::Row {
                group: group as u32,
                rows_per_block: rows_per_block as u32,
                cache: cache as u32,
            };
            (shape, rows + 1024 * rows_per_block > NARROW_INDEX)
        }
    };
    Config {
        dtype,
        vec: vec as u32,
        wide: wide_index,
        shape,
    }
}

fn launch_dims(config: &Config, rows: usize, out_lens: &[usize], sms: u32) -> (u32, u32) {
    let block = config.block();
    let per_sm = (2048 / block).clamp(1, 32) as usize;
    let resident = sms as usize * per_sm;
    let needed = match config.shape {
        Shape::Pointwise { .. } => {
            let n = out_lens.iter().copied().max().unwrap_or(1);
            (rows * n / config.vec as usize).div_ceil(block as usize)
        }
        Shape::Row { rows_per_block, .. } => rows.div_ceil(rows_per_block as usize),
    };
    let grid = match config.shape {
        // Grid-stride past a few waves: fewer blocks, each with more work.
        Shape::Pointwise { .. } => needed.min(resident * 4),
        Shape::Row { .. } => needed.min(resident * 2),
    };
    (grid.max(1) as u32, block)
}

/// Configurations that between them cover every code path of kernel `k`'s template, for
/// checking that it compiles: each dtype, scalar and vector accesses, registers and re-reads,
/// a warp split across rows and a block per row, 32- and 64-bit indices.
pub fn covering_configs(k: &Kernel) -> Vec<Config> {
    let mut configs = Vec::new();
    for (dtype, size) in [(0u8, 4u32), (1, 8), (2, 2), (3, 2)] {
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
