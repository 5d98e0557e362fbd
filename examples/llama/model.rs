//! A Llama-family decoder whose pointwise and row-wise parts are generated functions.
//!
//! The architecture, tensor names and config fields are those of
//! `candle_transformers::models::llama`, so the same Hugging Face safetensors load into both and
//! give the same logits (`tests/llama.rs`). The matmuls, the embedding lookup and the KV cache's
//! copies are Candle's; everything between them runs in the functions of the `lazy_graph!` block
//! below: the norms, each residual add fused with the norm after it, rope on the queries and keys
//! in one call, the attention's scale, causal mask and softmax in one call, and SwiGLU.
//!
//! Attention runs in f32 whatever the model's dtype, as in candle-transformers: `rope_qk` writes
//! the rotated queries and keys in f32, and the KV cache keeps f32, so a decode step reads the
//! cache once instead of casting all of it. Grouped-query attention multiplies the `H / Hkv`
//! query heads of a group with their shared key head in one matmul, so the keys and values are
//! never repeated. The projections that read one input are one matmul: q, k and v, and the
//! MLP's gate and up (their weights stacked at load time).
//!
//! Decoding comes in two forms. [`Model::forward`] with a [`Cache`] appends to a growing KV cache
//! at a host-side `index_pos`: prefills and plain decode loops. [`Model::decode_step`] with a
//! [`StaticCache`] (`static_decode.rs`) decodes in static shapes, its KV buffers fixed at
//! `max_len` slots and its position a device tensor that the step itself advances, so that one
//! step captured into a CUDA graph (`Model::capture_step`, with the `cuda` feature) replays as
//! every next one. A generation is a prefill through `forward`, [`StaticCache::load`] of its
//! keys and values, then static steps.
//!
//! [`Model::load_lora`] puts a LoRA adapter on each of the attention's projections (q, k, v and
//! o; the generated `lora` of `examples/common/lora.rs`) over the frozen checkpoint, for
//! fine-tuning (`finetune.rs`); [`Model::load`]'s model has none and runs as above.

use std::collections::HashMap;
use std::f32::consts::PI;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::{embedding, linear_no_bias, Embedding, Linear, VarBuilder, VarMap};
use graph_runtime::lazy_graph;

#[path = "../common/lora.rs"]
mod lora;
#[path = "static_decode.rs"]
mod static_decode;

pub use lora::LoraConfig;
use lora::{a_half_width, Lora};
// Not every user of this file decodes in static shapes (the fine-tuning ones do not).
#[allow(unused_imports)]
pub use static_decode::StaticCache;

lazy_graph! {
    /// RMSNorm over the hidden axis.
    pub fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// A residual add fused with the norm after it: the new residual stream `x + r`, and its norm.
    pub fn add_rms_norm(x: Tensor[B, S, D], r: Tensor[B, S, D], w: Tensor[D], eps: f32)
        -> (Tensor[B, S, D], Tensor[B, S, D])
    {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    /// Rotary embeddings of the queries and the keys, rotate-half form (each `x[i]` turns with
    /// `x[i + Dh / 2]`, as `candle_nn::rotary_emb::rope`), written in f32 for the attention.
    pub fn rope_qk(
        q: Tensor[B, H, S, Dh],
        k: Tensor[B, Hkv, S, Dh],
        cos: Tensor[S, Dh / 2],
        sin: Tensor[S, Dh / 2],
    ) -> (Tensor[B, H, S, Dh], Tensor[B, Hkv, S, Dh]) {
        let q1 = q.narrow(-1, 0, Dh / 2);
        let q2 = q.narrow(-1, Dh / 2, Dh / 2);
        let k1 = k.narrow(-1, 0, Dh / 2);
        let k2 = k.narrow(-1, Dh / 2, Dh / 2);
        let q = cat([q1 * cos - q2 * sin, q1 * sin + q2 * cos], -1);
        let k = cat([k1 * cos - k2 * sin, k1 * sin + k2 * cos], -1);
        (cast(q, f32), cast(k, f32))
    }

    /// The attention weights of a prefill: the scaled scores, `-inf` where `mask` is 0 (a key
    /// after the query), softmaxed over the keys.
    pub fn masked_softmax(scores: Tensor[B, H, S, T], mask: Tensor[S, T], scale: f32)
        -> Tensor[B, H, S, T]
    {
        softmax(where_(mask > 0.5, scores * scale, -inf), -1)
    }

    /// The attention weights of a decode step, whose one query sees every key: no mask.
    pub fn scaled_softmax(scores: Tensor[B, H, S, T], scale: f32) -> Tensor[B, H, S, T] {
        softmax(scores * scale, -1)
    }

    /// The gated activation of the MLP.
    pub fn swiglu(gate: Tensor[B, S, F], up: Tensor[B, S, F]) -> Tensor[B, S, F] {
        silu(gate) * up
    }
}

/// The fields of a Hugging Face `config.json` that `candle_transformers::models::llama::LlamaConfig`
/// reads, with the same names and defaults.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    pub rope_scaling: Option<Llama3RopeConfig>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: Option<bool>,
}

