//! Executors: `eager` runs node by node through Candle (the oracle); `fused` runs the plan, with
//! generated kernels from the device's backend (`backend` picks it): `cpu`, with the `cuda`
//! feature `cuda`, with the `metal` feature `metal` (whose launch configuration is built
//! everywhere, for tests). `gpu` holds what the two GPU backends share.

pub mod autograd;
pub mod backend;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod eager;
pub mod fused;
pub mod gpu;
pub mod metal;

/// A kernel's output tensors, in order: a list on the stack for the usual one or two.
pub type Outputs = smallvec::SmallVec<[candle_core::Tensor; 2]>;

/// A kernel's outputs as bare storages (contiguous, from offset 0) with their shapes, in order:
/// what a custom op's forward hands Candle without a copy (see `autograd`).
pub type Storages = smallvec::SmallVec<[(candle_core::Storage, Vec<usize>); 2]>;

/// Where a backend puts a kernel's outputs, in order, as it makes them: tensors for the plan
/// ([`Outputs`]), or bare storages ([`Storages`]).
pub trait Sink {
    /// Takes the next output: `storage`, contiguous from offset 0, of `shape`.
    fn put(&mut self, storage: candle_core::Storage, shape: Vec<usize>);
}

impl Sink for Outputs {
    #[inline]
    fn put(&mut self, storage: candle_core::Storage, shape: Vec<usize>) {
        let none = candle_core::op::BackpropOp::none();
        self.push(candle_core::Tensor::from_storage(storage, shape, none, false));
    }
}

impl Sink for Storages {
    #[inline]
    fn put(&mut self, storage: candle_core::Storage, shape: Vec<usize>) {
        self.push((storage, shape));
    }
}

/// One argument of a kernel launch: a tensor, borrowed from the caller or from the plan's values
/// (no reference count changes hands), or an f64 scalar.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Tensor(&'a candle_core::Tensor),
    Scalar(f64),
}

impl<'a> Arg<'a> {
    /// The argument a one-kernel graph's kernel reads from `source` (see `Graph::single`):
    /// tensor `i` is `tensor(i)`, scalar `i` is `scalars[i]`.
    #[inline]
    pub(crate) fn of_source(
        source: graph_ir::Source,
        tensor: impl FnOnce(usize) -> &'a candle_core::Tensor,
        scalars: &[f64],
    ) -> Arg<'a> {
        match source {
            graph_ir::Source::Tensor(i) => Arg::Tensor(tensor(i as usize)),
            graph_ir::Source::Scalar(i) => Arg::Scalar(scalars[i as usize]),
            graph_ir::Source::Const(v) => Arg::Scalar(v.value()),
        }
    }
}

impl eager::Value {
    /// The value as a launch argument.
    pub(crate) fn arg(&self) -> Arg<'_> {
        match self {
            eager::Value::Tensor(t) => Arg::Tensor(t),
            eager::Value::Scalar(s) => Arg::Scalar(*s),
        }
    }
}
