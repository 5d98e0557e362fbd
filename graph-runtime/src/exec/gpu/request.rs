//! One launch of a generated kernel as the host decides it from the bound shapes: a
//! [`LaunchRequest`] holds the kernel, its extents and how it reads each argument. The backends
//! choose a configuration from it (see [`super::config::choose`]) and turn it into the kernel's
//! argument words ([`LaunchRequest::words`]).

use candle_core::Layout;
use graph_ir::gpu::magic;
use graph_ir::{Access, ArgLayout, Kernel, KernelKind};
use smallvec::SmallVec;

use super::{Config, Dims, Words};

/// One launch of kernel `kernel`: what the configuration and the argument words are derived
/// from. Built once per call, on the stack.
#[derive(Clone, Debug)]
pub struct LaunchRequest {
    pub kernel: &'static Kernel,
    /// The storage dtype's `LG_DTYPE` code (0 f32, 1 f64, 2 f16, 3 bf16) and element size in
    /// bytes.
    pub dtype: u8,
    pub elem_bytes: usize,
    /// The kernel's run-time sizes ([`Kernel::sizes`] evaluated).
    pub sizes: Dims,
    /// The row prefix and the number of rows (its product).
    pub prefix: Dims,
    pub rows: usize,
    /// Each output's shape and row length (its last dim).
    pub out_shapes: SmallVec<[Dims; 2]>,
    pub out_lens: SmallVec<[usize; 2]>,
    /// Each argument as the kernel reads it, in order.
    pub inputs: SmallVec<[Operand; 8]>,
}

/// One argument of a launch.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Tensor(Input),
    Scalar(f64),
}

impl Operand {
    /// The tensor input, `None` for a scalar.
    pub fn tensor(&self) -> Option<&Input> {
        match self {
            Operand::Tensor(input) => Some(input),
            Operand::Scalar(_) => None,
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

impl LaunchRequest {
    /// Merges adjacent row dims that every input steps through evenly (a contiguous `[B, H, S]`
    /// prefix is one dim for an input that is contiguous there and one that broadcasts over it),
    /// so kernels divide row indices by fewer dims. The prefix keeps its rank, padded with
    /// leading 1s; the inputs' row strides are rewritten to match. (The CUDA backend does this;
    /// Metal launches the prefix as it is.)
    pub fn collapse(&mut self) {
        let rank = self.prefix.len();
        let mut dims = Dims::new();
        let mut strides: SmallVec<[Dims; 8]> = smallvec::smallvec![Dims::new(); self.inputs.len()];
        for (d, &size) in self.prefix.iter().enumerate() {
            let mergeable = !dims.is_empty()
                && self.inputs.iter().zip(&strides).all(|(input, s)| match input {
                    Operand::Tensor(i) => s[s.len() - 1] == i.row_strides[d] * size,
                    Operand::Scalar(_) => true,
                });
            if mergeable {
                *dims.last_mut().expect("not empty") *= size;
                for (input, s) in self.inputs.iter().zip(&mut strides) {
                    if let Operand::Tensor(i) = input {
                        *s.last_mut().expect("not empty") = i.row_strides[d];
                    }
                }
            } else {
                dims.push(size);
                for (input, s) in self.inputs.iter().zip(&mut strides) {
                    s.push(input.tensor().map_or(0, |i| i.row_strides[d]));
                }
            }
        }
        let pad = rank - dims.len();
        for (input, s) in self.inputs.iter_mut().zip(strides) {
            if let Operand::Tensor(i) = input {
                i.row_strides = std::iter::repeat_n(0, pad).chain(s).collect();
            }
        }
        self.prefix = std::iter::repeat_n(1, pad).chain(dims).collect();
    }

    /// The launch's argument words in `config` (see [`ArgLayout`]): strides, sizes, rows, the
    /// division magic, and each scalar as `scalar` encodes it (the backends read scalars at
    /// different widths). The pointer words stay 0, for the backend to fill or leave (Metal
    /// binds buffers instead).
    pub fn words(&self, config: &Config, scalar: impl Fn(f64) -> i64) -> (ArgLayout, Words) {
        let k = self.kernel;
        let l = ArgLayout {
            inputs: k.inputs.len(),
            outputs: k.outputs.len(),
            rank: k.prefix.len(),
            sizes: k.sizes.len(),
            columns: matches!(k.kind, graph_ir::KernelKind::Column { .. }),
        };
        let mut words: Words = smallvec::smallvec![0; l.words()];
        for (i, input) in self.inputs.iter().enumerate() {
            match input {
                Operand::Tensor(input) => {
                    words[l.col_stride(i)] = input.col_stride as i64;
                    for (d, s) in input.row_strides.iter().enumerate() {
                        words[l.row_stride(i, d)] = *s as i64;
                    }
                }
                Operand::Scalar(s) => words[l.scalar(i)] = scalar(*s),
            }
        }
        for (d, p) in self.prefix.iter().enumerate() {
            words[l.prefix(d)] = *p as i64;
            if !config.wide {
                words[l.prefix_magic(d)] = magic(*p as u32) as i64;
            }
        }
        for (s, v) in self.sizes.iter().enumerate() {
            words[l.size(s)] = *v as i64;
        }
        for (o, len) in self.out_lens.iter().enumerate() {
            words[l.out_len(o)] = *len as i64;
        }
        words[l.rows()] = self.rows as i64;
        if l.columns {
            let c = super::config::Chunks::of(self, config);
            words[l.chunk()] = c.chunk as i64;
            words[l.parts()] = c.parts as i64;
            words[l.out_rows()] = c.out_rows as i64;
        }
        let width = self.out_lens.iter().copied().max().unwrap_or(1);
        if !config.wide && k.kind == KernelKind::Pointwise {
            words[l.width_magic()] = magic(width as u32) as i64;
        }
        (l, words)
    }
}

/// The storage guards and layout of one tensor argument each, `None` for scalars.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub type Guards<'a> = SmallVec<[Option<(candle_core::StorageRef<'a>, &'a Layout)>; 8]>;

/// The layouts of a kernel's tensor arguments, `None` for scalars; the storage guards live as
/// long as the returned list, which the backends keep until the launch is queued.
#[cfg(any(feature = "cuda", feature = "metal"))]
pub fn guards<'a>(args: &[crate::exec::Arg<'a>]) -> Guards<'a> {
    args.iter()
        .map(|v| match v {
            crate::exec::Arg::Tensor(t) => Some(t.storage_and_layout()),
            crate::exec::Arg::Scalar(_) => None,
        })
        .collect()
}

