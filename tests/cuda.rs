//! The CUDA backend beyond the shared numeric suite (tests/fused.rs and tests/eager.rs run every
//! example graph on CUDA too): each launch shape the runtime picks (a thread, a sub-warp, a warp
//! or a block per row; rows in registers or re-read; 16-byte or scalar accesses), against the
//! same graph run eagerly on the CPU in f64; candle-nn's fused CUDA ops at the benchmark's
//! shapes; first calls from many threads at once; the disk cache; and 64-bit indexing.
//!
//! Every test skips loudly where no GPU answers.
#![cfg(feature = "cuda")]

#[macro_use]
#[allow(unused_macros)]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{assert_close, candle_nn_tolerance, tolerance};
use graph_runtime::{lazy_graph, with_mode, Mode};

fn fused<T>(f: impl FnOnce() -> T) -> T {
    with_mode(Mode::Fused, f)
}

/// Standard-normal values of `shape`, drawn on the CPU, stored as `dtype` on `device`.
fn randn(rng: &mut rand::rngs::StdRng, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    common::randn(rng, shape, 0.0, 1.5)?
        .to_dtype(dtype)?
        .to_device(device)
}

/// `f` on `inputs` fused on the GPU against `f` run eagerly on the CPU in f64 from the same
/// stored values.
fn check(
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> graph_runtime::Result<Vec<Tensor>>,
) -> Result<()> {
    // Seen with --nocapture: where a run that stalls got to.
    eprintln!("checking {what}");
    let dtype = inputs[0].dtype();
    let exact: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(&Device::Cpu)?.to_dtype(DType::F64))
        .collect::<Result<_>>()?;
    let got = fused(|| f(inputs)).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = with_mode(Mode::Eager, || f(&exact)).unwrap_or_else(|e| panic!("{what}: {e}"));
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g.device().is_cuda(), "{what}: output {k} left the GPU");
        assert_eq!(g.dtype(), dtype, "{what}: output {k}");
        assert_close(g, w, tolerance(dtype), &format!("{what}, output {k}"))?;
    }
    Ok(())
}

/// Row lengths that reach every row-kernel shape: a thread per row (1, 3), a sub-warp (7, 32,
/// 100), a warp (127, 1000, 1024), a block with rows in registers (4096, 4099 unaligned, 32000),
/// and a block re-reading rows that no longer fit (70000, and 300000 in f64).
const ROW_LENGTHS: [usize; 12] = [1, 3, 7, 32, 100, 127, 1000, 1024, 4096, 4099, 32000, 70000];

#[test]
fn every_launch_shape_matches_f64() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let mut rng = common::rng();
    for dtype in [DType::BF16, DType::F32, DType::F16, DType::F64] {
        for &d in ROW_LENGTHS
            .iter()
            .chain(if dtype == DType::F64 { &[300000][..] } else { &[] })
        {
            for n in [1, 5, 67] {
                let what = |g: &str| format!("{g} [{n}, {d}] {dtype:?}");
                let x = randn(&mut rng, &[n, d], dtype, &dev)?;
                let r = randn(&mut rng, &[n, d], dtype, &dev)?;
                let w = randn(&mut rng, &[d], dtype, &dev)?;
                let b = randn(&mut rng, &[d], dtype, &dev)?;
                check(&what("softmax"), std::slice::from_ref(&x), |t| {
                    Ok(vec![common::softmax(&t[0])?])
                })?;
                check(&what("logsumexp"), std::slice::from_ref(&x), |t| {
                    Ok(vec![common::logsumexp(&t[0])?])
                })?;
                check(&what("layer_norm"), &[x.clone(), w.clone(), b.clone()], |t| {
                    Ok(vec![common::layer_norm(&t[0], &t[1], &t[2], 1e-5)?])
                })?;
                check(&what("add_rms_norm"), &[x.clone(), r.clone(), w.clone()], |t| {
                    let (h, y) = common::add_rms_norm(&t[0], &t[1], &t[2], 1e-6)?;
                    Ok(vec![h, y])
                })?;
                check(&what("gelu"), std::slice::from_ref(&x), |t| {
                    Ok(vec![common::gelu(&t[0])?])
                })?;
                // Misaligned and strided rows take the scalar path.
                let wide = randn(&mut rng, &[n, d + 1], dtype, &dev)?;
                let shifted = wide.narrow(1, 1, d)?;
                check(&what("softmax of a shifted view"), &[shifted], |t| {
                    Ok(vec![common::softmax(&t[0])?])
                })?;
                let transposed = randn(&mut rng, &[d, n], dtype, &dev)?.t()?;
                check(
                    &what("rms_norm of a transposed view"),
                    &[transposed.unsqueeze(0)?, w.clone()],
                    |t| Ok(vec![common::rms_norm(&t[0], &t[1], 1e-6)?]),
                )?;
            }
        }
        // Rotary embeddings: rows of 2 to 256, tables broadcast over batch and heads.
        for d in [2, 6, 64, 128, 256] {
            let (b, h, s) = (2, 3, 17);
            let x = randn(&mut rng, &[b, h, s, d], dtype, &dev)?;
            let cos = randn(&mut rng, &[s, d / 2], dtype, &dev)?;
            let sin = randn(&mut rng, &[s, d / 2], dtype, &dev)?;
            check(
                &format!("rope [{b}, {h}, {s}, {d}] {dtype:?}"),
                &[x, cos, sin],
                |t| Ok(vec![common::rope(&t[0], &t[1], &t[2])?]),
            )?;
        }
    }
    Ok(())
}

