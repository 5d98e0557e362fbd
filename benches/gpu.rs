//! GPU benchmark: each `benches/common` kernel at GPU-sized shapes (rms_norm at 1x4096 too), in
//! bf16 and f32, three ways in one process: the generated function (`lazy_graph`), the same math
//! as composed Candle ops, and Candle's fused op where one exists. Prints µs per call, GB/s (each
//! input read once, each output written once, over the time), that as a percentage of a
//! device-to-device copy measured here, and the ratios.
//!
//! ```text
//! cargo bench --features cuda --bench gpu                # on a machine with a GPU
//! BENCH_FILTER=softmax cargo bench --features cuda --bench gpu
//! python3 benches/torch_ref.py                            # torch eager and torch.compile, same shapes
//! ```
//!
//! Timing: after warm-up, calls run back to back for about `BENCH_MS` milliseconds (default 300)
//! between two device synchronisations; the per-call time is the wall time over the count, the
//! best of 3 rounds that take the three ways in turn. Inputs rotate among copies that together
//! exceed the GPU's L2, so reads come from memory. The 1x4096 row measures the whole per-call
//! cost, host included. First, in child processes sharing a new kernel cache folder, it times the
//! first call of three kernels: compiled by NVRTC, then loaded from the disk cache.
//!
//! Then forward plus backward (`train ...` rows): every input a `Var`, one call and
//! `y.backward()` (whose cotangent is a tensor of ones Candle makes), against the same math as
//! composed Candle ops under Candle's autograd. Their bytes are what the pair must move at
//! least: the forward's inputs and output, and the backward's inputs, cotangent and gradients.
//! Each `train` row also times what Candle's `backward` adds to the kernels alone (a cotangent
//! of ones, and for every input a gradient of zeros to which the computed one is added).
//! The `explicit ...` rows time the same pair through the explicit API (the forward, then
//! `name_backward` with a cotangent drawn beforehand): the kernels without Candle's autograd.
//!
//! `BENCH_OURS_ONLY=1` times the generated functions alone (the peers' columns print NaN): with
//! the `tune-launch` feature and its `LAZY_GRAPH_TUNE_*` knobs, a sweep of launch shapes.
//!
//! Then `launch floor ...`: what one launch costs the host here (an empty launch through cudarc,
//! and a whole Candle op on a 1x4096 tensor), the floor under the 1x4096 rows.
//!
//! Last, `captured ...`: a chain of 100 rms_norm 1x4096 calls launched one by one against the
//! same chain captured into a CUDA graph (`graph_runtime::cuda_graph`) and replayed.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Result, Tensor, Var};

mod common;
#[path = "gpu/host.rs"]
mod host;
#[path = "gpu/table.rs"]
mod table;

use common::*;
use table::{one_table, Measured, OURS};

fn composed_gelu(x: &Tensor) -> Result<Tensor> {
    let inner = ((x + x.powf(3.0)? * 0.044715)? * (2.0 / std::f64::consts::PI).sqrt())?;
    ((inner.tanh()? + 1.0)? * x)? * 0.5
}

/// Inputs of one call; several sets rotate so reads miss the L2.
type Inputs = Vec<Tensor>;

/// One way of computing a row's kernel.
type Way<'a> = &'a dyn Fn(&Inputs) -> Result<Tensor>;

struct Row {
    kernel: String,
    dtype: DType,
    bytes: usize,
    lazy: f64,
    composed: f64,
    fused: Option<f64>,
}

/// `f` and then `y.backward()` on its result.
fn with_backward<'a>(f: Way<'a>) -> impl Fn(&Inputs) -> Result<Tensor> + 'a {
    move |i| {
        let y = f(i)?;
        y.backward()?;
        Ok(y)
    }
}

/// `BENCH_OURS_ONLY` set: time the generated functions alone (for launch-shape sweeps).
fn ours_only() -> bool {
    std::env::var_os("BENCH_OURS_ONLY").is_some()
}

