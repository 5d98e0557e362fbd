//! The asynchronous twins: same results as the synchronous functions under every executor, work
//! off the polling thread, many concurrent calls, cancellation, and errors instead of panics.

use std::future::Future;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use graph_runtime::{lazy_graph, Error};

#[macro_use]
#[allow(unused_macros)]
mod common;

lazy_graph! {
    /// Softmax over the last axis.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let e = exp(x - max(x, -1));
        e / sum(e, -1)
    }

    pub fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f64) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    pub fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
        x.matmul(w) + x.matmul(a).matmul(b) * scale
    }

    /// Reads much, writes little: GPU time per call dwarfs the host's.
    pub fn logsumexp(x: Tensor[N, D]) -> Tensor[N, 1] {
        logsumexp(x, -1)
    }
}

/// The futures the generated functions return can be spawned on any multi-threaded executor.
#[test]
fn futures_are_send_and_static() {
    fn assert_send_static<F: Future + Send + 'static>(_: &F) {}
    let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
    // The futures outlive the tensors they were called with.
    let f = {
        let x = x.clone();
        softmax_async(&x)
    };
    assert_send_static(&f);
    assert_send_static(&add_rms_norm_async(&x, &x, &w, 1e-6));
}

/// Inputs for every test graph, seeded by `i` so concurrent calls differ.
struct Inputs {
    x: Tensor,
    x3: Tensor,
    r: Tensor,
    w: Tensor,
    lw: Tensor,
    la: Tensor,
    lb: Tensor,
}

impl Inputs {
    fn new(i: usize, dtype: DType) -> Self {
        let dev = &Device::Cpu;
        let shift = i as f64 * 0.01;
        let randn = |shape: &[usize]| {
            Tensor::randn(shift, 1.0, shape, dev)
                .and_then(|t| t.to_dtype(dtype))
                .unwrap()
        };
        Self {
            x: randn(&[8, 64]),
            x3: randn(&[2, 4, 64]),
            r: randn(&[8, 64]),
            w: randn(&[64]),
            lw: randn(&[64, 32]),
            la: randn(&[64, 4]),
            lb: randn(&[4, 32]),
        }
    }

    /// Every graph, synchronously.
    fn sync(&self) -> Vec<Tensor> {
        let (h, y) = add_rms_norm(&self.x, &self.r, &self.w, 1e-6).unwrap();
        vec![
            softmax(&self.x).unwrap(),
            rms_norm(&self.x3, &self.w, 1e-6).unwrap(),
            h,
            y,
            lora(&self.x, &self.lw, &self.la, &self.lb, 0.5).unwrap(),
        ]
    }

    /// Every graph through its asynchronous twin, all started before the first is awaited.
    async fn run_async(&self) -> Vec<Tensor> {
        let p = softmax_async(&self.x);
        let n = rms_norm_async(&self.x3, &self.w, 1e-6);
        let hy = add_rms_norm_async(&self.x, &self.r, &self.w, 1e-6);
        let l = lora_async(&self.x, &self.lw, &self.la, &self.lb, 0.5);
        let (h, y) = hy.await.unwrap();
        vec![p.await.unwrap(), n.await.unwrap(), h, y, l.await.unwrap()]
    }
}

/// Asserts bitwise equality: both paths run the same executor on the same inputs.
fn assert_same(async_out: &[Tensor], sync_out: &[Tensor]) {
    assert_eq!(async_out.len(), sync_out.len());
    for (a, s) in async_out.iter().zip(sync_out) {
        assert_eq!(a.dims(), s.dims());
        assert_eq!(a.dtype(), s.dtype());
        let flat = |t: &Tensor| {
            t.to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
                .unwrap()
        };
        assert_eq!(flat(a), flat(s));
    }
}

async fn check_async_equals_sync() {
    for (i, dtype) in [DType::F32, DType::F64, DType::BF16].into_iter().enumerate() {
        let inputs = Inputs::new(i, dtype);
        assert_same(&inputs.run_async().await, &inputs.sync());
    }
}

/// The GPU, shared by this binary's CUDA tests and held alone by the one that times queuing
/// (`cuda_futures_leave_the_host_thread_free`): another test's allocations and synchronisations
/// on the same device stall the driver calls it times (38 ms to queue 100 calls, against 1 to 6 ms
/// alone, seen on an H100 with the tests in parallel).
static GPU: RwLock<()> = RwLock::new(());

