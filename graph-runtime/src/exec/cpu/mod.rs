//! Runs a generated CPU kernel: finds each input's data and strides, allocates the outputs, and
//! calls the kernel once per row (or per column chunk of a wide pointwise row), spreading rows
//! over threads when there is enough work.
//!
//! A call on a small input is latency-bound (a 1x4096 RMSNorm computes for a fraction of a
//! microsecond), so the bookkeeping lives on the stack (`SmallVec`s): the only allocations are the
//! outputs (data and shape) and the list returning them.

use candle_core::{DType, Storage, WithDType};
use graph_ir::cpu::{CpuFns, Elem, Float, RowArgs, RowFn};
use graph_ir::{Access, Graph, Kernel, KernelKind};
use smallvec::SmallVec;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bind::{describe_node, elements, Bound};
use crate::error::{Context, Error, Result};
use crate::exec::backend::Backend;
use crate::exec::{Arg, Sink};

mod columns;

/// Below this much work (rows times the longest row loop) a kernel runs on the calling thread:
/// waking other threads costs more than it saves, and small calls are latency-bound.
const PARALLEL_WORK: usize = 1 << 18;

/// The CPU backend: generated code for every kernel, whose work is done when the call returns.
#[derive(Debug)]
pub struct Cpu;

impl Backend for Cpu {
    fn launch(
        &self,
        graph: &'static Graph,
        k: &'static Kernel,
        bound: &Bound,
        args: &[Arg<'_>],
        out: &mut dyn Sink,
    ) -> Result<bool> {
        run(graph, k, bound, args, out).map(|()| true)
    }

    fn wait(&self) -> candle_core::Result<()> {
        Ok(())
    }
}

/// Runs kernel `k` on CPU tensors of `bound.dtype`; pushes its outputs, in order, to `out`
/// (filled where the caller holds it: moving a list just written up through each caller stalls
/// its next read, which costs a small call more than its arithmetic).
pub fn run(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[Arg<'_>],
    out: &mut dyn Sink,
) -> Result<()> {
    match bound.dtype {
        DType::F32 => run_typed::<f32>(graph, k, bound, args, &k.cpu.f32, out),
        DType::F64 => run_typed::<f64>(graph, k, bound, args, &k.cpu.f64, out),
        DType::F16 => run_typed::<half::f16>(graph, k, bound, args, &k.cpu.f16, out),
        DType::BF16 => run_typed::<half::bf16>(graph, k, bound, args, &k.cpu.bf16, out),
        other => unreachable!("binding accepts float dtypes only, found {other:?}"),
    }
}

/// An output's buffer, written by the kernel, and its shape.
type Output<T> = (Vec<MaybeUninit<T>>, Vec<usize>);

/// A pointer that may cross threads: each thread writes disjoint rows of the outputs.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut MaybeUninit<T>);

// SAFETY: the pointer is only turned into slices of disjoint rows (or row chunks), one per task,
// so moving it to another thread hands that thread elements no other thread writes.
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: as for `Send`: threads sharing it write disjoint elements, and none reads through it.
unsafe impl<T: Send> Sync for OutPtr<T> {}

fn run_typed<T: Elem + WithDType>(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[Arg<'_>],
    fns: &CpuFns<T>,
    out: &mut dyn Sink,
) -> Result<()> {
    let func = graph.name();
    // Lists are filled where they live, never built and then moved: moving a list just written
    // stalls the next read of it, which costs a small call more than its arithmetic.
    let mut sizes: SmallVec<[usize; 4]> = SmallVec::new();
    bound.dims_into(graph, k.sizes, &mut sizes, || format!("kernel {}", k.name))?;
    let mut prefix: SmallVec<[usize; 4]> = SmallVec::new();
    bound.dims_into(graph, k.prefix, &mut prefix, || format!("kernel {} rows", k.name))?;
    if prefix.is_empty() {
        // One row: counted as a prefix of one dim, so every input has a row step.
        prefix.push(1);
    }
    // Every output holds `rows` rows, so a count that overflows is a value too large to hold.
    let rows = match prefix.contains(&0) {
        true => 0,
        false => prefix
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| Error::TooLarge {
                func,
                what: format!("the rows of kernel {}", k.name),
                shape: prefix.to_vec(),
            })?,
    };
    let rank = prefix.len();

    // Hold every input's storage lock for the whole kernel.
    let mut guards: SmallVec<[_; 6]> = SmallVec::new();
    for a in args {
        guards.push(match a {
            Arg::Tensor(t) => Some(t.storage_and_layout()),
            Arg::Scalar(_) => None,
        });
    }
    let mut scalars: SmallVec<[T::C; 6]> = SmallVec::new();
    let mut data: SmallVec<[&[T]; 6]> = SmallVec::new();
    let mut col_strides: SmallVec<[usize; 6]> = SmallVec::new();
    // The stride of each input along each prefix dim (0 where it broadcasts), input-major.
    let mut row_strides: SmallVec<[usize; 12]> = SmallVec::new();
    // Each input's stride along the last prefix dim: its step from one row to the next.
    let mut steps: SmallVec<[usize; 6]> = SmallVec::new();
    for ((v, guard), access) in args.iter().zip(guards.iter()).zip(k.access) {
        match (v, guard) {
            (Arg::Scalar(s), _) => {
                scalars.push(T::C::from_f64(*s));
                data.push(&[]);
                col_strides.push(0);
                (0..rank).for_each(|_| row_strides.push(0));
            }
            (Arg::Tensor(_), Some((storage, layout))) => {
                scalars.push(T::C::ZERO);
                let all: &[T] = match &**storage {
                    Storage::Cpu(cpu) => cpu.as_slice::<T>().within(func)?,
                    _ => unreachable!("the CPU kernel runs on CPU tensors only"),
                };
                let (dims, strides) = (layout.dims(), layout.stride());
                if dims.contains(&0) {
                    // No elements: either the kernel has no rows, or the input's empty dim is
                    // its row, of which the kernel reads no columns. Its strides may still step
                    // past its storage (a transposed `[0, 3]`, a narrow at the end of an empty
                    // tensor), so it reads as an empty slice that never moves.
                    (0..rank).for_each(|_| row_strides.push(0));
                    data.push(&[]);
                    col_strides.push(1);
                    steps.push(0);
                    continue;
                }
                let r = dims.len();
                let (prefix_dims, col_stride) = match access {
                    Access::Column if dims[r - 1] == 1 => (&dims[..r - 1], 1),
                    Access::Column => (&dims[..r - 1], strides[r - 1]),
                    _ => (&dims[..r.saturating_sub(1)], 0),
                };
                // Right-aligned against the kernel's prefix, as broadcasting aligns dims. A
                // view the planner passes as it is (a reshape that only added leading 1s) may
                // have more dims than the kernel: those are 1 and read nowhere.
                let extra = prefix_dims.len().saturating_sub(rank);
                if prefix_dims[..extra].iter().any(|&d| d != 1) {
                    let what = format!(
                        "a kernel input of shape {dims:?} has more dims than the kernel ({rank} + 1)"
                    );
                    return Err(candle_core::Error::Msg(what)).within(func);
                }
                let prefix_dims = &prefix_dims[extra..];
                let skip = rank - prefix_dims.len();
                (0..skip).for_each(|_| row_strides.push(0));
                for (j, d) in prefix_dims.iter().enumerate() {
                    row_strides.push(if *d == 1 { 0 } else { strides[extra + j] });
                }
                data.push(&all[layout.start_offset()..]);
                col_strides.push(col_stride);
            }
            (Arg::Tensor(_), None) => unreachable!("tensors have guards"),
        }
        steps.push(row_strides[row_strides.len() - 1]);
    }

    let contiguous = k
        .access
        .iter()
        .zip(col_strides.iter())
        .all(|(a, s)| *a != Access::Column || *s == 1);
    let fns = match fns {
        CpuFns::Rows(fns) => fns,
        CpuFns::Columns(fns) => {
            let KernelKind::Column { axis, axes } = k.kind else {
                unreachable!("column functions belong to column kernels")
            };
            let axes = axis as usize..(axis + axes) as usize;
            let inputs = columns::Inputs {
                data: &data,
                col_strides: &col_strides,
                row_strides: &row_strides,
                scalars: &scalars,
                sizes: &sizes,
            };
            let f = fns[usize::from(!contiguous)];
            let result = columns::run(graph, k, axes, bound, &prefix, &inputs, f, out);
            drop(data);
            drop(guards);
            return result;
        }
    };
    // Outputs: contiguous, one row of `len` elements per kernel row.
    // Uninitialised: the kernel writes every element exactly once (rows x len, split into
    // disjoint units below), so no fill pass is spent.
    let mut outputs: SmallVec<[Output<T>; 2]> = SmallVec::new();
    for &o in k.outputs {
        let what = || describe_node(graph, o as usize);
        let shape = bound.shape(graph, graph.nodes()[o as usize].shape, what)?;
        // Checked, so that `rows * len` below cannot wrap: the kernel writes that many.
        let n = elements(func, &shape, T::DTYPE, what)?;
        let len = shape.last().copied().unwrap_or(1);
        debug_assert_eq!(n, rows * len, "an output is its kernel's rows of `len`");
        let mut buffer = Vec::new();
        if buffer.try_reserve_exact(n).is_err() {
            return Err(Error::Alloc {
                func,
                what: what(),
                bytes: n * T::DTYPE.size_in_bytes(),
            });
        }
        // SAFETY: the capacity is at least `n` (reserved above), and `MaybeUninit<T>` needs no
        // initialisation. The kernel writes every element before `assume_init` reads them (the
        // contract of `graph_ir::cpu::RowFn`).
        unsafe { buffer.set_len(n) };
        outputs.push((buffer, shape));
    }
    let f = fns[usize::from(!contiguous)];
    let mut outs: SmallVec<[(OutPtr<T>, usize); 2]> = SmallVec::new();
    for (v, shape) in outputs.iter_mut() {
        outs.push((OutPtr(v.as_mut_ptr()), shape.last().copied().unwrap_or(1)));
    }
    let row_len = outs.iter().map(|(_, len)| *len).max().unwrap_or(1);

    // A row's work is its longest loop: the output row, or a reduction over a longer input row.
    let work = rows.saturating_mul(sizes.iter().copied().fold(row_len, usize::max));
    // The pool is asked its size only where the call may use it.
    let threads = if work >= PARALLEL_WORK {
        rayon::current_num_threads()
    } else {
        1
    };
    // Wide pointwise rows split into column chunks so a [1, N] kernel still uses every thread.
    let chunk = if threads > 1
        && k.kind == KernelKind::Pointwise
        && rows < 2 * threads
        && outs.iter().all(|o| o.1 == row_len)
    {
        (row_len / (4 * threads)).max(4096).min(row_len.max(1))
    } else {
        row_len.max(1)
    };
    let chunks_per_row = row_len.div_ceil(chunk).max(1);
    let units = rows * chunks_per_row;
    let cx = Cx {
        prefix: &prefix,
        data: &data,
        col_strides: &col_strides,
        row_strides: &row_strides,
        steps: &steps,
        scalars: &scalars,
        sizes: &sizes,
        outs: &outs,
        f,
        chunk,
        chunks_per_row,
        row_len,
    };
    spread(units, threads, |range| cx.run_units(range));
    // The input slices borrow the storage guards: release them in that order.
    drop((outs, data));
    drop(guards);
    for (buffer, shape) in outputs.iter_mut() {
        let (buffer, shape) = (assume_init(std::mem::take(buffer)), std::mem::take(shape));
        out.put(Storage::Cpu(T::to_cpu_storage_owned(buffer)), shape);
    }
    Ok(())
}

/// Runs work units `0..units` through `run`, on `threads` threads when there are more than one
/// of each. The calling thread works from the start, taking tasks from a shared counter with the
/// pool's threads as they wake: waking them takes microseconds, and a call should not wait for
/// that before any work starts, nor for a sleeping caller to wake at the end.
fn spread(units: usize, threads: usize, run: impl Fn(Range<usize>) + Sync) {
    if units <= 1 || threads <= 1 {
        return run(0..units);
    }
    let per_task = units.div_ceil(threads * 8).max(1);
    let tasks = units.div_ceil(per_task);
    let next = AtomicUsize::new(0);
    let work = || loop {
        let t = next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            break;
        }
        run(t * per_task..((t + 1) * per_task).min(units));
    };
    rayon::in_place_scope(|s| {
        for _ in 1..threads.min(tasks) {
            s.spawn(|_| work());
        }
        work();
    });
}

struct Cx<'a, T: Elem> {
    prefix: &'a [usize],
    /// Each input from its first element (empty for scalars).
    data: &'a [&'a [T]],
    col_strides: &'a [usize],
    /// Input `i`'s stride along prefix dim `d` at `i * prefix.len() + d`.
    row_strides: &'a [usize],
    /// Input `i`'s stride along the last prefix dim.
    steps: &'a [usize],
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
    /// `u % chunks_per_row`. Whole rows go to the kernel in runs along the last prefix dim,
    /// where every input moves by a fixed step from one row to the next; the row index is
    /// counted up digit by digit (no division per row).
    fn run_units(&self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        let rank = self.prefix.len();
        let inner = self.prefix[rank - 1];
        let mut ins: SmallVec<[&[T]; 6]> = SmallVec::new();
        ins.extend(self.data.iter().copied());
        let mut outs: SmallVec<[&mut [MaybeUninit<T>]; 2]> = SmallVec::new();
        let (mut row, mut part) = (
            range.start / self.chunks_per_row,
            range.start % self.chunks_per_row,
        );
        // Row multi-index, last prefix dim fastest (all zeros from the first row, with no
        // division).
        let mut index: SmallVec<[usize; 4]> = SmallVec::new();
        index.resize(rank, 0);
        if row > 0 {
            let mut r = row;
            for (i, d) in self.prefix.iter().enumerate().rev() {
                index[i] = r % d.max(&1);
                r /= d.max(&1);
            }
        }
        let mut u = range.start;
        while u < range.end {
            let rows = if self.chunks_per_row > 1 {
                1
            } else {
                (range.end - u).min(inner - index[rank - 1])
            };
            for (i, (slot, data)) in ins.iter_mut().zip(self.data).enumerate() {
                if !data.is_empty() {
                    let strides = &self.row_strides[i * rank..(i + 1) * rank];
                    let base: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
                    *slot = &data[base..];
                }
            }
            let cols = part * self.chunk..((part + 1) * self.chunk).min(self.row_len);
            outs.clear();
            for &(OutPtr(ptr), len) in self.outs {
                // A chunked row hands out only its own columns; whole rows hand out all of them.
                let (start, n) = if self.chunks_per_row > 1 {
                    (row * len + cols.start, cols.len())
                } else {
                    (row * len, rows * len)
                };
                // SAFETY: `ptr` points at `rows * len` elements, and each unit's range is disjoint
                // from every other unit's.
                outs.push(unsafe { std::slice::from_raw_parts_mut(ptr.add(start), n) });
            }
            let args = RowArgs {
                ins: &ins,
                strides: self.col_strides,
                row_steps: self.steps,
                rows,
                scalars: self.scalars,
                sizes: self.sizes,
                cols,
            };
            (self.f)(&args, &mut outs);
            u += rows;
            if self.chunks_per_row > 1 {
                part += 1;
                if part < self.chunks_per_row {
                    continue;
                }
                part = 0;
            }
            row += rows;
            // Count `rows` up in the last digit, carrying into the ones before it.
            let mut carry = rows;
            for (i, d) in self.prefix.iter().enumerate().rev() {
                index[i] += carry;
                if index[i] < *d {
                    break;
                }
                index[i] = 0;
                carry = 1;
            }
        }
    }
}

/// The output buffer once the kernel has written every element.
fn assume_init<T>(data: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut data = std::mem::ManuallyDrop::new(data);
    let (ptr, len, cap) = (data.as_mut_ptr(), data.len(), data.capacity());
    // SAFETY: every element was written by the kernel (the units cover rows x len exactly, and
    // each call writes all of its part: the contract of `graph_ir::cpu::RowFn`), and
    // `MaybeUninit<T>` has `T`'s layout; `ptr`, `len` and `cap` come from a live `Vec` of it.
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, cap) }
}
