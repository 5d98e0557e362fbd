//! The fused executor: runs a graph's plan step by step. Kernels run as generated code on their
//! device; library steps (matmul, layout, reductions over other axes) run through Candle.
//!
//! Values stay in their storage dtype between steps, except the results of library reductions,
//! which keep the compute dtype. A kernel whose inputs or outputs are not all in the graph's
//! dtype (such a reduction, or a `cast` crossing a kernel boundary), whose device has no
//! generated code, or with an empty output (CUDA launches nothing for those), runs its nodes
//! through the eager executor instead, with the same results.

use candle_core::{Device, Tensor};
use graph_ir::{Graph, Kernel, Op, OpClass, Step};
use smallvec::SmallVec;

use crate::bind::Bound;
use crate::error::{Context, Result};
use crate::exec::eager::{compute_dtype, Eager, Value};
use crate::exec::{cpu, Outputs};
use crate::profile::{Clock, Phase};

pub fn run(graph: &'static Graph, bound: &Bound, tensors: &[&Tensor], scalars: &[f64]) -> Result<Outputs> {
    let compute = Eager {
        graph,
        bound,
        tensors,
        scalars,
        compute: compute_dtype(bound.dtype),
    };
    let storage = Eager {
        compute: bound.dtype,
        ..compute
    };
    let mut clock = Clock::start();
    if let Some(k) = single_kernel(graph) {
        if let Some(outputs) = run_single(graph, k, &compute, &mut clock)? {
            return Ok(outputs);
        }
    }
    // One slot per node, on the stack for graphs of ordinary size.
    let mut values = Values::new();
    values.resize(graph.nodes.len(), None);
    // Inputs as given, and the host's scalar arithmetic.
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Op::Input(p) = node.op {
            values[i] = Some(Value::Tensor(tensors[compute.slot(p, true)].clone()));
        } else if node.scalar {
            let v = compute.node(i, &args_of(graph, i, &values))?;
            values[i] = Some(v);
        }
    }
    for step in graph.plan {
        match step {
            Step::Library(n) => {
                let n = *n as usize;
                let v = match graph.nodes[n].op.class() {
                    // Data movement stays in the storage dtype; so does matmul on GPUs, whose
                    // libraries accumulate halves in f32. Candle's CPU matmul accumulates halves
                    // in the half type (1.7e-2 relative error at K = 15614 in f16), so on the CPU
                    // it computes in f32 like the kernels.
                    OpClass::Layout => {
                        let args = converted(&storage, graph, n, &values, |a| storage.storage(a))?;
                        storage.node(n, &args.iter().collect::<Vec<_>>())?
                    }
                    OpClass::Matmul if !matches!(bound.device, Device::Cpu) => {
                        let args = converted(&storage, graph, n, &values, |a| storage.storage(a))?;
                        storage.node(n, &args.iter().collect::<Vec<_>>())?
                    }
                    // Other reductions keep the compute dtype: rounding a column mean to bf16
                    // before `x - mean` cancels would cost digits the eager path keeps. Kernels
                    // reading such a value run through the eager path below.
                    _ => {
                        let args = converted(&compute, graph, n, &values, |_| compute.compute)?;
                        compute.node(n, &args.iter().collect::<Vec<_>>())?
                    }
                };
                values[n] = Some(v);
            }
            Step::Kernel(k) => {
                clock.lap(Phase::Plan);
                run_kernel(graph, k, bound, &compute, &mut values)?;
                clock.skip();
            }
        }
    }
    let outputs = graph
        .outputs
        .iter()
        .map(|&o| storage.output(o as usize, &values))
        .collect();
    clock.lap(Phase::Plan);
    outputs
}

