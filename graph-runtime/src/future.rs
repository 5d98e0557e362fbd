//! Asynchronous evaluation: the futures behind the generated `name_async` functions.
//!
//! A call submits its work at once and returns a [`GraphFuture`]; the future resolves with exactly
//! what the synchronous function would have returned, errors included. Where the work runs and how
//! its end is observed depends on the device's backend (see `exec::backend`):
//!
//! - CPU: the graph runs on rayon's pool, never on the thread that polls. The CPU kernels split
//!   rows over that same pool, so a call adds no second set of threads and no hand-off between
//!   pools: under a burst each thread mostly runs its own call's rows (a separate std-thread
//!   pool served about half the requests/s in the serve example). Jobs are not plain rayon
//!   jobs, though: a rayon thread waiting inside one call's parallel loop would steal queued
//!   calls onto its own stack, and thousands of them overflowed it. They wait in our queue,
//!   drained by pumps that refuse to nest (see [`pump`]).
//! - CUDA: the kernels are queued on the caller's thread, on the stream its other Candle work
//!   goes to (queuing is quick: nothing waits for the GPU), followed by an event that one
//!   completion thread watches without blocking (see `exec::cuda::done`); it completes the
//!   future. No executor or worker thread waits for the GPU.
//! - Metal: the synchronous path on a worker (which only encodes onto Candle's command buffer),
//!   then a wait for the command buffer holding that work (`flush_and_wait_current`). A
//!   completion handler would spare the worker its wait, but Candle 0.11.1 keeps its command
//!   buffers to itself: `MetalDevice`'s `Commands` and the encoder's command buffer are
//!   crate-private, and a command buffer of our own would escape Candle's hazard tracking.
//! - CUDA or Metal in a build without this crate's feature for it: the synchronous path on a
//!   worker, then Candle's synchronize for the device.
//!
//! Completion goes through a `futures-channel` oneshot, which works under any executor.
//! Cancellation is dropping the future: that drops the receiver; a CPU job not started yet sees
//! it and is skipped, a running one finishes and its result is dropped on the worker when the
//! send fails; queued GPU work finishes and its outputs are freed in stream order.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};
use std::{fmt, thread};

use candle_core::{Device, Tensor};
use futures_channel::oneshot;
use graph_ir::Graph;

use crate::error::Context as _;
use crate::exec::backend::{self, Completion};
use crate::Result;

/// What a job sends back: the graph's result, or the panic it raised (re-raised where it is
/// awaited, as the synchronous call would have raised it on the caller).
type Answer<const N: usize> = thread::Result<Result<[Tensor; N]>>;

/// Starts running `graph` on the arguments and returns a future of its `N` outputs.
///
/// The work is submitted here, not at the first poll, so several calls made before awaiting run
/// concurrently. Nothing is checked on the caller: binding errors come out of the future.
pub fn run_async<const N: usize>(
    graph: &'static Graph,
    tensors: Vec<Tensor>,
    scalars: Vec<f64>,
) -> GraphFuture<N> {
    // A mismatched device among the other tensors is reported by binding, on whichever path runs.
    let device = tensors.first().map_or(Device::Cpu, |t| t.device().clone());
    let sync = move || {
        let tensors: Vec<&Tensor> = tensors.iter().collect();
        crate::__private::run::<N>(graph, &tensors, &scalars)
    };
    // The device decides where the work runs and what completes the future.
    if backend::of(&device).reports_completion() {
        GraphFuture::queued(graph, &device, sync)
    } else {
        GraphFuture::on_worker(move || {
            let outputs = sync()?;
            // The future resolves once the device has finished (on the CPU, it has).
            backend::of(&device).wait().within(graph.name())?;
            Ok(outputs)
        })
    }
}

/// The future of one graph call; the generated `name_async` functions await it.
///
/// Dropping it before it resolves is safe: a CPU call that has not started is skipped and a
/// running one finishes on its worker, which then drops the result; GPU work already queued runs
/// to its end, and the outputs it writes are freed in stream order.
#[must_use = "futures do nothing useful unless awaited; dropping this one cancels its work"]
pub struct GraphFuture<const N: usize> {
    state: State<N>,
}

enum State<const N: usize> {
    /// Running on a worker, which sends the answer.
    Worker(oneshot::Receiver<Answer<N>>),
    /// Queued on a device stream: the outputs exist (their values once `done` completes).
    Device {
        outputs: [Tensor; N],
        done: oneshot::Receiver<Completion>,
        graph: &'static Graph,
    },
    /// Known already (an error found before anything was queued, or a caught panic).
    Ready(Answer<N>),
    /// Returned.
    Taken,
}

impl<const N: usize> GraphFuture<N> {
    /// Runs `work` on rayon's pool; the future resolves with its result.
    fn on_worker(work: impl FnOnce() -> Result<[Tensor; N]> + Send + 'static) -> Self {
        let (tx, rx) = oneshot::channel();
        let live = LiveJob::start();
        submit(Box::new(move || {
            // Dropped last, after the inputs, the outputs and any panic payload.
            let _live = live;
            if tx.is_canceled() {
                // Moved out so that the inputs go before `_live` does.
                drop(work);
                return;
            }
            let answer = panic::catch_unwind(AssertUnwindSafe(work));
            // Fails only when the future was dropped meanwhile; the answer is dropped here.
            let _ = tx.send(answer);
        }));
        Self {
            state: State::Worker(rx),
        }
    }

