//! Gradients through fused calls: each output of a call whose inputs track gradients is tied to
//! those inputs by a Candle custom op whose backward runs the function's backward graph
//! (`name::BACKWARD`, derived by the macro), fused like the forward.
//!
//! Candle's custom ops have one output and at most three tensor arguments. So each output gets
//! its own op, over the tracked inputs it depends on; its backward runs the backward graph with
//! that output's cotangent and zeros for the others, computing only the gradients of those
//! inputs, and Candle's autograd adds up what the outputs send to each input. An output that
//! depends on more than three tracked inputs gets a chain of ops: the first over three of them,
//! each next one over the previous op's result and two more, passing its cotangent back to the
//! previous op unchanged. Each op of a chain runs the backward graph for its own inputs.
//!
//! Candle takes a custom op's result as a storage, by value, and gives no way to move one out
//! of a tensor. So a one-kernel graph (most example graphs) runs its kernel into bare storages,
//! and each op's forward hands Candle its output's storage as the kernel wrote it. Other graphs
//! run their plan, and the op's forward hands Candle a copy of the output tensor's storage.
//! Either way an op early in a chain hands Candle a copy: its result only carries the chain's
//! gradient on, and the output the caller gets is the last op's.

use std::sync::Arc;

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::op::BackpropOp;
use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, CustomOp2, CustomOp3, Layout, MetalStorage, Shape, Storage, Tensor,
};
use graph_ir::{Graph, Step};
use smallvec::SmallVec;

use crate::bind::Bound;
use crate::error::{Context, Result};
use crate::exec::{backend, fused, Arg, Outputs, Storages};

/// Candle's limit on a custom op's tensor arguments.
const MAX_TRACKED: usize = 3;

