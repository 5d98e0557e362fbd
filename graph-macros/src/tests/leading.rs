//! The leading dims `..` and reductions over several axes: what they lower to, how they plan,
//! and the rules `check` enforces (the trybuild cases in `tests/ui/leading/` show the messages).

use graph_ir::{BinaryOp, Dim, KernelKind, Op, ReduceOp};

use super::{assert_expands, assert_rejected};
use crate::check::check_function;
use crate::diag::Errors;
use crate::ir::{Graph, ParamKind};
use crate::kernel::Step;
use crate::passes::optimise;
use crate::plan::plan;
use crate::syntax::Module;

/// The checked, optimised graph of the single function in `src`.
fn checked(src: &str) -> Graph {
    let module: Module = syn::parse_str(src).expect("test source parses");
    let mut errors = Errors::new();
    let graph = check_function(&module.functions[0], &mut errors);
    errors.propagate().expect("test source checks");
    optimise(graph)
}

/// The reductions of `g`, in node order, as (op, axis).
fn reductions(g: &Graph) -> Vec<(ReduceOp, u8)> {
    (g.nodes.iter())
        .filter_map(|n| match n.op {
            Op::Reduce(r, a) => Some((r, a)),
            _ => None,
        })
        .collect()
}

#[test]
fn leading_dims_are_one_symbol_first_in_each_shape() {
    let g = checked(
        "fn f(x: Tensor[.., D], r: Tensor[.., D], w: Tensor[D]) -> (Tensor[.., D], Tensor[.., 1]) {
             let h = x + r * w;
             (h, sum(h, -1))
         }",
    );
    let l = g.leading.expect("`..` is a symbol");
    assert_eq!(g.symbols[l as usize], "..");
    let lead = Dim::sym(l);
    let shapes: Vec<&[Dim]> = (g.params.iter())
        .map(|p| match &p.kind {
            ParamKind::Tensor(s) => s.as_slice(),
            ParamKind::Scalar(_) => &[],
        })
        .collect();
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[0][0], lead);
    assert_eq!(shapes[2].len(), 1, "w has no leading dims");
    for o in &g.outputs {
        assert_eq!(g.node(*o).ty.shape().expect("a tensor")[0], lead);
    }
    // Axis -1 of `[.., D]` is axis 1 of the graph's rank-2 value.
    assert_eq!(reductions(&g), [(ReduceOp::Sum, 1)]);
    assert!(checked("fn f(x: Tensor[N, D]) -> Tensor[N, D] { x }")
        .leading
        .is_none());
}

#[test]
fn leading_dims_plan_as_their_fixed_rank_twins() {
    let kinds = |src: &str| -> Vec<Option<KernelKind>> {
        (plan(&checked(src), "f").iter())
            .map(|s| match s {
                Step::Kernel(k) => Some(k.kind),
                Step::Library(_) => None,
            })
            .collect()
    };
    for (generic, fixed) in [
        (
            "fn f(x: Tensor[.., D], w: Tensor[D], eps: f32) -> Tensor[.., D] { x * rsqrt(mean(x * x, -1) + eps) * w }",
            "fn f(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] { x * rsqrt(mean(x * x, -1) + eps) * w }",
        ),
        (
            "fn f(x: Tensor[.., T, D], c: Tensor[T, D]) -> Tensor[.., T, D] {
                 x * c + cat([-x.narrow(-1, D / 2, D / 2), x.narrow(-1, 0, D / 2)], -1)
             }",
            "fn f(x: Tensor[N, T, D], c: Tensor[T, D]) -> Tensor[N, T, D] {
                 x * c + cat([-x.narrow(-1, D / 2, D / 2), x.narrow(-1, 0, D / 2)], -1)
             }",
        ),
        (
            "fn f(x: Tensor[.., S, D]) -> Tensor[.., 1, 1] { sum(x, [-2, -1]) }",
            "fn f(x: Tensor[N, S, D]) -> Tensor[N, 1, 1] { sum(x, [-2, -1]) }",
        ),
    ] {
        assert_eq!(kinds(generic), kinds(fixed), "{generic}");
    }
    assert_eq!(
        kinds("fn f(x: Tensor[.., D], w: Tensor[D], eps: f32) -> Tensor[.., D] { x * rsqrt(mean(x * x, -1) + eps) * w }"),
        [Some(KernelKind::Row)],
    );
}

