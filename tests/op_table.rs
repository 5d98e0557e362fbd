//! The op tables (`graph_ir::UnaryOp::info`, `BinaryOp::info`, `ReduceOp::info`) against the
//! backends that implement them, for every row:
//! - the C-family kernels: every function a row names is defined in both preludes (a unary or
//!   binary op's function, a reduction's `lg_reduce_*` across a row's threads);
//! - the CPU kernels: every method and constant a row names is an item of `graph_ir::cpu::Float`
//!   (a missing one would also fail to compile in `tests/special.rs`, which has a graph per op);
//! - the eager executor: a binary op's or reduction's Candle ops compute the row's f64 math,
//!   special values included. (A row without them does not compile; the unary ones are run
//!   against the f64 math in `tests/special.rs`.)
//!
//! The numeric tests compare every op's kernels with the row's f64 math (`tests/special.rs`,
//! `tests/msl.rs`, the random graphs of `tests/random.rs`).

use candle_core::{Device, Tensor};
use graph_ir::{BinaryCForm, BinaryCpuForm, BinaryOp, CForm, CpuForm, ReduceOp, UnaryOp};

const CUDA: &str = include_str!("../graph-runtime/src/exec/cuda/prelude.cuh");
const METAL: &str = include_str!("../graph-runtime/src/exec/metal/prelude.metal");
const CPU: &str = include_str!("../graph-ir/src/cpu.rs");

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

/// The starts of a prelude's function definitions, and the compute types they are defined for:
/// `C`, or CUDA's `float`/`double` overloads.
const HEADS: [&str; 2] = ["__device__ __forceinline__ ", "inline "];
const TYPES: [&str; 3] = ["C", "float", "double"];

/// Whether `prelude` defines a function `name` of `arity` arguments of the compute type (a line
/// declaring it, not one calling it).
fn defines(prelude: &str, name: &str, arity: usize) -> bool {
    prelude.lines().any(|line| {
        HEADS.iter().any(|h| {
            TYPES.iter().any(|t| {
                let params: Vec<String> = ["x", "y"][..arity].iter().map(|p| format!("{t} {p}")).collect();
                line.starts_with(&format!("{h}{t} {name}({})", params.join(", ")))
            })
        })
    })
}

/// Whether `prelude` defines the reduction across a row's threads `lg_reduce_{op}`, of a value
/// `v` (and the dialect's own arguments after it).
fn defines_reduction(prelude: &str, op: &str) -> bool {
    let head = format!("C lg_reduce_{op}(C v");
    prelude
        .lines()
        .any(|line| HEADS.iter().any(|h| line.starts_with(&format!("{h}{head}"))))
}

