//! Inputs at scale: long `let` chains, chained reductions, wide `cat`s and deep nesting. Each
//! either expands within [`LIMIT`] on a thread with the stack rustc gives a proc macro, or is
//! rejected with a diagnostic at a documented limit; nothing overflows a stack.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};

use super::fuzz::run_bounded;
use crate::limits::{MAX_CAT_PARTS, MAX_NESTING};

/// A hang guard, not a speed target: generous for debug builds on a busy 2-core machine (where
/// the 10,000-line chain below took 20 to 35 s against 5.6 s quiet). How the time grows is
/// checked by ratios of two sizes, which a busy machine slows alike.
const LIMIT: Duration = Duration::from_secs(90);

/// Expands the tokens `build` makes on a bounded stack; its output and whether it holds a
/// diagnostic.
fn expand_built(what: &str, build: impl FnOnce() -> TokenStream + Send + 'static) -> (String, bool) {
    let (out, _) = expand_timed(what, build);
    let rejected = out.contains("compile_error");
    (out, rejected)
}

/// [`expand_built`]'s output and the time it took.
fn expand_timed(what: &str, build: impl FnOnce() -> TokenStream + Send + 'static) -> (String, Duration) {
    let (out, time) = run_bounded(format!("scale: {what}"), build).unwrap_or_else(|e| panic!("{what}: {e}"));
    println!("{what}: expanded in {time:?} to {} bytes", out.len());
    assert!(time < LIMIT, "{what} took {time:?}");
    (out, time)
}

/// [`expand_built`] of source text.
fn expand_bounded(what: &str, src: &str) -> (String, bool) {
    let src = src.to_string();
    expand_built(what, move || {
        TokenStream::from_str(&src).expect("test inputs lex")
    })
}

pub fn let_chain(n: usize) -> String {
    let mut s = String::from("fn chain(x: Tensor[N, D]) -> Tensor[N, D] { let a0 = x;");
    for i in 1..=n {
        let _ = write!(s, " let a{i} = a{} * 0.5 + x;", i - 1);
    }
    let _ = write!(s, " a{n} }}");
    s
}

pub fn reduction_chain(n: usize) -> String {
    let mut s = String::from("fn reductions(x: Tensor[N, D]) -> Tensor[N, D] { let a0 = x;");
    for i in 1..=n {
        let _ = write!(s, " let a{i} = a{} - max(a{}, -1);", i - 1, i - 1);
    }
    let _ = write!(s, " a{n} }}");
    s
}

pub fn wide_cat(n: usize) -> String {
    let parts = vec!["x"; n].join(", ");
    format!(
        "fn wide(x: Tensor[N, 2]) -> Tensor[N, {}] {{ cat([{parts}], -1) }}",
        2 * n
    )
}

fn nested(open: &str, close: &str, n: usize) -> String {
    format!(
        "fn nested(x: Tensor[N, D]) -> Tensor[N, D] {{ {}x{} }}",
        open.repeat(n),
        close.repeat(n)
    )
}

/// `x` in `n` parentheses, built from the inside out: lexing (rustc's work) is not under test.
fn parenthesised(n: usize) -> TokenStream {
    let mut e: TokenStream = quote::quote!(x);
    for _ in 0..n {
        e = TokenTree::Group(Group::new(Delimiter::Parenthesis, e)).into();
    }
    quote::quote!(fn nested(x: Tensor[N, D]) -> Tensor[N, D] { #e })
}

/// A chain four times as long takes about four times as long: under 10 times (a quadratic
/// expansion would take 16), measured one right after the other.
#[test]
fn a_long_let_chain() {
    let timed = |n: usize| {
        let src = let_chain(n);
        let (out, time) = expand_timed(&format!("{n} lets"), move || {
            TokenStream::from_str(&src).expect("test inputs lex")
        });
        assert!(!out.contains("compile_error"), "{}", &out[..out.len().min(2000)]);
        time
    };
    let (short, long) = (timed(2_500), timed(10_000));
    let ratio = long.as_secs_f64() / short.as_secs_f64();
    assert!(
        ratio < 10.0,
        "10000 lets took {ratio:.1} times as long as 2500 ({long:?} against {short:?})"
    );
}

#[test]
fn chained_reductions() {
    let (out, rejected) = expand_bounded("300 reductions", &reduction_chain(300));
    assert!(!rejected, "{}", &out[..out.len().min(2000)]);
    // Cut into kernels of a few stages, the code grows linearly (it was 9 MB, quadratic, for the
    // forward alone). The backward graph (`BACKWARD`) adds about 2.7 times the forward's code.
    assert!(out.len() < 300 * 40_000, "{} bytes for 300 reductions", out.len());
}

#[test]
fn wide_cats() {
    let (out, rejected) = expand_bounded("64-part cat", &wide_cat(MAX_CAT_PARTS));
    assert!(!rejected, "{}", &out[..out.len().min(2000)]);
    let (out, rejected) = expand_bounded("1000-part cat", &wide_cat(1000));
    assert!(
        rejected && out.contains("above the limit of 64"),
        "{}",
        &out[..out.len().min(2000)]
    );
}

/// Deep nesting of every kind: accepted at the limit, rejected past it, never a stack overflow.
#[test]
fn nesting_at_and_past_the_limit() {
    // Each shape adds one level per repetition, above the body's own.
    let kinds: [(&str, &str, &str); 4] = [
        ("minus signs", "-", ""),
        ("method calls", "", ".exp()"),
        ("additions", "", " + x"),
        ("calls", "exp(", ")"),
    ];
    for (what, open, close) in kinds {
        let n = MAX_NESTING - 1;
        let (out, rejected) = expand_bounded(&format!("{n} {what}"), &nested(open, close, n));
        assert!(
            !rejected,
            "{n} {what} are within the limit: {}",
            &out[..out.len().min(500)]
        );
        for n in [MAX_NESTING + 1, 100_000] {
            let (out, rejected) = expand_bounded(&format!("{n} {what}"), &nested(open, close, n));
            assert!(
                rejected && out.contains("levels deep"),
                "{n} {what}: {}",
                &out[..out.len().min(500)]
            );
        }
    }
    let (_, rejected) = expand_built("parentheses at the limit", || parenthesised(MAX_NESTING - 1));
    assert!(!rejected);
    for n in [MAX_NESTING + 1, 100_000] {
        let (out, rejected) = expand_built("parentheses past the limit", move || parenthesised(n));
        assert!(rejected && out.contains("levels deep"), "{n} parentheses");
    }
}
