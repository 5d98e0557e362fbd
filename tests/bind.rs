//! Binding errors: one test per way a call can fail before (or while) running, each asserting
//! the exact variant and that the message names the parameter, the dim or symbol, and the
//! expected and actual values. Then: conversion into `candle_core::Error`, and no panics on
//! empty inputs.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use graph_runtime::{lazy_graph, with_mode, Error, Mode};

lazy_graph! {
    /// A literal dim.
    fn scale4(x: Tensor[N, 4], w: Tensor[4]) -> Tensor[N, 4] {
        x * w
    }

    /// A narrow that fits only when `D >= 6`, which only the run time knows.
    fn tail(x: Tensor[N, D]) -> Tensor[N, 4] {
        narrow(x, -1, 2, 4)
    }

    /// A derived size that no parameter declares.
    fn first_half(x: Tensor[N, D]) -> Tensor[N, D / 2] {
        narrow(x, -1, 0, D / 2)
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
}

/// Asserts that `message` mentions every one of `parts`.
fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} does not mention {part:?}"
        );
    }
}

#[test]
fn wrong_rank() {
    let err = common::softmax(&randn(&[2, 3, 4])).unwrap_err();
    let message = err.to_string();
    let Error::Rank {
        func,
        param,
        declared,
        expected,
        actual,
    } = err
    else {
        panic!("expected Error::Rank, got {err:?}")
    };
    assert_eq!((func, param, expected), ("softmax", "x", 2));
    assert_eq!((declared.as_str(), actual), ("[N, D]", vec![2, 3, 4]));
    assert_mentions(&message, &["softmax", "`x`", "rank 2", "[N, D]", "[2, 3, 4]"]);
}

#[test]
fn rank_zero_tensor() {
    let scalar = Tensor::new(1f32, &Device::Cpu).unwrap();
    let err = common::softmax(&scalar).unwrap_err();
    assert!(
        matches!(&err, Error::Rank { param: "x", expected: 2, actual, .. } if actual.is_empty()),
        "{err:?}"
    );
}

#[test]
fn literal_dim_mismatch() {
    let err = scale4(&randn(&[3, 5]), &randn(&[4])).unwrap_err();
    let message = err.to_string();
    let Error::Dim {
        func,
        param,
        dim,
        declared,
        expected,
        actual,
    } = err
    else {
        panic!("expected Error::Dim, got {err:?}")
    };
    assert_eq!((func, param, dim, expected, actual), ("scale4", "x", 1, 4, 5));
    assert_eq!(declared, "[N, 4]");
    assert_mentions(&message, &["scale4", "`x`", "dim 1", "be 4", "is 5", "[N, 4]"]);
}

#[test]
fn symbol_inconsistent_across_parameters() {
    let err = common::rms_norm(&randn(&[2, 3, 5]), &randn(&[4]), 1e-6).unwrap_err();
    let message = err.to_string();
    let Error::Symbol(m) = err else {
        panic!("expected Error::Symbol, got {err:?}")
    };
    assert_eq!(
        (m.func, m.symbol, m.bound, m.bound_by, m.bound_dim),
        ("rms_norm", "D", 5, "x", 2)
    );
    assert_eq!((m.param, m.dim, m.expected, m.actual), ("w", 0, 5, 4));
    assert_mentions(
        &message,
        &["rms_norm", "`D` is 5", "`x` dim 2", "`w` dim 0", "is 4", "not 5"],
    );
}

#[test]
fn symbol_inconsistent_within_one_parameter_list() {
    // `N` binds from `x`; `r` disagrees in its first dim.
    let err = common::add_rms_norm(&randn(&[3, 8]), &randn(&[2, 8]), &randn(&[8]), 1e-6).unwrap_err();
    let Error::Symbol(m) = &err else {
        panic!("expected Error::Symbol, got {err:?}")
    };
    assert_eq!((m.symbol, m.bound_by, m.param, m.dim), ("N", "x", "r", 0));
    assert_eq!((m.expected, m.actual), (3, 2));
}

#[test]
fn derived_dim_not_whole() {
    // RoPE's tables are `[S, D / 2]`: an odd `D` has no half.
    let (x, cos, sin) = (randn(&[1, 2, 3, 5]), randn(&[3, 2]), randn(&[3, 2]));
    let err = common::rope(&x, &cos, &sin).unwrap_err();
    let message = err.to_string();
    let Error::Fraction {
        func,
        what,
        size,
        symbols,
    } = err
    else {
        panic!("expected Error::Fraction, got {err:?}")
    };
    assert_eq!((func, size.as_str()), ("rope", "D/2"));
    assert_eq!(what, "parameter `cos` dim 1");
    assert_eq!(symbols, "D = 5 (from `x` dim 3)");
    assert_mentions(
        &message,
        &["rope", "`cos` dim 1", "`D/2`", "D = 5", "`x` dim 3", "whole"],
    );
}

