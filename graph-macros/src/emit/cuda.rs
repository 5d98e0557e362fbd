//! The CUDA dialect of the C family (`clike/`): one `extern "C" __global__` function per kernel,
//! as CUDA C++ text that the runtime compiles with NVRTC for the device, after its prelude
//! (`graph-runtime/src/exec/cuda/prelude.cuh`, which says what each `lg_`/`LG_` name means).
//!
//! A kernel takes its argument words, tensor pointers included, as one struct by value; thread
//! indices are the built-in `threadIdx`, `blockIdx` and `gridDim`; reductions need no scratch a
//! kernel declares (the prelude's `lg_reduce_*` own their shared memory).

use crate::emit::clike::{self, Dialect};
use crate::ir::Graph;
use crate::kernel::Kernel;

const CUDA: Dialect = Dialect {
    kernel: |bounds| format!("extern \"C\" __global__ void __launch_bounds__({bounds})"),
    params: |_, l| vec![format!("const LgArgs<{}> a", l.words())],
    words: "a.w",
    pointers_in_words: true,
    thread: "threadIdx.x",
    block: "blockIdx.x",
    blocks: "gridDim.x",
    long: "long long",
    ulong: "unsigned long long",
    uint: "unsigned int",
    in_ptr: "const T* __restrict__",
    out_ptr: "T* __restrict__",
    reduce_scratch: None,
    reduce: |op, acc| format!("lg_reduce_{op}<LG_GROUP, LG_RPB>({acc})"),
};

/// The CUDA source of kernel `k`.
pub fn source(graph: &Graph, k: &Kernel) -> String {
    clike::source(&CUDA, graph, k)
}

#[cfg(test)]
mod tests {
    crate::emit::clike::snapshots::dialect_snapshots!(cuda, super::source);
}
