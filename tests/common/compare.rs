//! Comparing results: the per-dtype tolerances (stated once), the relative error, and
//! [`check_case`], which runs one case against its f64 reference.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use super::{Case, Sizes};

/// The largest allowed [`rel_err`] of a result stored as `dtype`, against the f64 reference
/// computed from the same (already rounded) inputs. The one place tolerances are stated.
///
/// Graphs compute f16/bf16/f32 in f32 and f64 in f64, so the error is the compute type's
/// accumulated rounding plus the final rounding to the storage type. Observed worst cases of the
/// eager executor over thousands of random draws (rows up to 20 000, see [`Sizes`]) in brackets:
/// - f64 [7e-15]: only f64 reordering; 1e-10 leaves room for any summation order.
/// - f32 [1e-6 for row ops; 9e-6 for LoRA, a 20 000-long matmul inner dim]: a sequential f32 sum
///   of n signed terms is off by about 2^-24 * sqrt(n/2) of its RMS (6e-6 for n = 20 000), with
///   outliers at several times that; 5e-5 admits any honest summation order (one accumulator,
///   SIMD lanes, threads) at that length, and still fails any real bug.
/// - f16 [4.9e-4 = 2^-11, one rounding]: 2e-3 allows four roundings in the half type (a kernel
///   that stores an intermediate as f16, an output rounded then reused).
/// - bf16 [3.9e-3 = 2^-8, one rounding]: 1.6e-2 allows the same four; it is also
///   `torch.testing`'s bf16 default.
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-10,
        DType::F32 => 5e-5,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        other => panic!("no tolerance for {other:?}: graphs compute in float types only"),
    }
}

/// The largest allowed [`rel_err`] between a graph and candle-nn's fused op for the same inputs
/// (rows up to 67 elements). candle-nn computes f32 and f64 as we do, so those agree within
/// [`tolerance`]. In f16/bf16 its CPU softmax runs exp, max, sum and division in the half type and
/// its rope multiplies and adds in it: observed up to 4.5e-3 (f16) and 3.3e-2 (bf16) from the f64
/// result, about twice our tolerance, so the halves get four times it.
pub fn candle_nn_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 4.0 * tolerance(dtype),
        _ => tolerance(dtype),
    }
}

/// The dtypes every numeric test runs in.
pub const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// [`rel_err`] without operand magnitudes.
pub fn max_rel_err(actual: &Tensor, reference: &Tensor) -> Result<f64> {
    rel_err(actual, reference, None)
}