thread_local! {
    /// How many outputs this thread has tied to their inputs, for tests.
    static TIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many outputs of fused calls this thread has tied to tracked inputs (each gets its
/// gradient from the backward graph): tests tell the fused backward from the eager one by it.
pub fn tied_outputs() -> usize {
    TIED.get()
}

/// Runs `graph` fused with gradients through `backward` when some of `tensors` track them;
/// otherwise `false`, with nothing run.
pub fn run(
    graph: &'static Graph,
    backward: &'static Graph,
    bound: &Bound,
    tensors: &[&Tensor],
    scalars: &[f64],
    out: &mut Outputs,
) -> Result<bool> {
    if !tensors.iter().any(|t| t.track_op()) {
        return Ok(false);
    }
    // The macro lists, per output, the inputs a gradient can reach (`Graph::reached`).
    let tracked: Vec<SmallVec<[usize; MAX_TRACKED]>> = (graph.reached().iter())
        .map(|inputs| {
            (inputs.iter().map(|&i| i as usize))
                .filter(|&i| tensors[i].track_op())
                .collect()
        })
        .collect();
    let detached: Arc<[Tensor]> = tensors.iter().map(|t| t.detach()).collect();
    let values = forward(graph, bound, &detached, scalars)?;
    let outputs: Arc<[(Shape, candle_core::DType)]> = values.iter().map(Held::shape_and_dtype).collect();
    let scalars: Arc<[f64]> = scalars.into();
    for (output, (value, inputs)) in values.into_iter().zip(tracked).enumerate() {
        if inputs.is_empty() {
            out.push(value.into_tensor());
            continue;
        }
        let value = Arc::new(Mutex::new(Some(value)));
        // The first op takes up to three inputs; each next one the previous op's result and up
        // to two more.
        let mut tied: Option<Tensor> = None;
        let parts: SmallVec<[&[usize]; 4]> = std::iter::once(&inputs[..inputs.len().min(MAX_TRACKED)])
            .chain(
                inputs
                    .get(MAX_TRACKED..)
                    .unwrap_or_default()
                    .chunks(MAX_TRACKED - 1),
            )
            .collect();
        for (n, part) in parts.iter().enumerate() {
            let link = Link {
                backward,
                inputs: detached.clone(),
                scalars: scalars.clone(),
                outputs: outputs.clone(),
                output,
                chained: tied.is_some(),
                tracked: part.iter().copied().collect(),
                value: value.clone(),
                last: n + 1 == parts.len(),
            };
            let previous = tied.take();
            let args: SmallVec<[&Tensor; MAX_TRACKED]> =
                previous.iter().chain(part.iter().map(|&i| tensors[i])).collect();
            let next = match args.as_slice() {
                [a] => a.apply_op1_arc(Arc::new(Box::new(link))),
                [a, b] => a.apply_op2_arc(b, Arc::new(Box::new(link))),
                [a, b, c] => a.apply_op3_arc(b, c, Arc::new(Box::new(link))),
                _ => unreachable!("an op takes one to three arguments"),
            };
            tied = Some(next.within(graph.name())?);
        }
        out.push(tied.expect("an output with tracked inputs has an op"));
        TIED.set(TIED.get() + 1);
    }
    Ok(true)
}

/// Runs `graph` on the detached arguments: a one-kernel graph's kernel into bare storages where
/// its device has generated code for it, else the plan.
fn forward(
    graph: &'static Graph,
    bound: &Bound,
    tensors: &[Tensor],
    scalars: &[f64],
) -> Result<SmallVec<[Held; 2]>> {
    if let (Some(sources), [Step::Kernel(k)]) = (graph.single(), graph.plan()) {
        let args: SmallVec<[Arg; 8]> = (sources.iter())
            .map(|s| Arg::of_source(*s, |i| &tensors[i], scalars))
            .collect();
        let mut storages = Storages::new();
        if backend::of(&bound.device).launch(graph, k, bound, &args, &mut storages)? {
            let shaped = storages
                .into_iter()
                .map(|(s, shape)| Held::Storage(s, Shape::from(shape)));
            return Ok(shaped.collect());
        }
    }
    let views: SmallVec<[&Tensor; 8]> = tensors.iter().collect();
    let mut values = Outputs::new();
    fused::run(graph, bound, &views, scalars, None, &mut values)?;
    Ok(values.into_iter().map(Held::Tensor).collect())
}

/// An output of a call until the op that returns it hands it to Candle.
enum Held {
    /// As the kernel wrote it: contiguous from offset 0.
    Storage(Storage, Shape),
    /// As the plan computed it, possibly a library step's view.
    Tensor(Tensor),
}

impl Held {
    fn shape_and_dtype(&self) -> (Shape, candle_core::DType) {
        match self {
            Held::Storage(s, shape) => (shape.clone(), s.dtype()),
            Held::Tensor(t) => (t.shape().clone(), t.dtype()),
        }
    }

    /// The output as a tensor without a backward (no input it depends on tracks gradients).
    fn into_tensor(self) -> Tensor {
        match self {
            Held::Storage(s, shape) => Tensor::from_storage(s, shape, BackpropOp::none(), false),
            Held::Tensor(t) => t,
        }
    }
}

/// The custom op tying one output of a fused call to the tracked inputs it depends on.
struct Link {
    /// The function's backward graph.
    backward: &'static Graph,
    /// Every tensor argument of the call, detached (they share the caller's storage).
    inputs: Arc<[Tensor]>,
    scalars: Arc<[f64]>,
    /// The shape and dtype of each output of the call, for the zero cotangents.
    outputs: Arc<[(Shape, candle_core::DType)]>,
    /// Which output this op produces.
    output: usize,
    /// Whether the op's first argument is the previous op of a chain (whose gradient is this
    /// op's cotangent, passed on), before the tracked inputs.
    chained: bool,
    /// The op's tracked arguments, by index among the tensor arguments.
    tracked: SmallVec<[usize; MAX_TRACKED]>,
    /// The output, as the fused call computed it, shared by the ops of a chain until the last
    /// one's forward hands it to Candle (the op lives as long as its output, and need not hold
    /// it twice).
    value: Arc<Mutex<Option<Held>>>,
    /// Whether this op is the last of its chain: the one whose result the caller gets.
    last: bool,
}

impl Link {
    fn name(&self) -> &'static str {
        self.backward.name()
    }

    /// The computed output's storage, `pick`ed from its device's variant (by reference or by
    /// value): the kernel's own for the last op of a chain when the kernel wrote bare storages,
    /// else a copy.
    fn output<S: BackendStorage>(
        &self,
        pick: impl Fn(&Storage) -> Option<&S>,
        take: impl FnOnce(Storage) -> Option<S>,
    ) -> candle_core::Result<(S, Shape)> {
        let elsewhere =
            || candle_core::Error::Msg(format!("{}: the output is on another device", self.name()));
        let mut slot =
            (self.value.lock()).map_err(|_| candle_core::Error::Msg(format!("{}: poisoned", self.name())))?;
        let Some(value) = slot.take() else {
            let msg = format!("{}: the op's forward ran twice", self.name());
            return Err(candle_core::Error::Msg(msg));
        };
        match value {
            Held::Storage(s, shape) if self.last => Ok((take(s).ok_or_else(elsewhere)?, shape)),
            Held::Storage(s, shape) => {
                let copy = pick(&s)
                    .ok_or_else(elsewhere)?
                    .try_clone(&Layout::contiguous(&shape))?;
                *slot = Some(Held::Storage(s, shape.clone()));
                Ok((copy, shape))
            }
            Held::Tensor(value) => {
                // A kernel's output owns its buffer, from offset 0. Anything else (a library
                // step's view: a transpose, a broadcast, a narrow) is written out into a buffer of
                // its own, since Candle takes the op's result as a contiguous storage of its shape.
                let owned = value.layout().is_contiguous() && value.layout().start_offset() == 0;
                let value = match owned {
                    true => value,
                    false => value.force_contiguous()?,
                };
                let copy = {
                    let (storage, layout) = value.storage_and_layout();
                    let s = pick(&storage).ok_or_else(elsewhere)?;
                    (s.try_clone(layout)?, layout.shape().clone())
                };
                if !self.last {
                    *slot = Some(Held::Tensor(value));
                }
                Ok(copy)
            }
        }
    }

    /// The gradients of the op's arguments, in order, from `grad` (the cotangent of its output).
    fn grads<const N: usize>(&self, grad: &Tensor) -> candle_core::Result<[Option<Tensor>; N]> {
        let mut tensors: SmallVec<[Tensor; 8]> = self.inputs.iter().cloned().collect();
        for (k, (shape, dtype)) in self.outputs.iter().enumerate() {
            tensors.push(match k == self.output {
                true => grad.detach(),
                false => Tensor::zeros(shape, *dtype, grad.device())?,
            });
        }
        let refs: SmallVec<[&Tensor; 8]> = tensors.iter().collect();
        // Only the tracked arguments' gradients: a frozen weight's (a matmul's) is not computed.
        let needed: SmallVec<[bool; 8]> = (0..self.inputs.len())
            .map(|i| self.tracked.contains(&i))
            .collect();
        let mut grads = Outputs::new();
        crate::run_needed(self.backward, &refs, &self.scalars, Some(&needed), &mut grads)?;
        let first = usize::from(self.chained);
        debug_assert_eq!(
            first + self.tracked.len(),
            N,
            "one gradient per argument of the op"
        );
        Ok(std::array::from_fn(|k| match k.checked_sub(first) {
            None => Some(grad.clone()),
            Some(k) => self.tracked.get(k).map(|&i| grads[i].clone()),
        }))
    }
}

impl CustomOp1 for Link {
    fn name(&self) -> &'static str {
        Link::name(self)
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.output(cpu, into_cpu)
    }

    fn cuda_fwd(&self, _: &CudaStorage, _: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        self.output(cuda, into_cuda)
    }

    fn metal_fwd(&self, _: &MetalStorage, _: &Layout) -> candle_core::Result<(MetalStorage, Shape)> {
        self.output(metal, into_metal)
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let [a] = self.grads(grad)?;
        Ok(a)
    }
}

