//! Runs a generated CPU kernel: finds each input's data and strides, allocates the outputs, and
//! calls the kernel once per row (or per column chunk of a wide pointwise row), spreading rows
//! over threads when there is enough work.

use candle_core::{DType, Device, Storage, Tensor, WithDType};
use graph_ir::cpu::{Elem, Float, RowArgs, RowFn};
use graph_ir::{Access, Graph, Kernel, KernelKind};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use crate::bind::Bound;
use crate::error::{Context, Result};
use crate::exec::eager::Value;

/// Below this many output elements a kernel runs on the calling thread: spawning costs more than
/// it saves, and small calls are latency-bound.
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Runs kernel `k` on CPU tensors of `bound.dtype`; returns its outputs in order.
pub fn run(graph: &'static Graph, k: &'static Kernel, bound: &Bound, args: &[&Value]) -> Result<Vec<Tensor>> {
    match bound.dtype {
        DType::F32 => run_typed::<f32>(graph, k, bound, args, k.cpu.f32),
        DType::F64 => run_typed::<f64>(graph, k, bound, args, k.cpu.f64),
        DType::F16 => run_typed::<half::f16>(graph, k, bound, args, k.cpu.f16),
        DType::BF16 => run_typed::<half::bf16>(graph, k, bound, args, k.cpu.bf16),
        other => unreachable!("binding accepts float dtypes only, found {other:?}"),
    }
}

/// One input as the kernel sees it.
struct Input<'a, T> {
    data: &'a [T],
    /// Stride of each kernel prefix dim (0 where the input broadcasts).
    row_strides: Vec<usize>,
    col_stride: usize,
}

/// A pointer that may cross threads: each thread writes disjoint rows of the outputs.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut MaybeUninit<T>);
// SAFETY: the pointer is only turned into slices of disjoint rows (or row chunks), one per task.
unsafe impl<T: Send> Send for OutPtr<T> {}
unsafe impl<T: Send> Sync for OutPtr<T> {}

fn run_typed<T: Elem + WithDType>(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[&Value],
    fns: [RowFn<T>; 2],
) -> Result<Vec<Tensor>> {
    let func = graph.name;
    let sizes = bound.shape(graph, k.sizes, || format!("kernel {}", k.name))?;
    let prefix = bound.shape(graph, k.prefix, || format!("kernel {} rows", k.name))?;
    let rows: usize = prefix.iter().product();

    // Hold every input's storage lock for the whole kernel.
    let tensors: Vec<Option<&Tensor>> = args
        .iter()
        .map(|v| match v {
            Value::Tensor(t) => Some(t),
            Value::Scalar(_) => None,
        })
        .collect();
    let guards: Vec<_> = tensors
        .iter()
        .map(|t| t.map(|t| t.storage_and_layout()))
        .collect();
    let mut scalars = Vec::with_capacity(args.len());
    let mut inputs = Vec::with_capacity(args.len());
    for ((v, guard), access) in args.iter().zip(&guards).zip(k.access) {
        match (v, guard) {
            (Value::Scalar(s), _) => {
                scalars.push(T::C::from_f64(*s));
                inputs.push(Input {
                    data: &[][..],
                    row_strides: vec![0; prefix.len()],
                    col_stride: 0,
                });
            }
            (Value::Tensor(_), Some((storage, layout))) => {
                scalars.push(T::C::ZERO);
                let data: &[T] = match &**storage {
                    Storage::Cpu(cpu) => cpu.as_slice::<T>().within(func)?,
                    _ => unreachable!("the CPU kernel runs on CPU tensors only"),
                };
                let (dims, strides) = (layout.dims(), layout.stride());
                let rank = dims.len();
                let (prefix_dims, col_stride) = match access {
                    Access::Column if dims[rank - 1] == 1 => (&dims[..rank - 1], 1),
                    Access::Column => (&dims[..rank - 1], strides[rank - 1]),
                    _ => (&dims[..rank.saturating_sub(1)], 0),
                };
                let mut row_strides = vec![0; prefix.len()];
                for (j, d) in prefix_dims.iter().enumerate().rev() {
                    let slot = prefix.len() + j - prefix_dims.len();
                    if *d != 1 {
                        row_strides[slot] = strides[j];
                    }
                }
                let data = &data[layout.start_offset()..];
                inputs.push(Input {
                    data,
                    row_strides,
                    col_stride,
                });
            }
            (Value::Tensor(_), None) => unreachable!("tensors have guards"),
        }
    }

    // Outputs: contiguous, one row of `len` elements per kernel row.
    // Uninitialised: the kernel writes every element exactly once (rows x len, split into
    // disjoint units below), so no fill pass is spent.
    let mut outputs: Vec<(Vec<MaybeUninit<T>>, Vec<usize>, usize)> = Vec::with_capacity(k.outputs.len());
    for &o in k.outputs {
        let shape = bound.shape(graph, graph.nodes[o as usize].shape, || format!("output %{o}"))?;
        let len = shape.last().copied().unwrap_or(1);
        let mut data = Vec::with_capacity(rows * len);
        // SAFETY: `MaybeUninit<T>` needs no initialisation.
        unsafe { data.set_len(rows * len) };
        outputs.push((data, shape, len));
    }
    let contiguous = k
        .access
        .iter()
        .zip(&inputs)
        .all(|(a, i)| *a != Access::Column || i.col_stride == 1);
    let f = fns[usize::from(!contiguous)];
    let out_ptrs: Vec<(OutPtr<T>, usize)> = outputs
        .iter_mut()
        .map(|(v, _, len)| (OutPtr(v.as_mut_ptr()), *len))
        .collect();
    let row_len = outputs.iter().map(|(_, _, len)| *len).max().unwrap_or(1);

    // Wide pointwise rows split into column chunks so a [1, N] kernel still uses every thread.
    let threads = rayon::current_num_threads();
    let chunk =
        if k.kind == KernelKind::Pointwise && rows < 2 * threads && outputs.iter().all(|o| o.2 == row_len) {
            (row_len / (4 * threads)).max(4096).min(row_len.max(1))
        } else {
            row_len.max(1)
        };
    let chunks_per_row = row_len.div_ceil(chunk).max(1);
    let units = rows * chunks_per_row;
    let cx = Cx {
        prefix: &prefix,
        inputs: &inputs,
        scalars: &scalars,
        sizes: &sizes,
        outs: &out_ptrs,
        f,
        chunk,
        chunks_per_row,
        row_len,
    };
    if rows * row_len >= PARALLEL_ELEMENTS && units > 1 {
        let per_task = units.div_ceil(threads * 4).max(1);
        (0..units.div_ceil(per_task))
            .into_par_iter()
            .for_each(|t| cx.run_units(t * per_task..((t + 1) * per_task).min(units)));
    } else {
        cx.run_units(0..units);
    }
    drop(guards);
    outputs
        .into_iter()
        .map(|(data, shape, _)| Tensor::from_vec(assume_init(data), shape, &Device::Cpu).within(func))
        .collect()
}

