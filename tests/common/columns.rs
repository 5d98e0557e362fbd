//! The cases with column kernels: reductions over axes other than the last.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Result, Tensor};
use rand::Rng;

use super::graphs::*;
use super::{randn, Case, Inputs, Sizes};

pub const CENTER_COLUMNS: Case = Case {
    name: "center_columns",
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 2.0, 1.0)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| {
        let (m, c) = center_columns(&i.tensors[0])?;
        Ok(vec![m, c])
    },
    graph_async: |i| {
        let f = center_columns_async(&i.tensors[0]);
        Box::pin(async move {
            let (m, c) = f.await?;
            Ok(vec![m, c])
        })
    },
    reference: |i| {
        let x = &i.tensors[0];
        let m = (x.sum_keepdim(0)? / x.dim(0)? as f64)?;
        let c = x.broadcast_sub(&m)?;
        Ok(vec![m, c])
    },
    // `x - m` cancels where a value is near its column's mean, and `m` is stored (rounded to the
    // storage type) before the subtraction reads it: its error is a fraction of `|x| + |m|`.
    magnitude: Some(|i| {
        let x = &i.tensors[0];
        let m = (x.sum_keepdim(0)? / x.dim(0)? as f64)?;
        Ok(vec![m.abs()?, x.abs()?.broadcast_add(&m.abs()?)?])
    }),
};

/// `f(t)`, the max or min of `t` along `axis`, where Candle's fails for want of elements: the
/// `identity` where the axis is empty, nothing where the result is.
fn extreme(t: &Tensor, axis: usize, identity: f64, f: fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let mut dims = t.dims().to_vec();
    if t.elem_count() > 0 {
        return f(t);
    }
    let empty_axis = dims[axis] == 0;
    dims[axis] = 1;
    match empty_axis && dims.iter().all(|d| *d > 0) {
        true => Tensor::full(identity, dims, t.device()),
        false => Tensor::zeros(dims, DType::F64, t.device()),
    }
}

pub const COLUMN_STATS: Case = Case {
    name: "column_stats",
    draw: |rng, sizes| {
        let (b, s) = (sizes.lead(rng), sizes.outer(rng));
        let d = match sizes {
            // Columns a few thousand rows long: many chunks, over threads.
            Sizes::LongRows => rng.gen_range(1..=40),
            _ => sizes.row(rng),
        };
        let (b, s) = match sizes {
            Sizes::LongRows => (rng.gen_range(200..=700), rng.gen_range(1..=12)),
            _ => (b, s),
        };
        Ok(Inputs {
            tensors: vec![randn(rng, &[b, s, d], 0.0, 1.0)?, randn(rng, &[d], 1.0, 0.5)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| {
        let (s, m, v, e) = column_stats(&i.tensors[0], &i.tensors[1])?;
        Ok(vec![s, m, v, e])
    },
    graph_async: |i| {
        let f = column_stats_async(&i.tensors[0], &i.tensors[1]);
        Box::pin(async move {
            let (s, m, v, e) = f.await?;
            Ok(vec![s, m, v, e])
        })
    },
    reference: |i| {
        let (x, w) = (&i.tensors[0], &i.tensors[1]);
        let (b, s, d) = x.dims3()?;
        let xw = x.broadcast_mul(w)?;
        let max = extreme(&xw, 1, f64::NEG_INFINITY, |t| t.max_keepdim(1))?;
        let min = extreme(&x.exp()?, 0, f64::INFINITY, |t| t.min_keepdim(0))?;
        let mean = ((x * x)?.sum_keepdim(0)? / b as f64)?;
        let e = x
            .exp()?
            .broadcast_mul(w)?
            .reshape((b * s, d))?
            .sum_keepdim(0)?
            .reshape(d)?;
        Ok(vec![xw.sum_keepdim(0)?, max, (mean * min)?, e])
    },
    magnitude: None,
};