fn gpu_shared() -> RwLockReadGuard<'static, ()> {
    GPU.read().unwrap_or_else(PoisonError::into_inner)
}

/// Every example graph of the numeric suite (tests/common): the future resolves to exactly the
/// synchronous result, on each device.
fn every_case_async_equals_sync(device: &Device) -> candle_core::Result<()> {
    let _gpu = device.is_cuda().then(gpu_shared);
    let mut rng = common::rng();
    for case in common::CASES {
        for dtype in [DType::F32, DType::BF16] {
            let inputs = (case.draw)(&mut rng, common::Sizes::Small)?.to(dtype, device)?;
            let sync = (case.graph)(&inputs).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let future = (case.graph_async)(&inputs);
            let got = futures::executor::block_on(future).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_same(&got, &sync);
        }
    }
    Ok(())
}
test_device!(every_case_async_equals_sync);

#[test]
fn async_equals_sync_on_tokio_multi_thread() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
        .block_on(check_async_equals_sync());
}

#[tokio::test(flavor = "current_thread")]
async fn async_equals_sync_on_tokio_current_thread() {
    check_async_equals_sync().await;
}

#[test]
fn async_equals_sync_under_futures_block_on() {
    futures::executor::block_on(check_async_equals_sync());
}

/// While a large graph runs, the thread polling it keeps running other tasks: on a
/// single-threaded executor, a task that only yields makes progress before the graph resolves.
#[test]
fn work_runs_off_the_polling_thread() {
    let x = Tensor::randn(0f32, 1.0, (2048, 2048), &Device::Cpu).unwrap();
    let expected = softmax(&x).unwrap();
    futures::executor::block_on(async {
        let done = std::cell::Cell::new(false);
        let mut ticks = 0usize;
        // `join!` polls in order: the graph first, so work done while polling it would finish
        // before the ticker ever ran.
        let (p, ()) = futures::join!(
            async {
                let p = softmax_async(&x).await;
                done.set(true);
                p
            },
            async {
                while !done.get() {
                    ticks += 1;
                    futures::pending!();
                }
            },
        );
        assert_same(&[p.unwrap()], &[expected]);
        assert!(ticks > 0, "the graph ran on the polling thread");
    });
}

/// A thousand futures in flight at once, from fifty tasks on a multi-threaded runtime, each
/// resolving to its own inputs' result.
#[test]
fn a_thousand_concurrent_futures_from_many_tasks() {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                tokio::spawn(async move {
                    let xs: Vec<Tensor> = (0..PER_TASK)
                        .map(|i| {
                            let seed = (t * PER_TASK + i) as f32;
                            Tensor::randn(seed, 1.0, (4, 32), &Device::Cpu).unwrap()
                        })
                        .collect();
                    let futures: Vec<_> = xs.iter().map(softmax_async).collect();
                    let outputs = futures::future::join_all(futures).await;
                    for (x, p) in xs.iter().zip(outputs) {
                        assert_same(&[p.unwrap()], &[softmax(x).unwrap()]);
                    }
                    PER_TASK
                })
            })
            .collect();
        let mut resolved = 0;
        for task in tasks {
            resolved += task.await.unwrap();
        }
        assert_eq!(resolved, TASKS * PER_TASK);
    });
}

/// Many queued calls whose kernels split rows over rayon: a thread waiting inside one call's
/// parallel loop must not pick up the next call on its own stack (when calls ran as rayon jobs,
/// that nesting overflowed the stack of a 2-core serve run).
#[test]
fn queued_parallel_calls_do_not_nest() {
    // 64 x 1024 is at the CPU executor's threshold for spreading rows over threads.
    let x = Tensor::randn(0f32, 1.0, (64, 1024), &Device::Cpu).unwrap();
    let expected = softmax(&x).unwrap();
    let outputs =
        futures::executor::block_on(futures::future::join_all((0..1000).map(|_| softmax_async(&x))));
    for p in outputs {
        assert_same(&[p.unwrap()], std::slice::from_ref(&expected));
    }
}

