//! The op table (`graph_ir::UnaryOp::info`) against the backends that implement it: every
//! function a row names for the C-family kernels is defined in both preludes. The other backends
//! are held to the table elsewhere: the eager executor's Candle ops are a field of the row (the
//! crate does not build without them), the CPU kernels call the row's `Float` method (a missing
//! one fails to compile in `tests/special.rs`, which has a graph per op and checks that it does),
//! and the numeric tests compare every op with the row's f64 math (`tests/special.rs`,
//! `tests/msl.rs`, the random graphs of `tests/random.rs`).

use graph_ir::{CForm, UnaryOp};

const CUDA: &str = include_str!("../graph-runtime/src/exec/cuda/prelude.cuh");
const METAL: &str = include_str!("../graph-runtime/src/exec/metal/prelude.metal");

/// Whether `prelude` defines a function `name` (a line declaring it, not one calling it), for a
/// compute type: `C`, or CUDA's `float`/`double` overloads.
fn defines(prelude: &str, name: &str) -> bool {
    let heads = ["__device__ __forceinline__ ", "inline "];
    let types = ["C", "float", "double"];
    prelude.lines().any(|line| {
        heads.iter().any(|h| {
            types
                .iter()
                .any(|t| line.starts_with(&format!("{h}{t} {name}({t} x)")))
        })
    })
}

#[test]
fn every_c_function_is_in_both_preludes() {
    let mut missing = Vec::new();
    for op in UnaryOp::ALL {
        if let CForm::Call(f) = op.info().c {
            for (prelude, text) in [("CUDA", CUDA), ("Metal", METAL)] {
                if !defines(text, f) {
                    missing.push(format!("{} needs `{f}` in the {prelude} prelude", op.name()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The check above can fail: a name no prelude defines is reported.
#[test]
fn an_undefined_function_is_noticed() {
    assert!(defines(CUDA, "lg_exp") && defines(METAL, "lg_exp"));
    assert!(!defines(CUDA, "lg_no_such_op") && !defines(METAL, "lg_no_such_op"));
    // A call is no definition.
    assert!(!defines("  return lg_exp(x);", "lg_exp"));
}
