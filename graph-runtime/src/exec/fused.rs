//! The fused executor: runs a graph's plan step by step. Kernels run as generated code on their
//! device; library steps (matmul, layout) run through Candle.
//!
//! Values stay in their storage dtype between steps. A kernel whose inputs or outputs are not
//! all in the graph's dtype (a `cast` crossing a kernel boundary), whose device has no
//! generated code, or with an empty output (CUDA launches nothing for those), runs its nodes
//! through the eager executor instead, with the same results. So does a kernel with an input that
//! tracks gradients: Candle's autograd then sees each node as the Candle op it runs, and
//! `backward` reaches the inputs (generated kernels cut the graph: their outputs carry no op).

use candle_core::{Device, Tensor};
use graph_ir::{Graph, Kernel, Op, OpClass, Source, Step};
use smallvec::SmallVec;

use crate::bind::Bound;
use crate::error::{Context, Result};
use crate::exec::eager::{cast, compute_dtype, Eager, Value};
use crate::exec::{backend, Arg, Outputs};
use crate::profile::{Clock, Phase};

/// Runs `graph`'s plan; pushes its outputs, in order, to `out` (empty on entry).
///
/// With `needed`, only the steps the outputs marked `true` depend on run (a backward whose
/// frozen weights need no gradient skips their matmuls); each other output is a stand-in, the
/// first tensor argument, which the caller must not read.
#[inline]
pub fn run(
    graph: &'static Graph,
    bound: &Bound,
    tensors: &[&Tensor],
    scalars: &[f64],
    needed: Option<&[bool]>,
    out: &mut Outputs,
) -> Result<()> {
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
    let single = graph.single().filter(|_| !tensors.iter().any(|t| t.track_op()));
    if let (Some(sources), [Step::Kernel(k)]) = (single, graph.plan()) {
        if run_single(graph, k, sources, &compute, &mut clock, out)? {
            return Ok(());
        }
    }
    // One slot per node, on the stack for graphs of ordinary size.
    let mut values = Values::new();
    values.resize(graph.nodes().len(), None);
    // Inputs as given, and the host's scalar arithmetic.
    for (i, node) in graph.nodes().iter().enumerate() {
        if let Op::Input(p) = node.op {
            values[i] = Some(Value::Tensor(tensors[compute.slot(p, true)].clone()));
        } else if node.scalar {
            let v = compute.node(i, &args_of(graph, i, &values))?;
            values[i] = Some(v);
        }
    }
    let live = needed.map(|n| live_steps(graph, n));
    for (s, step) in graph.plan().iter().enumerate() {
        if live.as_ref().is_some_and(|l| !l[s]) {
            continue;
        }
        match step {
            Step::Library(n) => {
                let n = *n as usize;
                let v = match graph.nodes()[n].op.class() {
                    // Data movement stays in the storage dtype; so does matmul on GPUs, whose
                    // libraries accumulate halves in f32. Candle's CPU matmul accumulates halves
                    // in the half type (1.7e-2 relative error at K = 15614 in f16), so on the CPU
                    // it computes in f32 like the kernels.
                    // In the node's own dtype: a `cat`'s parts may differ (`cat([cast(x, f16),
                    // y], 0)` is stored as f16) and Candle concatenates one dtype only.
                    OpClass::Layout => {
                        let args = converted(&storage, graph, n, &values, |_| storage.storage(n))?;
                        storage.node(n, &args.iter().collect::<Vec<_>>())?
                    }
                    // Both sides in the product's dtype, as for `cat`: a side may be a cast.
                    OpClass::Matmul if !matches!(bound.device, Device::Cpu) => {
                        let args = converted(&storage, graph, n, &values, |_| storage.storage(n))?;
                        storage.node(n, &args.iter().collect::<Vec<_>>())?
                    }
                    // Matmul on the CPU, in the compute dtype (reductions are all kernels).
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
    for (k, &o) in graph.outputs().iter().enumerate() {
        match needed.is_some_and(|n| !n[k]) {
            true => out.push(tensors[0].clone()),
            false => out.push(storage.output(o as usize, &values)?),
        }
    }
    clock.lap(Phase::Plan);
    Ok(())
}

/// Which steps of `graph`'s plan the outputs marked in `needed` depend on.
fn live_steps(graph: &Graph, needed: &[bool]) -> SmallVec<[bool; 16]> {
    let mut wanted = vec![false; graph.nodes().len()];
    for (&o, _) in graph.outputs().iter().zip(needed).filter(|(_, n)| **n) {
        wanted[o as usize] = true;
    }
    let mut live: SmallVec<[bool; 16]> = smallvec::smallvec![false; graph.plan().len()];
    for (s, step) in graph.plan().iter().enumerate().rev() {
        let reads: &[u32] = match step {
            Step::Library(n) if wanted[*n as usize] => graph.nodes()[*n as usize].args,
            Step::Kernel(k) if k.outputs.iter().any(|o| wanted[*o as usize]) => k.inputs,
            _ => continue,
        };
        live[s] = true;
        for &a in reads {
            wanted[a as usize] = true;
        }
    }
    live
}

/// Runs the kernel of a one-kernel graph (see [`Graph::single`]) on the call's arguments,
/// borrowed as they are, pushing its outputs to `out`; `false` where its device has no generated
/// code for it (the caller then takes the general path).
fn run_single(
    graph: &'static Graph,
    k: &'static Kernel,
    sources: &[Source],
    cx: &Eager,
    clock: &mut Clock,
    out: &mut Outputs,
) -> Result<bool> {
    let mut args: SmallVec<[Arg; 8]> = SmallVec::new();
    for s in sources {
        args.push(Arg::of_source(*s, |i| cx.tensors[i], cx.scalars));
    }
    clock.lap(Phase::Plan);
    let launched = backend::of(&cx.bound.device).launch(graph, k, cx.bound, &args, out)?;
    clock.skip();
    Ok(launched)
}

/// Each node's value once computed.
type Values = SmallVec<[Option<Value>; 32]>;

fn args_of<'v>(graph: &Graph, i: usize, values: &'v [Option<Value>]) -> SmallVec<[&'v Value; 4]> {
    graph.nodes()[i]
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
    graph.nodes()[n]
        .args
        .iter()
        .map(
            |&a| match values[a as usize].as_ref().expect("arguments come first") {
                Value::Tensor(t) => cast(t, to(a as usize)).map(Value::Tensor).within(cx.graph.name()),
                s => Ok(s.clone()),
            },
        )
        .collect()
}

/// A computed value, converted to node `n`'s storage dtype.
fn stored(cx: &Eager, n: usize, v: Value) -> Result<Value> {
    match v {
        Value::Tensor(t) => cast(&t, cx.storage(n)).map(Value::Tensor).within(cx.graph.name()),
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
    // A tracked input (a `Var`, or computed from one) needs the kernel's backward: its nodes
    // run as Candle ops below, whose backward Candle's autograd knows.
    let inputs_uniform = k.inputs.iter().all(|&n| match values[n as usize].as_ref() {
        Some(Value::Tensor(t)) => t.dtype() == bound.dtype && !t.track_op(),
        _ => true,
    });
    let uniform = inputs_uniform
        && k.outputs
            .iter()
            .all(|&n| graph.nodes()[n as usize].dtype.is_none());
    if uniform {
        let args: SmallVec<[Arg; 8]> = k
            .inputs
            .iter()
            .map(|&n| {
                values[n as usize]
                    .as_ref()
                    .expect("kernel inputs come first")
                    .arg()
            })
            .collect();
        let mut outs = Outputs::new();
        let launched = backend::of(&bound.device).launch(graph, k, bound, &args, &mut outs)?;
        drop(args);
        if launched {
            for (&o, t) in k.outputs.iter().zip(outs) {
                values[o as usize] = Some(Value::Tensor(t));
            }
            return Ok(());
        }
    }
    // No generated code applies: the kernel's nodes, one by one, in the compute dtype.
    let mut local = Values::new();
    local.resize(graph.nodes().len(), None);
    for &n in k.inputs {
        let v = values[n as usize].clone().expect("kernel inputs come first");
        // An empty tensor is not Candle's to cast: see `cast`.
        local[n as usize] = Some(match v {
            Value::Tensor(t) => Value::Tensor(cast(&t, compute.compute).within(graph.name())?),
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