/// The kernel of a graph whose plan is that one kernel, reading parameters and constants only
/// and writing the graph's outputs in order, in the storage dtype: such a call (most of the
/// example graphs) needs no table of node values.
fn single_kernel(graph: &'static Graph) -> Option<&'static Kernel> {
    let [Step::Kernel(k)] = graph.plan else {
        return None;
    };
    let params_only = k.inputs.iter().all(|&n| {
        matches!(
            graph.nodes[n as usize].op,
            Op::Input(_) | Op::Scalar(_) | Op::Const(_)
        )
    });
    let outputs =
        k.outputs == graph.outputs && k.outputs.iter().all(|&o| graph.nodes[o as usize].dtype.is_none());
    (params_only && outputs).then_some(k)
}

/// Runs [`single_kernel`]'s kernel on the call's arguments; `None` where its device has no
/// generated code for it (the caller then takes the general path).
fn run_single(
    graph: &'static Graph,
    k: &'static Kernel,
    cx: &Eager,
    clock: &mut Clock,
) -> Result<Option<Outputs>> {
    let mut values: SmallVec<[Value; 8]> = SmallVec::new();
    for &n in k.inputs {
        values.push(match graph.nodes[n as usize].op {
            Op::Input(p) => Value::Tensor(cx.tensors[cx.slot(p, true)].clone()),
            _ => cx.node(n as usize, &[])?,
        });
    }
    let args: SmallVec<[&Value; 8]> = values.iter().collect();
    clock.lap(Phase::Plan);
    let outputs = launch(graph, k, cx.bound, &args)?;
    clock.skip();
    Ok(outputs)
}

/// Runs kernel `k` as generated code on the inputs' device, or `None` where none applies.
fn launch(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    args: &[&Value],
) -> Result<Option<Outputs>> {
    Ok(match &bound.device {
        Device::Cpu => Some(cpu::run(graph, k, bound, args)?),
        #[cfg(feature = "cuda")]
        Device::Cuda(device) => crate::exec::cuda::run(graph, k, bound, args, device)?,
        #[cfg(feature = "metal")]
        Device::Metal(device) => crate::exec::metal::run(graph, k, bound, args, device)?,
        _ => None,
    })
}

/// Each node's value once computed.
type Values = SmallVec<[Option<Value>; 32]>;

fn args_of<'v>(graph: &Graph, i: usize, values: &'v [Option<Value>]) -> SmallVec<[&'v Value; 4]> {
    graph.nodes[i]
        .args
        .iter()
        .map(|a| values[*a as usize].as_ref().expect("arguments come first"))
        .collect()
}

/// Node `n`'s arguments converted to the dtype `to(arg)` chooses.
fn converted(
    cx: &Eager,
    graph: &Graph,
    n: usize,
    values: &[Option<Value>],
    to: impl Fn(usize) -> candle_core::DType,
) -> Result<Vec<Value>> {
    graph.nodes[n]
        .args
        .iter()
        .map(
            |&a| match values[a as usize].as_ref().expect("arguments come first") {
                Value::Tensor(t) => t
                    .to_dtype(to(a as usize))
                    .map(Value::Tensor)
                    .within(cx.graph.name),
                s => Ok(s.clone()),
            },
        )
        .collect()
}

/// A computed value, converted to node `n`'s storage dtype.
fn stored(cx: &Eager, n: usize, v: Value) -> Result<Value> {
    match v {
        Value::Tensor(t) => t.to_dtype(cx.storage(n)).map(Value::Tensor).within(cx.graph.name),
        s => Ok(s),
    }
}

fn run_kernel(
    graph: &'static Graph,
    k: &'static Kernel,
    bound: &Bound,
    compute: &Eager,
    values: &mut [Option<Value>],
) -> Result<()> {
    let inputs_uniform = k.inputs.iter().all(|&n| match values[n as usize].as_ref() {
        Some(Value::Tensor(t)) => t.dtype() == bound.dtype,
        _ => true,
    });
    let uniform = inputs_uniform && k.outputs.iter().all(|&n| graph.nodes[n as usize].dtype.is_none());
    if uniform {
        let args: SmallVec<[&Value; 8]> = k
            .inputs
            .iter()
            .map(|&n| values[n as usize].as_ref().expect("kernel inputs come first"))
            .collect();
        let outs = launch(graph, k, bound, &args)?;
        drop(args);
        if let Some(outs) = outs {
            for (&o, t) in k.outputs.iter().zip(outs) {
                values[o as usize] = Some(Value::Tensor(t));
            }
            return Ok(());
        }
    }
    // No generated code applies: the kernel's nodes, one by one, in the compute dtype.
    let mut local = Values::new();
    local.resize(graph.nodes.len(), None);
    for &n in k.inputs {
        let v = values[n as usize].clone().expect("kernel inputs come first");
        local[n as usize] = Some(match v {
            Value::Tensor(t) => Value::Tensor(t.to_dtype(compute.compute).within(graph.name)?),
            s => s,
        });
    }
    for &n in k.nodes {
        let v = compute.node(n as usize, &args_of(graph, n as usize, &local))?;
        local[n as usize] = Some(v);
    }
    for &o in k.outputs {
        let v = local[o as usize].take().expect("outputs are computed");
        values[o as usize] = Some(stored(compute, o as usize, v)?);
    }
    Ok(())
}
