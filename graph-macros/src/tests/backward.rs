//! The derived backward graphs: their shapes, a few derivations by hand, and when there is none.

use graph_ir::{BinaryOp, Op, ReduceOp};

use super::{assert_expands, expanded};
use crate::check::check_function;
use crate::diag::Errors;
use crate::differentiate::differentiate;
use crate::ir::{Graph, ParamKind, Ty};
use crate::passes::optimise;
use crate::plan::plan;
use crate::syntax::Module;

/// The optimised forward graph of the single function in `src`, and its optimised backward.
fn backward(src: &str) -> (Graph, Option<Graph>) {
    let module: Module = syn::parse_str(src).expect("test source parses");
    let mut errors = Errors::new();
    let graph = check_function(&module.functions[0], &mut errors);
    errors.propagate().expect("test source checks");
    let forward = optimise(graph);
    let backward = differentiate(&forward).map(optimise);
    (forward, backward)
}

/// Functions covering every op the backward handles.
const FUNCTIONS: &[&str] = &[
    "fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { let e = exp(x - max(x, -1)); e / sum(e, -1) }",
    "fn log_softmax(x: Tensor[B, S, D]) -> Tensor[B, S, D] { log_softmax(x, -1) }",
    "fn lse(x: Tensor[N, D]) -> Tensor[N, 1] { x.logsumexp(-1) }",
    "fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
         x * rsqrt(mean(x * x, -1) + eps) * w
     }",
    "fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
         (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
     }",
    "fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] { g.silu() * u }",
    "fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
         let x1 = narrow(x, -1, 0, D / 2);
         let x2 = narrow(x, -1, D / 2, D / 2);
         x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
     }",
    "fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
         x.matmul(w) + x.matmul(a).matmul(b) * scale
     }",
    "fn attention(q: Tensor[B, H, S, K], k: Tensor[B, H, T, K], mask: Tensor[S, T], scale: f32) -> Tensor[B, H, S, T] {
         softmax(where_(mask > 0.5, q.matmul(k.transpose(-2, -1)) * scale, -1e9), -1)
     }",
    "fn batched(a: Tensor[B, M, K], b: Tensor[K, N]) -> Tensor[B, M, N] { a.matmul(b) }",
    "fn layout(x: Tensor[N, D], v: Tensor[1, D]) -> (Tensor[D, N], Tensor[N * D], Tensor[2, N, D]) {
         (transpose(x, 0, 1), reshape(x, [N * D]), broadcast(v, [2, N, D]) * x)
     }",
    "fn casts(x: Tensor[N, D]) -> Tensor[N, D] { cast(cast(x, f16), f32) * x }",
    "fn steps(x: Tensor[N, D], y: Tensor[N, D]) -> (Tensor[N, D], Tensor[N, D]) {
         (floor(x) + x, where_(y > 0.0, x, -x))
     }",
    "fn columns(x: Tensor[N, D]) -> (Tensor[1, D], Tensor[N, D]) { let m = mean(x, 0); (m, x - m) }",
    "fn extremes(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[N, 1] { max(maximum(x, y), -1) + min(x, -1) }",
    "fn window(x: Tensor[N, 8]) -> Tensor[N, 3] { narrow(x, 1, 2, 3) }",
];

#[test]
fn every_gradient_has_its_parameters_shape() {
    for src in FUNCTIONS {
        let (forward, backward) = backward(src);
        let backward = backward.unwrap_or_else(|| panic!("no backward for {src}"));
        let tensors: Vec<&Vec<graph_ir::Dim>> = (forward.params.iter())
            .filter_map(|p| match &p.kind {
                ParamKind::Tensor(s) => Some(s),
                ParamKind::Scalar(_) => None,
            })
            .collect();
        assert_eq!(backward.outputs.len(), tensors.len(), "{src}");
        for (o, shape) in backward.outputs.iter().zip(tensors) {
            assert_eq!(
                backward.node(*o).ty,
                Ty::Tensor(shape.clone()),
                "{src}\n{}",
                backward.to_text()
            );
        }
        // Cotangents follow the parameters, one per output.
        let extra = backward.params.len() - forward.params.len();
        assert_eq!(extra, forward.outputs.len(), "{src}");
        // It plans as any forward does.
        plan(&backward, "f_backward");
    }
}

#[test]
fn a_broadcast_weight_gets_the_sum_over_rows() {
    let (_, b) = backward("fn f(x: Tensor[N, D], w: Tensor[D]) -> Tensor[N, D] { x * w }");
    let b = b.expect("differentiable");
    let text = b.to_text();
    let [dx, dw] = b.outputs[..] else { panic!("{text}") };
    // dx = dy * w
    let dx = b.node(dx);
    assert_eq!(dx.op, Op::Binary(BinaryOp::Mul), "{text}");
    // dw = reshape(sum(x * dy, axis 0)) (the rule's `dy * a`, for b)
    let dw = b.node(dw);
    assert_eq!(dw.op, Op::Reshape, "{text}");
    let sum = b.node(dw.args[0]);
    assert_eq!(sum.op, Op::Reduce(ReduceOp::Sum, 0), "{text}");
    let product = b.node(sum.args[0]);
    assert_eq!(product.op, Op::Binary(BinaryOp::Mul), "{text}");
    let mut leaves: Vec<Op> = product.args.iter().map(|a| b.node(*a).op).collect();
    leaves.sort_by_key(|op| format!("{op:?}"));
    assert_eq!(leaves, [Op::Input(0), Op::Input(2)], "{text}");
    assert_eq!(b.params[2].name, "dy");
}

