//! CPU benchmarks: each `benches/common` kernel three ways, in f32 and bf16, on CPU-sized shapes.
//!
//! - `lazy_graph`: the generated function (fused CPU kernels);
//! - `composed`: the same math written as Candle ops, one op per step;
//! - `candle_fused`: Candle's hand-fused op, where one exists.
//!
//! The `train ...` groups time forward plus backward (`y.backward()` with every input a `Var`)
//! of the generated function against the composed ops under Candle's autograd.
//!
//! ```text
//! cargo bench --bench cpu                  # all of them
//! cargo bench --bench cpu -- 'rms_norm'    # one group
//! cargo bench --bench cpu -- '^train'      # forward plus backward only
//! python3 benches/cpu_table.py             # the table of ratios from the last run
//! ```
//!
//! On Linux the bench runs with glibc's malloc told to keep freed memory (see
//! [`steady_allocator`]), so that every implementation gets its output buffers the same, fastest
//! way in every run.

use candle_core::{DType, Device, Result, Tensor, Var};
use criterion::{criterion_group, BenchmarkId, Criterion};

mod common;

use common::*;

fn composed_gelu(x: &Tensor) -> Result<Tensor> {
    let cube = (x.sqr()? * x)?;
    let inner = ((x + cube * 0.044715)? * (2.0 / std::f64::consts::PI).sqrt())?;
    ((inner.tanh()? + 1.0)? * x)? * 0.5
}