#[test]
fn several_axes_are_one_reduction_of_a_merging_reshape() {
    // Consecutive axes: merged in place, reduced once, reshaped back.
    let g = checked("fn f(x: Tensor[A, B, C]) -> Tensor[1, 1, 1] { sum(x, [1, 0, 2]) }");
    assert_eq!(reductions(&g), [(ReduceOp::Sum, 0)], "{}", g.to_text());
    let out = g.node(g.outputs[0]);
    assert_eq!(out.op, Op::Reshape, "{}", g.to_text());
    let g = checked("fn f(x: Tensor[A, B, 4]) -> Tensor[A, 1, 1] { mean(x, [-2, -1]) }");
    assert_eq!(reductions(&g), [(ReduceOp::Mean, 1)], "{}", g.to_text());
    // Axes apart: the kept axis first, then the reduced ones merged.
    let g = checked("fn f(x: Tensor[A, B, C]) -> Tensor[1, B, 1] { max(x, [0, -1]) }");
    assert_eq!(reductions(&g), [(ReduceOp::Max, 1)], "{}", g.to_text());
    assert!(
        g.nodes.iter().any(|n| n.op == Op::Transpose(0, 1)),
        "{}",
        g.to_text()
    );
    // One axis in a list is that axis.
    let g = checked("fn f(x: Tensor[A, B]) -> Tensor[A, 1] { mean(x, [-1]) }");
    assert_eq!(reductions(&g), [(ReduceOp::Mean, 1)]);
}

#[test]
fn several_axes_whose_product_is_no_dim_reduce_one_at_a_time_last_first() {
    // Four symbols multiplied make a dim; five are more factors than a dim holds.
    let g = checked("fn f(x: Tensor[A, B, C, D, E]) -> Tensor[1, B, 1, 1, 1] { max(x, [0, 2, 3, 4]) }");
    assert_eq!(reductions(&g), [(ReduceOp::Max, 1)], "{}", g.to_text());
    let g = checked(
        "fn f(x: Tensor[A, B, C, D, E, 4]) -> Tensor[1, 1, 1, 1, 1, 1] { max(x, [0, 1, 2, 3, 4, 5]) }",
    );
    let want = [5, 4, 3, 2, 1, 0].map(|a| (ReduceOp::Max, a));
    assert_eq!(reductions(&g), want, "{}", g.to_text());
}

#[test]
fn a_mean_over_several_axes_divides_the_sum_by_the_sizes() {
    // Where the axes cannot be merged: the sum over each, divided by the product of the sizes.
    let g = checked(
        "fn f(x: Tensor[A, B, C, D, E, F, 4]) -> Tensor[A, 1, 1, 1, 1, 1, 1] { mean(x, [1, 2, 3, 4, 5, 6]) }",
    );
    let want = [6, 5, 4, 3, 2, 1].map(|a| (ReduceOp::Sum, a));
    assert_eq!(reductions(&g), want, "{}", g.to_text());
    let out = g.node(g.outputs[0]);
    assert_eq!(out.op, Op::Binary(BinaryOp::Div));
    let count = g.node(out.args[1]);
    assert_eq!(
        count.op,
        Op::Binary(BinaryOp::Mul),
        "the size product: {}",
        g.to_text()
    );
    // The leaves of the product.
    let mut factors = Vec::new();
    let mut todo = vec![out.args[1]];
    while let Some(n) = todo.pop() {
        match g.node(n).op {
            Op::Binary(BinaryOp::Mul) => todo.extend(&g.node(n).args),
            op => factors.push(op),
        }
    }
    assert!(factors.contains(&Op::Size(Dim::sym(1))), "B: {}", g.to_text());
    assert!(
        factors
            .iter()
            .any(|op| matches!(op, Op::Const(v) if v.value() == 4.0)),
        "the literal 4: {}",
        g.to_text()
    );
}

