//! Decode steps in static shapes, which a CUDA graph can record once and replay
//! (`graph_runtime::cuda_graph`): [`StaticCache`] and [`Model::decode_step`].
//!
//! The dynamic decode ([`Model::forward`] with a [`Cache`]) cannot be recorded: its KV cache
//! grows, and the position is a host `usize` that picks the rotary rows, the append's offset and
//! the mask's size. Here every shape is fixed and the position is a `[1]` u32 device tensor,
//! read and advanced by the step itself:
//! - the rotary rows of the position: `index_select` of the tables by the position tensor;
//! - the new key and value: written into the slot of the position of fixed `[B, Hkv, max_len,
//!   Dh]` buffers, in place, by `scatter_set` (indices: the position, broadcast to the written
//!   shape);
//! - the attention: over all `max_len` slots, the mask computed on the device by the generated
//!   `static_softmax` (slot positions `0, 1, ..` compared with the position, cast to f32);
//! - the next position: `position + 1` (`affine`), written back in place (`slice_set`); and
//!   with [`Model::greedy_step`], the argmax of the logits written into the token tensor.
//!
//! So a step replayed from a graph is the next step: a new token goes in with
//! `graph_runtime::cuda_graph::write` (or the greedy step's argmax is already there), and the
//! logits come out in the graph's outputs. `Model::capture_step` records one.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::kv_cache::KvCache;
use graph_runtime::lazy_graph;

use super::{Attention, Cache, Config, Model};

lazy_graph! {
    /// The attention weights of a static decode step, over all the slots of a [`StaticCache`]:
    /// the scaled scores, `-inf` at the slots after `position` (`slots` holds each slot's
    /// position, `0, 1, ..`; a slot past the token's own holds a stale key or none yet).
    pub fn static_softmax(scores: Tensor[B, H, S, T], slots: Tensor[T], position: Tensor[1], scale: f32)
        -> Tensor[B, H, S, T]
    {
        softmax(where_(slots <= position, scores * scale, -inf), -1)
    }
}

