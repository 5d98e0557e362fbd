//! A Llama decoder through generated functions (see `model.rs`), generating greedily, or
//! fine-tuning LoRA adapters on its attention (`finetune`, see `finetune.rs`).
//!
//! With no `--model` it builds a small model of random weights; `--model DIR` loads a Hugging
//! Face checkpoint instead (`DIR/config.json` and the `DIR/*.safetensors` it holds), the same
//! files candle-transformers' llama loads. There is no tokenizer: the prompt is token ids.
//!
//!     cargo run --release --example llama
//!     cargo run --release --example llama -- --model DIR --prompt 128000,791,6864 --steps 32
//!     cargo run --release --example llama --features cuda -- --cuda --dtype bf16 --model DIR
//!
//! `finetune` trains rank-8 adapters on q, k, v and o (f32; a tinier random model unless
//! `--model`) for `--steps` AdamW steps (300 unless given; the learning rate `--lr`, 1e-3 unless
//! given, decays linearly to 0) to continue a fixed batch of random token sequences, with the
//! fused executor and with the eager one from the same start, taking turns step by step
//! (`--seed` draws the weights, the data and the adapters). It prints both loss curves, their
//! largest difference (an error past `finetune::TOLERANCE`) and each executor's time per step:
//!
//!     cargo run --release --example llama -- finetune
//!     cargo run --release --example llama -- finetune --seed 7 --lr 3e-3   # chaotic: fails
//!
//! `tests/llama.rs` checks its logits against candle-transformers', `benches/llama.rs` its speed,
//! `tests/llama_lora.rs` the fine-tuning.

// Shared with tests/llama_lora.rs.
mod finetune;
// Shared with tests/llama.rs, tests/llama_lora.rs and benches/llama.rs; each uses a different part.
#[allow(dead_code)]
mod model;

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use finetune::{Fit, Task};
use graph_runtime::Mode;
use model::{Cache, Config, LlamaConfig, LoraConfig, Model};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(PartialEq)]
enum Command {
    Generate,
    Finetune,
}

struct Args {
    command: Command,
    model: Option<String>,
    prompt: Vec<u32>,
    /// Tokens to generate, or fine-tuning steps.
    steps: Option<usize>,
    seed: u64,
    /// Fine-tuning's first learning rate.
    lr: f64,
    device: Device,
    dtype: DType,
}

fn args() -> Result<Args> {
    let mut args = Args {
        command: Command::Generate,
        model: None,
        prompt: vec![1, 15043, 3186, 29892, 306],
        steps: None,
        seed: 0,
        lr: 1e-3,
        device: Device::Cpu,
        dtype: DType::F32,
    };
    let mut it = std::env::args().skip(1).peekable();
    if it.next_if_eq("finetune").is_some() {
        args.command = Command::Finetune;
    }
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| candle_core::Error::msg(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--model" => args.model = Some(value()?),
            "--prompt" => {
                let ids: std::result::Result<_, _> = value()?.split(',').map(|t| t.trim().parse()).collect();
                args.prompt = ids.map_err(|e| candle_core::Error::msg(format!("--prompt: {e}")))?;
            }
            "--steps" => args.steps = Some(value()?.parse().map_err(candle_core::Error::wrap)?),
            "--seed" => args.seed = value()?.parse().map_err(candle_core::Error::wrap)?,
            "--lr" => args.lr = value()?.parse().map_err(candle_core::Error::wrap)?,
            "--dtype" => {
                args.dtype = match value()?.as_str() {
                    "f32" => DType::F32,
                    "bf16" => DType::BF16,
                    "f16" => DType::F16,
                    other => candle_core::bail!("--dtype {other}: one of f32, bf16, f16"),
                }
            }
            "--cuda" => args.device = Device::new_cuda(0)?,
            other => {
                candle_core::bail!("unknown argument {other}; see the doc comment of examples/llama/main.rs")
            }
        }
    }
    if args.command == Command::Finetune && args.dtype != DType::F32 {
        candle_core::bail!("finetune runs in f32 only (its adapters and AdamW's moments are f32)");
    }
    Ok(args)
}

/// A model of random weights, small enough for a debug build.
fn small_config() -> Config {
    LlamaConfig {
        hidden_size: 256,
        intermediate_size: 688,
        vocab_size: 32000,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        num_key_value_heads: Some(2),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 2048,
        tie_word_embeddings: Some(false),
    }
    .into_config()
}

/// The random model `finetune` trains: 2 layers of 128 wide, 4 query heads over 2 key heads of
/// 32 dims, a vocabulary of 512.
fn tiny_config() -> Config {
    LlamaConfig {
        hidden_size: 128,
        intermediate_size: 344,
        vocab_size: 512,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 64,
        tie_word_embeddings: Some(false),
    }
    .into_config()
}