#[cfg(any(feature = "cuda", feature = "metal"))]
impl LaunchRequest {
    /// Kernel `k`'s launch under `bound`, in the dtype of `LG_DTYPE` code `dtype` with
    /// `elem_bytes`-byte elements, its arguments still to add ([`LaunchRequest::bind`]); `None`
    /// when an output is empty (GPU backends launch nothing for those; the caller runs the
    /// kernel's nodes through Candle).
    pub fn of(
        graph: &graph_ir::Graph,
        k: &'static Kernel,
        bound: &crate::bind::Bound,
        (dtype, elem_bytes): (u8, usize),
    ) -> crate::error::Result<Option<LaunchRequest>> {
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
        // A column kernel over an empty axis has outputs but no rows (and a prefix dim of 0,
        // which the kernel's division words cannot hold).
        let no_rows = matches!(k.kind, KernelKind::Column { .. }) && prefix.contains(&0);
        if no_rows || out_shapes.iter().any(|s| s.contains(&0)) {
            return Ok(None);
        }
        let out_lens = out_shapes
            .iter()
            .map(|s| s.last().copied().unwrap_or(1))
            .collect();
        Ok(Some(LaunchRequest {
            kernel: k,
            dtype,
            elem_bytes,
            rows: prefix.iter().product(),
            sizes,
            prefix,
            out_shapes,
            out_lens,
            inputs: SmallVec::new(),
        }))
    }

    /// Adds the arguments `args`, in order, from their storage `guards`: each tensor starting at
    /// `base(storage)` (its buffer's device address on CUDA, 0 on Metal, which binds the buffer
    /// and passes offsets) plus its layout's offset, and each scalar's value.
    pub fn bind<'g>(
        &mut self,
        guards: &'g Guards<'_>,
        args: &[crate::exec::Arg<'_>],
        mut base: impl FnMut(&'g candle_core::Storage) -> crate::error::Result<u64>,
    ) -> crate::error::Result<()> {
        let rank = self.prefix.len();
        for ((guard, access), arg) in guards.iter().zip(self.kernel.access).zip(args) {
            self.inputs.push(match (guard, arg) {
                (Some((storage, layout)), _) => {
                    let start = base(storage)? + (layout.start_offset() * self.elem_bytes) as u64;
                    Operand::Tensor(Input::of(layout, *access, rank, start))
                }
                (None, crate::exec::Arg::Scalar(s)) => Operand::Scalar(*s),
                (None, crate::exec::Arg::Tensor(_)) => unreachable!("tensors have storage guards"),
            });
        }
        Ok(())
    }
}