/// The state of a decode in static shapes ([`Model::decode_step`]): per layer, key and value
/// buffers of a fixed `max_len` slots, allocated once, and the position of the next token in a
/// device tensor. A step reads and writes only these, at the same addresses every time, so a
/// CUDA graph that recorded one step replays as the next.
///
/// The buffers start as zeros, and every slot a step or [`StaticCache::load`] writes holds
/// finite values, so a masked slot (weight `0`) adds exactly nothing to the attention. A prefill
/// runs through [`Model::forward`] with a [`Cache`], and [`StaticCache::load`] moves its keys and
/// values over: a generation is that prefill and then static steps (with the `cuda` feature,
/// replays of one step that `Model::capture_step` recorded).
#[derive(Debug)]
pub struct StaticCache {
    /// Per layer, `[B, Hkv, max_len, Dh]` in f32; slot `p` holds the key (value) at position `p`.
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    /// The rotary tables of the [`Cache`] this one was made beside, `[max_position_embeddings,
    /// Dh / 2]` in the model's dtype.
    cos: Tensor,
    sin: Tensor,
    /// `[1]` u32: the position of the next token, which is also its slot.
    position: Tensor,
    /// `[max_len]` f32, `0, 1, .., max_len - 1`: the position of each slot, for the mask.
    slots: Tensor,
    batch: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl StaticCache {
    /// Zeroed buffers for `batch` sequences of at most `max_len` positions of `config`'s model,
    /// on `cache`'s device and with its rotary tables (shared, not copied), at position 0.
    pub fn new(config: &Config, cache: &Cache, batch: usize, max_len: usize) -> Result<StaticCache> {
        let positions = cache.cos.dim(0)?;
        if max_len == 0 || max_len > positions {
            candle_core::bail!(
                "StaticCache: max_len {max_len} must be within 1..={positions} (max_position_embeddings)"
            )
        }
        let device = &cache.device;
        let (kv_heads, head_dim) = (config.num_key_value_heads, config.head_dim());
        let buffers = || {
            (0..config.num_hidden_layers)
                .map(|_| Tensor::zeros((batch, kv_heads, max_len, head_dim), DType::F32, device))
                .collect::<Result<Vec<_>>>()
        };
        Ok(StaticCache {
            keys: buffers()?,
            values: buffers()?,
            cos: cache.cos.clone(),
            sin: cache.sin.clone(),
            position: Tensor::zeros(1, DType::U32, device)?,
            slots: Tensor::arange(0f32, max_len as f32, device)?,
            batch,
            kv_heads,
            head_dim,
        })
    }

    /// How many positions the buffers hold.
    pub fn max_len(&self) -> usize {
        self.slots.elem_count()
    }

    /// The `[1]` u32 tensor of the position of the next token: what a step reads, and advances.
    pub fn position(&self) -> &Tensor {
        &self.position
    }

    /// Sets the position of the next token, from the host (a copy: not inside a capture).
    pub fn set_position(&self, position: usize) -> Result<()> {
        if position > self.max_len() {
            candle_core::bail!(
                "StaticCache: position {position} is past max_len {}",
                self.max_len()
            )
        }
        let value = Tensor::new(&[position as u32], self.position.device())?;
        self.position.slice_set(&value, 0, 0)
    }

    /// Copies the keys and values of `cache` (a prefill's, with the same batch) into the first
    /// slots and sets the position after them. In place, so a graph captured over this cache
    /// decodes from there at its next replay; the slots after them keep what they held, masked.
    pub fn load(&self, cache: &Cache) -> Result<()> {
        if cache.kvs.len() != self.keys.len() {
            candle_core::bail!(
                "StaticCache::load: {} layers of keys and values, {} in the static cache",
                cache.kvs.len(),
                self.keys.len()
            )
        }
        let len = cache.kvs.first().map_or(0, KvCache::current_seq_len);
        if len > self.max_len() {
            candle_core::bail!("StaticCache::load: {len} positions, max_len {}", self.max_len())
        }
        for (kv, (keys, values)) in cache.kvs.iter().zip(self.keys.iter().zip(&self.values)) {
            if let (Some(k), Some(v)) = (kv.k()?, kv.v()?) {
                keys.slice_set(&k.contiguous()?, 2, 0)?;
                values.slice_set(&v.contiguous()?, 2, 0)?;
            }
        }
        self.set_position(len)
    }

    /// What each layer of the step at the current position reads, from the position on the
    /// device: its rotary rows, the scatter indices of its slot, and the position in f32.
    fn step(&self) -> Result<Step<'_>> {
        let (b, hkv, dh) = (self.batch, self.kv_heads, self.head_dim);
        Ok(Step {
            cache: self,
            cos: self.cos.index_select(&self.position, 0)?,
            sin: self.sin.index_select(&self.position, 0)?,
            // `scatter_set` takes one index per element written, in the written shape.
            slot: self.position.broadcast_as((b, hkv, 1, dh))?.contiguous()?,
            position: self.position.to_dtype(DType::F32)?,
        })
    }

    /// The position moves on by one, on the device.
    fn advance(&self) -> Result<()> {
        self.position.slice_set(&self.position.affine(1.0, 1.0)?, 0, 0)
    }
}

/// What every layer of one static decode step reads, computed once per step.
struct Step<'a> {
    cache: &'a StaticCache,
    /// `[1, Dh / 2]`: the rotary rows of the position.
    cos: Tensor,
    sin: Tensor,
    /// `[B, Hkv, 1, Dh]` u32, each the position: where `scatter_set` writes the new key and value.
    slot: Tensor,
    /// `[1]` f32: the position, for `static_softmax`'s mask (generated functions take float
    /// tensors of one dtype).
    position: Tensor,
}

impl Attention {
    /// `x` `[B, 1, D]` normalised, at the device position of `step`: its key and value go into
    /// the slot of that position in the static cache's buffers, and the query attends to all the
    /// slots, those after the position masked.
    fn step(&self, x: &Tensor, layer: usize, step: &Step) -> Result<Tensor> {
        let (q, k, v) = self.project(x, &step.cos, &step.sin)?;
        let (keys, values) = (&step.cache.keys[layer], &step.cache.values[layer]);
        keys.scatter_set(&step.slot, &k, 2)?;
        values.scatter_set(&step.slot, &v, 2)?;
        self.attend(&q, keys, values, x.dtype(), |scores, scale| {
            Ok(static_softmax(scores, &step.cache.slots, &step.position, scale)?)
        })
    }
}