#[test]
fn derived_dim_mismatch() {
    // `D = 8` makes `D / 2` four; the tables have three columns.
    let (x, cos, sin) = (randn(&[1, 2, 3, 8]), randn(&[3, 3]), randn(&[3, 3]));
    let err = common::rope(&x, &cos, &sin).unwrap_err();
    let message = err.to_string();
    let Error::Symbol(m) = err else {
        panic!("expected Error::Symbol, got {err:?}")
    };
    assert_eq!((m.symbol, m.bound, m.bound_by, m.bound_dim), ("D", 8, "x", 3));
    assert_eq!((m.param, m.dim, m.declared.as_str()), ("cos", 1, "[S, D/2]"));
    assert_eq!((m.expected, m.actual), (4, 3));
    assert_mentions(
        &message,
        &["`D` is 8", "`cos` dim 1", "[S, D/2]", "is 3", "not 4"],
    );
}

#[test]
fn derived_dim_not_whole_inside_the_graph() {
    // No parameter declares `D / 2`; the narrow that makes the result needs it. The call fails
    // before running anything, naming where `D` came from.
    let err = first_half(&randn(&[3, 5])).unwrap_err();
    let message = err.to_string();
    let Error::Fraction {
        func,
        what,
        size,
        symbols,
    } = err
    else {
        panic!("expected Error::Fraction, got {err:?}")
    };
    assert_eq!(
        (func, what.as_str(), size.as_str()),
        ("first_half", "the result", "D/2")
    );
    assert_eq!(symbols, "D = 5 (from `x` dim 1)");
    assert_mentions(
        &message,
        &["first_half", "`D/2`", "the result", "D = 5", "`x` dim 1"],
    );
    assert_eq!(first_half(&randn(&[3, 6])).unwrap().dims(), [3, 3]);
}

#[test]
fn dtype_mismatch() {
    let x = randn(&[2, 3, 4]);
    let w = randn(&[4]).to_dtype(DType::F16).unwrap();
    let err = common::rms_norm(&x, &w, 1e-6).unwrap_err();
    let message = err.to_string();
    let Error::DType {
        func,
        param,
        first,
        expected,
        actual,
    } = err
    else {
        panic!("expected Error::DType, got {err:?}")
    };
    assert_eq!((func, param, first), ("rms_norm", "w", "x"));
    assert_eq!((expected, actual), (DType::F32, DType::F16));
    assert_mentions(&message, &["rms_norm", "`w`", "F16", "`x`", "F32"]);
}

#[test]
fn unsupported_dtype() {
    let x = randn(&[2, 3]);
    for (dtype, name) in [(DType::U32, "U32"), (DType::I64, "I64"), (DType::U8, "U8")] {
        // As the first parameter, and as a later one whose dtype also differs from the first.
        let bad = x.to_dtype(dtype).unwrap();
        for (err, param) in [
            (common::softmax(&bad).unwrap_err(), "x"),
            (common::swiglu(&x, &bad).unwrap_err(), "u"),
        ] {
            let message = err.to_string();
            assert!(
                matches!(err, Error::UnsupportedDType { param: p, actual, .. } if p == param && actual == dtype),
                "{err:?}"
            );
            assert_mentions(&message, &[&format!("`{param}`"), name, "f16, bf16, f32 or f64"]);
        }
    }
}

/// Tensors on two devices. On a CPU-only machine every tensor lives on the one `Device::Cpu`, so
/// the mismatch cannot be produced here: the CPU arm checks the message of a hand-built error
/// instead, and the CUDA arm of `test_device!` (once the root package has a `cuda` feature)
/// produces the real one.
fn device_mismatch(device: &Device) -> Result<()> {
    if device.is_cpu() {
        eprintln!("device_mismatch: only the CPU is available; checking the message only");
        let err = Error::Device {
            func: "rms_norm",
            param: "w",
            first: "x",
            expected: "Cuda { gpu_id: 0 }".into(),
            actual: "Cpu".into(),
        };
        assert_mentions(
            &err.to_string(),
            &["rms_norm", "`w`", "Cpu", "`x`", "Cuda { gpu_id: 0 }"],
        );
        return Ok(());
    }
    let x = Tensor::randn(0f32, 1.0, (2, 3, 4), device)?;
    let w = Tensor::randn(0f32, 1.0, 4, &Device::Cpu)?;
    let err = common::rms_norm(&x, &w, 1e-6).unwrap_err();
    let message = err.to_string();
    let Error::Device {
        param, first, actual, ..
    } = err
    else {
        panic!("expected Error::Device, got {err:?}")
    };
    assert_eq!((param, first, actual.as_str()), ("w", "x", "Cpu"));
    assert_mentions(&message, &["`w`", "`x`", "Cpu"]);
    Ok(())
}
test_device!(device_mismatch);

