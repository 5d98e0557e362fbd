//! CUDA graph capture (`graph_runtime::cuda_graph`): replays equal uncaptured calls (generated
//! row and column kernels, cuBLAS matmuls, Candle's reductions and broadcasts, whose layouts
//! Candle uploads), take new input values, several graphs live side by side, a dropped graph
//! gives its memory back, and a first compile or a host copy during a capture fails with an
//! error that says what it was, leaving the device usable.
//!
//! Every test skips loudly where no GPU answers.
#![cfg(feature = "cuda")]

#[macro_use]
#[allow(unused_macros)]
mod common;

use candle_core::{DType, Device, Result, Tensor, D};
use graph_runtime::cuda_graph::{self, CudaGraph};
use graph_runtime::{lazy_graph, with_mode, Error, Mode};

/// One test at a time: a capture records whatever is queued on the device's stream, so no other
/// thread may use the device while one runs (`capture`'s safety contract), and the tests share
/// one device.
static DEVICE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    DEVICE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`cuda_graph::capture`] for these tests, which hold [`alone`] and drop no tensor made before.
fn capture<'a, T>(
    device: &Device,
    work: impl FnMut() -> Result<T> + 'a,
) -> graph_runtime::Result<CudaGraph<'a, T>> {
    // SAFETY: every test holds `alone()` while it uses the device, and no closure below drops a
    // tensor it did not make.
    unsafe { cuda_graph::capture(device, work) }
}

lazy_graph! {
    fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }
    fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        softmax(x, -1)
    }
    /// A column kernel: two launches, partial results in scratch memory.
    fn column_sums(x: Tensor[N, D]) -> Tensor[1, D] {
        sum(x * x, 0)
    }
    /// Called for the first time inside a capture by one test only.
    fn never_warmed(x: Tensor[N, D]) -> Tensor[N, D] {
        tanh(x) * 3.0
    }
}

fn randn(rng: &mut rand::rngs::StdRng, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    common::randn(rng, shape, 0.0, 1.0)?
        .to_dtype(dtype)?
        .to_device(device)
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()
}

/// The whole step captured below: generated row, column and softmax kernels, Candle ops (a
/// cuBLAS matmul, an affine and a sum), and a generated kernel reading Candle's result. The tests
/// before it capture its parts one at a time.
fn step(x: &Tensor, w: &Tensor, m: &Tensor) -> Result<Vec<Tensor>> {
    let h = rms_norm(x, w, 1e-5)?;
    let s = column_sums(&h)?;
    let p = softmax(&(h.matmul(m)? * 0.5)?)?;
    let total = p
        .sum_keepdim(D::Minus1)?
        .broadcast_add(&s.sum_keepdim(D::Minus1)?)?;
    Ok(vec![h, total])
}