/// `max_i |a_i - r_i| / max(|r_i|, rms(r), m_i)`: the relative error of each element, where
/// elements much smaller than the tensor's RMS count relative to the RMS instead, and elements
/// much smaller than their operands' magnitude `m_i` (if given) relative to that.
///
/// Pure relative error would fail honest results wherever a value cancels to near zero (a
/// centred layer-norm input, log_softmax of the largest entry): the absolute error there scales
/// with the operands, not with the result. The RMS covers that for tensors of many elements;
/// `m` covers pointwise functions in their tails, where one element can be alone: `gelu(-10)` is
/// `0.5 * x * (1 + tanh(-8.6))`, whose `1 + tanh` cancels, so its error is a fraction of `|x|`,
/// not of the 1e-23 result. NaN where the reference is not (or the reverse) is infinite error.
pub fn rel_err(actual: &Tensor, reference: &Tensor, magnitude: Option<&Tensor>) -> Result<f64> {
    let a = flat_f64(actual)?;
    let r = flat_f64(reference)?;
    assert_eq!(a.len(), r.len(), "compared tensors differ in size");
    let m = match magnitude {
        Some(m) => flat_f64(&m.broadcast_as(reference.shape())?)?,
        None => vec![0.0; r.len()],
    };
    if r.is_empty() {
        return Ok(0.0);
    }
    let rms = (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt();
    let mut worst = 0f64;
    for ((&a, &r), &m) in a.iter().zip(&r).zip(&m) {
        if a == r || (a.is_nan() && r.is_nan()) {
            continue; // equal infinities, or the mean of nothing on both sides
        }
        let err = (a - r).abs() / r.abs().max(rms).max(m).max(f64::MIN_POSITIVE);
        worst = worst.max(if err.is_nan() { f64::INFINITY } else { err });
    }
    Ok(worst)
}

fn flat_f64(t: &Tensor) -> Result<Vec<f64>> {
    t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1()
}

/// Asserts equal shapes and `max_rel_err(actual, reference) <= tol`, naming `what` on failure.
pub fn assert_close(actual: &Tensor, reference: &Tensor, tol: f64, what: &str) -> Result<()> {
    assert_close_scaled(actual, reference, None, tol, what)
}

/// [`assert_close`] with operand magnitudes: see [`rel_err`].
pub fn assert_close_scaled(
    actual: &Tensor,
    reference: &Tensor,
    magnitude: Option<&Tensor>,
    tol: f64,
    what: &str,
) -> Result<()> {
    assert_eq!(actual.dims(), reference.dims(), "{what}: shapes differ");
    let err = rel_err(actual, reference, magnitude)?;
    assert!(
        err <= tol,
        "{what}: max relative error {err:e} exceeds {tol:e} (shape {:?})",
        actual.dims()
    );
    Ok(())
}

/// Runs `case` on inputs of `sizes` stored as `dtype` on `device`, and checks every output's
/// dtype, shape, device and values against the f64 reference. Returns the largest error seen.
pub fn check_case(case: &Case, rng: &mut StdRng, sizes: Sizes, dtype: DType, device: &Device) -> Result<f64> {
    let drawn = (case.draw)(rng, sizes)?;
    if device.is_cuda() && drawn.tensors.iter().any(|t| t.elem_count() == 0) {
        // Candle 0.11 cannot make an empty CUDA tensor (its zero-byte allocation fails with
        // CUDA_ERROR_INVALID_VALUE), so no graph can receive one there.
        eprintln!(
            "**** SKIPPED on CUDA: {} with empty inputs (Candle cannot allocate them) ****",
            case.name
        );
        return Ok(0.0);
    }
    let stored = drawn.to(dtype, device)?;
    let mut exact = stored.to(DType::F64, &Device::Cpu)?;
    // The fused path on a GPU leaves matmuls in the storage dtype (their libraries accumulate
    // halves in f32 and round the products once); the CPU and the eager path multiply halves in
    // f32.
    let half = matches!(dtype, DType::F16 | DType::BF16);
    let fused_gpu = graph_runtime::mode() == graph_runtime::Mode::Fused && !device.is_cpu();
    exact.products = if half && !fused_gpu { DType::F32 } else { dtype };
    let what = format!(
        "{} in {dtype:?} on {:?}, inputs {:?}",
        case.name,
        device.location(),
        stored.shapes()
    );
    let outputs = (case.graph)(&stored).unwrap_or_else(|e| panic!("{what}: {e}"));
    let expected = (case.reference)(&exact)?;
    let magnitudes = match case.magnitude {
        Some(f) => f(&exact)?.into_iter().map(Some).collect(),
        None => vec![None; expected.len()],
    };
    assert_eq!(outputs.len(), expected.len(), "{what}: output count");
    let mut worst = 0f64;
    for (k, ((out, exp), mag)) in outputs.iter().zip(&expected).zip(&magnitudes).enumerate() {
        let what = format!("{what}, output {k}");
        assert_eq!(out.dtype(), dtype, "{what}: dtype");
        assert!(out.device().same_device(device), "{what}: device");
        assert_close_scaled(out, exp, mag.as_ref(), tolerance(dtype), &what)?;
        worst = worst.max(rel_err(out, exp, mag.as_ref())?);
    }
    Ok(worst)
}
