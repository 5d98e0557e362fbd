//! The CUDA dialect of the C family (`clike/`): one `extern "C" __global__` function per kernel,
//! as CUDA C++ text that the runtime compiles with NVRTC for the device, after its prelude
//! (`graph-runtime/src/exec/cuda/prelude.cuh`, which says what each `lg_`/`LG_` name means).
//!
//! A kernel takes its argument words, tensor pointers included, as one struct by value; thread
//! indices are the built-in `threadIdx`, `blockIdx` and `gridDim`; reductions need no scratch a
//! kernel declares (the prelude's `lg_reduce_*` own their shared memory).

use crate::emit::clike::{self, Dialect};
use crate::ir::Graph;
use crate::kernel::KernelIr;

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
pub fn source(graph: &Graph, k: &KernelIr) -> String {
    clike::source(&CUDA, graph, k)
}

#[cfg(test)]
mod tests {
    use super::source;
    use crate::check::check_function;
    use crate::diag::Errors;
    use crate::kernel::schedule;
    use crate::passes::optimise;
    use crate::plan::{plan, Step};
    use crate::syntax::Module;

    /// The CUDA source of every kernel of the single function in `src`.
    fn cuda(src: &str) -> String {
        let module: Module = syn::parse_str(src).expect("test source parses");
        let f = &module.functions[0];
        let mut errors = Errors::new();
        let graph = check_function(f, &mut errors);
        errors.propagate().expect("test source checks");
        let graph = optimise(graph);
        plan(&graph)
            .into_iter()
            .enumerate()
            .filter_map(|(i, step)| match step {
                Step::Kernel(k) => Some(source(&graph, &schedule(&graph, &k, format!("{}_k{i}", f.name)))),
                Step::Library(_) => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn rms_norm() {
        insta::assert_snapshot!(cuda(
            "fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
                x * rsqrt(mean(x * x, -1) + eps) * w
            }"
        ));
    }

    #[test]
    fn softmax() {
        insta::assert_snapshot!(cuda(
            "fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }"
        ));
    }

    #[test]
    fn add_rms_norm_two_outputs() {
        insta::assert_snapshot!(cuda(
            "fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
                let h = x + r;
                (h, h * rsqrt(mean(h * h, -1) + eps) * w)
            }"
        ));
    }

    #[test]
    fn gelu_pointwise() {
        insta::assert_snapshot!(cuda("fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }"));
    }

    #[test]
    fn rope_remaps_columns() {
        insta::assert_snapshot!(cuda(
            "fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
                let x1 = narrow(x, -1, 0, D / 2);
                let x2 = narrow(x, -1, D / 2, D / 2);
                x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
            }"
        ));
    }

    #[test]
    fn logsumexp_writes_a_row_scalar() {
        insta::assert_snapshot!(cuda(
            "fn lse(x: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) }"
        ));
    }
}