impl Model {
    /// One decode step in static shapes, which a CUDA graph can record: the logits `[B, vocab]`
    /// (f32) of `token` `[B, 1]` (u32) at `cache`'s device position, whose key and value go into
    /// the cache's buffers at that position; then the position moves on by one, on the device.
    /// Nothing in it depends on a host-side position, so a captured step replays as the next one
    /// (see [`StaticCache`]). The caller stops at [`StaticCache::max_len`] positions: a step past
    /// the last slot is an error on the CPU, while on CUDA no host code sees the position and
    /// its index is out of range for Candle's kernels (which `assert` against it).
    ///
    /// The cache is written in place through `&`, as Candle's `slice_set` writes: a graph
    /// captured over it borrows it, and [`StaticCache::load`] can still put a new prefill in.
    pub fn decode_step(&self, token: &Tensor, cache: &StaticCache) -> Result<Tensor> {
        let (b, s) = token.dims2()?;
        if (b, s) != (cache.batch, 1) {
            candle_core::bail!(
                "decode_step: the token is [{b}, {s}], the static cache holds [{}, 1]",
                cache.batch
            )
        }
        let step = cache.step()?;
        let x = self.decode(token, true, |attn, x, i| attn.step(x, i, &step))?;
        let logits = self.lm_head.forward(&x.squeeze(1)?)?.to_dtype(DType::F32)?;
        cache.advance()?;
        Ok(logits)
    }

    /// [`Model::decode_step`], then the argmax of the logits written into `token`, on the
    /// device: the next step's input, so a greedy loop replays a captured step with no write
    /// from the host. `token` is contiguous (a tensor of its own, not a view).
    pub fn greedy_step(&self, token: &Tensor, cache: &StaticCache) -> Result<Tensor> {
        let logits = self.decode_step(token, cache)?;
        token.slice_set(&logits.argmax_keepdim(D::Minus1)?, 0, 0)?;
        Ok(logits)
    }
}

#[cfg(feature = "cuda")]
impl Model {
    /// [`Model::decode_step`] (with `greedy`, [`Model::greedy_step`]) recorded into a CUDA graph
    /// over `token` (a `[B, 1]` u32 tensor of its own, not a view) and `cache`: each replay is the step at the cache's position, reading the
    /// token as it is then (a new one goes in with `graph_runtime::cuda_graph::write`, or a greedy
    /// step's argmax is already there), and `outputs()` holds its logits.
    ///
    /// Capturing runs the step twice (a warm-up, and the recording's own replay): both write a
    /// key and value and advance the position, and a greedy one overwrites the token. The
    /// position and token are put back afterwards, so the first replay is the step the capture
    /// started at; the slots the capture wrote are rewritten, or masked, by the steps that
    /// follow. Until then `outputs()` holds the logits of the capture's second run, not of a
    /// step of the generation. The position must leave room for those two steps.
    ///
    /// # Safety
    ///
    /// [`graph_runtime::cuda_graph::capture`]'s: no other thread uses the device while it runs,
    /// and replays run on this thread. (The step drops no tensor made before it: it writes the
    /// cache's buffers, position and the token in place, and drops only what it made.)
    pub unsafe fn capture_step<'a>(
        &'a self,
        token: &'a Tensor,
        cache: &'a StaticCache,
        greedy: bool,
    ) -> Result<graph_runtime::cuda_graph::CudaGraph<'a, Tensor>> {
        use graph_runtime::cuda_graph;
        let position = cache.position.to_vec1::<u32>()?[0] as usize;
        if position + 2 > cache.max_len() {
            candle_core::bail!(
                "capture_step: the capture writes slots {position} and {}, past max_len {}",
                position + 1,
                cache.max_len()
            )
        }
        let (saved_position, saved_token) = (cache.position.copy()?, token.copy()?);
        // SAFETY: the caller's, as documented above.
        let graph = unsafe {
            cuda_graph::capture(token.device(), move || match greedy {
                true => self.greedy_step(token, cache),
                false => self.decode_step(token, cache),
            })
        }?;
        cuda_graph::write(&cache.position, &saved_position)?;
        cuda_graph::write(token, &saved_token)?;
        Ok(graph)
    }
}