#[test]
fn every_c_function_is_in_both_preludes() {
    let mut wanted: Vec<(String, String, usize)> = Vec::new();
    for op in UnaryOp::ALL {
        if let CForm::Call(f) = op.info().c {
            wanted.push((op.name().to_string(), f.to_string(), 1));
        }
    }
    for op in BinaryOp::ALL {
        if let BinaryCForm::Call(f) = op.info().c {
            wanted.push((op.name().to_string(), f.to_string(), 2));
        }
    }
    let mut missing = Vec::new();
    for (prelude, text) in [("CUDA", CUDA), ("Metal", METAL)] {
        for (op, f, arity) in &wanted {
            if !defines(text, f, *arity) {
                missing.push(format!("{op} needs `{f}` in the {prelude} prelude"));
            }
        }
        for op in ReduceOp::ALL {
            let across = op.info().c.across;
            if !defines_reduction(text, across) {
                let name = op.name();
                missing.push(format!(
                    "{name} needs `lg_reduce_{across}` in the {prelude} prelude"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The check above can fail: a name no prelude defines is reported.
#[test]
fn an_undefined_function_is_noticed() {
    assert!(defines(CUDA, "lg_exp", 1) && defines(METAL, "lg_exp", 1));
    assert!(defines(CUDA, "lg_pow", 2) && defines(METAL, "lg_pow", 2));
    assert!(!defines(CUDA, "lg_no_such_op", 1) && !defines(METAL, "lg_no_such_op", 1));
    // A call is no definition, nor is a function of another arity.
    assert!(!defines("  return lg_exp(x);", "lg_exp", 1));
    assert!(!defines(CUDA, "lg_pow", 1) && !defines(CUDA, "lg_exp", 2));
    assert!(defines_reduction(CUDA, "max") && defines_reduction(METAL, "max"));
    assert!(!defines_reduction(CUDA, "prod") && !defines_reduction(METAL, "prod"));
}

/// The text of the `Float` trait: its declaration up to the closing brace.
fn float_trait() -> &'static str {
    let start = CPU.find("pub trait Float").expect("cpu.rs declares Float");
    let len = CPU[start..].find("\n}\n").expect("the trait ends");
    &CPU[start..start + len]
}

/// Whether `Float` has the method `name` taking `self`, or `name::<FMA>`.
fn float_method(name: &str) -> bool {
    float_trait().lines().map(str::trim_start).any(|line| {
        line.starts_with(&format!("fn {name}(self"))
            || line.starts_with(&format!("fn {name}<const FMA: bool>(self"))
    })
}

/// Whether `Float` has the constant `name`.
fn float_const(name: &str) -> bool {
    let decl = format!("const {name}: Self;");
    float_trait().lines().any(|line| line.trim() == decl)
}

#[test]
fn every_cpu_name_is_a_float_item() {
    let mut missing = Vec::new();
    for op in UnaryOp::ALL {
        let method = match op.info().cpu {
            CpuForm::Method(m) => m.to_string(),
            CpuForm::Fma(m) => format!("{m}_with"),
            CpuForm::Neg => continue,
        };
        if !float_method(&method) {
            missing.push(format!("{} needs the method `{method}` in Float", op.name()));
        }
    }
    for op in BinaryOp::ALL {
        if let BinaryCpuForm::Method(m) = op.info().cpu {
            if !float_method(m) {
                missing.push(format!("{} needs the method `{m}` in Float", op.name()));
            }
        }
    }
    for op in ReduceOp::ALL {
        let k = op.info().cpu.identity;
        if !float_const(k) {
            missing.push(format!("{} needs the constant `{k}` in Float", op.name()));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The check above can fail: a name `Float` lacks is reported.
#[test]
fn a_missing_float_item_is_noticed() {
    assert!(float_method("exp") && float_method("exp_with") && float_method("powf"));
    assert!(float_const("ZERO") && float_const("NEG_INFINITY"));
    assert!(!float_method("no_such_op") && !float_const("NO_SUCH"));
    // An implementation's body is not the trait.
    assert!(!float_trait().contains("macro_rules!"));
}

/// Whether `got` is of `want`'s class: both NaN, the same infinity, or finite and within
/// `1e-12` of `max(|want|, 1)` (Candle's tensor `pow` goes through `exp` and `ln`).
fn same(got: f64, want: f64) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else if want.is_infinite() {
        got == want
    } else {
        got.is_finite() && (got - want).abs() <= 1e-12 * want.abs().max(1.0)
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().and_then(|t| t.to_vec1()).expect("an f64 tensor")
}

/// Every binary op's Candle ops (the eager executor's, on tensors and with a scalar right side
/// where the row has one) compute its f64 math on every pair of special and ordinary values.
#[test]
fn binary_eager_ops_follow_the_table() {
    let xs = [NAN, -INF, -2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, INF];
    let pairs: Vec<(f64, f64)> = xs.iter().flat_map(|&a| xs.iter().map(move |&b| (a, b))).collect();
    let column = |v: Vec<f64>| Tensor::new(v, &Device::Cpu).expect("a tensor");
    let a = column(pairs.iter().map(|p| p.0).collect());
    let b = column(pairs.iter().map(|p| p.1).collect());
    let mut failures = Vec::new();
    for op in BinaryOp::ALL {
        let info = op.info();
        let got = values(&(info.eager)(&a, &b).expect("the Candle ops run"));
        // And broadcast: each value against a tensor of all of them.
        let row = column(xs.to_vec());
        let grid = (info.eager)(&row.reshape((xs.len(), 1)).unwrap(), &row).expect("they broadcast");
        let grid = values(&grid);
        for (i, &(x, y)) in pairs.iter().enumerate() {
            let want = op.eval(x, y);
            for (how, g) in [("tensors", got[i]), ("broadcast", grid[i])] {
                if !same(g, want) {
                    failures.push(format!("{}({x}, {y}) on {how} = {g}, want {want}", op.name()));
                }
            }
        }
        if let Some(scalar) = info.eager_scalar {
            let xs_tensor = column(xs.to_vec());
            for &y in &xs {
                let got = values(&scalar(&xs_tensor, y).expect("the Candle op runs"));
                for (&x, g) in xs.iter().zip(got) {
                    let want = op.eval(x, y);
                    if !same(g, want) {
                        failures.push(format!("{}({x}, scalar {y}) = {g}, want {want}", op.name()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every reduction's Candle ops compute its f64 math along either axis (the second on a
/// transposed, strided view), rows with NaN and infinities included.
#[test]
fn reduce_eager_ops_follow_the_table() {
    let rows: [[f64; 3]; 9] = [
        [NAN, 1.0, 2.0],
        [1.0, NAN, 2.0],
        [1.0, 2.0, NAN],
        [-INF, -INF, -INF],
        [INF, 1.0, 2.0],
        [INF, -INF, 1.0],
        [1.0, 2.0, 3.5],
        [-INF, 0.0, -INF],
        [-0.0, -0.0, -0.0],
    ];
    let x = Tensor::new(&rows, &Device::Cpu).expect("a tensor");
    let mut failures = Vec::new();
    for op in ReduceOp::ALL {
        let eager = op.info().eager;
        let along_rows = values(&eager(&x, 1).expect("the Candle ops run"));
        let along_columns = values(&eager(&x.t().expect("a transpose"), 0).expect("the Candle ops run"));
        for (i, row) in rows.iter().enumerate() {
            let want = op.eval(row);
            for (how, got) in [("axis 1", along_rows[i]), ("axis 0", along_columns[i])] {
                if !same(got, want) {
                    failures.push(format!("{}({row:?}) along {how} = {got}, want {want}", op.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