fn default_rope_theta() -> f32 {
    10_000.0
}

/// Llama 3's rescaling of the rotary frequencies (`rope_scaling` in `config.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Llama3RopeConfig {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_max_position_embeddings: usize,
    #[serde(default)]
    pub rope_type: Llama3RopeType,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub enum Llama3RopeType {
    #[serde(rename = "llama3")]
    Llama3,
    #[default]
    #[serde(rename = "default")]
    Default,
}

impl LlamaConfig {
    pub fn into_config(self) -> Config {
        Config {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            vocab_size: self.vocab_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            rms_norm_eps: self.rms_norm_eps,
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
        }
    }
}

/// The model's hyperparameters; `head_dim` is `hidden_size / num_attention_heads`.
#[derive(Debug, Clone)]
pub struct Config {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f32,
    pub rope_scaling: Option<Llama3RopeConfig>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The rotary frequencies, as candle-transformers computes them (in f32).
    fn inv_freq(&self) -> Vec<f32> {
        let head_dim = self.head_dim();
        let freq = (0..head_dim)
            .step_by(2)
            .map(|i| 1f32 / self.rope_theta.powf(i as f32 / head_dim as f32));
        let Some(s) = self
            .rope_scaling
            .as_ref()
            .filter(|s| matches!(s.rope_type, Llama3RopeType::Llama3))
        else {
            return freq.collect();
        };
        let original = s.original_max_position_embeddings as f32;
        let (low_wavelen, high_wavelen) = (original / s.low_freq_factor, original / s.high_freq_factor);
        freq.map(|freq| {
            let wavelen = 2. * PI / freq;
            if wavelen < high_wavelen {
                freq
            } else if wavelen > low_wavelen {
                freq / s.factor
            } else {
                let smooth =
                    (original / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                (1. - smooth) * freq / s.factor + smooth * freq
            }
        })
        .collect()
    }
}

/// The state a generation carries between calls: each layer's keys and values, the rotary
/// tables and the causal masks built so far.
#[derive(Debug, Clone)]
pub struct Cache {
    pub use_kv_cache: bool,
    kvs: Vec<KvCache>,
    /// `[max_position_embeddings, head_dim / 2]` in the model's dtype.
    cos: Tensor,
    sin: Tensor,
    /// `[S, index_pos + S]` masks in f32, 1 where the key is visible: by `(S, index_pos)`.
    masks: HashMap<(usize, usize), Tensor>,
    device: Device,
}

/// Positions the KV cache allocates at once (it grows by as many when full).
const KV_CHUNK: usize = 512;

impl Cache {
    pub fn new(use_kv_cache: bool, dtype: DType, config: &Config, device: &Device) -> Result<Cache> {
        let inv_freq = config.inv_freq();
        let (positions, half) = (config.max_position_embeddings, inv_freq.len());
        let angles: Vec<f32> = (0..positions)
            .flat_map(|p| inv_freq.iter().map(move |f| p as f32 * f))
            .collect();
        let table = |f: fn(f32) -> f32| {
            let values = angles.iter().map(|&a| f(a)).collect::<Vec<_>>();
            Tensor::from_vec(values, (positions, half), device)?.to_dtype(dtype)
        };
        Ok(Cache {
            use_kv_cache,
            kvs: (0..config.num_hidden_layers)
                .map(|_| KvCache::new(2, KV_CHUNK))
                .collect(),
            cos: table(f32::cos)?,
            sin: table(f32::sin)?,
            masks: HashMap::new(),
            device: device.clone(),
        })
    }

