//! A Llama decoder through generated functions (see `model.rs`), generating greedily.
//!
//! With no arguments it builds a small model of random weights; `--model DIR` loads a Hugging
//! Face checkpoint instead (`DIR/config.json` and the `DIR/*.safetensors` it holds), the same
//! files candle-transformers' llama loads. There is no tokenizer: the prompt is token ids.
//!
//!     cargo run --release --example llama
//!     cargo run --release --example llama -- --model DIR --prompt 128000,791,6864 --steps 32
//!     cargo run --release --example llama --features cuda -- --cuda --dtype bf16 --model DIR
//!
//! `tests/llama.rs` checks its logits against candle-transformers', `benches/llama.rs` its speed.

// Shared with tests/llama.rs and benches/llama.rs; each uses a different part.
#[allow(dead_code)]
mod model;

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use model::{Cache, Config, LlamaConfig, Model};
use rand::SeedableRng;

struct Args {
    model: Option<String>,
    prompt: Vec<u32>,
    steps: usize,
    device: Device,
    dtype: DType,
}

fn args() -> Result<Args> {
    let mut args = Args {
        model: None,
        prompt: vec![1, 15043, 3186, 29892, 306],
        steps: 16,
        device: Device::Cpu,
        dtype: DType::F32,
    };
    let mut it = std::env::args().skip(1);
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
            "--steps" => args.steps = value()?.parse().map_err(candle_core::Error::wrap)?,
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

fn main() -> Result<()> {
    let args = args()?;
    let (config, vb) = match &args.model {
        Some(dir) => {
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
            (config.into_config(), vb)
        }
        None => {
            let config = small_config();
            let weights = model::random_weights(&config, &mut rand::rngs::StdRng::seed_from_u64(0))?;
            (
                config,
                VarBuilder::from_tensors(weights, args.dtype, &args.device),
            )
        }
    };
    let model = Model::load(vb, &config)?;
    let mut cache = Cache::new(true, args.dtype, &config, &args.device)?;

    let mut tokens = args.prompt.clone();
    let start = Instant::now();
    let next = |input: &[u32], index_pos: usize, cache: &mut Cache| -> Result<u32> {
        let input = Tensor::new(input, &args.device)?.unsqueeze(0)?;
        let logits = model.forward(&input, index_pos, cache)?;
        logits.argmax(D::Minus1)?.squeeze(0)?.to_scalar::<u32>()
    };
    tokens.push(next(&args.prompt, 0, &mut cache)?);
    let prefill = start.elapsed();
    for _ in 1..args.steps {
        let last = *tokens.last().expect("the prompt's next token");
        tokens.push(next(&[last], tokens.len() - 1, &mut cache)?);
    }
    let decode = start.elapsed() - prefill;
    println!("{:?}", &tokens[args.prompt.len()..]);
    println!(
        "prefill {} tokens: {:.1} tokens/s; decode {} tokens: {:.1} tokens/s",
        args.prompt.len(),
        args.prompt.len() as f64 / prefill.as_secs_f64(),
        args.steps - 1,
        (args.steps - 1) as f64 / decode.as_secs_f64(),
    );
    Ok(())
}
