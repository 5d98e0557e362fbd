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

use graph_ir::gpu::metal::{input_buffer, output_buffer};
use graph_ir::{Access, ArgLayout};

use crate::emit::clike::{self, Dialect};
use crate::ir::Graph;
use crate::kernel::KernelIr;

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
fn params(k: &KernelIr, _: &ArgLayout) -> Vec<String> {
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
    params.push("uint lg_tid [[thread_position_in_threadgroup]]".to_string());
    params.push("uint lg_tg [[threadgroup_position_in_grid]]".to_string());
    params.push("uint lg_tgs [[threadgroups_per_grid]]".to_string());
    params
}

/// The Metal Shading Language source of kernel `k`.
pub fn source(graph: &Graph, k: &KernelIr) -> String {
    clike::source(&METAL, graph, k)
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

    /// The MSL source of every kernel of the single function in `src`.
    fn msl(src: &str) -> String {
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
        insta::assert_snapshot!(msl(
            "fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
                x * rsqrt(mean(x * x, -1) + eps) * w
            }"
        ));
    }

    #[test]
    fn softmax() {
        insta::assert_snapshot!(msl(
            "fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }"
        ));
    }

    #[test]
    fn add_rms_norm_two_outputs() {
        insta::assert_snapshot!(msl(
            "fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
                let h = x + r;
                (h, h * rsqrt(mean(h * h, -1) + eps) * w)
            }"
        ));
    }

    #[test]
    fn gelu_pointwise() {
        insta::assert_snapshot!(msl("fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }"));
    }

    #[test]
    fn rope_remaps_columns() {
        insta::assert_snapshot!(msl(
            "fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
                let x1 = narrow(x, -1, 0, D / 2);
                let x2 = narrow(x, -1, D / 2, D / 2);
                x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
            }"
        ));
    }

    #[test]
    fn logsumexp_writes_a_row_scalar() {
        insta::assert_snapshot!(msl(
            "fn lse(x: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) }"
        ));
    }
}
