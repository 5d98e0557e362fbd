//! The Llama decoder of `examples/llama` against `candle_transformers::models::llama`: one
//! random checkpoint, written to a safetensors file and loaded by both, gives the same logits for
//! a prefill and for the decode steps after it, through each model's KV cache. The decode steps
//! in static shapes (`Model::decode_step` on a `StaticCache` the prefill was loaded into) give
//! the dynamic steps' logits too, and on CUDA so do their replays from a captured CUDA graph.
//!
//! The weights are fresh each run; the seed is printed, and `LAZY_GRAPH_SEED=<seed> cargo test
//! --test llama` replays a run.
//!
//! Tolerances are relative to the logits' scale (the largest |logit| of the reference at that
//! step), since with random weights the logits are O(1) and a wrong convention (rope's pairing,
//! the mask, which key head a query head reads) moves them by O(1):
//! - f32: 1e-5. The two models compute the same products, but sum them in different orders
//!   (fused norms and softmax, the grouped attention matmul instead of repeated key heads), so
//!   they differ by f32 rounding carried through the layers: at most 1.1e-6 in ten runs.
//! - bf16: 5e-2. Both round every stored activation to 8 bits of mantissa, in different places
//!   (this model computes rope and the norms in f32 and rounds once; candle-transformers rounds
//!   after each op), so they differ by a few bf16 ulps of the logits (2^-8 = 4e-3 relative): at
//!   most 1.7e-2 on the CPU in ten runs. Against the f32 logits, this model is off by at most
//!   1.2e-2 there, candle-transformers by 1.5e-2.
//! - The static steps against the dynamic ones: the same tolerances. Both compute the same
//!   products; the static attention also sums the masked slots' exact zeros, which can change
//!   the order in which the softmax and the weights' matmul add up the rest.
//! - A captured step's replay against the same step uncaptured: equal bit for bit (the same
//!   kernels on the same shapes and values).

#[path = "common/seed.rs"]
mod seed;
// The example's model; each user of it uses a different part.
#[path = "../examples/llama/model.rs"]
#[allow(dead_code)]
mod model;

use std::path::PathBuf;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama as reference;
use graph_runtime::{with_mode, Mode};
use rand::rngs::StdRng;
use rand::Rng;
use seed::rng;

/// Tokens of the prefill, then of the decode steps, one at a time.
const PREFILL: usize = 40;
const DECODE: usize = 16;
/// The slots of the static caches: more than the generation fills, so that masked slots exist.
const MAX_LEN: usize = 64;

/// Grouped-query attention (8 query heads over 2 key heads of 24 dims), untied embeddings.
const GQA: &str = r#"{
    "hidden_size": 192, "intermediate_size": 512, "vocab_size": 384,
    "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 256
}"#;

/// Llama 3's layout: tied embeddings, rescaled rope frequencies, 32-dim heads.
const LLAMA3: &str = r#"{
    "hidden_size": 128, "intermediate_size": 384, "vocab_size": 320,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
    "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "max_position_embeddings": 128,
    "tie_word_embeddings": true,
    "rope_scaling": { "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8, "rope_type": "llama3" }
}"#;

const F32_TOLERANCE: f32 = 1e-5;
const BF16_TOLERANCE: f32 = 5e-2;

/// A checkpoint of random weights for `config`, written to a fresh safetensors file.
struct Checkpoint {
    config: model::Config,
    reference: reference::Config,
    file: PathBuf,
}

