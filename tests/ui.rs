//! Compile-time diagnostics of `lazy_graph!`: one compile-fail case per diagnostic, named after it,
//! in one folder per topic; and pass cases that cover the whole language.
//!
//!     cargo test --test ui                      # check
//!     TRYBUILD=overwrite cargo test --test ui   # regenerate the .stderr files, then read them

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    for topic in [
        "names", "arity", "kinds", "args", "shape", "returns", "params", "symbols", "syntax", "parse",
        "limits", "multi", "leading",
    ] {
        t.compile_fail(format!("tests/ui/{topic}/*.rs"));
    }
    t.pass("tests/ui/pass/*.rs");
}