/// `--model`'s checkpoint, or random weights for `random` drawn from `rng`.
fn load(args: &Args, random: fn() -> Config, rng: &mut StdRng) -> Result<(Config, VarBuilder<'static>)> {
    let Some(dir) = &args.model else {
        let config = random();
        let weights = model::random_weights(&config, rng)?;
        return Ok((
            config,
            VarBuilder::from_tensors(weights, args.dtype, &args.device),
        ));
    };
    let json = std::fs::read_to_string(format!("{dir}/config.json"))?;
    let config: LlamaConfig = serde_json::from_str(&json).map_err(candle_core::Error::wrap)?;
    let mut files = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .filter(|p| {
            p.as_ref()
                .map_or(true, |p| p.extension().is_some_and(|e| e == "safetensors"))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort();
    // SAFETY: the files are not modified while the model holds them mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, args.dtype, &args.device)? };
    Ok((config.into_config(), vb))
}

fn main() -> Result<()> {
    let args = args()?;
    match args.command {
        Command::Generate => generate(&args),
        Command::Finetune => finetune_both(&args),
    }
}

fn generate(args: &Args) -> Result<()> {
    let (config, vb) = load(args, small_config, &mut StdRng::seed_from_u64(args.seed))?;
    let model = Model::load(vb, &config)?;
    let mut cache = Cache::new(true, args.dtype, &config, &args.device)?;

    let steps = args.steps.unwrap_or(16);
    let mut tokens = args.prompt.clone();
    let start = Instant::now();
    let next = |input: &[u32], index_pos: usize, cache: &mut Cache| -> Result<u32> {
        let input = Tensor::new(input, &args.device)?.unsqueeze(0)?;
        let logits = model.forward(&input, index_pos, cache)?;
        logits.argmax(D::Minus1)?.squeeze(0)?.to_scalar::<u32>()
    };
    tokens.push(next(&args.prompt, 0, &mut cache)?);
    let prefill = start.elapsed();
    for _ in 1..steps {
        let last = *tokens.last().expect("the prompt's next token");
        tokens.push(next(&[last], tokens.len() - 1, &mut cache)?);
    }
    let decode = start.elapsed() - prefill;
    println!("{:?}", &tokens[args.prompt.len()..]);
    println!(
        "prefill {} tokens: {:.1} tokens/s; decode {} tokens: {:.1} tokens/s",
        args.prompt.len(),
        args.prompt.len() as f64 / prefill.as_secs_f64(),
        steps - 1,
        (steps - 1) as f64 / decode.as_secs_f64(),
    );
    Ok(())
}

/// Sequences of the fine-tuning task: how many, and how many tokens each model reads.
const BATCH: usize = 8;
const LEN: usize = 32;

fn finetune_both(args: &Args) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (config, base) = load(args, tiny_config, &mut rng)?;
    let task = Task {
        tokens: finetune::random_tokens(&config, BATCH, LEN, &args.device, &mut rng)?,
        adapter_seed: rng.gen(),
        config: &config,
        base,
        lora: LoraConfig { rank: 8, alpha: 16.0 },
        steps: args.steps.unwrap_or(300),
        lr: args.lr,
    };
    let fits = finetune::fit(&task, &[Mode::Fused, Mode::Eager])?;
    let (fused, eager) = (&fits[0], &fits[1]);
    println!("step   fused loss   eager loss   relative difference");
    let every = (task.steps / 10).max(1);
    for i in (0..task.steps).step_by(every).chain([task.steps - 1]) {
        let (f, e) = (fused.losses[i], eager.losses[i]);
        println!("{i:>4}   {f:>10.6}   {e:>10.6}   {:>19.1e}", (f - e).abs() / e);
    }
    let worst = finetune::largest_relative_difference(&fused.losses, &eager.losses);
    println!("largest relative difference between the curves: {worst:.1e}");
    let report = |name: &str, fit: &Fit| {
        let (n, of) = fit.adapters_with_gradient;
        println!(
            "{name}: {:.2} ms per step (median {:.2} ms), {n} of {of} adapter tensors with a non-zero \
             gradient",
            fit.mean_seconds() * 1e3,
            fit.median_seconds() * 1e3,
        );
    };
    report("fused", fused);
    report("eager", eager);
    if worst > finetune::TOLERANCE {
        candle_core::bail!(
            "the curves differ by {worst:.1e}, above the tolerance of {:.0e}: at a large learning rate \
             the fit is chaotic (see finetune::TOLERANCE)",
            finetune::TOLERANCE
        );
    }
    Ok(())
}
