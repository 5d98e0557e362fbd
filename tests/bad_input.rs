//! Run-time input that is unusual or wrong, past what `tests/bind.rs` covers: sizes that
//! overflow, values too large to allocate, every non-float dtype, empty tensors in every dim
//! position, reductions over nothing, NaN and infinite scalars, views of every kind, and the
//! asynchronous twins. Each case gives a clear error (its exact variant and message) or the
//! right value, in fused and eager mode alike, and never a panic.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{assert_close, tolerance, DTYPES};
use futures::executor::block_on;
use graph_runtime::{lazy_graph, with_mode, Error, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

lazy_graph! {
    /// The outer product, flattened: `B * S` overflows for huge broadcast views.
    fn outer_flat(a: Tensor[B, 1], b: Tensor[1, S]) -> Tensor[B * S] {
        reshape(a * b, [B * S])
    }

    /// The outer product: its element count overflows for huge broadcast views.
    fn outer(a: Tensor[B, 1], b: Tensor[1, S]) -> Tensor[B, S] {
        a * b
    }

    /// A layout op alone: the output is a view of the input.
    fn tail(x: Tensor[N, D]) -> Tensor[N, 2] {
        narrow(x, -1, 1, 2)
    }

    /// Pointwise, a row reduction and a column reduction of one rank-3 tensor.
    fn three_ways(x: Tensor[A, B, C]) -> (Tensor[A, B, C], Tensor[A, B, 1], Tensor[1, B, C]) {
        (exp(x) * 2.0, sum(x, -1), max(x, 0))
    }

    /// Every reduction over the last axis.
    fn reduce_rows(x: Tensor[N, D]) -> (Tensor[N, 1], Tensor[N, 1], Tensor[N, 1], Tensor[N, 1]) {
        (sum(x, -1), mean(x, -1), max(x, -1), min(x, -1))
    }

    /// Every reduction over the first axis.
    fn reduce_columns(x: Tensor[N, D]) -> (Tensor[1, D], Tensor[1, D], Tensor[1, D], Tensor[1, D]) {
        (sum(x, 0), mean(x, 0), max(x, 0), min(x, 0))
    }

    /// A scalar parameter in a pointwise kernel and in a row kernel.
    fn scaled(x: Tensor[N, D], s: f32) -> (Tensor[N, D], Tensor[N, D]) {
        (x * s, x * rsqrt(mean(x * x, -1) + s))
    }
}

/// Runs `f` under each executor.
fn each_mode(mut f: impl FnMut(Mode) -> Result<()>) -> Result<()> {
    for mode in [Mode::Fused, Mode::Eager] {
        with_mode(mode, || f(mode))?;
    }
    Ok(())
}

/// A `[n, 1]` (or `[1, n]`) f32 view of one element: as large as asked, with no memory.
fn huge_view(n: usize, column: bool) -> Result<Tensor> {
    let one = Tensor::ones((1, 1), DType::F32, &Device::Cpu)?;
    one.broadcast_as(if column { (n, 1) } else { (1, n) })
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "message {message:?} does not mention {part:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes past `usize` and past any allocation.

#[test]
fn derived_size_overflow_is_an_overflow_error() -> Result<()> {
    // Each view is valid (2^33 elements, none stored), but B * S = 2^66.
    let (a, b) = (huge_view(1 << 33, true)?, huge_view(1 << 33, false)?);
    each_mode(|_| {
        let err = outer_flat(&a, &b).unwrap_err();
        let message = err.to_string();
        let Error::Overflow {
            func,
            what,
            size,
            symbols,
        } = err
        else {
            panic!("expected Error::Overflow, got {err:?}")
        };
        assert_eq!(
            (func, what.as_str(), size.as_str()),
            ("outer_flat", "the result", "B*S")
        );
        assert_eq!(
            symbols,
            "B = 8589934592 (from `a` dim 0), S = 8589934592 (from `b` dim 1)"
        );
        assert_mentions(
            &message,
            &["outer_flat", "`B*S`", "overflows usize", "B = 8589934592"],
        );
        Ok(())
    })
}

#[test]
fn element_count_overflow_is_too_large() -> Result<()> {
    for n in [1usize << 33, 1 << 31] {
        // 2^66 elements overflow `usize`; 2^62 f32 elements are 2^64 bytes, past isize::MAX.
        let (a, b) = (huge_view(n, true)?, huge_view(n, false)?);
        each_mode(|mode| {
            let err = outer(&a, &b).unwrap_err();
            let message = err.to_string();
            let Error::TooLarge { func, what, shape } = err else {
                panic!("{mode:?}: expected Error::TooLarge, got {err:?}")
            };
            assert_eq!((func, what.as_str(), shape), ("outer", "the result", vec![n, n]));
            assert_mentions(
                &message,
                &["outer", "the result", &format!("[{n}, {n}]"), "isize::MAX"],
            );
            Ok(())
        })?;
    }
    Ok(())
}

/// 2^50 f32 elements (4 PiB) fit in `isize` but in no machine's memory: the fused CPU kernel
/// reports the failed allocation. (Eager mode runs Candle's ops, which abort the process when
/// memory runs out, as every Candle op does; the docs say so.)
#[test]
fn allocation_failure_is_an_error_in_fused_mode() -> Result<()> {
    let (a, b) = (huge_view(1 << 25, true)?, huge_view(1 << 25, false)?);
    let err = with_mode(Mode::Fused, || outer(&a, &b)).unwrap_err();
    let message = err.to_string();
    let Error::Alloc { func, what, bytes } = err else {
        panic!("expected Error::Alloc, got {err:?}")
    };
    assert_eq!((func, what.as_str(), bytes), ("outer", "the result", 1 << 52));
    assert_mentions(
        &message,
        &["outer", "could not allocate 4503599627370496 bytes", "the result"],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dtypes.

/// Every Candle dtype that is not a float graphs compute in is refused by name, as the first
/// tensor parameter and as a later one.
#[test]
fn every_non_float_dtype_is_unsupported() -> Result<()> {
    let x = Tensor::arange(0u32, 6, &Device::Cpu)?.reshape((2, 3))?;
    let float = x.to_dtype(DType::F32)?;
    let mut seen = 0;
    for dtype in [
        DType::U8,
        DType::U32,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F8E4M3,
    ] {
        let Ok(bad) = x.to_dtype(dtype) else {
            // A dtype this Candle build cannot convert to has no tensors to pass either.
            eprintln!("{dtype:?}: Candle cannot build such a tensor here; skipped");
            continue;
        };
        seen += 1;
        each_mode(|_| {
            for (err, param) in [
                (common::softmax(&bad).unwrap_err(), "x"),
                (common::swiglu(&float, &bad).unwrap_err(), "u"),
                (block_on(common::swiglu_async(&float, &bad)).unwrap_err(), "u"),
            ] {
                let message = err.to_string();
                assert!(
                    matches!(err, Error::UnsupportedDType { param: p, actual, .. } if p == param && actual == dtype),
                    "{err:?}"
                );
                assert_mentions(&message, &[&format!("`{param}`"), &format!("{dtype:?}")]);
            }
            Ok(())
        })?;
    }
    assert!(seen >= 5, "the integer dtypes all convert");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Empty tensors and reductions over nothing.

/// A zero in each dim position: every output has the declared shape, and the reductions of
/// nothing are their documented values (the sum of nothing is 0, the maximum -inf).
#[test]
fn empty_in_every_dim_position() -> Result<()> {
    for zero in 0..3 {
        let mut dims = vec![2, 3, 4];
        dims[zero] = 0;
        let x = Tensor::zeros(dims.as_slice(), DType::F32, &Device::Cpu)?;
        each_mode(|mode| {
            let (y, s, m) = three_ways(&x)?;
            assert_eq!(y.dims(), dims, "{mode:?}");
            let (mut row, mut col) = (dims.clone(), dims.clone());
            (row[2], col[0]) = (1, 1);
            assert_eq!((s.dims(), m.dims()), (row.as_slice(), col.as_slice()), "{mode:?}");
            let sums = s.flatten_all()?.to_vec1::<f32>()?;
            assert!(
                sums.iter().all(|v| *v == 0.0),
                "{mode:?}: sum of nothing {sums:?}"
            );
            let maxima = m.flatten_all()?.to_vec1::<f32>()?;
            let nothing = zero == 0;
            assert!(
                maxima.iter().all(|v| !nothing || *v == f32::NEG_INFINITY),
                "{mode:?}: max of nothing {maxima:?}"
            );
            Ok(())
        })?;
    }
    Ok(())
}

/// Empty views whose strides or offset point past their (empty) storage: a transposed `[0, 3]`
/// steps by 1 along its 3 rows of nothing, and a narrow at the end of an empty tensor starts
/// past its last element. The fused CPU kernels indexed those (a panic, found by probing).
#[test]
fn empty_views_that_step_past_their_storage() -> Result<()> {
    let transposed = Tensor::zeros((0, 3), DType::F32, &Device::Cpu)?.t()?;
    assert_eq!(
        (transposed.dims(), transposed.stride()),
        ([3, 0].as_slice(), [1, 3].as_slice())
    );
    let narrowed = Tensor::zeros((2, 0, 4), DType::F32, &Device::Cpu)?.narrow(2, 3, 1)?;
    assert_eq!(narrowed.layout().start_offset(), 3);
    each_mode(|mode| {
        assert_eq!(common::gelu(&transposed)?.dims(), [3, 0], "{mode:?}");
        assert_eq!(common::softmax(&transposed)?.dims(), [3, 0], "{mode:?}");
        let (sum, mean, max, min) = reduce_rows(&transposed)?;
        let value = |t: &Tensor| -> Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
        assert_eq!(value(&sum)?, [0.0; 3], "{mode:?}");
        assert!(value(&mean)?.iter().all(|v| v.is_nan()), "{mode:?}");
        assert_eq!(value(&max)?, [f32::NEG_INFINITY; 3], "{mode:?}");
        assert_eq!(value(&min)?, [f32::INFINITY; 3], "{mode:?}");
        let (y, s, m) = three_ways(&narrowed)?;
        assert_eq!(
            (y.dims(), s.dims(), m.dims()),
            ([2, 0, 1].as_slice(), [2, 0, 1].as_slice(), [1, 0, 1].as_slice())
        );
        // Outputs are tensors Candle can read back (a view past its storage panics there).
        let w = Tensor::ones(31, DType::F32, &Device::Cpu)?;
        let rows = Tensor::zeros((0, 34), DType::F32, &Device::Cpu)?.narrow(1, 3, 31)?;
        for t in [
            y,
            s,
            m,
            common::layer_norm(&rows, &w, &w, 1e-5)?,
            common::gelu(&rows)?,
            tail(&rows)?,
        ] {
            assert!(t.flatten_all()?.to_vec1::<f32>()?.is_empty(), "{mode:?}");
        }
        Ok(())
    })
}

/// Over an empty axis, in every dtype and both executors: sum 0, mean NaN (0 / 0), max -inf and
/// min +inf (the identities of the reductions), over the last axis (row kernels) and the first
/// (Candle's reductions).
#[test]
fn reductions_over_an_empty_axis() -> Result<()> {
    for dtype in DTYPES {
        each_mode(|mode| {
            let rows = reduce_rows(&Tensor::zeros((3, 0), dtype, &Device::Cpu)?)?;
            let columns = reduce_columns(&Tensor::zeros((0, 3), dtype, &Device::Cpu)?)?;
            for (axis, (sum, mean, max, min)) in [("-1", rows), ("0", columns)] {
                let values = |t: &Tensor| -> Result<Vec<f64>> {
                    assert_eq!(t.dtype(), dtype);
                    t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()
                };
                let what = format!("{dtype:?} {mode:?} axis {axis}");
                assert!(values(&sum)?.iter().all(|v| *v == 0.0), "{what}: sum");
                assert!(values(&mean)?.iter().all(|v| v.is_nan()), "{what}: mean");
                assert!(
                    values(&max)?.iter().all(|v| *v == f64::NEG_INFINITY),
                    "{what}: max"
                );
                assert!(values(&min)?.iter().all(|v| *v == f64::INFINITY), "{what}: min");
            }
            Ok(())
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NaN and infinite scalars compute IEEE results; they are not errors.

#[test]
fn nan_and_infinite_scalars_compute_ieee_results() -> Result<()> {
    let x64 = Tensor::new(&[[-2.0f64, 0.0, 0.5], [3.0, -0.25, 1.0]], &Device::Cpu)?;
    for dtype in DTYPES {
        let x = x64.to_dtype(dtype)?;
        for s in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let s64 = f64::from(s);
            let scaled_ref = (&x64 * s64)?;
            let norm_ref = x64.broadcast_mul(&((x64.sqr()?.mean_keepdim(1)? + s64)?.sqrt()?.recip()?))?;
            each_mode(|mode| {
                let (y, n) = scaled(&x, s)?;
                let what = format!("{dtype:?} {mode:?} s = {s}");
                // IEEE: 0 * inf is NaN, NaN spreads, rsqrt(inf) is 0 and rsqrt(-inf) NaN.
                assert_close(&y, &scaled_ref, 0.0, &format!("x * s, {what}"))?;
                assert_close(
                    &n,
                    &norm_ref,
                    tolerance(dtype),
                    &format!("x * rsqrt(mean + s), {what}"),
                )
            })?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Views as inputs: the values of contiguous copies.

fn views(device: &Device) -> Result<()> {
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8), device)?;
    let w = Tensor::randn(1f32, 0.1, 8, device)?;
    for dtype in common::dtypes(device) {
        let (x, w) = (x.to_dtype(*dtype)?, w.to_dtype(*dtype)?);
        let expected = with_mode(Mode::Eager, || common::rms_norm(&x, &w, 1e-6))?;
        // Transposed in memory (last-dim stride 3), an offset narrow of a larger tensor, and a
        // broadcast (stride 0) batch of one row; the weight as a stride-0 view of one value
        // broadcast along with a narrow of a wider row.
        let transposed = x.transpose(1, 2)?.contiguous()?.transpose(1, 2)?;
        let narrowed = Tensor::cat(&[&x, &x], 2)?.narrow(2, 4, 8)?;
        let narrowed_copy = narrowed.contiguous()?;
        let narrowed_expected = with_mode(Mode::Eager, || common::rms_norm(&narrowed_copy, &w, 1e-6))?;
        let row = x.narrow(0, 1, 1)?.narrow(1, 2, 1)?;
        let broadcast = row.broadcast_as((2, 3, 8))?;
        let broadcast_copy = broadcast.contiguous()?;
        let broadcast_expected = with_mode(Mode::Eager, || common::rms_norm(&broadcast_copy, &w, 1e-6))?;
        let w_wide = Tensor::cat(&[&w, &w], 0)?.narrow(0, 8, 8)?;
        let tol = tolerance(*dtype);
        each_mode(|mode| {
            let what = |v: &str| format!("{v} input, {dtype:?} {mode:?}");
            assert_close(
                &common::rms_norm(&transposed, &w, 1e-6)?,
                &expected,
                tol,
                &what("transposed"),
            )?;
            assert_close(
                &common::rms_norm(&narrowed, &w, 1e-6)?,
                &narrowed_expected,
                tol,
                &what("narrowed"),
            )?;
            let y = common::rms_norm(&broadcast, &w, 1e-6)?;
            assert_close(&y, &broadcast_expected, tol, &what("broadcast"))?;
            assert_close(
                &common::rms_norm(&x, &w_wide, 1e-6)?,
                &expected,
                tol,
                &what("narrowed weight"),
            )
        })?;
    }
    Ok(())
}
test_device!(views);

// ---------------------------------------------------------------------------------------------
// The asynchronous twins fail as the synchronous calls do.

#[test]
fn async_twins_give_the_same_errors() -> Result<()> {
    let (a, b) = (huge_view(1 << 33, true)?, huge_view(1 << 33, false)?);
    let x = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu)?;
    let sync: [Error; 3] = [
        outer_flat(&a, &b).unwrap_err(),
        outer(&a, &b).unwrap_err(),
        three_ways(&x.narrow(2, 0, 2)?.to_dtype(DType::U8)?).unwrap_err(),
    ];
    let not_async: [Error; 3] = [
        block_on(outer_flat_async(&a, &b)).unwrap_err(),
        block_on(outer_async(&a, &b)).unwrap_err(),
        block_on(three_ways_async(&x.narrow(2, 0, 2)?.to_dtype(DType::U8)?)).unwrap_err(),
    ];
    for (s, n) in sync.iter().zip(&not_async) {
        assert_eq!(
            std::mem::discriminant(s),
            std::mem::discriminant(n),
            "{s:?} vs {n:?}"
        );
        assert_eq!(s.to_string(), n.to_string());
    }
    assert!(matches!(not_async[0], Error::Overflow { .. }));
    assert!(matches!(not_async[1], Error::TooLarge { .. }));
    assert!(matches!(not_async[2], Error::UnsupportedDType { .. }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Random bad and odd input to every example graph.

/// One way to spoil or twist a case's arguments.
#[derive(Clone, Copy, Debug)]
enum Twist {
    /// Tensor `k` replaced by one of a random rank, dims (0 included), dtype and layout.
    Replace(usize),
    /// Tensor `k` with one dim set to 0, 1 or 5 (zeros).
    Dim(usize),
    /// Every tensor with its own dims, one maybe zeroed, in an odd layout of equal values.
    Layouts,
    /// Every scalar NaN, an infinity, -0 or 1e38.
    Scalars,
}

fn any_tensor(rng: &mut StdRng) -> Result<Tensor> {
    let rank = rng.gen_range(0..5);
    let dims: Vec<usize> = (0..rank)
        .map(|_| [0, 1, 2, 3, 7, 16][rng.gen_range(0..6)])
        .collect();
    let dtypes = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::U8,
        DType::I64,
    ];
    let t = Tensor::randn(0f32, 1.0, dims.as_slice(), &Device::Cpu)?;
    let t = if rank >= 2 && rng.gen_bool(0.3) { t.t()? } else { t };
    t.to_dtype(dtypes[rng.gen_range(0..dtypes.len())])
}

/// `dims` (one maybe zeroed) as a transposed, narrowed, broadcast or plain tensor.
fn odd_layout(rng: &mut StdRng, dims: &[usize], dtype: DType) -> Result<Tensor> {
    let mut dims = dims.to_vec();
    let r = dims.len();
    if r > 0 && rng.gen_bool(0.3) {
        dims[rng.gen_range(0..r)] = 0;
    }
    let plain = Tensor::randn(0f32, 1.0, dims.as_slice(), &Device::Cpu)?.to_dtype(dtype)?;
    Ok(match rng.gen_range(0..4) {
        0 if r >= 2 => plain.transpose(0, r - 1)?.contiguous()?.transpose(0, r - 1)?,
        1 if r >= 1 => {
            let mut wider = dims.clone();
            wider[r - 1] += 3;
            let wide = Tensor::randn(0f32, 1.0, wider, &Device::Cpu)?.to_dtype(dtype)?;
            wide.narrow(r - 1, 3, dims[r - 1])?
        }
        2 if r >= 1 && dims[0] > 0 => plain.narrow(0, 0, 1)?.broadcast_as(dims.as_slice())?,
        _ => plain,
    })
}

/// Seeded random arguments for every example graph, bad (wrong ranks, dims, dtypes) and odd
/// (empty, strided, broadcast, narrowed, special scalars): no call panics in either executor,
/// an error in one is an error in the other, and where both succeed they agree within twice the
/// dtype's tolerance. `LG_BAD_INPUT_CASES` sets the count (default 600), `LG_BAD_INPUT_SEED`
/// the seed; a failure prints both.
#[test]
fn random_bad_input_never_panics() -> Result<()> {
    let count = std::env::var("LG_BAD_INPUT_CASES").map_or(600, |v| v.parse().expect("a count"));
    let seed = std::env::var("LG_BAD_INPUT_SEED").map_or(14, |v| v.parse().expect("a seed"));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ok, mut errors) = (0, 0);
    for i in 0..count {
        let case = &common::CASES[rng.gen_range(0..common::CASES.len())];
        let dtype = DTYPES[rng.gen_range(0..DTYPES.len())];
        let mut inputs = (case.draw)(&mut rng, common::Sizes::Small)?.to(dtype, &Device::Cpu)?;
        let k = rng.gen_range(0..inputs.tensors.len());
        let twist = [Twist::Replace(k), Twist::Dim(k), Twist::Layouts, Twist::Scalars][rng.gen_range(0..4)];
        match twist {
            Twist::Replace(k) => inputs.tensors[k] = any_tensor(&mut rng)?,
            Twist::Dim(k) => {
                let mut dims = inputs.tensors[k].dims().to_vec();
                if !dims.is_empty() {
                    let j = rng.gen_range(0..dims.len());
                    dims[j] = [0, 1, 5][rng.gen_range(0..3)];
                }
                inputs.tensors[k] = Tensor::zeros(dims, dtype, &Device::Cpu)?;
            }
            Twist::Layouts => {
                for t in inputs.tensors.iter_mut() {
                    *t = odd_layout(&mut rng, t.dims(), dtype)?;
                }
            }
            Twist::Scalars => {
                for s in inputs.scalars.iter_mut() {
                    *s = [f32::NAN, f32::INFINITY, -0.0, 1e38][rng.gen_range(0..4)];
                }
            }
        }
        let what = format!(
            "call {i} (seed {seed}): {} {dtype:?} {twist:?}, shapes {:?}",
            case.name,
            inputs.shapes()
        );
        let run = |mode| {
            let call = std::panic::AssertUnwindSafe(|| with_mode(mode, || (case.graph)(&inputs)));
            std::panic::catch_unwind(call).unwrap_or_else(|_| panic!("{what}: {mode:?} panicked"))
        };
        match (run(Mode::Fused), run(Mode::Eager)) {
            (Ok(fused), Ok(eager)) => {
                ok += 1;
                for (f, e) in fused.iter().zip(&eager) {
                    assert_eq!((f.dims(), f.dtype()), (e.dims(), e.dtype()), "{what}");
                    // Both read back, also when empty.
                    let err = common::rel_err(f, e, None)?;
                    assert!(
                        err <= 2.0 * tolerance(f.dtype()),
                        "{what}: fused and eager differ by {err:e}"
                    );
                }
            }
            (Err(f), Err(e)) => {
                errors += 1;
                assert_eq!(f.to_string(), e.to_string(), "{what}");
            }
            (f, e) => panic!(
                "{what}: fused gives {:?}, eager {:?}",
                f.map(|_| ()),
                e.map(|_| ())
            ),
        }
    }
    // Both kinds happen, so neither side of the test is vacuous.
    assert!(ok > count / 4 && errors > count / 10, "{ok} ran, {errors} failed");
    Ok(())
}