impl Checkpoint {
    fn new(config: &str, rng: &mut StdRng) -> Result<Checkpoint> {
        let ours: model::LlamaConfig = serde_json::from_str(config).map_err(candle_core::Error::wrap)?;
        let theirs: reference::LlamaConfig =
            serde_json::from_str(config).map_err(candle_core::Error::wrap)?;
        let config = ours.into_config();
        let dir = std::env::temp_dir().join(format!(
            "lazy-graph-llama-{}-{}",
            std::process::id(),
            rng.gen::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("model.safetensors");
        candle_core::safetensors::save(&model::random_weights(&config, rng)?, &file)?;
        Ok(Checkpoint {
            config,
            reference: theirs.into_config(false),
            file,
        })
    }

    fn vb(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: the file is written once, before it is mapped, and removed only on drop.
        unsafe { VarBuilder::from_mmaped_safetensors(&[&self.file], dtype, device) }
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The logits of the prefill and then of each decode step, `[vocab]` in f32 on the CPU.
fn ours(ckpt: &Checkpoint, tokens: &[u32], dtype: DType, device: &Device) -> Result<Vec<Tensor>> {
    let model = model::Model::load(ckpt.vb(dtype, device)?, &ckpt.config)?;
    let mut cache = model::Cache::new(true, dtype, &ckpt.config, device)?;
    steps(tokens, device, |input, pos| model.forward(input, pos, &mut cache))
}

fn theirs(ckpt: &Checkpoint, tokens: &[u32], dtype: DType, device: &Device) -> Result<Vec<Tensor>> {
    let model = reference::Llama::load(ckpt.vb(dtype, device)?, &ckpt.reference)?;
    let mut cache = reference::Cache::new(true, dtype, &ckpt.reference, device)?;
    steps(tokens, device, |input, pos| model.forward(input, pos, &mut cache))
}

/// `model`'s prefill of `tokens[..PREFILL]` (its logits `[vocab]` on the CPU, and its cache),
/// loaded into a new static cache of `MAX_LEN` slots.
fn prefill_static(
    model: &model::Model,
    ckpt: &Checkpoint,
    tokens: &[u32],
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, model::Cache, model::StaticCache)> {
    let mut cache = model::Cache::new(true, dtype, &ckpt.config, device)?;
    let input = Tensor::new(&tokens[..PREFILL], device)?.unsqueeze(0)?;
    let logits = model
        .forward(&input, 0, &mut cache)?
        .squeeze(0)?
        .to_device(&Device::Cpu)?;
    let statics = model::StaticCache::new(&ckpt.config, &cache, 1, MAX_LEN)?;
    statics.load(&cache)?;
    Ok((logits, cache, statics))
}

/// The logits of the prefill, then of each decode step through `Model::decode_step`.
fn ours_static(ckpt: &Checkpoint, tokens: &[u32], dtype: DType, device: &Device) -> Result<Vec<Tensor>> {
    let model = model::Model::load(ckpt.vb(dtype, device)?, &ckpt.config)?;
    let (prefill, _, statics) = prefill_static(&model, ckpt, tokens, dtype, device)?;
    let mut logits = vec![prefill];
    for &token in &tokens[PREFILL..] {
        let step = model.decode_step(&Tensor::new(&[[token]], device)?, &statics)?;
        logits.push(step.squeeze(0)?.to_device(&Device::Cpu)?);
    }
    Ok(logits)
}

/// Runs `forward(tokens, index_pos)` on the first `PREFILL` tokens, then on each next one.
fn steps(
    tokens: &[u32],
    device: &Device,
    mut forward: impl FnMut(&Tensor, usize) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let mut logits = Vec::new();
    let mut pos = 0;
    for chunk in std::iter::once(&tokens[..PREFILL]).chain(tokens[PREFILL..].chunks(1)) {
        let input = Tensor::new(chunk, device)?.unsqueeze(0)?;
        logits.push(forward(&input, pos)?.squeeze(0)?.to_device(&Device::Cpu)?);
        pos += chunk.len();
    }
    Ok(logits)
}

/// The largest `|got - want|` of each step over the largest `|want|` of that step, checked
/// against `tolerance`; returns the largest.
fn compare(what: &str, got: &[Tensor], want: &[Tensor], tolerance: f32) -> Result<f32> {
    assert_eq!(got.len(), want.len());
    let mut worst = 0f32;
    for (step, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.dims(), w.dims(), "{what}, step {step}");
        let scale = w.abs()?.max_all()?.to_scalar::<f32>()?;
        let error = (g - w)?.abs()?.max_all()?.to_scalar::<f32>()? / scale;
        let name = if step == 0 {
            "prefill".to_string()
        } else {
            format!("decode step {step}")
        };
        assert!(
            error <= tolerance,
            "{what}, {name}: error {error:.2e} of the logits' scale {scale:.2}, above {tolerance:.0e}"
        );
        worst = worst.max(error);
    }
    eprintln!("{what}: max error {worst:.2e} of the logits' scale (tolerance {tolerance:.0e})");
    Ok(worst)
}

fn check(config: &str, dtype: DType, device: &Device, tolerance: f32) -> Result<()> {
    let mut rng = rng();
    let ckpt = Checkpoint::new(config, &mut rng)?;
    let vocab = ckpt.config.vocab_size as u32;
    let tokens: Vec<u32> = (0..PREFILL + DECODE).map(|_| rng.gen_range(0..vocab)).collect();
    let want = theirs(&ckpt, &tokens, dtype, device)?;
    let what = format!("{dtype:?} on {device:?}");
    let fused = with_mode(Mode::Fused, || ours(&ckpt, &tokens, dtype, device))?;
    compare(&format!("fused, {what}"), &fused, &want, tolerance)?;
    let eager = with_mode(Mode::Eager, || ours(&ckpt, &tokens, dtype, device))?;
    compare(&format!("eager, {what}"), &eager, &want, tolerance)?;
    if dtype != DType::F32 {
        // How far each model's rounding takes it from the f32 logits (printed, and held to the
        // same tolerance): this model should be no further than the reference.
        let exact = theirs(&ckpt, &tokens, DType::F32, device)?;
        compare(&format!("fused, {what}, against f32"), &fused, &exact, tolerance)?;
        compare(
            &format!("candle-transformers, {what}, against f32"),
            &want,
            &exact,
            tolerance,
        )?;
    }
    Ok(())
}

#[test]
fn same_logits_as_candle_transformers_f32() -> Result<()> {
    check(GQA, DType::F32, &Device::Cpu, F32_TOLERANCE)
}

#[test]
fn same_logits_as_candle_transformers_llama3_f32() -> Result<()> {
    check(LLAMA3, DType::F32, &Device::Cpu, F32_TOLERANCE)
}

#[test]
fn same_logits_as_candle_transformers_bf16() -> Result<()> {
    check(GQA, DType::BF16, &Device::Cpu, BF16_TOLERANCE)
}

/// All positions' logits of a prefill are those of the prefixes, each run alone.
#[test]
fn forward_all_matches_the_last_position_of_each_prefix() -> Result<()> {
    let mut rng = rng();
    let ckpt = Checkpoint::new(GQA, &mut rng)?;
    let dev = Device::Cpu;
    let model = model::Model::load(ckpt.vb(DType::F32, &dev)?, &ckpt.config)?;
    let tokens: Vec<u32> = (0..12)
        .map(|_| rng.gen_range(0..ckpt.config.vocab_size as u32))
        .collect();
    let mut cache = model::Cache::new(true, DType::F32, &ckpt.config, &dev)?;
    let all = model
        .forward_all(&Tensor::new(&tokens[..], &dev)?.unsqueeze(0)?, 0, &mut cache)?
        .squeeze(0)?;
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for n in 1..=tokens.len() {
        let mut cache = model::Cache::new(false, DType::F32, &ckpt.config, &dev)?;
        want.push(
            model
                .forward(&Tensor::new(&tokens[..n], &dev)?.unsqueeze(0)?, 0, &mut cache)?
                .squeeze(0)?,
        );
        got.push(all.get(n - 1)?);
    }
    compare("forward_all against prefixes", &got, &want, F32_TOLERANCE)?;
    Ok(())
}

/// The static decode steps against the dynamic ones and candle-transformers', fused and eager.
fn check_static(config: &str, dtype: DType, device: &Device, tolerance: f32) -> Result<()> {
    let mut rng = rng();
    let ckpt = Checkpoint::new(config, &mut rng)?;
    let vocab = ckpt.config.vocab_size as u32;
    let tokens: Vec<u32> = (0..PREFILL + DECODE).map(|_| rng.gen_range(0..vocab)).collect();
    let want = theirs(&ckpt, &tokens, dtype, device)?;
    let dynamic = ours(&ckpt, &tokens, dtype, device)?;
    let what = format!("{dtype:?} on {device:?}");
    for mode in [Mode::Fused, Mode::Eager] {
        let got = with_mode(mode, || ours_static(&ckpt, &tokens, dtype, device))?;
        let name = format!("static decode, {mode:?}, {what}");
        compare(
            &format!("{name}, against the dynamic decode"),
            &got,
            &dynamic,
            tolerance,
        )?;
        compare(
            &format!("{name}, against candle-transformers"),
            &got,
            &want,
            tolerance,
        )?;
    }
    Ok(())
}

#[test]
fn static_decode_matches_dynamic_decode_f32() -> Result<()> {
    check_static(GQA, DType::F32, &Device::Cpu, F32_TOLERANCE)
}

#[test]
fn static_decode_matches_dynamic_decode_llama3_f32() -> Result<()> {
    check_static(LLAMA3, DType::F32, &Device::Cpu, F32_TOLERANCE)
}

/// A static cache loaded with a second prefill decodes as if new: the first generation's keys
/// and values in the slots after the new position are masked, whatever they hold.
#[test]
fn a_reloaded_static_cache_ignores_its_stale_slots() -> Result<()> {
    let mut rng = rng();
    let ckpt = Checkpoint::new(GQA, &mut rng)?;
    let dev = Device::Cpu;
    let vocab = ckpt.config.vocab_size as u32;
    let mut random_tokens =
        || -> Vec<u32> { (0..PREFILL + DECODE).map(|_| rng.gen_range(0..vocab)).collect() };
    let (first, second) = (random_tokens(), random_tokens());
    let model = model::Model::load(ckpt.vb(DType::F32, &dev)?, &ckpt.config)?;
    let (_, _, statics) = prefill_static(&model, &ckpt, &first, DType::F32, &dev)?;
    // The first generation runs on past the second's prefill, and the second's is shorter.
    for &token in first[PREFILL..].iter().chain(&second[..8]) {
        model.decode_step(&Tensor::new(&[[token]], &dev)?, &statics)?;
    }
    let mut cache = model::Cache::new(true, DType::F32, &ckpt.config, &dev)?;
    let prompt = &second[..PREFILL - 8];
    let prefill = model.forward(&Tensor::new(prompt, &dev)?.unsqueeze(0)?, 0, &mut cache)?;
    statics.load(&cache)?;
    let (mut got, mut want) = (vec![prefill.squeeze(0)?], vec![]);
    for &token in &second[PREFILL - 8..] {
        got.push(
            model
                .decode_step(&Tensor::new(&[[token]], &dev)?, &statics)?
                .squeeze(0)?,
        );
    }
    let mut fresh = model::Cache::new(true, DType::F32, &ckpt.config, &dev)?;
    want.push(
        model
            .forward(&Tensor::new(prompt, &dev)?.unsqueeze(0)?, 0, &mut fresh)?
            .squeeze(0)?,
    );
    for (i, &token) in second[PREFILL - 8..].iter().enumerate() {
        let input = Tensor::new(&[token], &dev)?.unsqueeze(0)?;
        want.push(model.forward(&input, PREFILL - 8 + i, &mut fresh)?.squeeze(0)?);
    }
    compare(
        "a reloaded static cache against a fresh dynamic one",
        &got,
        &want,
        F32_TOLERANCE,
    )?;
    Ok(())
}

/// `greedy_step` writes the argmax of its logits into the token, and so generates what greedy
/// decoding with the dynamic cache does.
#[test]
fn greedy_static_steps_write_the_argmax_into_the_token() -> Result<()> {
    let mut rng = rng();
    let ckpt = Checkpoint::new(GQA, &mut rng)?;
    let dev = Device::Cpu;
    let prompt: Vec<u32> = (0..PREFILL)
        .map(|_| rng.gen_range(0..ckpt.config.vocab_size as u32))
        .collect();
    let model = model::Model::load(ckpt.vb(DType::F32, &dev)?, &ckpt.config)?;
    let (prefill, mut cache, statics) = prefill_static(&model, &ckpt, &prompt, DType::F32, &dev)?;
    let first = prefill.argmax(0)?.to_scalar::<u32>()?;
    let (mut dynamic, mut next) = (vec![], first);
    for i in 0..DECODE {
        let input = Tensor::new(&[[next]], &dev)?;
        next = model
            .forward(&input, PREFILL + i, &mut cache)?
            .argmax(1)?
            .squeeze(0)?
            .to_scalar()?;
        dynamic.push(next);
    }
    let token = Tensor::new(&[[first]], &dev)?;
    let mut greedy = vec![];
    for step in 0..DECODE {
        let logits = model.greedy_step(&token, &statics)?;
        let written = token.flatten_all()?.to_vec1::<u32>()?;
        assert_eq!(
            written,
            logits.argmax(1)?.to_vec1::<u32>()?,
            "step {step}: the token written"
        );
        greedy.extend(written);
    }
    assert_eq!(
        greedy, dynamic,
        "greedy tokens: static steps against the dynamic cache"
    );
    Ok(())
}

#[cfg(feature = "cuda")]
#[test]
fn same_logits_as_candle_transformers_cuda() -> Result<()> {
    let Ok(device) = Device::new_cuda(0) else {
        eprintln!("\n**** no CUDA device: skipped ****\n");
        return Ok(());
    };
    let _alone = alone();
    check_static(GQA, DType::F32, &device, F32_TOLERANCE)?;
    check_static(GQA, DType::BF16, &device, BF16_TOLERANCE)?;
    check(GQA, DType::F32, &device, F32_TOLERANCE)?;
    check(LLAMA3, DType::F32, &device, F32_TOLERANCE)?;
    check(GQA, DType::BF16, &device, BF16_TOLERANCE)
}

/// One CUDA test at a time: a capture records whatever is queued on the device, so no other
/// thread may use it meanwhile (`cuda_graph::capture`'s safety contract).
#[cfg(feature = "cuda")]
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static DEVICE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DEVICE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The static step captured into a CUDA graph: replays fed the tokens one at a time give the
/// uncaptured static step's logits bit for bit, and so the dynamic decode's and
/// candle-transformers'; a captured greedy step replayed alone generates what the uncaptured
/// greedy steps do.
#[cfg(feature = "cuda")]
fn check_captured(config: &str, dtype: DType, device: &Device, tolerance: f32) -> Result<()> {
    use graph_runtime::cuda_graph;

    let mut rng = rng();
    let ckpt = Checkpoint::new(config, &mut rng)?;
    let vocab = ckpt.config.vocab_size as u32;
    let tokens: Vec<u32> = (0..PREFILL + DECODE).map(|_| rng.gen_range(0..vocab)).collect();
    let want = theirs(&ckpt, &tokens, dtype, device)?;
    let dynamic = ours(&ckpt, &tokens, dtype, device)?;
    let uncaptured = ours_static(&ckpt, &tokens, dtype, device)?;
    let what = format!("captured static decode, {dtype:?} on {device:?}");

    let model = model::Model::load(ckpt.vb(dtype, device)?, &ckpt.config)?;
    let (prefill, cache, statics) = prefill_static(&model, &ckpt, &tokens, dtype, device)?;
    let token = Tensor::zeros((1, 1), DType::U32, device)?;
    // SAFETY: the CUDA tests of this file hold `alone()`, and the replays run on this thread.
    let graph = unsafe { model.capture_step(&token, &statics, false) }?;
    let mut captured = vec![prefill.clone()];
    for &t in &tokens[PREFILL..] {
        cuda_graph::write(&token, &Tensor::new(&[[t]], device)?)?;
        graph.replay()?;
        captured.push(graph.outputs().squeeze(0)?.to_device(&Device::Cpu)?);
    }
    drop(graph);
    for (step, (got, want)) in captured.iter().zip(&uncaptured).enumerate() {
        assert_eq!(
            got.to_vec1::<f32>()?,
            want.to_vec1::<f32>()?,
            "{what}, step {step}: the replay against the uncaptured static step"
        );
    }
    compare(
        &format!("{what}, against the dynamic decode"),
        &captured,
        &dynamic,
        tolerance,
    )?;
    compare(
        &format!("{what}, against candle-transformers"),
        &captured,
        &want,
        tolerance,
    )?;

    // Greedy: each replay reads the token the one before it wrote.
    let first = prefill.argmax(0)?.to_scalar::<u32>()?;
    let generate = |next: &mut dyn FnMut() -> Result<()>| -> Result<Vec<u32>> {
        statics.load(&cache)?;
        cuda_graph::write(&token, &Tensor::new(&[[first]], device)?)?;
        (0..DECODE)
            .map(|_| {
                next()?;
                token.flatten_all()?.to_vec1::<u32>().map(|t| t[0])
            })
            .collect()
    };
    let stepped = generate(&mut || model.greedy_step(&token, &statics).map(drop))?;
    // SAFETY: as above.
    let graph = unsafe { model.capture_step(&token, &statics, true) }?;
    let replayed = generate(&mut || Ok(graph.replay()?))?;
    assert_eq!(
        replayed, stepped,
        "{what}: greedy tokens, replayed against uncaptured"
    );
    eprintln!("{what}: greedy tokens {replayed:?}");
    Ok(())
}

#[cfg(feature = "cuda")]
#[test]
fn captured_static_decode_cuda() -> Result<()> {
    let Ok(device) = Device::new_cuda(0) else {
        eprintln!("\n**** no CUDA device: skipped ****\n");
        return Ok(());
    };
    let _alone = alone();
    check_captured(GQA, DType::F32, &device, F32_TOLERANCE)?;
    check_captured(LLAMA3, DType::F32, &device, F32_TOLERANCE)?;
    check_captured(GQA, DType::BF16, &device, BF16_TOLERANCE)
}
