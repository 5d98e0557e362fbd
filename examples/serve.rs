//! Serves concurrent "requests" through generated functions on a tokio runtime and prints the
//! throughput of two ways to keep graph work off the executor's threads: the synchronous
//! functions inside `spawn_blocking`, and their asynchronous twins awaited from plain tasks.
//!
//!     cargo run --release --example serve
//!
//! Each request is an RMSNorm followed by a SwiGLU on a [64, 1024] f32 activation, the shape of a
//! small decode batch. All requests are in flight at once, as under a burst of traffic.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// RMS normalisation with a learned scale.
    fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// A gated MLP activation.
    fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        g.silu() * u
    }
}

const REQUESTS: usize = 5000;
const WARM_UP: usize = 500;
const ROWS: usize = 64;
const DIM: usize = 1024;
const EPS: f32 = 1e-6;

/// One request's inputs: an activation and the up projection it is gated with.
#[derive(Clone)]
struct Request {
    x: Tensor,
    u: Tensor,
}

/// What one way of serving achieved.
struct Report {
    requests: usize,
    elapsed: Duration,
    mean_latency: Duration,
}

fn handle_sync(r: &Request, w: &Tensor) -> graph_runtime::Result<Tensor> {
    swiglu(&rms_norm(&r.x, w, EPS)?, &r.u)
}

async fn handle_async(r: &Request, w: &Tensor) -> graph_runtime::Result<Tensor> {
    let h = rms_norm_async(&r.x, w, EPS).await?;
    swiglu_async(&h, &r.u).await
}

/// Sends `count` requests at once; each handler task reports its latency.
async fn serve<H, F>(count: usize, requests: &[Request], w: &Tensor, handle: H) -> Report
where
    H: Fn(Request, Tensor) -> F,
    F: std::future::Future<Output = Tensor> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let f = handle(requests[i % requests.len()].clone(), w.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let y = f.await;
                assert_eq!(y.dims(), [ROWS, DIM]);
                sent.elapsed()
            })
        })
        .collect();
    let mut latency = Duration::ZERO;
    for task in tasks {
        latency += task.await.expect("a request handler panicked");
    }
    Report {
        requests: count,
        elapsed: start.elapsed(),
        mean_latency: latency / count as u32,
    }
}

fn print(name: &str, r: &Report) {
    println!(
        "{name:<24} {:>7.0} requests/s   mean latency {:>7.1} ms   ({} requests in {:.2} s)",
        r.requests as f64 / r.elapsed.as_secs_f64(),
        r.mean_latency.as_secs_f64() * 1e3,
        r.requests,
        r.elapsed.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let requests = (0..16)
        .map(|_| {
            Ok(Request {
                x: Tensor::randn(0f32, 1.0, (ROWS, DIM), &dev)?,
                u: Tensor::randn(0f32, 1.0, (ROWS, DIM), &dev)?,
            })
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let w = Tensor::ones(DIM, DType::F32, &dev)?;

    // Both paths compute the same thing.
    let expected = handle_sync(&requests[0], &w)?;
    let got = handle_async(&requests[0], &w).await?;
    let diff = (expected - got)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert_eq!(diff, 0.0, "async and sync results differ");

    let blocking = |r: Request, w: Tensor| async move {
        tokio::task::spawn_blocking(move || handle_sync(&r, &w))
            .await
            .expect("spawn_blocking task panicked")
            .expect("request failed")
    };
    let twin = |r: Request, w: Tensor| async move { handle_async(&r, &w).await.expect("request failed") };

    // Warm up both paths (thread pools, allocator) before measuring.
    serve(WARM_UP, &requests, &w, blocking).await;
    serve(WARM_UP, &requests, &w, twin).await;

    println!(
        "{REQUESTS} concurrent requests of rms_norm + swiglu on [{ROWS}, {DIM}] f32, {} tokio workers",
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    print(
        "sync in spawn_blocking",
        &serve(REQUESTS, &requests, &w, blocking).await,
    );
    print("async twin", &serve(REQUESTS, &requests, &w, twin).await);
    Ok(())
}