    /// Queues `work` from the calling thread on `device` (on the stream the caller's other
    /// Candle work on this thread goes to), then asks the device for a receiver of its end: no
    /// executor thread waits for the GPU.
    fn queued(graph: &'static Graph, device: &Device, work: impl FnOnce() -> Result<[Tensor; N]>) -> Self {
        let backend = backend::of(device);
        let state = match panic::catch_unwind(AssertUnwindSafe(work)) {
            Ok(Ok(outputs)) => match backend.when_done() {
                Ok(done) => State::Device { outputs, done, graph },
                // No receiver: wait here, as the synchronous path's caller would.
                Err(e) => State::Ready(Ok(match backend.wait() {
                    Ok(()) => Ok(outputs),
                    Err(s) => Err(crate::Error::Gpu {
                        func: graph.name(),
                        kernel: "(completion)",
                        message: format!("{e}; synchronize: {s}"),
                    }),
                })),
            },
            other => State::Ready(other),
        };
        Self { state }
    }
}

impl<const N: usize> Future for GraphFuture<N> {
    type Output = Result<[Tensor; N]>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = match &mut self.state {
            State::Worker(rx) => match ready!(Pin::new(rx).poll(cx)) {
                Ok(answer) => answer,
                // Jobs catch panics (rayon aborts on one) and always send, so the sender only
                // goes away unsent if the job was skipped, which happens only after this
                // receiver was dropped.
                Err(oneshot::Canceled) => unreachable!("a lazy_graph worker dropped a job unanswered"),
            },
            State::Device { done, .. } => {
                let completion = ready!(Pin::new(done).poll(cx));
                match std::mem::replace(&mut self.state, State::Taken) {
                    State::Device { outputs, graph, .. } => Ok(match completion {
                        Ok(Ok(())) => Ok(outputs),
                        Ok(Err(message)) => Err(crate::Error::Gpu {
                            func: graph.name(),
                            kernel: "(completion)",
                            message,
                        }),
                        // The completion thread answers every event it takes.
                        Err(oneshot::Canceled) => unreachable!("a lazy_graph completion went unanswered"),
                    }),
                    _ => unreachable!("matched above"),
                }
            }
            State::Ready(_) => match std::mem::replace(&mut self.state, State::Taken) {
                State::Ready(answer) => answer,
                _ => unreachable!("matched above"),
            },
            State::Taken => panic!("a lazy_graph future was polled after it resolved"),
        };
        self.state = State::Taken;
        match answer {
            Ok(outputs) => Poll::Ready(outputs),
            Err(panic) => panic::resume_unwind(panic),
        }
    }
}

impl<const N: usize> fmt::Debug for GraphFuture<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphFuture")
            .field("outputs", &N)
            .field("resolved", &matches!(self.state, State::Taken))
            .finish()
    }
}

/// Jobs submitted whose closure (inputs, outputs, answer) has not been dropped yet. Tests use it
/// to prove that cancelled calls release everything they held.
pub fn live_jobs() -> usize {
    LIVE_JOBS.load(Ordering::Acquire)
}

static LIVE_JOBS: AtomicUsize = AtomicUsize::new(0);

/// Counts one job in [`LIVE_JOBS`] for as long as it lives.
struct LiveJob(());

impl LiveJob {
    fn start() -> Self {
        LIVE_JOBS.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for LiveJob {
    fn drop(&mut self) {
        LIVE_JOBS.fetch_sub(1, Ordering::AcqRel);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Jobs waiting for a pump, oldest first.
static QUEUE: Mutex<VecDeque<Job>> = Mutex::new(VecDeque::new());

thread_local! {
    /// Whether a pump is running on this thread.
    static PUMPING: Cell<bool> = const { Cell::new(false) };
}

/// Queues `job` and starts a pump for it on rayon's pool.
fn submit(job: Job) {
    queue().push_back(job);
    rayon::spawn(pump);
}

/// Runs queued jobs until none is left. A pump started while another is running on the same
/// thread (stolen by a rayon thread waiting inside a job's parallel loop) returns at once: the
/// outer pump takes the queue up again when its job is done, so no job is left behind and jobs
/// never nest on one stack.
fn pump() {
    if PUMPING.with(Cell::get) {
        return;
    }
    struct Pumping;
    impl Drop for Pumping {
        fn drop(&mut self) {
            PUMPING.with(|p| p.set(false));
        }
    }
    PUMPING.with(|p| p.set(true));
    let _pumping = Pumping;
    loop {
        // Its own statement, so the lock is released before the job runs (a `while let` would
        // hold the guard through the body).
        let job = queue().pop_front();
        let Some(job) = job else { return };
        job();
    }
}

/// Jobs catch their own panics, so the lock is never poisoned while one runs.
fn queue() -> MutexGuard<'static, VecDeque<Job>> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    use rayon::prelude::*;

    use super::submit;

    /// Jobs whose parallel loops make rayon threads wait, and so steal, never run nested: at most
    /// one job is on any thread's stack at a time, however many are queued.
    #[test]
    fn jobs_never_nest() {
        thread_local! {
            static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        const JOBS: usize = 2000;
        let deepest = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        for _ in 0..JOBS {
            let (deepest, done) = (Arc::clone(&deepest), done.clone());
            submit(Box::new(move || {
                let depth = DEPTH.with(|d| {
                    d.set(d.get() + 1);
                    d.get()
                });
                deepest.fetch_max(depth, Ordering::Relaxed);
                let sum: u64 = (0..4096u32)
                    .into_par_iter()
                    .with_max_len(64)
                    .map(|i| u64::from(i) * u64::from(i))
                    .sum();
                assert_eq!(sum, (0..4096u64).map(|i| i * i).sum::<u64>());
                DEPTH.with(|d| d.set(d.get() - 1));
                done.send(()).unwrap();
            }));
        }
        for _ in 0..JOBS {
            finished.recv().unwrap();
        }
        assert_eq!(deepest.load(Ordering::Relaxed), 1);
    }
}