struct Cx<'a, T: Elem> {
    prefix: &'a [usize],
    inputs: &'a [Input<'a, T>],
    scalars: &'a [T::C],
    sizes: &'a [usize],
    outs: &'a [(OutPtr<T>, usize)],
    f: RowFn<T>,
    chunk: usize,
    chunks_per_row: usize,
    row_len: usize,
}

// SAFETY: the raw output pointers are only used for disjoint rows (see `OutPtr`).
unsafe impl<T: Elem> Sync for Cx<'_, T> where T::C: Sync {}

impl<T: Elem> Cx<'_, T> {
    /// Runs work units `range`: unit `u` is row `u / chunks_per_row`, column chunk
    /// `u % chunks_per_row`.
    fn run_units(&self, range: std::ops::Range<usize>) {
        let mut ins: Vec<&[T]> = vec![&[]; self.inputs.len()];
        let strides: Vec<usize> = self.inputs.iter().map(|i| i.col_stride).collect();
        let mut outs: Vec<&mut [MaybeUninit<T>]> = Vec::with_capacity(self.outs.len());
        let mut index = vec![0usize; self.prefix.len()];
        for u in range {
            let (row, part) = (u / self.chunks_per_row, u % self.chunks_per_row);
            // Row multi-index, last prefix dim fastest.
            let mut r = row;
            for (i, d) in self.prefix.iter().enumerate().rev() {
                index[i] = r % d.max(&1);
                r /= d.max(&1);
            }
            for (slot, input) in ins.iter_mut().zip(self.inputs) {
                let base: usize = index.iter().zip(&input.row_strides).map(|(i, s)| i * s).sum();
                *slot = if input.data.is_empty() {
                    input.data
                } else {
                    &input.data[base..]
                };
            }
            let cols = part * self.chunk..((part + 1) * self.chunk).min(self.row_len);
            outs.clear();
            for &(OutPtr(ptr), len) in self.outs {
                // A chunked row hands out only its own columns; a whole row hands out all of them.
                let (start, n) = if self.chunks_per_row > 1 {
                    (row * len + cols.start, cols.len())
                } else {
                    (row * len, len)
                };
                // SAFETY: `ptr` points at `rows * len` elements, and each unit's range is disjoint
                // from every other unit's.
                outs.push(unsafe { std::slice::from_raw_parts_mut(ptr.add(start), n) });
            }
            let args = RowArgs {
                ins: &ins,
                strides: &strides,
                scalars: self.scalars,
                sizes: self.sizes,
                cols,
            };
            (self.f)(&args, &mut outs);
        }
    }
}

/// The output buffer once the kernel has written every element.
fn assume_init<T>(data: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut data = std::mem::ManuallyDrop::new(data);
    let (ptr, len, cap) = (data.as_mut_ptr(), data.len(), data.capacity());
    // SAFETY: every element was written by the kernel (the units cover rows x len exactly), and
    // `MaybeUninit<T>` has `T`'s layout.
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, cap) }
}