    /// Forgets the keys and values: the next call starts a new sequence.
    pub fn reset(&mut self) {
        self.kvs.iter_mut().for_each(KvCache::reset);
    }

    fn mask(&mut self, seq_len: usize, index_pos: usize) -> Result<Tensor> {
        if let Some(mask) = self.masks.get(&(seq_len, index_pos)) {
            return Ok(mask.clone());
        }
        let kv_len = index_pos + seq_len;
        let visible: Vec<f32> = (0..seq_len)
            .flat_map(|i| (0..kv_len).map(move |j| f32::from(u8::from(j <= index_pos + i))))
            .collect();
        let mask = Tensor::from_vec(visible, (seq_len, kv_len), &self.device)?;
        self.masks.insert((seq_len, index_pos), mask.clone());
        Ok(mask)
    }
}

/// One linear layer for several that read the same input: their weights stacked, their outputs
/// side by side in the last axis.
fn stacked(vb: &VarBuilder, names: &[(&str, usize)], in_dim: usize) -> Result<Linear> {
    let weights = names
        .iter()
        .map(|&(name, out)| vb.get((out, in_dim), &format!("{name}.weight")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Linear::new(Tensor::cat(&weights, 0)?, None))
}

/// Linear layers that read one input, their outputs side by side in the last axis.
#[derive(Debug, Clone)]
enum Projections {
    /// The checkpoint's weights stacked into one matmul.
    Stacked(Linear),
    /// Each weight frozen under its own LoRA adapter (a matmul each, then concatenated).
    Adapted(Vec<Lora>),
}

impl Projections {
    /// The `[out, in_dim]` weights `{name}.weight` of `vb` for `names`' `(name, out)`; with `lora`,
    /// under adapters of `lora`'s builder at the same names.
    fn load(
        vb: &VarBuilder,
        names: &[(&str, usize)],
        in_dim: usize,
        lora: Option<(LoraConfig, &VarBuilder)>,
    ) -> Result<Projections> {
        let Some((config, adapters)) = lora else {
            return Ok(Projections::Stacked(stacked(vb, names, in_dim)?));
        };
        let adapted = names
            .iter()
            .map(|&(name, out)| {
                // `lora` takes `[in, out]` weights: transposed once here, not at every call.
                let w = vb.get((out, in_dim), &format!("{name}.weight"))?;
                Lora::new(&w.t()?.contiguous()?, config, adapters.pp(name))
            })
            .collect::<Result<_>>()?;
        Ok(Projections::Adapted(adapted))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Projections::Stacked(linear) => linear.forward(x),
            Projections::Adapted(loras) => {
                let ys = loras.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>>>()?;
                Tensor::cat(&ys, D::Minus1)
            }
        }
    }
}

/// The queries, keys and values of `x` side by side: `q_proj`, `k_proj` and `v_proj`'s weights
/// stacked into one `[(H + 2 Hkv) Dh, D]` matrix at load time (unless they carry adapters).
#[derive(Debug, Clone)]
struct Attention {
    qkv_proj: Projections,
    o_proj: Projections,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config, lora: Option<(LoraConfig, VarBuilder)>) -> Result<Attention> {
        let lora = lora.as_ref().map(|(config, adapters)| (*config, adapters));
        let (d, dh) = (cfg.hidden_size, cfg.head_dim());
        let (q, kv) = (cfg.num_attention_heads * dh, cfg.num_key_value_heads * dh);
        let qkv = [("q_proj", q), ("k_proj", kv), ("v_proj", kv)];
        Ok(Attention {
            qkv_proj: Projections::load(&vb, &qkv, d, lora)?,
            o_proj: Projections::load(&vb, &[("o_proj", d)], q, lora)?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: dh,
        })
    }