#[test]
fn leading_dims_rules() {
    // Accepted: negative axes among the named dims, a `1` against `..`, `..` kept by reshape and
    // broadcast, a projection, both sides of a matmul with `..`.
    assert_expands(
        "fn f(x: Tensor[.., S, D], o: Tensor[1, D], w: Tensor[D, E], k: Tensor[.., D, S]) -> (Tensor[.., S, E], Tensor[.., S, S], Tensor[.., S, 2, D / 2], Tensor[.., S, D]) {
             let y = softmax(x, [-2, -1]) + o;
             (y.matmul(w), y.matmul(k), reshape(y, [.., S, 2, D / 2]), broadcast(o, [.., S, D]) + x.transpose(-1, -2).transpose(-2, -1))
         }",
    );
    for (src, message) in [
        (
            "fn f(x: Tensor[B, .., D]) -> Tensor[B, D] { x }",
            "may only be the first dim",
        ),
        (
            "fn f(x: Tensor[.., ..]) -> Tensor[.., ..] { x }",
            "may only be the first dim",
        ),
        ("fn f(x: Tensor[N, D]) -> Tensor[.., D] { x }", "no parameter is"),
        (
            "fn f(x: Tensor[N, D]) -> Tensor[N, D] { reshape(x, [.., D]) }",
            "no parameter is",
        ),
        (
            "fn f(x: Tensor[.., D]) -> Tensor[.., D] { x - sum(x, 0) }",
            "count from the end",
        ),
        (
            "fn f(x: Tensor[.., D]) -> Tensor[.., D] { x - sum(x, -2) }",
            "reaches into its leading dims",
        ),
        (
            "fn f(x: Tensor[.., D]) -> Tensor[.., D] { x.narrow(0, 0, 1) }",
            "count from the end",
        ),
        (
            "fn f(x: Tensor[.., D]) -> Tensor[.., D] { cat([x, x], -2) }",
            "reaches into",
        ),
        (
            "fn f(x: Tensor[.., D], m: Tensor[S, D]) -> Tensor[.., D] { x * m }",
            "would line up",
        ),
        (
            "fn f(x: Tensor[.., D], m: Tensor[2, 1, D]) -> Tensor[.., D] { x * m }",
            "would line up",
        ),
        (
            "fn f(x: Tensor[.., D], m: Tensor[.., S, D]) -> Tensor[.., D] { x * m }",
            "would line up",
        ),
        (
            "fn f(x: Tensor[.., K], w: Tensor[B, K, N]) -> Tensor[B, .., N] { x.matmul(w) }",
            "would line up",
        ),
        (
            "fn f(x: Tensor[.., M, K], w: Tensor[B, K, N]) -> Tensor[.., M, N] { x.matmul(w) }",
            "would line up",
        ),
        (
            "fn f(x: Tensor[.., D], _n: Tensor[N]) -> Tensor[N, D] { reshape(x, [N, D]) }",
            "start the shape with `..`",
        ),
        (
            "fn f(x: Tensor[.., D]) -> Tensor[D] { x }",
            "returns shape [.., D]",
        ),
    ] {
        assert_rejected(src, message);
    }
}

#[test]
fn several_axes_rules() {
    for (src, message) in [
        (
            "fn f(x: Tensor[N, D]) -> Tensor[1, 1] { sum(x, [0, -1, 1]) }",
            "axes -1 and 1 are both axis 1",
        ),
        (
            "fn f(x: Tensor[N, D]) -> Tensor[N, 1] { sum(x, [1, 1]) }",
            "axis 1 is listed twice",
        ),
        (
            "fn f(x: Tensor[N, D]) -> Tensor[N, D] { sum(x, []) }",
            "at least one axis",
        ),
        (
            "fn f(x: Tensor[N, D]) -> Tensor[1, 1] { sum(x, [0, 2]) }",
            "axis 2 is out of range",
        ),
        (
            "fn f(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[1, 1] { sum(x, [0, y]) }",
            "expected an axis",
        ),
        // Axes of other ops stay single.
        (
            "fn f(x: Tensor[N, D]) -> Tensor[D, N] { x.transpose([0], 1) }",
            "expected an axis",
        ),
    ] {
        assert_rejected(src, message);
    }
}
