//! Tests of the whole expansion: fuzzing, and inputs at the documented limits.

mod backward;
mod fuzz;
mod leading;
mod scale;

use std::str::FromStr;

use proc_macro2::TokenStream;

use crate::expand::expand;

/// The expansion of `src`, as text.
fn expanded(src: &str) -> String {
    expand(TokenStream::from_str(src).expect("test inputs lex")).to_string()
}

/// Asserts that `src` expands without diagnostics.
#[track_caller]
fn assert_expands(src: &str) -> String {
    let out = expanded(src);
    assert!(!out.contains("compile_error"), "unexpected diagnostics:\n{out}");
    out
}

#[test]
fn raw_identifiers_name_functions_parameters_and_lets() {
    let out = assert_expands(
        "pub fn r#match(r#type: Tensor[N, D], r#fn: f32) -> Tensor[N, D] {
             let r#let = exp(r#type) * r#fn;
             r#let - max(r#let, -1)
         }",
    );
    assert!(out.contains("fn r#match"), "the function keeps its raw name");
    assert!(
        out.contains("MATCH_K0_CPU"),
        "kernel statics are named after the unraw name"
    );
}

/// Asserts that `src` is rejected with a message containing `message`.
#[track_caller]
fn assert_rejected(src: &str, message: &str) {
    let out = expanded(src);
    assert!(
        out.contains("compile_error") && out.contains(message),
        "expected an error containing {message:?}:\n{}",
        &out[..out.len().min(3000)]
    );
}