/// Futures dropped before they resolve (never polled, timed out, lost a `select!`, polled once)
/// release everything: every job is dropped, nothing deadlocks, and the pool keeps working.
#[test]
fn dropped_futures_release_their_work() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let x = Tensor::randn(0f32, 1.0, (256, 1024), &Device::Cpu).unwrap();
    let w = Tensor::ones(1024, DType::F32, &Device::Cpu).unwrap();
    let cancel_all = async {
        for _ in 0..100 {
            drop(softmax_async(&x));
        }
        for _ in 0..100 {
            let timed_out = tokio::time::timeout(Duration::ZERO, softmax_async(&x)).await;
            drop(timed_out);
        }
        for _ in 0..100 {
            tokio::select! {
                biased;
                () = std::future::ready(()) => {}
                _ = add_rms_norm_async(&x, &x, &w, 1e-6) => {}
            }
        }
        for _ in 0..100 {
            let mut f = std::pin::pin!(softmax_async(&x));
            // Registers a waker the worker will wake after the future is gone.
            let _ = futures::poll!(f.as_mut());
        }
        // Tasks cancelled from the outside, while their future waits.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let x = x.clone();
                tokio::spawn(async move { softmax_async(&x).await })
            })
            .collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }

        // Every job, started or skipped, is eventually dropped with its inputs and outputs.
        // Other tests share the pool, so wait for the count to reach zero, not to a fixed value.
        let deadline = Instant::now() + Duration::from_secs(60);
        while graph_runtime::testing::live_jobs() > 0 {
            assert!(Instant::now() < deadline, "cancelled jobs were never dropped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // The pool still answers.
        let p = softmax_async(&x).await.unwrap();
        assert_same(&[p], &[softmax(&x).unwrap()]);
    };
    let finished = rt.block_on(async { tokio::time::timeout(Duration::from_secs(120), cancel_all).await });
    assert!(finished.is_ok(), "cancellation deadlocked");
}

/// Inputs that binding rejects come out of the future as the same error the synchronous call
/// returns.
#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dev = &Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (8, 64), dev).unwrap();
    let w = Tensor::ones(64, DType::F32, dev).unwrap();
    let rank3 = Tensor::zeros((2, 8, 64), DType::F32, dev).unwrap();
    let ints = Tensor::zeros((8, 64), DType::U32, dev).unwrap();
    let f64s = Tensor::zeros((8, 64), DType::F64, dev).unwrap();
    let narrow = Tensor::zeros((8, 32), DType::F32, dev).unwrap();

    futures::executor::block_on(async {
        let same_message = |a: &Error, s: graph_runtime::Result<_>| {
            assert_eq!(a.to_string(), s.map(|_: Tensor| ()).unwrap_err().to_string());
        };

        let e = softmax_async(&rank3).await.unwrap_err();
        assert!(matches!(e, Error::Rank { param: "x", .. }), "{e}");
        same_message(&e, softmax(&rank3));

        let e = softmax_async(&ints).await.unwrap_err();
        assert!(matches!(e, Error::UnsupportedDType { .. }), "{e}");
        same_message(&e, softmax(&ints));

        let e = add_rms_norm_async(&x, &f64s, &w, 1e-6).await.unwrap_err();
        assert!(matches!(e, Error::DType { param: "r", .. }), "{e}");

        let e = add_rms_norm_async(&x, &narrow, &w, 1e-6).await.unwrap_err();
        assert!(matches!(e, Error::Symbol(_)), "{e}");

        let e = rms_norm_async(&x, &w, 1e-6).await.unwrap_err();
        assert!(matches!(e, Error::Rank { .. }), "{e}");
        same_message(&e, rms_norm(&x, &w, 1e-6));
    });
}

// ---------------------------------------------------------------------------------------------
// CUDA: kernels queue on the caller's stream; an event watched by a completion thread resolves
// the future.

#[cfg(feature = "cuda")]
fn cuda() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("\n**** SKIPPED on CUDA: no usable GPU ({e}) ****\n");
            None
        }
    }
}

#[cfg(feature = "cuda")]
impl Inputs {
    fn to_device(&self, device: &Device) -> Self {
        let on = |t: &Tensor| t.to_device(device).unwrap();
        Self {
            x: on(&self.x),
            x3: on(&self.x3),
            r: on(&self.r),
            w: on(&self.w),
            lw: on(&self.lw),
            la: on(&self.la),
            lb: on(&self.lb),
        }
    }
}

/// On CUDA, every graph's future resolves to exactly the synchronous result, under tokio and
/// `block_on`.
#[cfg(feature = "cuda")]
#[test]
fn cuda_async_equals_sync() {
    let _gpu = gpu_shared();
    let Some(device) = cuda() else { return };
    for (i, dtype) in [DType::F32, DType::F64, DType::BF16].into_iter().enumerate() {
        let inputs = Inputs::new(i, dtype).to_device(&device);
        let sync = inputs.sync();
        assert_same(&futures::executor::block_on(inputs.run_async()), &sync);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert_same(&rt.block_on(inputs.run_async()), &sync);
    }
}

