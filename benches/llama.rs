//! Prefill and decode tokens/s of the Llama decoder of `examples/llama` against
//! `candle_transformers::models::llama`, in one process, on the same random weights.
//!
//!     cargo bench --bench llama                                    # CPU, a ~30M model in f32
//!     LLAMA_BENCH=1b cargo bench --bench llama --features cuda     # CUDA, Llama 3.2 1B's shape in bf16
//!
//! Each run builds a fresh cache for each model, prefills `LLAMA_BENCH_PREFILL` tokens (the
//! time to the first logits on the host), then decodes `LLAMA_BENCH_DECODE` tokens greedily
//! (each step's token read back to the host, as a generation loop does). The models take turns
//! within a run, so drift in the machine's speed reaches both; the table gives the median of
//! `LLAMA_BENCH_RUNS` runs after one warm-up run (which compiles the GPU kernels).
//!
//! Two more decodes of this model follow the same prefill in each run, on a `StaticCache` of
//! prefill + decode slots that the prefill is loaded into: `greedy_step` called step by step
//! (`static decode`), and on CUDA that step captured into a CUDA graph once, before the runs,
//! and replayed (`captured decode`); both read each step's token back to the host too.

// The example's model; each user of it uses a different part.
#[path = "../examples/llama/model.rs"]
#[allow(dead_code)]
mod model;

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::llama as reference;
use rand::{Rng, SeedableRng};

/// A ~30M-parameter model: 8 layers of 512 wide, 8 query heads over 2 key heads of 64 dims.
const SMALL: &str = r#"{
    "hidden_size": 512, "intermediate_size": 1376, "vocab_size": 8192,
    "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048
}"#;

/// Llama 3.2 1B's shape (1.24B parameters).
const LLAMA_1B: &str = r#"{
    "hidden_size": 2048, "intermediate_size": 8192, "vocab_size": 128256,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072,
    "tie_word_embeddings": true,
    "rope_scaling": { "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192, "rope_type": "llama3" }
}"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The time to the prefill's next token, and to the `decode` tokens after it: `next(tokens,
/// index_pos)` is the token after `tokens`, read back to the host (the whole prompt at
/// `index_pos` 0, then one token at a time).
fn generate(
    prompt: &[u32],
    decode: usize,
    mut next: impl FnMut(&[u32], usize) -> Result<u32>,
) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    let mut token = next(prompt, 0)?;
    let prefill = start.elapsed();
    for i in 0..decode {
        token = next(&[token], prompt.len() + i)?;
    }
    Ok((prefill, start.elapsed() - prefill))
}

/// `next` for [`generate`] from a model's `forward(tokens, index_pos)` logits.
fn greedy(
    device: &Device,
    mut forward: impl FnMut(&Tensor, usize) -> Result<Tensor>,
) -> impl FnMut(&[u32], usize) -> Result<u32> {
    let device = device.clone();
    move |input, pos| {
        let logits = forward(&Tensor::new(input, &device)?.unsqueeze(0)?, pos)?;
        logits.argmax(D::Minus1)?.squeeze(0)?.to_scalar::<u32>()
    }
}

/// `next` for [`generate`] in static shapes: the prompt through `model.forward` with `cache`,
/// loaded into `statics`, its argmax written into `token`; then each `step()` (which writes the
/// next token into `token`, as `greedy_step` does) and `token` read back.
fn greedy_static<'a>(
    model: &'a model::Model,
    cache: &'a mut model::Cache,
    statics: &'a model::StaticCache,
    token: &'a Tensor,
    mut step: impl FnMut() -> Result<()> + 'a,
) -> impl FnMut(&[u32], usize) -> Result<u32> + 'a {
    move |input, pos| {
        if pos == 0 {
            let logits = model.forward(&Tensor::new(input, token.device())?.unsqueeze(0)?, 0, cache)?;
            statics.load(cache)?;
            token.slice_set(&logits.argmax_keepdim(D::Minus1)?, 0, 0)?;
        } else {
            step()?;
        }
        Ok(token.to_vec2::<u32>()?[0][0])
    }
}

