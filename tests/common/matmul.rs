//! The cases with matmuls: a LoRA layer and masked attention probabilities.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use rand::Rng;

use super::graphs::*;
use super::{one, randn, ref_softmax, round_to, Case, Inputs, Sizes};

pub const LORA: Case = Case {
    name: "lora",
    draw: |rng, sizes| {
        let (b, i, o) = (sizes.lead(rng), sizes.row(rng), sizes.outer(rng) + 2);
        let r = rng.gen_range(1..=4);
        Ok(Inputs {
            tensors: vec![
                randn(rng, &[b, i], 0.0, 1.0)?,
                randn(rng, &[i, o], 0.0, 0.2)?,
                randn(rng, &[i, r], 0.0, 0.2)?,
                randn(rng, &[r, o], 0.0, 0.2)?,
            ],
            scalars: vec![rng.gen_range(0.25..2.0)],
            products: DType::F64,
        })
    },
    graph: |i| {
        let [x, w, a, b] = &i.tensors[..] else {
            unreachable!()
        };
        one(lora(x, w, a, b, i.scalars[0]))
    },
    graph_async: |i| {
        let [x, w, a, b] = &i.tensors[..] else {
            unreachable!()
        };
        let f = lora_async(x, w, a, b, i.scalars[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| {
        let [x, w, a, b] = &i.tensors[..] else {
            unreachable!()
        };
        // Merged weights: a different summation order than the graph's two products.
        let merged = (w + (a.matmul(b)? * i.scalars[0] as f64)?)?;
        Ok(vec![x.matmul(&merged)?])
    },
    magnitude: None,
};

pub const ATTENTION: Case = Case {
    name: "attention",
    draw: |rng, sizes| {
        let (b, h) = (sizes.lead(rng), sizes.outer(rng));
        let s = sizes.outer(rng);
        // Keys include `past` cached positions before the queries.
        let past = match sizes {
            Sizes::LongRows => sizes.row(rng),
            Sizes::Unit => 0,
            _ => rng.gen_range(0..=5),
        };
        let t = s + past;
        let k = match sizes {
            Sizes::Unit => 1,
            _ => rng.gen_range(1..=24),
        };
        let mask: Vec<f64> = (0..s)
            .flat_map(|i| (0..t).map(move |j| if j <= i + past { 1.0 } else { 0.0 }))
            .collect();
        Ok(Inputs {
            tensors: vec![
                randn(rng, &[b, h, s, k], 0.0, 1.0)?,
                randn(rng, &[b, h, t, k], 0.0, 1.0)?,
                Tensor::from_vec(mask, (s, t), &Device::Cpu)?,
            ],
            scalars: vec![1.0 / (k as f32).sqrt()],
            products: DType::F64,
        })
    },
    graph: |i| {
        let [q, k, mask] = &i.tensors[..] else {
            unreachable!()
        };
        one(attention(q, k, mask, i.scalars[0]))
    },
    graph_async: |i| {
        let [q, k, mask] = &i.tensors[..] else {
            unreachable!()
        };
        let f = attention_async(q, k, mask, i.scalars[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| {
        let [q, k, mask] = &i.tensors[..] else {
            unreachable!()
        };
        // On GPUs the graph's matmul stores its scores in the inputs' dtype; in bf16 that
        // alone moves a probability by up to 2^-9 times its logit, past the tolerance in rows
        // of thousands.
        let scores = round_to(&q.matmul(&k.t()?)?, i.products)?;
        let scores = (scores * i.scalars[0] as f64)?;
        let masked = mask.ge(0.5)?.broadcast_as(scores.shape())?.where_cond(
            &scores,
            &Tensor::full(f64::NEG_INFINITY, scores.shape(), &Device::Cpu)?,
        )?;
        Ok(vec![ref_softmax(&masked)?])
    },
    magnitude: None,
};