impl CustomOp2 for Link {
    fn name(&self) -> &'static str {
        Link::name(self)
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.output(cpu, into_cpu)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.output(cuda, into_cuda)
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
    ) -> candle_core::Result<(MetalStorage, Shape)> {
        self.output(metal, into_metal)
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let [a, b] = self.grads(grad)?;
        Ok((a, b))
    }
}

impl CustomOp3 for Link {
    fn name(&self) -> &'static str {
        Link::name(self)
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.output(cpu, into_cpu)
    }

    fn cuda_fwd(
        &self,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
        _: &CudaStorage,
        _: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        self.output(cuda, into_cuda)
    }

    fn metal_fwd(
        &self,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
        _: &MetalStorage,
        _: &Layout,
    ) -> candle_core::Result<(MetalStorage, Shape)> {
        self.output(metal, into_metal)
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [a, b, c] = self.grads(grad)?;
        Ok((a, b, c))
    }
}

fn cpu(s: &Storage) -> Option<&CpuStorage> {
    match s {
        Storage::Cpu(s) => Some(s),
        _ => None,
    }
}

fn cuda(s: &Storage) -> Option<&CudaStorage> {
    match s {
        Storage::Cuda(s) => Some(s),
        _ => None,
    }
}

fn metal(s: &Storage) -> Option<&MetalStorage> {
    match s {
        Storage::Metal(s) => Some(s),
        _ => None,
    }
}

fn into_cpu(s: Storage) -> Option<CpuStorage> {
    match s {
        Storage::Cpu(s) => Some(s),
        _ => None,
    }
}

fn into_cuda(s: Storage) -> Option<CudaStorage> {
    match s {
        Storage::Cuda(s) => Some(s),
        _ => None,
    }
}

fn into_metal(s: Storage) -> Option<MetalStorage> {
    match s {
        Storage::Metal(s) => Some(s),
        _ => None,
    }
}
