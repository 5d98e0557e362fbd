//! What the macro makes of a function: the optimised graph of small functions, one per pass, as
//! `GRAPH.nodes_to_text()` snapshots (`tests/snapshots/`). A change to lowering or to a pass shows
//! up here as a readable diff.
//!
//! The snapshots hold the node listing only; the plan part of `to_text()` belongs to the planner.

// The tests read the graphs; the functions themselves are run by the numeric tests.
#![allow(dead_code)]

use graph_runtime::lazy_graph;
use insta::assert_snapshot;

lazy_graph! {
    /// CSE: the two `exp(x)` are one node, added to itself.
    fn cse(x: Tensor[N, D]) -> Tensor[N, D] {
        exp(x) + exp(x)
    }

    /// Constant folding: `4.0 - 2.0` becomes the literal `2.0`.
    fn fold_constants(x: Tensor[N, D]) -> Tensor[N, D] {
        x / (4.0 - 2.0)
    }

    /// Folding then simplification: `2.0 * 0.5` folds to `1.0`, and `x * 1.0` is `x`.
    fn fold_then_simplify(x: Tensor[N, D]) -> Tensor[N, D] {
        exp(x * (2.0 * 0.5))
    }

    /// Simplification: `* 1.0`, `- 0.0` and the double negation all disappear.
    fn simplify(x: Tensor[N, D]) -> Tensor[N, D] {
        exp(--x * 1.0 - 0.0)
    }

    /// Kept on purpose: `x + 0.0` turns `-0.0` into `+0.0`, so it is not `x`.
    fn simplify_keeps_plus_zero(x: Tensor[N, D]) -> Tensor[N, D] {
        x + 0.0
    }

    /// Dead-node elimination: `unused` is computed by no output.
    fn eliminate_dead(x: Tensor[N, D]) -> Tensor[N, D] {
        let unused = sin(x) * 3.0;
        x * 2.0
    }

    /// The composite `softmax` lowers to max, sub, exp, sum, div.
    fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        softmax(x, -1)
    }

    /// `var` lowers to `mean((x - mean(x))^2)`; CSE shares its mean and difference with the
    /// numerator's `x - mean(x, -1)`.
    fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
    }
}

#[test]
fn cse_merges_repeated_exp() {
    assert_snapshot!(cse::GRAPH.nodes_to_text());
}

#[test]
fn constant_folding_evaluates_literal_arithmetic() {
    assert_snapshot!(fold_constants::GRAPH.nodes_to_text());
}

#[test]
fn folded_one_is_simplified_away() {
    assert_snapshot!(fold_then_simplify::GRAPH.nodes_to_text());
}

#[test]
fn simplification_removes_exact_identities() {
    assert_snapshot!(simplify::GRAPH.nodes_to_text());
}

#[test]
fn simplification_keeps_plus_zero() {
    assert_snapshot!(simplify_keeps_plus_zero::GRAPH.nodes_to_text());
}

#[test]
fn dead_let_is_eliminated() {
    assert_snapshot!(eliminate_dead::GRAPH.nodes_to_text());
}

#[test]
fn softmax_lowers_to_primitives() {
    assert_snapshot!(softmax::GRAPH.nodes_to_text());
}

#[test]
fn layer_norm_shares_mean_with_var() {
    assert_snapshot!(layer_norm::GRAPH.nodes_to_text());
}

#[test]
fn softmax_as_dot() {
    assert_snapshot!(softmax::GRAPH.to_dot());
}
