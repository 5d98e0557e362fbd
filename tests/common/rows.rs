//! The cases whose kernels work on whole rows: reductions over the last axis (softmaxes, norms,
//! a masked max) and rope's row-local narrow and cat.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;

use super::graphs::*;
use super::{
    one, randn, ref_layer_norm, ref_logsumexp, ref_rms_norm, ref_rope, ref_softmax, rope_tables, row_max,
    Case, Inputs, Sizes,
};

/// Draws `[lead, row]` standard normal values.
fn rows(rng: &mut StdRng, sizes: Sizes) -> Result<Inputs> {
    let shape = [sizes.lead(rng), sizes.row(rng)];
    Ok(Inputs {
        tensors: vec![randn(rng, &shape, 0.0, 2.0)?],
        scalars: vec![],
        products: DType::F64,
    })
}

pub const SOFTMAX: Case = Case {
    name: "softmax",
    draw: rows,
    graph: |i| one(softmax(&i.tensors[0])),
    graph_async: |i| {
        let f = softmax_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_softmax(&i.tensors[0])?]),
    magnitude: None,
};

pub const LOG_SOFTMAX: Case = Case {
    name: "log_softmax",
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.outer(rng), sizes.row(rng)];
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 0.0, 2.0)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| one(log_softmax(&i.tensors[0])),
    graph_async: |i| {
        let f = log_softmax_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| {
        let x = &i.tensors[0];
        Ok(vec![x.broadcast_sub(&ref_logsumexp(x)?)?])
    },
    magnitude: None,
};

pub const LOGSUMEXP: Case = Case {
    name: "logsumexp",
    draw: rows,
    graph: |i| one(logsumexp(&i.tensors[0])),
    graph_async: |i| {
        let f = logsumexp_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_logsumexp(&i.tensors[0])?]),
    magnitude: None,
};

pub const RMS_NORM: Case = Case {
    name: "rms_norm",
    draw: |rng, sizes| {
        let (b, s, d) = (sizes.lead(rng), sizes.outer(rng), sizes.row(rng));
        Ok(Inputs {
            tensors: vec![randn(rng, &[b, s, d], 0.5, 1.5)?, randn(rng, &[d], 1.0, 0.5)?],
            scalars: vec![1e-5],
            products: DType::F64,
        })
    },
    graph: |i| one(rms_norm(&i.tensors[0], &i.tensors[1], i.scalars[0])),
    graph_async: |i| {
        let f = rms_norm_async(&i.tensors[0], &i.tensors[1], i.scalars[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_rms_norm(&i.tensors[0], &i.tensors[1], i.scalars[0])?]),
    magnitude: None,
};

pub const LAYER_NORM: Case = Case {
    name: "layer_norm",
    draw: |rng, sizes| {
        let (n, d) = (sizes.lead(rng), sizes.row(rng));
        Ok(Inputs {
            // A mean far from 0 shows a variance computed as E[x²] - E[x]² losing digits.
            tensors: vec![
                randn(rng, &[n, d], 3.0, 2.0)?,
                randn(rng, &[d], 1.0, 0.5)?,
                randn(rng, &[d], 0.0, 0.5)?,
            ],
            scalars: vec![1e-5],
            products: DType::F64,
        })
    },
    graph: |i| {
        let [x, w, b] = &i.tensors[..] else { unreachable!() };
        one(layer_norm(x, w, b, i.scalars[0]))
    },
    graph_async: |i| {
        let [x, w, b] = &i.tensors[..] else { unreachable!() };
        let f = layer_norm_async(x, w, b, i.scalars[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| {
        let [x, w, b] = &i.tensors[..] else { unreachable!() };
        Ok(vec![ref_layer_norm(x, w, b, i.scalars[0])?])
    },
    magnitude: None,
};

pub const ROPE: Case = Case {
    name: "rope",
    draw: |rng, sizes| {
        let (b, h, s) = (sizes.lead(rng), sizes.outer(rng), sizes.outer(rng));
        let half = sizes.row(rng).div_ceil(2);
        let (cos, sin) = rope_tables(rng, s, half)?;
        Ok(Inputs {
            tensors: vec![randn(rng, &[b, h, s, 2 * half], 0.0, 1.0)?, cos, sin],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| one(rope(&i.tensors[0], &i.tensors[1], &i.tensors[2])),
    graph_async: |i| {
        let f = rope_async(&i.tensors[0], &i.tensors[1], &i.tensors[2]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_rope(&i.tensors[0], &i.tensors[1], &i.tensors[2])?]),
    magnitude: None,
};

pub const ADD_RMS_NORM: Case = Case {
    name: "add_rms_norm",
    draw: |rng, sizes| {
        let (n, d) = (sizes.lead(rng), sizes.row(rng));
        Ok(Inputs {
            tensors: vec![
                randn(rng, &[n, d], 0.0, 1.0)?,
                randn(rng, &[n, d], 0.0, 1.0)?,
                randn(rng, &[d], 1.0, 0.5)?,
            ],
            scalars: vec![1e-6],
            products: DType::F64,
        })
    },
    graph: |i| {
        let [x, r, w] = &i.tensors[..] else { unreachable!() };
        let (h, y) = add_rms_norm(x, r, w, i.scalars[0])?;
        Ok(vec![h, y])
    },
    graph_async: |i| {
        let [x, r, w] = &i.tensors[..] else { unreachable!() };
        let f = add_rms_norm_async(x, r, w, i.scalars[0]);
        Box::pin(async move {
            let (h, y) = f.await?;
            Ok(vec![h, y])
        })
    },
    reference: |i| {
        let [x, r, w] = &i.tensors[..] else { unreachable!() };
        let h = (x + r)?;
        let y = ref_rms_norm(&h, w, i.scalars[0])?;
        Ok(vec![h, y])
    },
    magnitude: None,
};

pub const MASKED: Case = Case {
    name: "masked",
    // About a third of each row masked, never its first column (rows masked entirely are
    // tests/special.rs's: their softmax is NaN).
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        let first = Tensor::arange(0u32, shape[1] as u32, &Device::Cpu)?
            .eq(0u32)?
            .to_dtype(DType::F64)?
            .broadcast_as(&shape[..])?;
        let keep = randn(rng, &shape, 0.0, 1.0)?.gt(-0.4)?.to_dtype(DType::F64)?;
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 0.0, 2.0)?, keep.maximum(&first)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| {
        let (m, s) = masked(&i.tensors[0], &i.tensors[1])?;
        Ok(vec![m, s])
    },
    graph_async: |i| {
        let f = masked_async(&i.tensors[0], &i.tensors[1]);
        Box::pin(async move {
            let (m, s) = f.await?;
            Ok(vec![m, s])
        })
    },
    reference: |i| {
        let (x, mask) = (&i.tensors[0], &i.tensors[1]);
        let s = mask
            .gt(0.5)?
            .where_cond(x, &(x.zeros_like()? + f64::NEG_INFINITY)?)?;
        Ok(vec![row_max(&s)?, ref_softmax(&s)?])
    },
    magnitude: None,
};
