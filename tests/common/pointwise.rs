//! The pointwise cases: the activations, rounding and `log1p`/`expm1`; and [`map_f64`], the
//! elementwise reference for ops Candle lacks.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Result, Tensor};
use rand::rngs::StdRng;

use super::graphs::*;
use super::{one, randn, ref_gelu_tanh, ref_silu, Case, Inputs, Sizes};

/// Pointwise cases draw from a wide range so both tails of each activation are exercised.
fn wide(rng: &mut StdRng, sizes: Sizes) -> Result<Inputs> {
    let shape = [sizes.lead(rng), sizes.row(rng)];
    Ok(Inputs {
        tensors: vec![randn(rng, &shape, 0.0, 4.0)?],
        scalars: vec![],
        products: DType::F64,
    })
}

pub const GELU: Case = Case {
    name: "gelu",
    draw: wide,
    graph: |i| one(gelu(&i.tensors[0])),
    graph_async: |i| {
        let f = gelu_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_gelu_tanh(&i.tensors[0])?]),
    magnitude: Some(|i| Ok(vec![i.tensors[0].abs()?])),
};

pub const GELU_ERF: Case = Case {
    name: "gelu_erf",
    draw: wide,
    graph: |i| one(gelu_erf(&i.tensors[0])),
    graph_async: |i| {
        let f = gelu_erf_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| {
        let x = &i.tensors[0];
        let cdf = ((x / std::f64::consts::SQRT_2)?.erf()? + 1.0)? * 0.5;
        Ok(vec![(x * cdf?)?])
    },
    magnitude: Some(|i| Ok(vec![i.tensors[0].abs()?])),
};

pub const SILU: Case = Case {
    name: "silu",
    draw: wide,
    graph: |i| one(silu(&i.tensors[0])),
    graph_async: |i| {
        let f = silu_async(&i.tensors[0]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![ref_silu(&i.tensors[0])?]),
    magnitude: Some(|i| Ok(vec![i.tensors[0].abs()?])),
};

pub const SWIGLU: Case = Case {
    name: "swiglu",
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 0.0, 3.0)?, randn(rng, &shape, 0.0, 1.0)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| one(swiglu(&i.tensors[0], &i.tensors[1])),
    graph_async: |i| {
        let f = swiglu_async(&i.tensors[0], &i.tensors[1]);
        Box::pin(async move { one(f.await) })
    },
    reference: |i| Ok(vec![(ref_silu(&i.tensors[0])? * &i.tensors[1])?]),
    magnitude: Some(|i| Ok(vec![(&i.tensors[0] * &i.tensors[1])?.abs()?])),
};

/// `f` on every element of an f64 tensor: references for ops Candle lacks or rounds differently.
pub fn map_f64(x: &Tensor, f: fn(f64) -> f64) -> Result<Tensor> {
    let values: Vec<f64> = x.flatten_all()?.to_vec1::<f64>()?.into_iter().map(f).collect();
    Tensor::from_vec(values, x.shape(), x.device())
}

pub const ROUNDING: Case = Case {
    name: "rounding",
    // Half of the values on a tie (a multiple of 0.5), the rest anywhere; zeros of both signs.
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        let x = randn(rng, &shape, 0.0, 4.0)?;
        let ties = ((&x * 2.0)?.round()? * 0.5)?;
        let pick = randn(rng, &shape, 0.0, 1.0)?.gt(0.0)?;
        Ok(Inputs {
            tensors: vec![pick.where_cond(&ties, &x)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| {
        let (a, b, c, d) = rounding(&i.tensors[0])?;
        Ok(vec![a, b, c, d])
    },
    graph_async: |i| {
        let f = rounding_async(&i.tensors[0]);
        Box::pin(async move {
            let (a, b, c, d) = f.await?;
            Ok(vec![a, b, c, d])
        })
    },
    reference: |i| {
        let x = &i.tensors[0];
        let sign = |v: f64| f64::from(u8::from(v > 0.0)) - f64::from(u8::from(v < 0.0));
        Ok(vec![
            map_f64(x, f64::floor)?,
            map_f64(x, f64::ceil)?,
            map_f64(x, f64::round_ties_even)?,
            map_f64(x, sign)?,
        ])
    },
    magnitude: None,
};

pub const LOG1P_EXPM1: Case = Case {
    name: "log1p_expm1",
    // Values of 1e-4 or so: the results are compared relative to themselves there, where
    // `log(1 + x)` is off by about `2^-24 / 1e-4` in f32, a hundred times the tolerance.
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 0.0, 1e-4)?],
            scalars: vec![],
            products: DType::F64,
        })
    },
    graph: |i| {
        let (a, b) = log1p_expm1(&i.tensors[0])?;
        Ok(vec![a, b])
    },
    graph_async: |i| {
        let f = log1p_expm1_async(&i.tensors[0]);
        Box::pin(async move {
            let (a, b) = f.await?;
            Ok(vec![a, b])
        })
    },
    reference: |i| {
        let x = &i.tensors[0];
        Ok(vec![map_f64(x, f64::ln_1p)?, map_f64(x, f64::exp_m1)?])
    },
    magnitude: None,
};