#[test]
fn a_sum_sends_its_cotangent_back_broadcast() {
    let (_, b) = backward("fn f(x: Tensor[N, D]) -> Tensor[N, 1] { sum(x, -1) }");
    let b = b.expect("differentiable");
    let text = b.to_text();
    let dx = b.node(b.outputs[0]);
    assert_eq!(dx.op, Op::Broadcast, "{text}");
    assert_eq!(b.node(dx.args[0]).op, Op::Input(1), "{text}");
}

#[test]
fn a_narrow_is_padded_back_with_zeros() {
    let (_, b) = backward("fn f(x: Tensor[N, 8]) -> Tensor[N, 3] { narrow(x, 1, 2, 3) }");
    let b = b.expect("differentiable");
    let text = b.to_text();
    let dx = b.node(b.outputs[0]);
    assert_eq!(dx.op, Op::Cat(1), "{text}");
    let parts: Vec<Op> = dx.args.iter().map(|a| b.node(*a).op).collect();
    assert_eq!(parts, [Op::Broadcast, Op::Input(1), Op::Broadcast], "{text}");
    let widths: Vec<_> = dx
        .args
        .iter()
        .map(|a| b.node(*a).ty.shape().unwrap()[1].as_lit())
        .collect();
    assert_eq!(widths, [Some(2), Some(3), Some(3)], "{text}");
}

#[test]
fn unreached_and_non_differentiable_parameters_get_zeros() {
    // `y` only reaches a comparison; the second output is a comparison of `x`.
    let (_, b) = backward(
        "fn f(x: Tensor[N], y: Tensor[N]) -> (Tensor[N], Tensor[N]) { (where_(y > 0.0, x, 1.0), x < 2.0) }",
    );
    let b = b.expect("differentiable");
    let text = b.to_text();
    let dy = b.node(b.outputs[1]);
    assert_eq!(dy.op, Op::Broadcast, "{text}");
    assert_eq!(
        b.constant(dy.args[0]).map(f64::to_bits),
        Some(0.0f64.to_bits()),
        "{text}"
    );
    let dx = b.node(b.outputs[0]);
    assert_eq!(dx.op, Op::Where, "{text}");
    assert_eq!(
        [b.params[2].name.as_str(), b.params[3].name.as_str()],
        ["d0", "d1"]
    );
}

#[test]
fn a_step_function_passes_exact_zeros() {
    let (_, b) = backward("fn f(x: Tensor[N]) -> Tensor[N] { floor(x) }");
    let b = b.expect("differentiable");
    let dx = b.node(b.outputs[0]);
    assert_eq!(dx.op, Op::Broadcast, "{}", b.to_text());
    assert_eq!(b.constant(dx.args[0]), Some(0.0), "{}", b.to_text());
}

#[test]
fn a_cotangent_name_avoids_the_parameters() {
    let (_, b) = backward("fn f(dy: Tensor[N]) -> Tensor[N] { exp(dy) }");
    assert_eq!(b.expect("differentiable").params[1].name, "dy_");
}

#[test]
fn functions_without_a_backward_still_expand() {
    // The window leaves `D - 4` after it, which no dim can spell.
    let src = "fn f(x: Tensor[N, D]) -> Tensor[N, 4] { narrow(x, 1, 0, 4) }";
    assert!(backward(src).1.is_none());
    let out = assert_expands(src);
    assert!(!out.contains("static BACKWARD"), "{out}");
    let out = expanded("fn g(x: Tensor[N, D]) -> Tensor[N, D] { exp(x) }");
    assert!(out.contains("static BACKWARD"), "{out}");
}

/// The gradient through a column variance: `sum(.., axis 0)` of a value computed in the same
/// row group as what the variance's argument needs, a cycle between steps with no path between
/// nodes, which the planner once made (found by the random graphs).
#[test]
fn a_backward_through_column_reductions_plans() {
    let (_, b) = backward(
        "fn f(x: Tensor[2 * N, N], y: Tensor[N, N]) -> Tensor[N, N] {
             (x.var(0) / x.sigmoid()).narrow(-2, N, N) * y
         }",
    );
    plan(&b.expect("differentiable"), "f_backward");
}

/// Rotate-half RoPE's backward moves what it must and no more: `dx` is the one full-size value a
/// kernel writes, and the table gradients are one column kernel over halves of `dy` and `x`
/// (views, not values written out for it). Before narrows moved to the inputs, the products
/// `dy * cat([-x2, x1])` and `dy * x` were written at full size to be narrowed afterwards.
#[test]
fn rope_backward_writes_only_dx_at_full_size() {
    let src = FUNCTIONS
        .iter()
        .find(|f| f.starts_with("fn rope"))
        .expect("rope is listed");
    let (forward, b) = backward(src);
    let b = b.expect("differentiable");
    let full = |n: crate::ir::NodeId| b.node(n).ty.shape() == forward.node(forward.outputs[0]).ty.shape();
    let steps = plan(&b, "rope_backward");
    let mut written = Vec::new();
    let mut columns = 0;
    for step in &steps {
        if let crate::kernel::Step::Kernel(k) = step {
            written.extend(k.outputs.iter().copied().filter(|o| full(*o)));
            if let graph_ir::KernelKind::Column { .. } = k.kind {
                columns += 1;
                for (n, _) in &k.inputs {
                    let op = b.node(*n).op;
                    assert!(
                        matches!(op, Op::Narrow(..) | Op::Input(_)),
                        "column kernel reads {op:?}\n{}",
                        b.to_text()
                    );
                }
            }
        }
    }
    assert_eq!(
        written,
        vec![b.outputs[0]],
        "full-size values written:\n{}",
        b.to_text()
    );
    assert_eq!(columns, 1, "one column kernel for both tables:\n{}", b.to_text());
}
