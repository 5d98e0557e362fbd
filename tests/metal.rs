//! The Metal backend beyond the shared numeric suite (tests/fused.rs and tests/eager.rs run every
//! example graph on Metal too, through `test_device!`): Metal's own compiler on every generated
//! kernel, each launch shape the runtime picks against the same graph run eagerly on the CPU in
//! f64, first calls from many threads at once, and the async twins.
//!
//! Only a Mac builds this (`cargo test --features metal`); every test skips loudly where no Metal
//! device answers. Nobody has run it yet: see docs/testing.md, "Metal".
#![cfg(feature = "metal")]

#[macro_use]
#[allow(unused_macros)]
mod common;

// The examples' graphs, linked into this binary; their `main`s go unused.
#[allow(dead_code)]
#[path = "../examples/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[allow(dead_code)]
#[path = "../examples/serve.rs"]
mod serve;

use candle_core::{DType, Device, Result, Tensor};
use common::{assert_close, tolerance};
use graph_runtime::ir::Step;
use graph_runtime::testing::metal::{covering_configs, pipeline};
use graph_runtime::{lazy_graph, with_mode, Mode};

fn fused<T>(f: impl FnOnce() -> T) -> T {
    with_mode(Mode::Fused, f)
}

/// Every generated kernel of the test and example graphs compiles with Metal's compiler in
/// every configuration of `covering_configs`: what tests/msl.rs can only approximate with clang.
#[test]
fn every_generated_kernel_compiles_with_metal() {
    let Some(Device::Metal(metal)) = common::metal_device() else {
        return;
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for graph in graph_runtime::graphs() {
        for step in graph.plan() {
            if let Step::Kernel(k) = step {
                for config in covering_configs(k) {
                    count += 1;
                    if let Err(e) = pipeline(&metal, k, &config) {
                        failures.push(format!("{} with {config:?}: {e}", k.name));
                    }
                }
            }
        }
    }
    assert!(count >= 100, "only {count} kernel configurations found");
    assert!(
        failures.is_empty(),
        "{} failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
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
    let dtype = inputs[0].dtype();
    let exact: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(&Device::Cpu)?.to_dtype(DType::F64))
        .collect::<Result<_>>()?;
    let got = fused(|| f(inputs)).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = with_mode(Mode::Eager, || f(&exact)).unwrap_or_else(|e| panic!("{what}: {e}"));
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g.device().is_metal(), "{what}: output {k} left the GPU");
        assert_eq!(g.dtype(), dtype, "{what}: output {k}");
        assert_close(g, w, tolerance(dtype), &format!("{what}, output {k}"))?;
    }
    Ok(())
}

/// Row lengths that reach every row-kernel shape: a thread per row (1, 3), part of a simdgroup
/// (7, 32, 100), a simdgroup (127, 1000, 1024), a threadgroup with rows in registers (4096, 4099
/// unaligned, 32000), and a threadgroup re-reading rows that no longer fit (70000).
const ROW_LENGTHS: [usize; 12] = [1, 3, 7, 32, 100, 127, 1000, 1024, 4096, 4099, 32000, 70000];

#[test]
fn every_launch_shape_matches_f64() -> Result<()> {
    let Some(dev) = common::metal_device() else {
        return Ok(());
    };
    let mut rng = common::rng();
    for dtype in [DType::BF16, DType::F32, DType::F16] {
        for d in ROW_LENGTHS {
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
                check(&what("gelu_erf"), std::slice::from_ref(&x), |t| {
                    Ok(vec![common::gelu_erf(&t[0])?])
                })?;
                // Misaligned and strided rows take the scalar path.
                let wide = randn(&mut rng, &[n, d + 1], dtype, &dev)?;
                let shifted = wide.narrow(1, 1, d)?;
                check(&what("softmax of a shifted view"), &[shifted], |t| {
                    Ok(vec![common::softmax(&t[0])?])
                })?;
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

lazy_graph! {
    /// Used by no other test: its kernel's first call is the one under test.
    fn first_call(x: Tensor[N, D], w: Tensor[D]) -> Tensor[N, D] {
        softmax(x * w, -1) + 0.25
    }
}

/// Sixteen threads make the same first call at once: one compiles, the others wait for it, and
/// all get the right values.
#[test]
fn first_calls_from_many_threads_at_once() -> Result<()> {
    let Some(dev) = common::metal_device() else {
        return Ok(());
    };
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
    Ok(())
}

/// The async twins give what the synchronous functions give, from many calls in flight at once.
#[test]
fn async_equals_sync() -> Result<()> {
    let Some(dev) = common::metal_device() else {
        return Ok(());
    };
    let mut rng = common::rng();
    for dtype in [DType::F32, DType::BF16] {
        let xs: Vec<Tensor> = (0..8)
            .map(|_| randn(&mut rng, &[64, 1000], dtype, &dev))
            .collect::<Result<_>>()?;
        let w = randn(&mut rng, &[1000], dtype, &dev)?;
        let futures: Vec<_> = xs.iter().map(|x| common::rms_norm_async(x, &w, 1e-6)).collect();
        let got = futures::executor::block_on(futures::future::join_all(futures));
        for (x, got) in xs.iter().zip(got) {
            let got = got.expect("async runs");
            let want = fused(|| common::rms_norm(x, &w, 1e-6)).expect("sync runs");
            assert_close(&got, &want, 0.0, &format!("rms_norm_async {dtype:?}"))?;
        }
    }
    Ok(())
}
