//! Runs a generated column kernel: reductions along a prefix axis of the kernel's domain, in two
//! stages. The axis is cut into chunks whose length depends only on the shape; each (output row,
//! chunk) unit takes its rows into a row of partial results, on whichever thread; then each
//! output element combines its partials in chunk order and is finished (a mean divides by the
//! count). No step depends on the threads, so the result is the same bits at every run.

use std::ops::Range;

use candle_core::{Storage, WithDType};
use graph_ir::cpu::{ColFn, Elem, Float, RowArgs};
use graph_ir::{BinaryOp, Graph, Kernel, Op, ReduceFinish, ReduceInfo};
use smallvec::SmallVec;

use super::PARALLEL_WORK;
use crate::bind::{describe_node, elements, Bound};
use crate::error::{Error, Result};
use crate::exec::Sink;

/// About this many values (rows times columns) per chunk of the reduced axis: enough work per
/// unit to spread over threads, and few enough partials that combining them costs little next
/// to the first stage.
const CHUNK_WORK: usize = 1 << 14;

/// The rows of one chunk of an axis of `len` values, for rows of `cols` columns: a function of
/// the shape only.
pub fn chunk_rows(len: usize, cols: usize) -> usize {
    (CHUNK_WORK / cols.max(1)).clamp(1, len.max(1))
}

/// The inputs of a call, as the row-kernel path found them (see `super::run_typed`).
pub struct Inputs<'a, T: Elem> {
    /// Each input from its first element (empty for scalars).
    pub data: &'a [&'a [T]],
    pub col_strides: &'a [usize],
    /// Input `i`'s stride along prefix dim `d` at `i * rank + d`.
    pub row_strides: &'a [usize],
    pub scalars: &'a [T::C],
    pub sizes: &'a [usize],
}

/// A pointer to the partial rows, which threads write in disjoint units.
#[derive(Clone, Copy)]
struct PartialPtr<C>(*mut C);

// SAFETY: the pointer is only turned into the rows of one unit at a time, and units are disjoint,
// so moving it to another thread hands that thread elements no other thread touches.
unsafe impl<C: Send> Send for PartialPtr<C> {}
// SAFETY: as for `Send`: threads sharing it write disjoint elements, and none reads through it
// before every unit is done.
unsafe impl<C: Send> Sync for PartialPtr<C> {}

/// `a` and `b` combined as reduction `r` combines its values.
fn combine<C: Float>(r: &ReduceInfo, a: C, b: C) -> C {
    match r.combine {
        BinaryOp::Add => a + b,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
        other => unreachable!("no reduction combines by {other:?}"),
    }
}

/// Runs column kernel `k`, reducing along prefix axes `axes` of its domain `prefix`, and pushes
/// its outputs to `out`.
#[allow(clippy::too_many_arguments)]
pub fn run<T: Elem + WithDType>(
    graph: &'static Graph,
    k: &'static Kernel,
    axes: Range<usize>,
    bound: &Bound,
    prefix: &[usize],
    inputs: &Inputs<'_, T>,
    f: ColFn<T>,
    out: &mut dyn Sink,
) -> Result<()> {
    let func = graph.name();
    let rank = prefix.len();
    let along: usize = prefix[axes.clone()].iter().product();
    let outer: usize = prefix[..axes.start].iter().product();
    let inner: usize = prefix[axes.end..].iter().product();
    let out_rows = outer * inner;
    let mut shapes: SmallVec<[Vec<usize>; 2]> = SmallVec::new();
    let mut reductions: SmallVec<[&ReduceInfo; 2]> = SmallVec::new();
    for &o in k.outputs {
        let what = || describe_node(graph, o as usize);
        let node = &graph.nodes()[o as usize];
        let shape = bound.shape(graph, node.shape, what)?;
        elements(func, &shape, T::DTYPE, what)?;
        shapes.push(shape);
        let Op::Reduce(op, _) = node.op else {
            unreachable!("a column kernel's outputs are its reductions")
        };
        reductions.push(op.info());
    }
    let cols = shapes[0].last().copied().unwrap_or(1);
    let chunk = chunk_rows(along, cols);
    let parts = along.div_ceil(chunk);

    // Stage one: the partial rows of each output, [out_rows][parts][cols], from the identity.
    let n = out_rows
        .checked_mul(parts)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| Error::TooLarge {
            func,
            what: format!("the partial results of kernel {}", k.name),
            shape: vec![out_rows, parts, cols],
        })?;
    let mut partials: SmallVec<[Vec<T::C>; 2]> = SmallVec::new();
    for r in &reductions {
        let mut buffer = Vec::new();
        if buffer.try_reserve_exact(n).is_err() {
            return Err(Error::Alloc {
                func,
                what: format!("the partial results of kernel {}", k.name),
                bytes: n * std::mem::size_of::<T::C>(),
            });
        }
        buffer.resize(n, T::C::from_f64(r.identity));
        partials.push(buffer);
    }
    let ptrs: SmallVec<[PartialPtr<T::C>; 2]> =
        partials.iter_mut().map(|p| PartialPtr(p.as_mut_ptr())).collect();
    // Each input's step along the last reduced axis, from one row of a run to the next.
    let steps: SmallVec<[usize; 6]> = (0..inputs.data.len())
        .map(|i| inputs.row_strides[i * rank + axes.end - 1])
        .collect();
    let cx = Stage {
        prefix,
        axes,
        along,
        inner,
        chunk,
        parts,
        cols,
        inputs,
        steps: &steps,
        ptrs: &ptrs,
        f,
    };
    let units = out_rows * parts;
    let threads = if units > 1 && units.saturating_mul(chunk).saturating_mul(cols) >= PARALLEL_WORK {
        rayon::current_num_threads()
    } else {
        1
    };
    super::spread(units, threads, |range| cx.run_units(range));

    // Stage two: each element combines its partials in chunk order, then is finished.
    for ((partial, r), shape) in partials.iter().zip(&reductions).zip(shapes) {
        let mut values: Vec<T> = Vec::with_capacity(out_rows * cols);
        let count = T::C::from_usize(along);
        let mut row: Vec<T::C> = vec![T::C::from_f64(r.identity); cols];
        for orow in 0..out_rows {
            let first = orow * parts * cols;
            match parts {
                0 => row.fill(T::C::from_f64(r.identity)),
                _ => row.copy_from_slice(&partial[first..first + cols]),
            }
            for p in 1..parts {
                let part = &partial[first + p * cols..first + (p + 1) * cols];
                for (acc, v) in row.iter_mut().zip(part) {
                    *acc = combine(r, *acc, *v);
                }
            }
            values.extend(row.iter().map(|v| match r.finish {
                ReduceFinish::Total => T::store(*v),
                ReduceFinish::DivideByCount => T::store(*v / count),
            }));
        }
        out.put(Storage::Cpu(T::to_cpu_storage_owned(values)), shape);
    }
    Ok(())
}