/// candle-nn's fused CUDA kernels at the GPU benchmark's shapes agree with ours, within
/// `candle_nn_tolerance` (candle-nn rounds intermediates of halves to the half type).
#[test]
fn equals_candle_nn_fused_ops_at_benchmark_shapes() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let mut rng = common::rng();
    for dtype in [DType::BF16, DType::F32] {
        let tol = candle_nn_tolerance(dtype);
        for (n, d) in [(4096, 4096), (32768, 1024), (512, 32000)] {
            let x = randn(&mut rng, &[n, d], dtype, &dev)?;
            let ours = fused(|| common::softmax(&x)).expect("softmax runs");
            let theirs = candle_nn::ops::softmax_last_dim(&x)?;
            assert_close(&ours, &theirs, tol, &format!("softmax [{n}, {d}] {dtype:?}"))?;
        }
        for n in [8192, 1] {
            let x = randn(&mut rng, &[1, n, 4096], dtype, &dev)?;
            let w = randn(&mut rng, &[4096], dtype, &dev)?;
            let b = randn(&mut rng, &[4096], dtype, &dev)?;
            let ours = fused(|| common::rms_norm(&x, &w, 1e-6)).expect("rms_norm runs");
            let theirs = candle_nn::ops::rms_norm(&x, &w, 1e-6)?;
            assert_close(&ours, &theirs, tol, &format!("rms_norm [{n}, 4096] {dtype:?}"))?;
            let x2 = x.squeeze(0)?;
            let ours = fused(|| common::layer_norm(&x2, &w, &b, 1e-5)).expect("layer_norm runs");
            let theirs = candle_nn::ops::layer_norm(&x2, &w, &b, 1e-5)?;
            assert_close(&ours, &theirs, tol, &format!("layer_norm [{n}, 4096] {dtype:?}"))?;
        }
        let x = randn(&mut rng, &[2, 32, 512, 128], dtype, &dev)?;
        let cos = randn(&mut rng, &[512, 64], dtype, &dev)?;
        let sin = randn(&mut rng, &[512, 64], dtype, &dev)?;
        let ours = fused(|| common::rope(&x, &cos, &sin)).expect("rope runs");
        let theirs = candle_nn::rotary_emb::rope(&x, &cos, &sin)?;
        assert_close(&ours, &theirs, tol, &format!("rope [2, 32, 512, 128] {dtype:?}"))?;
    }
    Ok(())
}

lazy_graph! {
    /// Used by no other test: its kernel's first call is the one under test.
    fn first_call(x: Tensor[N, D], w: Tensor[D]) -> Tensor[N, D] {
        softmax(x * w, -1) + 0.25
    }
}

/// Sixteen threads make the same first call at once (one compiles, the others wait for it), and
/// the compiled kernel lands in the disk cache.
#[test]
fn first_calls_from_many_threads_at_once() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("lazy-graph-cache-test-{}", std::process::id()));
    graph_runtime::set_kernel_cache_dir(Some(dir.clone()));
    let mut rng = common::rng();
    let x = randn(&mut rng, &[33, 257], DType::F32, &dev)?;
    let w = randn(&mut rng, &[257], DType::F32, &dev)?;
    let barrier = std::sync::Barrier::new(16);
    let outputs: Vec<Tensor> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    fused(|| first_call(&x, &w)).expect("first call runs")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    let exact = |t: &Tensor| t.to_device(&Device::Cpu)?.to_dtype(DType::F64);
    let (xe, we) = (exact(&x)?, exact(&w)?);
    let want = with_mode(Mode::Eager, || first_call(&xe, &we)).expect("eager runs");
    for (i, out) in outputs.iter().enumerate() {
        assert_close(out, &want, tolerance(DType::F32), &format!("thread {i}"))?;
    }
    let cached: Vec<_> = std::fs::read_dir(dir.join("cuda"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        cached
            .iter()
            .any(|f| f.to_string_lossy().starts_with("first_call_k0-")),
        "no cached kernel in {dir:?}: {cached:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A view of a few elements on the CPU. Candle's `to_device` copies a view's whole storage
/// (4 GiB here, into pageable memory), so the view is made contiguous on the GPU first.
fn small(view: &Tensor) -> Result<Tensor> {
    view.contiguous()?.to_device(&Device::Cpu)
}

/// A pointwise kernel over more than 2^31 elements indexes with 64 bits: rows at the start, the
/// middle and the end are right.
#[test]
fn more_than_two_to_the_31_elements() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let (n, d) = (65537, 32768); // 2^31 + 2^15 elements, 4 GiB of bf16
    let x = (Tensor::rand(0f32, 1.0, (n, d), &dev)?.to_dtype(DType::BF16)? * 6.0)?.affine(1.0, -3.0)?;
    let y = fused(|| common::gelu(&x)).expect("gelu runs");
    for row in [0, 1, n / 2, n - 2, n - 1] {
        let xr = small(&x.narrow(0, row, 1)?)?.to_dtype(DType::F64)?;
        let want = with_mode(Mode::Eager, || common::gelu(&xr)).expect("eager runs");
        let got = small(&y.narrow(0, row, 1)?)?;
        assert_close(
            &got,
            &want,
            tolerance(DType::BF16),
            &format!("gelu row {row} of {n}"),
        )?;
    }
    // The last element of the last row, alone.
    let last = small(&y.narrow(0, n - 1, 1)?.narrow(1, d - 1, 1)?)?;
    let xl = small(&x.narrow(0, n - 1, 1)?.narrow(1, d - 1, 1)?)?.to_dtype(DType::F64)?;
    let want = with_mode(Mode::Eager, || common::gelu(&xl)).expect("eager runs");
    assert_close(&last, &want, tolerance(DType::BF16), "the last element")
}
