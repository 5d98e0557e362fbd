//! The snapshot tests of every C-family dialect: the same functions in each, every kernel's text
//! kept under the dialect's module in `emit/snapshots/`, so that a change to the shared emitter
//! shows up as a readable diff in each language.

use crate::check::check_function;
use crate::diag::Errors;
use crate::ir::Graph;
use crate::kernel::{Kernel, Step};
use crate::passes::optimise;
use crate::plan::plan;
use crate::syntax::Module;

/// Every kernel of the single function in `src`, as `source` writes it.
pub fn kernels(source: fn(&Graph, &Kernel) -> String, src: &str) -> String {
    let module: Module = syn::parse_str(src).expect("test source parses");
    let f = &module.functions[0];
    let mut errors = Errors::new();
    let graph = check_function(f, &mut errors);
    errors.propagate().expect("test source checks");
    let graph = optimise(graph);
    plan(&graph, &f.name.to_string())
        .into_iter()
        .filter_map(|step| match step {
            Step::Kernel(k) => Some(source(&graph, &k)),
            Step::Library(_) => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The snapshot tests of the dialect whose `source` function is `$source`, as tests of the
/// calling module (which names their snapshots); `$name` is the function the tests call, so that
/// each snapshot's expression says which language it holds.
macro_rules! dialect_snapshots {
    ($name:ident, $source:path) => {
        fn $name(src: &str) -> String {
            $crate::emit::clike::snapshots::kernels($source, src)
        }

        #[test]
        fn rms_norm() {
            insta::assert_snapshot!($name(
                "fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
                    x * rsqrt(mean(x * x, -1) + eps) * w
                }"
            ));
        }

        #[test]
        fn softmax() {
            insta::assert_snapshot!($name(
                "fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }"
            ));
        }

        #[test]
        fn add_rms_norm_two_outputs() {
            insta::assert_snapshot!($name(
                "fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
                    let h = x + r;
                    (h, h * rsqrt(mean(h * h, -1) + eps) * w)
                }"
            ));
        }

        #[test]
        fn gelu_pointwise() {
            insta::assert_snapshot!($name("fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }"));
        }

        #[test]
        fn rope_remaps_columns() {
            insta::assert_snapshot!($name(
                "fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
                    let x1 = narrow(x, -1, 0, D / 2);
                    let x2 = narrow(x, -1, D / 2, D / 2);
                    x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
                }"
            ));
        }

        #[test]
        fn logsumexp_writes_a_row_scalar() {
            insta::assert_snapshot!($name(
                "fn lse(x: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) }"
            ));
        }
    };
}

pub(crate) use dialect_snapshots;
