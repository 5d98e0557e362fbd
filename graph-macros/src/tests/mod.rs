//! Tests of the whole expansion: fuzzing, and inputs at the documented limits.

mod fuzz;

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