    /// `x` `[B, S, D]` normalised, at positions `index_pos..index_pos + S`.
    fn forward(&self, x: &Tensor, index_pos: usize, layer: usize, cache: &mut Cache) -> Result<Tensor> {
        let s = x.dim(1)?;
        let cos = cache.cos.narrow(0, index_pos, s)?;
        let sin = cache.sin.narrow(0, index_pos, s)?;
        let (q, k, v) = self.project(x, &cos, &sin)?;
        let (k, v) = if cache.use_kv_cache {
            cache.kvs[layer].append(&k, &v)?
        } else {
            (k, v)
        };
        self.attend(&q, &k, &v, x.dtype(), |scores, scale| {
            Ok(if s == 1 {
                scaled_softmax(scores, scale)?
            } else {
                masked_softmax(scores, &cache.mask(s, index_pos)?, scale)?
            })
        })
    }

    /// The queries `[B, H, S, Dh]` and keys `[B, Hkv, S, Dh]` of `x` `[B, S, D]`, rotated by the
    /// rows `cos` and `sin` `[S, Dh / 2]` of their positions, and the values `[B, Hkv, S, Dh]`;
    /// all in f32, the keys and values contiguous.
    fn project(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, s, _) = x.dims3()?;
        let (h, hkv, dh) = (self.heads, self.kv_heads, self.head_dim);
        // [B, S, (H + 2 Hkv) Dh] -> [B, heads, S, Dh] each, views: rope_qk reads them in place.
        let qkv = self.qkv_proj.forward(x)?.reshape((b, s, h + 2 * hkv, dh))?;
        let heads = |start, n| qkv.narrow(2, start, n)?.transpose(1, 2);
        let (q, k) = (heads(0, h)?, heads(h, hkv)?);
        let v = heads(h + hkv, hkv)?.to_dtype(DType::F32)?.contiguous()?;
        let (q, k) = rope_qk(&q, &k, cos, sin)?;
        Ok((q, k, v))
    }

    /// The attention of the queries `q` `[B, H, S, Dh]` over the keys and values `[B, Hkv, T,
    /// Dh]`, projected by `o_proj` to `[B, S, H Dh]` in `dtype`; `softmax(scores, scale)` turns the
    /// scores `[B, H, S, T]` into weights.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        dtype: DType,
        softmax: impl FnOnce(&Tensor, f32) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (b, h, s, dh) = q.dims4()?;
        let (hkv, t) = (k.dim(1)?, k.dim(2)?);
        // The group of query heads sharing a key head as one matrix: [B, Hkv, (H / Hkv) S, Dh].
        let q = q.reshape((b, hkv, h / hkv * s, dh))?;
        let scores = q.matmul(&k.t()?)?.reshape((b, h, s, t))?;
        let weights = softmax(&scores, 1.0 / (dh as f32).sqrt())?;
        let y = weights.reshape((b, hkv, h / hkv * s, t))?.matmul(v)?;
        let y = y.reshape((b, h, s, dh))?.transpose(1, 2)?.to_dtype(dtype)?;
        self.o_proj.forward(&y.contiguous()?.reshape((b, s, h * dh))?)
    }
}

/// SwiGLU; `gate_proj` and `up_proj` stacked into one matmul, as the attention's projections.
#[derive(Debug, Clone)]
struct Mlp {
    gate_up_proj: Linear,
    down_proj: Linear,
    hidden: usize,
}

impl Mlp {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Mlp> {
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_up_proj: stacked(&vb, &[("gate_proj", f), ("up_proj", f)], d)?,
            down_proj: linear_no_bias(f, d, vb.pp("down_proj"))?,
            hidden: f,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate_up = self.gate_up_proj.forward(x)?;
        let f = self.hidden;
        let a = swiglu(&gate_up.narrow(2, 0, f)?, &gate_up.narrow(2, f, f)?)?;
        self.down_proj.forward(&a)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_layernorm: Tensor,
    self_attn: Attention,
    post_attention_layernorm: Tensor,
    mlp: Mlp,
}

/// A Llama decoder: `Model::load(vb, &config)`, then `forward(&tokens, index_pos, &mut cache)`,
/// or `decode_step(&token, &static_cache)` after a prefill (see [`StaticCache`]).
#[derive(Debug, Clone)]
pub struct Model {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Linear,
    eps: f32,
}

impl Model {
    /// The weights under candle-transformers' (and Hugging Face's) names: `model.embed_tokens`,
    /// `model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
    /// mlp.{gate,up,down}_proj}`, `model.norm`, and `lm_head` unless the embeddings are tied.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Model> {
        Model::build(vb, cfg, None)
    }