/// RMSNorm of contiguous f32 rows as plain Rust with no binding nor plan: the slices, one
/// reduction and one scaling loop (compiled for AVX2 and FMA where the CPU has them, as the
/// generated kernels are), and a new tensor. What a 1x4096 call costs at the least.
fn handwritten_rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    use std::mem::MaybeUninit;
    fn rows(xs: &[f32], ws: &[f32], eps: f32, out: &mut [MaybeUninit<f32>]) {
        for (x, out) in xs.chunks_exact(ws.len()).zip(out.chunks_exact_mut(ws.len())) {
            let mut lanes = [0f32; 32];
            let wide = x.len() / 32 * 32;
            for c in x[..wide].chunks_exact(32) {
                for (l, v) in lanes.iter_mut().zip(c) {
                    *l += v * v;
                }
            }
            let sum: f32 = lanes.iter().sum::<f32>() + x[wide..].iter().map(|v| v * v).sum::<f32>();
            let scale = 1.0 / (sum / x.len() as f32 + eps).sqrt();
            for ((o, v), w) in out.iter_mut().zip(x).zip(ws) {
                o.write(v * scale * w);
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn rows_avx2(xs: &[f32], ws: &[f32], eps: f32, out: &mut [MaybeUninit<f32>]) {
        rows(xs, ws, eps, out)
    }
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let (sx, lx) = x.storage_and_layout();
    let (sw, lw) = w.storage_and_layout();
    let (candle_core::Storage::Cpu(cx), candle_core::Storage::Cpu(cw)) = (&*sx, &*sw) else {
        candle_core::bail!("CPU tensors only")
    };
    let xs = &cx.as_slice::<f32>()?[lx.start_offset()..][..x.elem_count()];
    let ws = &cw.as_slice::<f32>()?[lw.start_offset()..][..w.elem_count()];
    if ws.is_empty() || xs.len() % ws.len() != 0 {
        candle_core::bail!("rows of x must be as long as w")
    }
    // Uninitialised, as the generated kernels' outputs: every element is written below.
    let mut out: Vec<f32> = Vec::with_capacity(xs.len());
    let spare = &mut out.spare_capacity_mut()[..xs.len()];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has both features.
        unsafe { rows_avx2(xs, ws, eps, spare) };
    } else {
        rows(xs, ws, eps, spare);
    }
    #[cfg(not(target_arch = "x86_64"))]
    rows(xs, ws, eps, spare);
    // SAFETY: `rows` wrote every element: rows of `ws.len()` cover `xs` (checked above).
    unsafe { out.set_len(xs.len()) };
    Tensor::from_vec(out, x.shape(), &Device::Cpu)
}

fn rand(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .expect("random input")
}

fn bench(c: &mut Criterion) {
    for dtype in [DType::F32, DType::BF16] {
        let t = format!("{dtype:?}").to_lowercase();
        let mut run = |name: &str, id: &str, f: &mut dyn FnMut() -> Result<Tensor>| {
            c.bench_with_input(BenchmarkId::new(format!("{name}/{t}"), id), &(), |b, _| {
                b.iter(|| f().expect("benchmark body runs"))
            });
        };
        let x = rand(&[1024, 4096], dtype);
        run("gelu 1024x4096", "lazy_graph", &mut || Ok(gelu(&x)?));
        run("gelu 1024x4096", "composed", &mut || composed_gelu(&x));
        run("gelu 1024x4096", "candle_fused", &mut || x.gelu());

        let x = rand(&[1024, 1024], dtype);
        run("softmax 1024x1024", "lazy_graph", &mut || Ok(softmax(&x)?));
        run("softmax 1024x1024", "composed", &mut || composed_softmax(&x));
        run("softmax 1024x1024", "candle_fused", &mut || {
            candle_nn::ops::softmax_last_dim(&x)
        });

        for (n, d) in [(1024, 1024), (1, 4096)] {
            let name = format!("rms_norm {n}x{d}");
            let (x, w) = (rand(&[n, d], dtype), rand(&[d], dtype));
            run(&name, "lazy_graph", &mut || Ok(rms_norm(&x, &w, 1e-6)?));
            run(&name, "composed", &mut || composed_rms_norm(&x, &w, 1e-6));
            run(&name, "candle_fused", &mut || {
                candle_nn::ops::rms_norm(&x, &w, 1e-6)
            });
            if n == 1 && dtype == DType::F32 {
                // Not a table column: the floor for any function returning a new tensor here.
                run(&name, "handwritten", &mut || handwritten_rms_norm(&x, &w, 1e-6));
            }
        }

        let (x, w, b) = (
            rand(&[1024, 1024], dtype),
            rand(&[1024], dtype),
            rand(&[1024], dtype),
        );
        run("layer_norm 1024x1024", "lazy_graph", &mut || {
            Ok(layer_norm(&x, &w, &b, 1e-5)?)
        });
        run("layer_norm 1024x1024", "composed", &mut || {
            composed_layer_norm(&x, &w, &b, 1e-5)
        });
        run("layer_norm 1024x1024", "candle_fused", &mut || {
            candle_nn::ops::layer_norm(&x, &w, &b, 1e-5)
        });

        let (g, u) = (rand(&[1024, 2816], dtype), rand(&[1024, 2816], dtype));
        run("swiglu 1024x2816", "lazy_graph", &mut || Ok(swiglu(&g, &u)?));
        run("swiglu 1024x2816", "composed", &mut || g.silu()? * &u);

        let (x, cos, sin) = (
            rand(&[1, 8, 512, 128], dtype),
            rand(&[512, 64], dtype),
            rand(&[512, 64], dtype),
        );
        run("rope 1x8x512x128", "lazy_graph", &mut || {
            Ok(rope(&x, &cos, &sin)?)
        });
        run("rope 1x8x512x128", "composed", &mut || {
            composed_rope(&x, &cos, &sin)
        });
        run("rope 1x8x512x128", "candle_fused", &mut || {
            candle_nn::rotary_emb::rope(&x, &cos, &sin)
        });
    }
}

/// Forward plus backward: `f(inputs).backward()` (a cotangent of ones, so that no loss ops of
/// Candle's own are timed), every input a `Var`, through the generated function (its backward
/// graph, fused) and through the same math composed of Candle ops (Candle's autograd over each).
fn train(c: &mut Criterion) {
    type Way<'a> = &'a dyn Fn(&[&Tensor]) -> Result<Tensor>;
    for dtype in [DType::F32, DType::BF16] {
        let t = format!("{dtype:?}").to_lowercase();
        let mut run = |name: &str, shapes: &[&[usize]], ways: [(&str, Way); 2]| {
            let vars: Vec<Var> = shapes
                .iter()
                .map(|s| Var::from_tensor(&rand(s, dtype)).expect("a Var"))
                .collect();
            let inputs: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
            for (id, f) in ways {
                c.bench_with_input(BenchmarkId::new(format!("train {name}/{t}"), id), &(), |b, _| {
                    b.iter(|| {
                        f(&inputs)
                            .and_then(|y| y.backward())
                            .expect("forward and backward")
                    })
                });
            }
        };
        run(
            "gelu 1024x4096",
            &[&[1024, 4096]],
            [
                ("lazy_graph", &|i| Ok(gelu(i[0])?)),
                ("composed", &|i| composed_gelu(i[0])),
            ],
        );
        run(
            "softmax 1024x1024",
            &[&[1024, 1024]],
            [
                ("lazy_graph", &|i| Ok(softmax(i[0])?)),
                ("composed", &|i| composed_softmax(i[0])),
            ],
        );
        run(
            "rms_norm 1024x1024",
            &[&[1024, 1024], &[1024]],
            [
                ("lazy_graph", &|i| Ok(rms_norm(i[0], i[1], 1e-6)?)),
                ("composed", &|i| composed_rms_norm(i[0], i[1], 1e-6)),
            ],
        );
        run(
            "layer_norm 1024x1024",
            &[&[1024, 1024], &[1024], &[1024]],
            [
                ("lazy_graph", &|i| Ok(layer_norm(i[0], i[1], i[2], 1e-5)?)),
                ("composed", &|i| composed_layer_norm(i[0], i[1], i[2], 1e-5)),
            ],
        );
        run(
            "swiglu 1024x2816",
            &[&[1024, 2816], &[1024, 2816]],
            [
                ("lazy_graph", &|i| Ok(swiglu(i[0], i[1])?)),
                ("composed", &|i| i[0].silu()? * i[1]),
            ],
        );
        run(
            "rope 1x8x512x128",
            &[&[1, 8, 512, 128], &[512, 64], &[512, 64]],
            [
                ("lazy_graph", &|i| Ok(rope(i[0], i[1], i[2])?)),
                ("composed", &|i| composed_rope(i[0], i[1], i[2])),
            ],
        );
    }
}

criterion_group! {
    name = training;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = train
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}

fn main() {
    steady_allocator();
    benches();
    training();
    Criterion::default().configure_from_args().final_summary();
}

/// Re-executes the bench with glibc's malloc keeping freed memory, unless `GLIBC_TUNABLES` is
/// already set.
///
/// Each Candle op allocates its output. With glibc's default, adaptive thresholds, whether a
/// freed multi-megabyte buffer is kept for the next allocation or handed back to the kernel
/// (to be faulted in again, page by page, on the next use) depends on the allocation history of
/// the process: the same composed row measured 0.25 ms in one run and 5 ms in the next. Keeping
/// freed memory gives every implementation the fast path in every run; it helps the composed
/// rows (one buffer per op) the most, so the ratios against them are the conservative ones.
fn steady_allocator() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().expect("the bench knows its path");
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(
                "GLIBC_TUNABLES",
                "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296",
            )
            .exec();
        panic!("cannot re-execute the bench with GLIBC_TUNABLES set: {err}");
    }
}