fn budget() -> Duration {
    Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    )
}

/// Warms `f` up and returns how many calls fill the time budget.
fn calls_per_run(device: &Device, sets: &[Inputs], f: Way) -> Result<usize> {
    for s in sets.iter().cycle().take(3 * sets.len()) {
        f(s)?;
    }
    device.synchronize()?;
    let probe = Instant::now();
    let mut n = 0usize;
    while probe.elapsed() < budget() / 10 {
        f(&sets[n % sets.len()])?;
        n += 1;
    }
    device.synchronize()?;
    let per = probe.elapsed().as_secs_f64() / n as f64;
    Ok(((budget().as_secs_f64() / per) as usize).clamp(3, 1_000_000))
}

/// Seconds per call of `count` calls of `f`, between two synchronisations.
fn run(device: &Device, sets: &[Inputs], f: Way, count: usize) -> Result<f64> {
    device.synchronize()?;
    let start = Instant::now();
    for i in 0..count {
        f(&sets[i % sets.len()])?;
    }
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() / count as f64)
}

/// Seconds per call of each of `ways`, best of 3 rounds that take the ways in turn, so that a
/// noisy moment on a shared host does not land on one of them alone.
fn time(device: &Device, sets: &[Inputs], ways: &[Way]) -> Result<Vec<f64>> {
    let counts: Vec<usize> = ways
        .iter()
        .map(|f| calls_per_run(device, sets, *f))
        .collect::<Result<_>>()?;
    let mut best = vec![f64::INFINITY; ways.len()];
    for _ in 0..3 {
        for ((f, count), b) in ways.iter().zip(&counts).zip(&mut best) {
            *b = b.min(run(device, sets, *f, *count)?);
        }
    }
    Ok(best)
}

/// Device-to-device copy bandwidth in bytes per second (read + written).
fn copy_bandwidth(device: &Device) -> Result<f64> {
    let n = 1 << 29; // 1 GiB of bf16
    let src = Tensor::zeros(n, DType::BF16, device)?.affine(1.0, 1.0)?;
    let sets = vec![vec![src]];
    let t = time(device, &sets, &[&|s: &Inputs| s[0].copy()])?;
    Ok(2.0 * (n * 2) as f64 / t[0])
}

fn rand(device: &Device, shape: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::randn(0f32, 1.0, shape, device)?.to_dtype(dtype)
}

/// Enough copies of an input set of `bytes` to exceed 256 MB, at most 8.
fn sets_for(bytes: usize) -> usize {
    (256usize << 20).div_ceil(bytes.max(1)).clamp(1, 8)
}