    /// The model of [`Model::load`] with a LoRA adapter on each of the attention's projections,
    /// for fine-tuning: `adapters` (a `VarBuilder` over a `VarMap`, whose `all_vars()` are then
    /// what an optimizer trains) gives `model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{a,b}`
    /// (`a` `[in, r]`, `b` `[r, out]`), its `Var`s where it has them, else new ones as LoRA starts
    /// them (`b` zero, so the model starts as `load`'s). The base weights stay frozen: the
    /// adapted projections' are detached, the others are `vb`'s tensors (plain ones, from a
    /// checkpoint).
    pub fn load_lora(vb: VarBuilder, cfg: &Config, lora: LoraConfig, adapters: &VarBuilder) -> Result<Model> {
        Model::build(vb, cfg, Some((lora, adapters)))
    }

    fn build(vb: VarBuilder, cfg: &Config, lora: Option<(LoraConfig, &VarBuilder)>) -> Result<Model> {
        let d = cfg.hidden_size;
        let embed_tokens = embedding(cfg.vocab_size, d, vb.pp("model.embed_tokens"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed_tokens.embeddings().clone(), None)
        } else {
            linear_no_bias(d, cfg.vocab_size, vb.pp("lm_head"))?
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let adapters = lora.map(|(c, a)| (c, a.pp(format!("model.layers.{i}.self_attn"))));
                let vb = vb.pp(format!("model.layers.{i}"));
                Ok(Layer {
                    input_layernorm: vb.get(d, "input_layernorm.weight")?,
                    self_attn: Attention::load(vb.pp("self_attn"), cfg, adapters)?,
                    post_attention_layernorm: vb.get(d, "post_attention_layernorm.weight")?,
                    mlp: Mlp::load(vb.pp("mlp"), cfg)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Model {
            embed_tokens,
            layers,
            norm: vb.get(d, "model.norm.weight")?,
            lm_head,
            eps: cfg.rms_norm_eps as f32,
        })
    }

    /// The logits `[B, vocab]` (f32) of the last of `tokens` `[B, S]` (u32), which stand at
    /// positions `index_pos..index_pos + S`; the keys and values go into `cache`.
    pub fn forward(&self, tokens: &Tensor, index_pos: usize, cache: &mut Cache) -> Result<Tensor> {
        let x = self.decode(tokens, true, |attn, x, i| attn.forward(x, index_pos, i, cache))?;
        self.lm_head.forward(&x.squeeze(1)?)?.to_dtype(DType::F32)
    }

    /// The logits `[B, S, vocab]` (f32) of every position of `tokens`.
    pub fn forward_all(&self, tokens: &Tensor, index_pos: usize, cache: &mut Cache) -> Result<Tensor> {
        let x = self.decode(tokens, false, |attn, x, i| attn.forward(x, index_pos, i, cache))?;
        self.lm_head.forward(&x)?.to_dtype(DType::F32)
    }

    /// The final norm's output `[B, S, D]`, or `[B, 1, D]` for the last position only (`last`);
    /// `attention(layer's attention, its normalised input, layer index)` is the attention's output.
    fn decode(
        &self,
        tokens: &Tensor,
        last: bool,
        mut attention: impl FnMut(&Attention, &Tensor, usize) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let s = tokens.dim(1)?;
        let mut h = self.embed_tokens.forward(tokens)?;
        // Each residual add runs with the norm after it: the next layer's first, or the final one.
        let first_norm = self.layers.first().map_or(&self.norm, |l| &l.input_layernorm);
        let mut x = rms_norm(&h, first_norm, self.eps)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let a = attention(&layer.self_attn, &x, i)?;
            let (h1, x1) = add_rms_norm(&a, &h, &layer.post_attention_layernorm, self.eps)?;
            let m = layer.mlp.forward(&x1)?;
            let (m, h1, next_norm) = match self.layers.get(i + 1) {
                Some(next) => (m, h1, &next.input_layernorm),
                // Only the positions whose logits are wanted need the final norm.
                None if last => (m.narrow(1, s - 1, 1)?, h1.narrow(1, s - 1, 1)?, &self.norm),
                None => (m, h1, &self.norm),
            };
            (h, x) = add_rms_norm(&m, &h1, next_norm, self.eps)?;
        }
        if self.layers.is_empty() && last {
            x = x.narrow(1, s - 1, 1)?;
        }
        Ok(x)
    }
}

/// A checkpoint of random f32 weights for `cfg` on the CPU, under the names [`Model::load`] reads
/// (load it with `VarBuilder::from_tensors`, or write it with `candle_core::safetensors::save`):
/// linear weights uniform with variance `1 / fan_in`, so activations keep their scale, embeddings
/// with variance 1, norm scales within 0.2 of 1.
pub fn random_weights(cfg: &Config, rng: &mut impl rand::Rng) -> Result<HashMap<String, Tensor>> {
    let (d, f, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let (q, kv) = (
        cfg.num_attention_heads * cfg.head_dim(),
        cfg.num_key_value_heads * cfg.head_dim(),
    );
    let mut weights = HashMap::new();
    let mut put = |name: String, shape: (usize, usize), center: f32, half_width: f32| -> Result<()> {
        let values = (0..shape.0 * shape.1)
            .map(|_| center + rng.gen_range(-half_width..half_width))
            .collect::<Vec<f32>>();
        let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
        weights.insert(name, if shape.0 == 1 { t.squeeze(0)? } else { t });
        Ok(())
    };
    // Uniform on (-a, a) has variance a² / 3.
    let linear = |fan_in: usize| (3.0 / fan_in as f32).sqrt();
    put("model.embed_tokens.weight".into(), (v, d), 0.0, 3f32.sqrt())?;
    put("model.norm.weight".into(), (1, d), 1.0, 0.2)?;
    if !cfg.tie_word_embeddings {
        put("lm_head.weight".into(), (v, d), 0.0, linear(d))?;
    }
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        put(format!("{p}.input_layernorm.weight"), (1, d), 1.0, 0.2)?;
        put(format!("{p}.post_attention_layernorm.weight"), (1, d), 1.0, 0.2)?;
        for (name, out) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
            put(format!("{p}.self_attn.{name}.weight"), (out, d), 0.0, linear(d))?;
        }
        put(format!("{p}.self_attn.o_proj.weight"), (d, q), 0.0, linear(q))?;
        put(format!("{p}.mlp.gate_proj.weight"), (f, d), 0.0, linear(d))?;
        put(format!("{p}.mlp.up_proj.weight"), (f, d), 0.0, linear(d))?;
        put(format!("{p}.mlp.down_proj.weight"), (d, f), 0.0, linear(f))?;
    }
    Ok(weights)
}