/// The median, NaN for none.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<()> {
    // `cargo test --benches` runs this with `--bench` absent: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let large = std::env::var("LLAMA_BENCH").is_ok_and(|v| v == "1b");
    let (json, dtype, device) = if large {
        (LLAMA_1B, DType::BF16, Device::new_cuda(0)?)
    } else {
        (SMALL, DType::F32, Device::Cpu)
    };
    let (prefill, decode, runs) = (
        env("LLAMA_BENCH_PREFILL", if large { 512 } else { 128 }),
        env("LLAMA_BENCH_DECODE", if large { 128 } else { 32 }),
        env("LLAMA_BENCH_RUNS", 5),
    );
    let ours: model::LlamaConfig = serde_json::from_str(json).map_err(candle_core::Error::wrap)?;
    let theirs: reference::LlamaConfig = serde_json::from_str(json).map_err(candle_core::Error::wrap)?;
    let (config, ref_config) = (ours.into_config(), theirs.into_config(false));

    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let weights = model::random_weights(&config, &mut rng)?;
    let weights = weights
        .into_iter()
        .map(|(name, w)| Ok((name, w.to_device(&device)?.to_dtype(dtype)?)))
        .collect::<Result<_>>()?;
    let vb = VarBuilder::from_tensors(weights, dtype, &device);
    let ours = model::Model::load(vb.clone(), &config)?;
    let theirs = reference::Llama::load(vb, &ref_config)?;
    let prompt: Vec<u32> = (0..prefill)
        .map(|_| rng.gen_range(0..config.vocab_size as u32))
        .collect();

    // The static decodes' state, made once: a graph captured over it replays in every run.
    let tables = model::Cache::new(true, dtype, &config, &device)?;
    let statics = model::StaticCache::new(&config, &tables, 1, prefill + decode)?;
    let token = Tensor::zeros((1, 1), DType::U32, &device)?;
    #[cfg(feature = "cuda")]
    let graph = match device.is_cuda() {
        // SAFETY: this bench uses the device from this thread only, replays included.
        true => Some(unsafe { ours.capture_step(&token, &statics, true) }?),
        false => None,
    };
    #[cfg(not(feature = "cuda"))]
    let graph: Option<()> = None;

    // Per variant: lazy_graph, candle-transformers, static decode, captured decode.
    let mut times: [(Vec<f64>, Vec<f64>); 4] = Default::default();
    // With graph-runtime's `profile-host` feature: where the generated calls' host time goes, over
    // the last run's prefill and decode of our model.
    let mut profile = None;
    for run in 0..=runs {
        let mut cache = model::Cache::new(true, dtype, &config, &device)?;
        graph_runtime::profile::reset();
        let a = generate(
            &prompt,
            decode,
            greedy(&device, |x, pos| ours.forward(x, pos, &mut cache)),
        )?;
        profile = graph_runtime::profile::report();
        let mut cache = reference::Cache::new(true, dtype, &ref_config, &device)?;
        let b = generate(
            &prompt,
            decode,
            greedy(&device, |x, pos| theirs.forward(x, pos, &mut cache)),
        )?;
        let mut cache = model::Cache::new(true, dtype, &config, &device)?;
        let step = || ours.greedy_step(&token, &statics).map(drop);
        let c = generate(
            &prompt,
            decode,
            greedy_static(&ours, &mut cache, &statics, &token, step),
        )?;
        #[cfg(feature = "cuda")]
        let d = match &graph {
            Some(graph) => {
                let mut cache = model::Cache::new(true, dtype, &config, &device)?;
                let replay = || Ok(graph.replay()?);
                let next = greedy_static(&ours, &mut cache, &statics, &token, replay);
                Some(generate(&prompt, decode, next)?)
            }
            None => None,
        };
        #[cfg(not(feature = "cuda"))]
        let d = None;
        if run > 0 {
            for (t, times) in [Some(a), Some(b), Some(c), d].into_iter().zip(&mut times) {
                if let Some((p, d)) = t {
                    times.0.push(prefill as f64 / p.as_secs_f64());
                    times.1.push(decode as f64 / d.as_secs_f64());
                }
            }
        }
    }
    let [(ours_p, ours_d), (theirs_p, theirs_d), (_, static_d), (_, captured_d)] =
        times.map(|(p, d)| (median(p), median(d)));
    println!(
        "llama {}, {dtype:?} on {device:?}: prefill {prefill} tokens, decode {decode}, median of {runs} runs",
        if large { "1b" } else { "small" }
    );
    println!("| | lazy_graph tokens/s | candle-transformers tokens/s | speed-up |");
    println!("|---|--:|--:|--:|");
    println!(
        "| prefill | {ours_p:.1} | {theirs_p:.1} | {:.2}x |",
        ours_p / theirs_p
    );
    println!(
        "| decode | {ours_d:.1} | {theirs_d:.1} | {:.2}x |",
        ours_d / theirs_d
    );
    println!(
        "| static decode | {static_d:.1} | {theirs_d:.1} | {:.2}x |",
        static_d / theirs_d
    );
    match graph.is_some() {
        true => println!(
            "| captured decode | {captured_d:.1} | {theirs_d:.1} | {:.2}x |",
            captured_d / theirs_d
        ),
        false => println!("| captured decode | — (CUDA only) | {theirs_d:.1} | — |"),
    }
    if let Some(profile) = profile {
        println!("host time per phase of the generated calls, our prefill and decode (last run):\n{profile}");
    }
    Ok(())
}