/// Yields once to the executor, asking to be polled again.
#[cfg(feature = "cuda")]
struct YieldNow(bool);

#[cfg(feature = "cuda")]
impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

/// While the GPU works through a long queue of large reductions, the one thread that awaits them
/// keeps doing host work: queuing takes a small part of the GPU's time, and the thread spends
/// most of the wait in other tasks (measured), because nothing blocks on the GPU.
#[cfg(feature = "cuda")]
#[test]
fn cuda_futures_leave_the_host_thread_free() {
    let _gpu = GPU.write().unwrap_or_else(PoisonError::into_inner);
    let Some(device) = cuda() else { return };
    // Each call reads 1 GB and writes 32 KB: hundreds of microseconds of GPU for a few of host.
    const CALLS: usize = 100;
    let x = Tensor::randn(0f32, 1.0, (8192, 32000), &device).unwrap();
    let expected = logsumexp(&x).unwrap();
    device.synchronize().unwrap();
    // The synchronous calls' own queuing time, for comparison: kernels, allocations.
    let start = Instant::now();
    let sync: Vec<Tensor> = (0..CALLS).map(|_| logsumexp(&x).unwrap()).collect();
    let queued_sync = start.elapsed();
    device.synchronize().unwrap();
    let gpu = start.elapsed();
    drop(sync);
    futures::executor::block_on(async {
        let start = Instant::now();
        let futures: Vec<_> = (0..CALLS).map(|_| logsumexp_async(&x)).collect();
        let queued = start.elapsed();
        let done = std::cell::Cell::new(false);
        let mut host = Duration::ZERO;
        let mut ticks = 0usize;
        let (outputs, ()) = futures::join!(
            async {
                let mut outputs = Vec::new();
                for f in futures {
                    outputs.push(f.await.unwrap());
                }
                done.set(true);
                outputs
            },
            async {
                while !done.get() {
                    let t = Instant::now();
                    // Host work: a few microseconds of arithmetic.
                    let mut acc = 0u64;
                    for i in 0..2000u64 {
                        acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
                    }
                    std::hint::black_box(acc);
                    host += t.elapsed();
                    ticks += 1;
                    YieldNow(false).await;
                }
            },
        );
        let total = start.elapsed();
        let waited = total.saturating_sub(queued);
        eprintln!(
            "{CALLS} logsumexp 8192x32000 f32 on CUDA: synchronous calls queued in {queued_sync:.2?} \
             and finished after {gpu:.2?}; async calls queued in {queued:.2?} and resolved after \
             {total:.2?}; while waiting ({waited:.2?}) the thread did {host:.2?} of host work in \
             {ticks} ticks ({:.0}%)",
            100.0 * host.as_secs_f64() / waited.as_secs_f64()
        );
        // Queuing waited for no GPU work: it took a small part of the GPU's time.
        assert!(
            queued * 4 < gpu,
            "async calls took {queued:?} to queue, the GPU {gpu:?} to run them"
        );
        // The GPU still had work once everything was queued, and the awaiting thread spent most
        // of that time on other work.
        assert!(
            waited > Duration::from_millis(2),
            "nothing left to wait for after queuing ({waited:?})"
        );
        assert!(
            host * 2 > waited,
            "the awaiting thread did host work for only {host:?} of {waited:?}"
        );
        for out in &outputs {
            assert_same(std::slice::from_ref(out), std::slice::from_ref(&expected));
        }
    });
}

/// Futures dropped while their kernels are queued or running free nothing early: the next
/// results are right and nothing crashes or leaks device memory across many rounds.
#[cfg(feature = "cuda")]
#[test]
fn cuda_dropped_futures_are_safe() {
    let _gpu = gpu_shared();
    let Some(device) = cuda() else { return };
    let x = Tensor::randn(0f32, 1.0, (4096, 4096), &device).unwrap();
    let expected = softmax(&x).unwrap();
    for _ in 0..50 {
        let futures: Vec<_> = (0..20).map(|_| softmax_async(&x)).collect();
        drop(futures);
    }
    let got = futures::executor::block_on(softmax_async(&x)).unwrap();
    assert_same(&[got], &[expected]);
    device.synchronize().unwrap();
}