/// Captures `work` on an input `[8, 4096]` (with a weight `[4096]` and a matrix `[4096, 64]`)
/// in f32 and bf16: the capture's own replay equals the uncaptured call, and four replays after
/// new input values are written equal uncaptured calls on them, bit for bit.
fn replays_equal_uncaptured(
    what: &str,
    work: fn(&Tensor, &Tensor, &Tensor) -> Result<Vec<Tensor>>,
) -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let _alone = alone();
    let mut rng = common::rng();
    for dtype in [DType::F32, DType::BF16] {
        let (n, d) = (8, 4096);
        let x = randn(&mut rng, &[n, d], dtype, &dev)?;
        let w = randn(&mut rng, &[d], dtype, &dev)?;
        let m = randn(&mut rng, &[d, 64], dtype, &dev)?;
        with_mode(Mode::Fused, || -> Result<()> {
            // Warm-up: kernels compile, Candle loads its modules and cuBLAS its handle.
            let first = work(&x, &w, &m)?;
            let (x, w, m) = (&x, &w, &m);
            let graph = capture(&dev, move || work(x, w, m))?;
            // Capture replays once: the outputs hold the results for the inputs as they were.
            for (k, (got, want)) in graph.outputs().iter().zip(&first).enumerate() {
                assert_eq!(
                    values(got)?,
                    values(want)?,
                    "{what} {dtype:?}: first replay, output {k}"
                );
            }
            for round in 0..4 {
                let next = randn(&mut rng, &[n, d], dtype, &dev)?;
                cuda_graph::write(x, &next)?;
                graph.replay()?;
                // The same kernels on the same values, uncaptured: equal bit for bit.
                let want = work(&next, w, m)?;
                for (k, (got, want)) in graph.outputs().iter().zip(&want).enumerate() {
                    assert_eq!(
                        values(got)?,
                        values(want)?,
                        "{what} {dtype:?}: replay {round}, output {k}"
                    );
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[test]
fn replays_row_kernels() -> Result<()> {
    replays_equal_uncaptured("rms_norm, softmax", |x, w, _| {
        let h = rms_norm(x, w, 1e-5)?;
        Ok(vec![softmax(&h)?, h])
    })
}

#[test]
fn replays_a_column_kernel() -> Result<()> {
    replays_equal_uncaptured("column_sums", |x, _, _| Ok(vec![column_sums(x)?]))
}

#[test]
fn replays_a_cublas_matmul_and_its_freed_temporaries() -> Result<()> {
    replays_equal_uncaptured("matmul, softmax", |x, _, m| {
        Ok(vec![softmax(&(x.matmul(m)? * 0.5)?)?])
    })
}

#[test]
fn replays_candle_reductions() -> Result<()> {
    replays_equal_uncaptured("sum_keepdim, broadcast_add", |x, w, _| {
        let s = x.sum_keepdim(D::Minus1)?;
        Ok(vec![s.broadcast_add(&w.sum_keepdim(D::Minus1)?)?])
    })
}

#[test]
fn replays_equal_uncaptured_calls_and_take_new_inputs() -> Result<()> {
    replays_equal_uncaptured("the whole step", step)
}

#[test]
fn several_graphs_live_side_by_side() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let _alone = alone();
    let mut rng = common::rng();
    let dtype = DType::F32;
    let a = randn(&mut rng, &[4, 1000], dtype, &dev)?;
    let w = randn(&mut rng, &[1000], dtype, &dev)?;
    let b = randn(&mut rng, &[64, 300], dtype, &dev)?;
    with_mode(Mode::Fused, || -> Result<()> {
        rms_norm(&a, &w, 1e-6)?;
        softmax(&b)?;
        let first = capture(&dev, || Ok(rms_norm(&a, &w, 1e-6)?))?;
        let second = capture(&dev, || Ok(softmax(&b)?))?;
        for round in 0..3 {
            let (na, nb) = (
                randn(&mut rng, &[4, 1000], dtype, &dev)?,
                randn(&mut rng, &[64, 300], dtype, &dev)?,
            );
            cuda_graph::write(&a, &na)?;
            cuda_graph::write(&b, &nb)?;
            // In either order: each graph reads its own inputs and writes its own outputs.
            if round % 2 == 0 {
                first.replay()?;
                second.replay()?;
            } else {
                second.replay()?;
                first.replay()?;
            }
            assert_eq!(
                values(first.outputs())?,
                values(&rms_norm(&na, &w, 1e-6)?)?,
                "round {round}: first graph"
            );
            assert_eq!(
                values(second.outputs())?,
                values(&softmax(&nb)?)?,
                "round {round}: second graph"
            );
        }
        // One dropped, the other replays on.
        drop(first);
        let nb = randn(&mut rng, &[64, 300], dtype, &dev)?;
        cuda_graph::write(&b, &nb)?;
        second.replay()?;
        assert_eq!(
            values(second.outputs())?,
            values(&softmax(&nb)?)?,
            "after the other graph was dropped"
        );
        Ok(())
    })
}

#[test]
fn a_dropped_graph_gives_its_memory_back() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let _alone = alone();
    let mut rng = common::rng();
    // 64 MiB inputs: the capture's scratch (softmax of a scaled copy) and output are as large.
    let x = randn(&mut rng, &[4096, 4096], DType::F32, &dev)?;
    let run = || -> Result<Tensor> { Ok(softmax(&(&x * 2.0)?)?) };
    with_mode(Mode::Fused, || -> Result<()> {
        run()?;
        cuda_graph::trim(&dev)?;
        let before = cuda_graph::graph_memory(&dev).expect("a CUDA device reports graph memory");
        let graph = capture(&dev, run)?;
        graph.replay()?;
        dev.synchronize()?;
        let held = cuda_graph::graph_memory(&dev).expect("graph memory");
        eprintln!("graph memory: {before} bytes before, {held} with the graph");
        assert!(
            held >= before + (64 << 20),
            "the graph holds its output at least: {held} vs {before}"
        );
        drop(graph);
        cuda_graph::trim(&dev)?;
        let after = cuda_graph::graph_memory(&dev).expect("graph memory");
        eprintln!("graph memory after the drop: {after} bytes");
        assert!(
            after <= before,
            "a dropped graph keeps {after} bytes, {before} before it"
        );
        Ok(())
    })
}

#[test]
fn work_a_capture_cannot_hold_fails_clearly() -> Result<()> {
    let Some(dev) = common::cuda_device() else {
        return Ok(());
    };
    let _alone = alone();
    let mut rng = common::rng();
    let x = randn(&mut rng, &[16, 256], DType::F32, &dev)?;
    with_mode(Mode::Fused, || -> Result<()> {
        // The warm-up compiles what the closure calls; a kernel first called by the recorded
        // run (here, on the closure's second run) would compile during the capture: refused.
        let runs = std::cell::Cell::new(0);
        let err = capture(&dev, || {
            runs.set(runs.get() + 1);
            match runs.get() {
                1 => x.exp(),
                _ => Ok(never_warmed(&x)?),
            }
        })
        .expect_err("a first compile fails the capture");
        let msg = err.to_string();
        eprintln!("first use in a capture: {msg}");
        assert!(matches!(err, Error::Capture(_)), "{msg}");
        assert!(
            msg.contains("never_warmed") && msg.contains("before capturing"),
            "{msg}"
        );
        // Not remembered as a failure: the kernel compiles at its next call, then captures.
        let y = never_warmed(&x)?;
        let want = with_mode(Mode::Eager, || never_warmed(&x))?;
        assert_eq!(values(&y)?, values(&want)?, "the call after the refused capture");
        let graph = capture(&dev, || Ok(never_warmed(&x)?))?;
        assert_eq!(values(graph.outputs())?, values(&y)?, "captured after a warm-up");

        // A copy to the host in the recorded run: refused by Candle, not recorded.
        let runs = std::cell::Cell::new(0);
        let err = capture(&dev, || {
            runs.set(runs.get() + 1);
            let v = x.exp()?;
            if runs.get() > 1 {
                v.to_vec2::<f32>()?;
            }
            Ok(v)
        })
        .expect_err("a host copy fails the capture");
        eprintln!("a host copy in a capture: {err}");
        assert!(err.to_string().contains("not permitted while capturing"), "{err}");
        // The device is usable after it.
        assert_eq!(values(&x.exp()?)?.len(), x.elem_count(), "after the refused copy");

        // Not a CUDA device.
        let cpu = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let err = capture(&Device::Cpu, || cpu.exp()).expect_err("no CUDA device");
        assert!(err.to_string().contains("needs a CUDA device"), "{err}");

        // Writing inputs: shape and layout are checked.
        let t = x.t()?;
        let err = cuda_graph::write(&x, &t).expect_err("another shape");
        assert!(err.to_string().contains("shape"), "{err}");
        let err = cuda_graph::write(&t, &t.contiguous()?).expect_err("a view");
        assert!(err.to_string().contains("not contiguous"), "{err}");
        Ok(())
    })
}