/// The first call of each kernel in a fresh process, in ms, device and inputs ready: run with
/// `FIRST_CALL_CHILD` set, by [`first_calls`].
fn first_calls_child(device: &Device) -> Result<()> {
    let x = rand(device, &[1, 4096], DType::BF16)?;
    let w = rand(device, &[4096], DType::BF16)?;
    let (cos, sin) = (
        rand(device, &[64, 64], DType::BF16)?,
        rand(device, &[64, 64], DType::BF16)?,
    );
    let q = rand(device, &[1, 8, 64, 128], DType::BF16)?;
    device.synchronize()?;
    // NVRTC's own start, paid once per process by whichever kernel compiles first: a program
    // with one empty kernel, compiled twice.
    for name in ["nvrtc_empty_1", "nvrtc_empty_2"] {
        let start = Instant::now();
        let source = "extern \"C\" __global__ void empty() {}";
        graph_runtime::testing::cuda::compile(source, 90, name).map_err(candle_core::Error::Msg)?;
        println!("first-call {name} {:.3}", start.elapsed().as_secs_f64() * 1e3);
    }
    let calls: [(&str, Way); 3] = [
        ("rms_norm", &|_| Ok(rms_norm(&x, &w, 1e-6)?)),
        ("softmax", &|_| Ok(softmax(&x)?)),
        ("rope", &|_| Ok(rope(&q, &cos, &sin)?)),
    ];
    for (name, f) in calls {
        let start = Instant::now();
        f(&Vec::new())?;
        device.synchronize()?;
        println!("first-call {name} {:.3}", start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

/// The first call of a kernel, NVRTC compile and module load included, then the same in a new
/// process served from the disk cache the first one filled: ms per kernel, from child processes
/// sharing a new cache folder.
fn first_calls() {
    let dir = std::env::temp_dir().join(format!("lg-first-call-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = || -> Option<Vec<(String, f64)>> {
        let out = std::process::Command::new(std::env::current_exe().ok()?)
            .env("FIRST_CALL_CHILD", "1")
            .env("LAZY_GRAPH_CACHE_DIR", &dir)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .filter_map(|l| {
                    let mut w = l.strip_prefix("first-call ")?.split(' ');
                    Some((w.next()?.to_string(), w.next()?.parse().ok()?))
                })
                .collect(),
        )
    };
    let (Some(cold), Some(cached)) = (run(), run()) else {
        println!("**** first calls: the child processes did not run ****");
        return;
    };
    for ((name, c), (_, d)) in cold.iter().zip(&cached) {
        match name.strip_prefix("nvrtc_") {
            Some(what) => println!("NVRTC alone, {what} (one empty kernel): {c:.1} ms"),
            None => println!(
                "first call of {name} (bf16), after NVRTC started: {c:.1} ms compiling (NVRTC + load), {d:.2} ms from the disk cache"
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() -> Result<()> {
    let device = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("**** no usable GPU ({e}): the GPU benchmark needs one; nothing measured ****");
            return Ok(());
        }
    };
    if std::env::var_os("FIRST_CALL_CHILD").is_some() {
        return first_calls_child(&device);
    }
    first_calls();
    let filter = std::env::var("BENCH_FILTER").unwrap_or_default();
    let copy = copy_bandwidth(&device)?;
    println!("device-to-device copy: {:.0} GB/s (read + written)", copy / 1e9);
    let mut rows: Vec<Row> = Vec::new();
    let dtypes = [DType::BF16, DType::F32];
    for dtype in dtypes {
        let size = dtype.size_in_bytes();
        let mut bench = |kernel: String,
                         shapes: &[&[usize]],
                         out_elems: usize,
                         lazy: Way,
                         composed: Way,
                         fused: Option<Way>|
         -> Result<()> {
            if !kernel.contains(&filter) {
                return Ok(());
            }
            let in_elems: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
            let bytes = (in_elems + out_elems) * size;
            let sets: Vec<Inputs> = (0..sets_for(bytes))
                .map(|_| shapes.iter().map(|s| rand(&device, s, dtype)).collect())
                .collect::<Result<_>>()?;
            graph_runtime::profile::reset();
            let mut ways = vec![lazy, composed];
            ways.extend(fused);
            ways.truncate(if ours_only() { 1 } else { 3 });
            let times = time(&device, &sets, &ways)?;
            if let Some(profile) = graph_runtime::profile::report() {
                println!("host time per phase, {kernel} {dtype:?} (all three ways):\n{profile}");
            }
            let row = Row {
                kernel,
                dtype,
                bytes,
                lazy: times[0],
                composed: times.get(1).copied().unwrap_or(f64::NAN),
                fused: times.get(2).copied(),
            };
            print_row(&row, copy);
            rows.push(row);
            Ok(())
        };
        let (n, d) = (8192, 8192);
        bench(
            format!("gelu_tanh {n}x{d}"),
            &[&[n, d]],
            n * d,
            &|i| Ok(gelu(&i[0])?),
            &|i| composed_gelu(&i[0]),
            Some(&|i| i[0].gelu()),
        )?;
        for (n, d) in [(4096, 4096), (32768, 1024), (8192, 32000)] {
            bench(
                format!("softmax {n}x{d}"),
                &[&[n, d]],
                n * d,
                &|i| Ok(softmax(&i[0])?),
                &|i| composed_softmax(&i[0]),
                Some(&|i| candle_nn::ops::softmax_last_dim(&i[0])),
            )?;
        }
        for (n, d) in [(8192, 4096), (1, 4096)] {
            bench(
                format!("rms_norm {n}x{d}"),
                &[&[n, d], &[d]],
                n * d,
                &|i| Ok(rms_norm(&i[0], &i[1], 1e-6)?),
                &|i| composed_rms_norm(&i[0], &i[1], 1e-6),
                Some(&|i| candle_nn::ops::rms_norm(&i[0], &i[1], 1e-6)),
            )?;
        }
        let (n, d) = (8192, 4096);
        bench(
            format!("layer_norm {n}x{d}"),
            &[&[n, d], &[d], &[d]],
            n * d,
            &|i| Ok(layer_norm(&i[0], &i[1], &i[2], 1e-5)?),
            &|i| composed_layer_norm(&i[0], &i[1], &i[2], 1e-5),
            Some(&|i| candle_nn::ops::layer_norm(&i[0], &i[1], &i[2], 1e-5)),
        )?;
        let (n, f) = (8192, 11008);
        bench(
            format!("silu(g)*u {n}x{f}"),
            &[&[n, f], &[n, f]],
            n * f,
            &|i| Ok(swiglu(&i[0], &i[1])?),
            &|i| i[0].silu()? * &i[1],
            None,
        )?;
        let (b, h, s, d) = (8, 32, 2048, 128);
        bench(
            format!("rope {b}x{h}x{s}x{d}"),
            &[&[b, h, s, d], &[s, d / 2], &[s, d / 2]],
            b * h * s * d,
            &|i| Ok(rope(&i[0], &i[1], &i[2])?),
            &|i| composed_rope(&i[0], &i[1], &i[2]),
            Some(&|i| candle_nn::rotary_emb::rope(&i[0], &i[1], &i[2])),
        )?;
    }
    for dtype in dtypes {
        let size = dtype.size_in_bytes();
        let mut train = |kernel: String,
                         shapes: &[&[usize]],
                         out_elems: usize,
                         lazy: Way,
                         composed: Way|
         -> Result<()> {
            let kernel = format!("train {kernel}");
            if !kernel.contains(&filter) {
                return Ok(());
            }
            let in_elems: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
            let bytes = (3 * in_elems + 2 * out_elems) * size;
            let sets: Vec<Inputs> = (0..sets_for(bytes))
                .map(|_| {
                    shapes
                        .iter()
                        .map(|s| Ok(Var::from_tensor(&rand(&device, s, dtype)?)?.as_tensor().clone()))
                        .collect()
                })
                .collect::<Result<_>>()?;
            let (a, b) = (with_backward(lazy), with_backward(composed));
            // What Candle's `backward` does besides the kernels: a cotangent of ones for the
            // output, then a gradient of zeros plus the computed one for each input.
            let autograd = |i: &Inputs| -> Result<Tensor> {
                let seed = i[0].ones_like()?;
                for x in i {
                    x.zeros_like()?.add(x)?;
                }
                Ok(seed)
            };
            let ways: [Way; 3] = [&a, &b, &autograd];
            let times = time(&device, &sets, &ways[..if ours_only() { 1 } else { 3 }])?;
            if let Some(t) = times.get(2) {
                println!(
                        "{kernel:<32} {dtype:?}: Candle's autograd work alone (ones, zeros + add per input) {:.1} µs",
                        t * 1e6
                    );
            }
            let row = Row {
                kernel,
                dtype,
                bytes,
                lazy: times[0],
                composed: times.get(1).copied().unwrap_or(f64::NAN),
                fused: None,
            };
            print_row(&row, copy);
            rows.push(row);
            Ok(())
        };
        let (n, d) = (8192, 8192);
        train(
            format!("gelu_tanh {n}x{d}"),
            &[&[n, d]],
            n * d,
            &|i| Ok(gelu(&i[0])?),
            &|i| composed_gelu(&i[0]),
        )?;
        let (n, d) = (4096, 4096);
        train(
            format!("softmax {n}x{d}"),
            &[&[n, d]],
            n * d,
            &|i| Ok(softmax(&i[0])?),
            &|i| composed_softmax(&i[0]),
        )?;
        let (n, d) = (8192, 4096);
        train(
            format!("rms_norm {n}x{d}"),
            &[&[n, d], &[d]],
            n * d,
            &|i| Ok(rms_norm(&i[0], &i[1], 1e-6)?),
            &|i| composed_rms_norm(&i[0], &i[1], 1e-6),
        )?;
        train(
            format!("layer_norm {n}x{d}"),
            &[&[n, d], &[d], &[d]],
            n * d,
            &|i| Ok(layer_norm(&i[0], &i[1], &i[2], 1e-5)?),
            &|i| composed_layer_norm(&i[0], &i[1], &i[2], 1e-5),
        )?;
        let (n, f) = (8192, 11008);
        train(
            format!("silu(g)*u {n}x{f}"),
            &[&[n, f], &[n, f]],
            n * f,
            &|i| Ok(swiglu(&i[0], &i[1])?),
            &|i| i[0].silu()? * &i[1],
        )?;
        let (b, h, s, d) = (8, 32, 2048, 128);
        train(
            format!("rope {b}x{h}x{s}x{d}"),
            &[&[b, h, s, d], &[s, d / 2], &[s, d / 2]],
            b * h * s * d,
            &|i| Ok(rope(&i[0], &i[1], &i[2])?),
            &|i| composed_rope(&i[0], &i[1], &i[2]),
        )?;
    }
    // The explicit API: the forward, then `name_backward` with a cotangent drawn beforehand (no
    // Candle autograd, no tie): what the kernels of a forward plus backward cost on their own.
    let mut explicit: Vec<(String, DType, usize, f64)> = Vec::new();
    for dtype in dtypes {
        let size = dtype.size_in_bytes();
        let mut pair = |kernel: String, shapes: &[&[usize]], out: &[usize], f: Way| -> Result<()> {
            let kernel = format!("explicit {kernel}");
            if !kernel.contains(&filter) {
                return Ok(());
            }
            let in_elems: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
            let out_elems: usize = out.iter().product();
            let bytes = (3 * in_elems + 2 * out_elems) * size;
            let sets: Vec<Inputs> = (0..sets_for(bytes))
                .map(|_| {
                    shapes
                        .iter()
                        .chain([&out])
                        .map(|s| rand(&device, s, dtype))
                        .collect()
                })
                .collect::<Result<_>>()?;
            let t = time(&device, &sets, &[f])?[0];
            println!(
                "{kernel:<32} {dtype:?}: {:>9.1} µs ({:>4.0} GB/s, {:>3.0}% of copy)",
                t * 1e6,
                bytes as f64 / t / 1e9,
                100.0 * bytes as f64 / t / copy
            );
            explicit.push((kernel, dtype, bytes, t));
            Ok(())
        };
        let (n, d) = (8192, 8192);
        pair(format!("gelu_tanh {n}x{d}"), &[&[n, d]], &[n, d], &|i| {
            gelu(&i[0])?;
            Ok(gelu_backward(&i[0], &i[1])?)
        })?;
        let (n, d) = (4096, 4096);
        pair(format!("softmax {n}x{d}"), &[&[n, d]], &[n, d], &|i| {
            softmax(&i[0])?;
            Ok(softmax_backward(&i[0], &i[1])?)
        })?;
        let (n, d) = (8192, 4096);
        pair(format!("rms_norm {n}x{d}"), &[&[n, d], &[d]], &[n, d], &|i| {
            rms_norm(&i[0], &i[1], 1e-6)?;
            Ok(rms_norm_backward(&i[0], &i[1], 1e-6, &i[2])?.0)
        })?;
        pair(
            format!("layer_norm {n}x{d}"),
            &[&[n, d], &[d], &[d]],
            &[n, d],
            &|i| {
                layer_norm(&i[0], &i[1], &i[2], 1e-5)?;
                Ok(layer_norm_backward(&i[0], &i[1], &i[2], 1e-5, &i[3])?.0)
            },
        )?;
        let (n, f) = (8192, 11008);
        pair(format!("silu(g)*u {n}x{f}"), &[&[n, f], &[n, f]], &[n, f], &|i| {
            swiglu(&i[0], &i[1])?;
            Ok(swiglu_backward(&i[0], &i[1], &i[2])?.0)
        })?;
        let (b, h, s, d) = (8, 32, 2048, 128);
        pair(
            format!("rope {b}x{h}x{s}x{d}"),
            &[&[b, h, s, d], &[s, d / 2], &[s, d / 2]],
            &[b, h, s, d],
            &|i| {
                rope(&i[0], &i[1], &i[2])?;
                Ok(rope_backward(&i[0], &i[1], &i[2], &i[3])?.0)
            },
        )?;
    }
    host::launch_floor(&device, &filter)?;
    host::captured(&device, &filter)?;
    println!();
    println!("| kernel | dtype | lazy_graph µs | GB/s | % of copy | composed µs | candle-nn fused µs | vs composed | vs fused |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let fused = r.fused.map_or("—".to_string(), |f| format!("{:.1}", f * 1e6));
        let vs_fused = r.fused.map_or("—".to_string(), |f| format!("{:.2}x", f / r.lazy));
        println!(
            "| {} | {:?} | {:.1} | {:.0} | {:.0}% | {:.1} | {} | {:.2}x | {} |",
            r.kernel,
            r.dtype,
            r.lazy * 1e6,
            r.bytes as f64 / r.lazy / 1e9,
            100.0 * r.bytes as f64 / r.lazy / copy,
            r.composed * 1e6,
            fused,
            r.composed / r.lazy,
            vs_fused
        );
    }
    println!();
    println!("| kernel | dtype | lazy_graph µs | GB/s | % of copy |");
    println!("|---|---|---|---|---|");
    for (kernel, dtype, bytes, t) in &explicit {
        println!(
            "| {kernel} | {dtype:?} | {:.1} | {:.0} | {:.0}% |",
            t * 1e6,
            *bytes as f64 / t / 1e9,
            100.0 * *bytes as f64 / t / copy
        );
    }
    let mut measured = Vec::new();
    for r in &rows {
        let dtype = format!("{:?}", r.dtype);
        let mut add = |way: &str, seconds: f64| {
            measured.push(Measured {
                way: way.to_string(),
                kernel: r.kernel.clone(),
                dtype: dtype.clone(),
                bytes: r.bytes,
                seconds,
            })
        };
        add(OURS, r.lazy);
        add("Candle composed", r.composed);
        if let Some(f) = r.fused {
            add("candle-nn fused", f);
        }
    }
    for (kernel, dtype, bytes, t) in &explicit {
        measured.push(Measured {
            way: OURS.to_string(),
            kernel: kernel.clone(),
            dtype: format!("{dtype:?}"),
            bytes: *bytes,
            seconds: *t,
        });
    }
    one_table(measured)
}

fn print_row(r: &Row, copy: f64) {
    println!(
        "{:<24} {:?}: lazy_graph {:>9.1} µs ({:>4.0} GB/s, {:>3.0}% of copy), composed {:>9.1} µs, fused {}",
        r.kernel,
        r.dtype,
        r.lazy * 1e6,
        r.bytes as f64 / r.lazy / 1e9,
        100.0 * r.bytes as f64 / r.lazy / copy,
        r.composed * 1e6,
        r.fused.map_or("—".to_string(), |f| format!("{:.1} µs", f * 1e6)),
    );
}