/// `n` tensor parameters `_p{i}` of rank `rank`, each with its own symbols `S{i}_{j}`.
fn many_params(n: usize, rank: usize) -> String {
    (0..n)
        .map(|i| {
            let dims: Vec<String> = (0..rank).map(|j| format!("S{i}_{j}")).collect();
            format!("_p{i}: Tensor[{}]", dims.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn ranks_are_range_checked() {
    let names = |n: usize| (0..n).map(|i| format!("S{i}")).collect::<Vec<_>>().join(", ");
    let top = names(16);
    assert_expands(&format!(
        "fn f(x: Tensor[{top}]) -> Tensor[{top}] {{ x - max(x, -1) + min(x, 0) }}"
    ));
    let out = assert_expands(&format!(
        "fn f(x: Tensor[{top}]) -> Tensor[{top}] {{ x - max(x, -1) }}"
    ));
    assert!(
        out.contains("ReduceOp :: Max , 15u8"),
        "axis -1 of rank 16 is axis 15"
    );
    let over = names(17);
    assert_rejected(
        &format!("fn f(x: Tensor[{over}]) -> Tensor[S0] {{ sum(x, 0) }}"),
        "rank 17, above the limit of 16",
    );
    let src = format!("fn f(x: Tensor[{over}]) -> Tensor[S0] {{ sum(x, 0) }}");
    assert_eq!(
        expanded(&src).matches("compile_error").count(),
        1,
        "one mistake, one error"
    );
    assert_rejected(
        &format!("fn f(x: Tensor[S0]) -> Tensor[{over}] {{ x }}"),
        "rank 17, above the limit of 16",
    );
    let ones = ["1"; 17].join(", ");
    assert_rejected(
        &format!("fn f(x: Tensor[S0]) -> Tensor[S0] {{ reshape(x, [{ones}, S0]) }}"),
        "rank 18",
    );
    let dims = (0..300).map(|i| format!("S{i}")).collect::<Vec<_>>().join(", ");
    assert_rejected(
        &format!("fn f(x: Tensor[{dims}]) -> Tensor[S0] {{ max(x, -1) }}"),
        "rank 300",
    );
}

#[test]
fn parameters_and_symbols_are_bounded() {
    let ok = format!("fn f(x: Tensor[N], {}) -> Tensor[N] {{ x }}", many_params(127, 8));
    assert_expands(&ok);
    let over = format!("fn f(x: Tensor[N], {}) -> Tensor[N] {{ x }}", many_params(128, 8));
    assert_rejected(
        &over,
        "shape symbol `S127_7` is one more than the limit of 1024 symbols",
    );
    // Past `u16`: an error, not a wrapped id.
    let huge = format!(
        "fn f(x: Tensor[N], {}) -> Tensor[N] {{ x }}",
        many_params(8193, 8)
    );
    assert_rejected(&huge, "limit of 1024 symbols");
    let params = format!(
        "fn f(x: Tensor[N], {}) -> Tensor[N] {{ x }}",
        many_params(1024, 0)
    );
    assert_rejected(&params, "declares 1025 parameters, above the limit of 1024");
    assert_expands(&format!(
        "fn f(x: Tensor[N], {}) -> Tensor[N] {{ x }}",
        many_params(1023, 0)
    ));
}

#[test]
fn cat_parts_are_bounded() {
    let parts = |n: usize| vec!["x"; n].join(", ");
    assert_expands(&format!(
        "fn f(x: Tensor[N, 2]) -> Tensor[N, 128] {{ cat([{}], -1) }}",
        parts(64)
    ));
    assert_rejected(
        &format!(
            "fn f(x: Tensor[N, 2]) -> Tensor[N, 130] {{ cat([{}], -1) }}",
            parts(65)
        ),
        "joins 65 parts, above the limit of 64",
    );
}

#[test]
fn size_expressions_say_what_is_wrong() {
    assert_rejected(
        "fn f(x: Tensor[D], y: Tensor[D / 0]) -> Tensor[D] { x + y }",
        "divides by zero",
    );
    assert_rejected("fn f(x: Tensor[D]) -> Tensor[D / 0] { x }", "divides by zero");
    assert_rejected(
        "fn f(x: Tensor[D]) -> Tensor[D] { narrow(x, 0, 0, D / 0) }",
        "divides by zero",
    );
    assert_rejected(
        "fn f(x: Tensor[18446744073709551616]) -> Tensor[1] { sum(x, 0) }",
        "does not fit in 64 bits",
    );
    assert_rejected(
        "fn f(x: Tensor[18446744073709551615 * 2]) -> Tensor[1] { sum(x, 0) }",
        "does not fit in 64 bits",
    );
    assert_rejected(
        "fn f(x: Tensor[B, S]) -> Tensor[B * S * B * S * B] { reshape(x, [B * S * B * S * B]) }",
        "at most 4 symbols",
    );
    // Valid edge cases compile.
    assert_expands("fn f(x: Tensor[D], y: Tensor[D / 1]) -> Tensor[D] { x + y }");
    assert_expands("fn f(x: Tensor[D, 0 * D]) -> Tensor[D, 0] { x * 2.0 }");
    assert_expands("fn f(x: Tensor[D, D * 0]) -> Tensor[D, 0] { x }");
    assert_expands("fn f(x: Tensor[18446744073709551615]) -> Tensor[18446744073709551615] { x }");
}

#[test]
fn attributes_in_a_body_are_rejected() {
    assert_rejected(
        "fn f(x: Tensor[N]) -> Tensor[N] { #[cfg(any())] let y = x * 2.0; x }",
        "no effect inside a graph body",
    );
    assert_rejected(
        "fn f(x: Tensor[N]) -> Tensor[N] { #[allow(unused)] x }",
        "no effect inside a graph body",
    );
    assert_rejected(
        "fn f(x: Tensor[N]) -> Tensor[N] { let y = (#[cfg(any())] x); y }",
        "no effect",
    );
    // On the function itself, attributes pass through.
    assert_expands("#[allow(dead_code)] fn f(x: Tensor[N]) -> Tensor[N] { x }");
}

#[test]
fn inf_is_the_infinity_literal() {
    let out = assert_expands(
        "fn masked(x: Tensor[N, D], m: Tensor[N, D]) -> Tensor[N, 1] {
             max(where_(m > 0.5, x, -inf), -1) + minimum(x.max(-1), inf) + (inf - inf) * 0.0
         }",
    );
    // The folded constants, by their bits in the statics: -inf, and a NaN from `inf - inf`.
    let constants: Vec<f64> = out
        .split("Lit :: from_bits (")
        .skip(1)
        .filter_map(|rest| rest.split("u64").next()?.parse::<u64>().ok())
        .map(f64::from_bits)
        .collect();
    assert!(constants.contains(&f64::NEG_INFINITY), "{constants:?}");
    assert!(constants.iter().any(|c| c.is_nan()), "{constants:?}");
}

#[test]
fn inf_cannot_be_declared() {
    let message = "`inf` is the built-in infinity and cannot name a";
    assert_rejected("fn f(inf: f32, x: Tensor[N]) -> Tensor[N] { x * inf }", message);
    assert_rejected("fn f(r#inf: f32, x: Tensor[N]) -> Tensor[N] { x }", message);
    assert_rejected("fn f(x: Tensor[N]) -> Tensor[N] { let inf = x; inf }", message);
    assert_rejected("fn f(x: Tensor[inf]) -> Tensor[inf] { x }", message);
}