#[test]
fn narrow_out_of_range_at_run_time() {
    assert_eq!(tail(&randn(&[3, 6])).unwrap().dims(), [3, 4]);
    let err = tail(&randn(&[3, 5])).unwrap_err();
    let message = err.to_string();
    let Error::Narrow {
        func,
        axis,
        start,
        len,
        size,
    } = err
    else {
        panic!("expected Error::Narrow, got {err:?}")
    };
    assert_eq!((func, axis, start, len, size), ("tail", 1, 2, 4, 5));
    assert_mentions(&message, &["tail", "axis 1", "from 2", "length 4", "size 5"]);
}

// ---------------------------------------------------------------------------------------------
// The error type in Candle code.

#[test]
fn converts_into_candle_error() {
    /// Model code: `?` turns our error into Candle's.
    fn forward(x: &Tensor) -> candle_core::Result<Tensor> {
        let y = common::softmax(x)?;
        y.sum_all()
    }
    assert!(forward(&randn(&[2, 3])).is_ok());
    let err = forward(&randn(&[2, 3, 4])).unwrap_err();
    assert_mentions(&err.to_string(), &["softmax", "`x`", "rank 2", "[2, 3, 4]"]);
    // Candle wraps foreign errors as `Display` only, so the message is what model code keeps.
    assert!(matches!(err.to_string().lines().next(), Some(line) if line.starts_with("softmax: ")));
}

#[test]
fn is_a_std_error() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();
    assert_error::<graph_runtime::SymbolMismatch>();
    // Candle failures keep their cause as the source.
    let err = Error::Candle {
        func: "softmax",
        source: candle_core::Error::Msg("out of memory".into()),
    };
    let source = std::error::Error::source(&err).expect("a Candle error has a source");
    assert!(source.to_string().contains("out of memory"));
    assert_mentions(&err.to_string(), &["softmax", "out of memory"]);
}

// ---------------------------------------------------------------------------------------------
// Empty inputs are valid: the calls succeed with empty (or correctly shaped) results, on every
// executor.

/// Runs `f` once per executor.
fn each_mode(f: impl Fn()) {
    for mode in [Mode::Eager, Mode::Fused] {
        eprintln!("mode {mode:?}");
        with_mode(mode, &f);
    }
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn empty_rows() {
    each_mode(|| {
        assert_eq!(common::softmax(&zeros(&[0, 5])).unwrap().dims(), [0, 5]);
        assert_eq!(common::logsumexp(&zeros(&[0, 5])).unwrap().dims(), [0, 1]);
        let (h, y) = common::add_rms_norm(&zeros(&[0, 4]), &zeros(&[0, 4]), &randn(&[4]), 1e-6).unwrap();
        assert_eq!((h.dims(), y.dims()), ([0, 4].as_slice(), [0, 4].as_slice()));
        assert_eq!(
            common::rms_norm(&zeros(&[2, 0, 4]), &randn(&[4]), 1e-6)
                .unwrap()
                .dims(),
            [2, 0, 4]
        );
    });
}

#[test]
fn empty_reduced_axis() {
    each_mode(|| {
        // Reductions over a size-0 axis: the results are empty too, or take the reduction's value on
        // no elements (logsumexp of nothing is -inf).
        assert_eq!(common::softmax(&zeros(&[3, 0])).unwrap().dims(), [3, 0]);
        assert_eq!(common::gelu(&zeros(&[3, 0])).unwrap().dims(), [3, 0]);
        let lse = common::logsumexp(&zeros(&[3, 0])).unwrap();
        assert_eq!(lse.dims(), [3, 1]);
        let values = lse.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values.iter().all(|v| *v == f32::NEG_INFINITY), "{values:?}");
        let (m, c) = common::center_columns(&zeros(&[0, 3])).unwrap();
        assert_eq!((m.dims(), c.dims()), ([1, 3].as_slice(), [0, 3].as_slice()));
    });
}

#[test]
fn empty_matmul_and_layout_ops() {
    each_mode(|| {
        // LoRA with no input features: the products are sums of nothing, zeros.
        let (x, w, a, b) = (zeros(&[2, 0]), zeros(&[0, 3]), zeros(&[0, 1]), randn(&[1, 3]));
        let y = common::lora(&x, &w, &a, &b, 0.5).unwrap();
        assert_eq!(y.dims(), [2, 3]);
        assert_eq!(y.sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        // RoPE with no positions, and with no head dim.
        let y = common::rope(&zeros(&[1, 2, 0, 4]), &zeros(&[0, 2]), &zeros(&[0, 2])).unwrap();
        assert_eq!(y.dims(), [1, 2, 0, 4]);
        let y = common::rope(&zeros(&[1, 2, 3, 0]), &zeros(&[3, 0]), &zeros(&[3, 0])).unwrap();
        assert_eq!(y.dims(), [1, 2, 3, 0]);
        // Attention with no queries and no keys.
        let (q, k, mask) = (zeros(&[1, 2, 0, 4]), zeros(&[1, 2, 0, 4]), zeros(&[0, 0]));
        assert_eq!(
            common::attention(&q, &k, &mask, 0.5).unwrap().dims(),
            [1, 2, 0, 0]
        );
    });
}