/// The first stage's work: unit `u` is output row `u / parts`, chunk `u % parts`.
struct Stage<'a, T: Elem> {
    prefix: &'a [usize],
    /// The reduced axes, and how many rows they span.
    axes: Range<usize>,
    along: usize,
    /// The rows after the axes: an output row is (rows before the axes, rows after them).
    inner: usize,
    chunk: usize,
    parts: usize,
    cols: usize,
    inputs: &'a Inputs<'a, T>,
    steps: &'a [usize],
    ptrs: &'a [PartialPtr<T::C>],
    f: ColFn<T>,
}

// SAFETY: the raw partial pointers are only used for disjoint units (see `PartialPtr`).
unsafe impl<T: Elem> Sync for Stage<'_, T> where T::C: Sync {}

impl<T: Elem> Stage<'_, T> {
    fn run_units(&self, range: Range<usize>) {
        let rank = self.prefix.len();
        let (first, last) = (self.axes.start, self.axes.end - 1);
        let mut index: SmallVec<[usize; 4]> = SmallVec::new();
        let mut ins: SmallVec<[&[T]; 6]> = SmallVec::new();
        let mut accs: SmallVec<[&mut [T::C]; 2]> = SmallVec::new();
        for u in range {
            let (orow, part) = (u / self.parts, u % self.parts);
            let start = part * self.chunk;
            let end = (start + self.chunk).min(self.along);
            // The digits of the domain row: the output row's before and after the reduced axes,
            // the chunk's rows' along them.
            index.clear();
            index.resize(rank, 0);
            let (mut before, mut after) = (orow / self.inner, orow % self.inner);
            for d in (self.axes.end..rank).rev() {
                index[d] = after % self.prefix[d];
                after /= self.prefix[d];
            }
            for d in (0..first).rev() {
                index[d] = before % self.prefix[d];
                before /= self.prefix[d];
            }
            let mut m = start;
            // Runs of rows along the last reduced axis, each one call.
            while m < end {
                let mut rest = m;
                for d in self.axes.clone().rev() {
                    index[d] = rest % self.prefix[d];
                    rest /= self.prefix[d];
                }
                let rows = (end - m).min(self.prefix[last] - index[last]);
                ins.clear();
                for (i, data) in self.inputs.data.iter().enumerate() {
                    if data.is_empty() {
                        ins.push(data);
                        continue;
                    }
                    let strides = &self.inputs.row_strides[i * rank..(i + 1) * rank];
                    let base: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
                    ins.push(&data[base..]);
                }
                accs.clear();
                for &PartialPtr(ptr) in self.ptrs {
                    // SAFETY: `ptr` points at out_rows x parts x cols initialised values, and
                    // unit `u`'s row (`u * cols` on) is touched by this unit alone.
                    accs.push(unsafe { std::slice::from_raw_parts_mut(ptr.add(u * self.cols), self.cols) });
                }
                let args = RowArgs {
                    ins: &ins,
                    strides: self.inputs.col_strides,
                    row_steps: self.steps,
                    rows,
                    scalars: self.inputs.scalars,
                    sizes: self.inputs.sizes,
                    cols: 0..self.cols,
                };
                (self.f)(&args, &mut accs);
                m += rows;
            }
        }
    }
}
