//! Every generated CUDA kernel of the test, example and benchmark graphs compiles with NVRTC for
//! sm_80 and sm_90, in configurations that cover every path of its template (see
//! `covering_configs`). NVRTC runs on the host, so this needs no GPU: CI runs it on machines
//! without one.
#![cfg(feature = "cuda")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use graph_runtime::ir::Step;
use graph_runtime::testing::cuda::{compile, covering_configs, full_source, nvrtc_version};

#[macro_use]
#[allow(unused_macros)]
mod common;

// The examples' and benchmarks' graphs, linked into this binary; their `main`s go unused.
#[allow(dead_code)]
#[path = "../examples/llama/model.rs"]
mod llama;
#[allow(dead_code)]
#[path = "../examples/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[allow(dead_code)]
#[path = "../examples/serve.rs"]
mod serve;
// The regression graphs, whose kernels once failed to compile (their tests run here too).
#[path = "regressions.rs"]
mod regressions;

const ARCHS: [i32; 2] = [80, 90];

#[test]
fn every_generated_kernel_compiles() {
    let version = match nvrtc_version() {
        Ok(v) => v,
        Err(e) => panic!("NVRTC must be usable wherever the cuda feature builds: {e}"),
    };
    let mut jobs = Vec::new();
    let mut names = Vec::new();
    for graph in graph_runtime::graphs() {
        for step in graph.plan() {
            if let Step::Kernel(k) = step {
                names.push(k.name);
                for config in covering_configs(k) {
                    for arch in ARCHS {
                        jobs.push((k.name, k.gpu.cuda, config, arch));
                    }
                }
            }
        }
    }
    // The graphs of tests/common and the examples (`examples/llama`'s model too): a floor that
    // catches graphs going missing.
    assert!(names.len() >= 20, "only {} kernels found: {names:?}", names.len());
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, source, config, arch)) = jobs.get(i) else {
                    break;
                };
                let text = full_source(&config.defines(), source);
                if let Err(log) = compile(&text, *arch, name) {
                    failures.lock().unwrap().push(format!(
                        "{name} for sm_{arch} with {config:?}:\n{log}\n--- source ---\n{text}"
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "NVRTC {version}: {} compiles of {} kernels in {:.1?}",
        jobs.len(),
        names.len(),
        start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
}