/// f32 adapters for [`Model::load_lora`] drawn from `rng` (Candle's own CPU generator cannot be
/// seeded): `lora_a` as [`Lora::new`] draws it, `lora_b` zeros, under the names `load_lora`
/// reads.
pub fn random_adapters(
    cfg: &Config,
    lora: LoraConfig,
    device: &Device,
    rng: &mut impl rand::Rng,
) -> Result<VarMap> {
    let (d, r) = (cfg.hidden_size, lora.rank);
    let (q, kv) = (
        cfg.num_attention_heads * cfg.head_dim(),
        cfg.num_key_value_heads * cfg.head_dim(),
    );
    let adapters = VarMap::new();
    let mut vars = adapters.data().lock().expect("a new VarMap's lock");
    for i in 0..cfg.num_hidden_layers {
        for (name, (in_dim, out)) in [
            ("q_proj", (d, q)),
            ("k_proj", (d, kv)),
            ("v_proj", (d, kv)),
            ("o_proj", (q, d)),
        ] {
            let p = format!("model.layers.{i}.self_attn.{name}");
            let half = a_half_width(in_dim) as f32;
            let a = (0..in_dim * r)
                .map(|_| rng.gen_range(-half..half))
                .collect::<Vec<f32>>();
            let a = Tensor::from_vec(a, (in_dim, r), device)?;
            vars.insert(format!("{p}.lora_a"), Var::from_tensor(&a)?);
            vars.insert(format!("{p}.lora_b"), Var::zeros((r, out), DType::F32, device)?);
        }
    }
    drop(vars);
    Ok(adapters)
}
