//! The Metal dialect of the C family (`clike/`): one `[[kernel]]` function per kernel, as Metal
//! Shading Language text that the runtime compiles through Candle's Metal device, after its
//! prelude (`graph-runtime/src/exec/metal/prelude.metal`).
//!
//! - Tensors arrive as buffers, so that Candle's encoder sees (and orders) every buffer a kernel
//!   reads or writes, at the indices of [`graph_ir::gpu::metal`] (`p{k}` and `q{k}`). Buffer 0
//!   holds the argument words of [`graph_ir::ArgLayout`] as `constant long*`, whose pointer words
//!   go unused.
//! - Thread and threadgroup indices are attributed parameters; 64-bit integers are `long`.
//! - Reductions past a simdgroup meet in `lg_part`, a threadgroup array that Metal lets only a
//!   kernel declare, handed to the prelude's `lg_reduce_*`.

use graph_ir::gpu::metal::{input_buffer, output_buffer, partials_buffer};
use graph_ir::{Access, ArgLayout, KernelKind};

use crate::emit::clike::{self, Dialect};
use crate::ir::Graph;
use crate::kernel::Kernel;

const METAL: Dialect = Dialect {
    kernel: |bounds| format!("[[kernel, max_total_threads_per_threadgroup({bounds})]] void"),
    params,
    words: "a",
    pointers_in_words: false,
    thread: "lg_tid",
    block: "lg_tg",
    blocks: "lg_tgs",
    long: "long",
    ulong: "ulong",
    uint: "uint",
    in_ptr: "device const T*",
    out_ptr: "device T*",
    reduce_scratch: Some("threadgroup C lg_part[32];"),
    reduce: |op, acc| format!("lg_reduce_{op}<LG_GROUP>({acc}, lg_part, lg_tid)"),
};

/// The argument words, a buffer per tensor, and the thread indices that CUDA has built in.
fn params(k: &Kernel, _: &ArgLayout) -> Vec<String> {
    let mut params = vec!["constant long* a [[buffer(0)]]".to_string()];
    for (i, (_, access)) in k.inputs.iter().enumerate() {
        if *access != Access::Scalar {
            params.push(format!("device const T* p{i} [[buffer({})]]", input_buffer(i)));
        }
    }
    for o in 0..k.outputs.len() {
        params.push(format!(
            "device T* q{o} [[buffer({})]]",
            output_buffer(k.inputs.len(), o)
        ));
    }
    if let KernelKind::Column { .. } = k.kind {
        for o in 0..k.outputs.len() {
            let b = partials_buffer(k.inputs.len(), k.outputs.len(), o);
            params.push(format!("device C* r{o} [[buffer({b})]]"));
        }
    }
    params.push("uint lg_tid [[thread_position_in_threadgroup]]".to_string());
    params.push("uint lg_tg [[threadgroup_position_in_grid]]".to_string());
    params.push("uint lg_tgs [[threadgroups_per_grid]]".to_string());
    params
}

/// The Metal Shading Language source of kernel `k`.
pub fn source(graph: &Graph, k: &Kernel) -> String {
    clike::source(&METAL, graph, k)
}

#[cfg(test)]
mod tests {
    crate::emit::clike::snapshots::dialect_snapshots!(msl, super::source);
}
