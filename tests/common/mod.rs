//! What every numeric test shares: the example graphs, an f64 reference for each, random inputs,
//! per-dtype tolerances and `test_device!`.
//!
//! The eager tests (`tests/eager.rs`) and the fused CPU/CUDA tests run the same [`CASES`] against
//! the same references with the same tolerances, so "fused equals eager" follows from both being
//! checked against one f64 oracle. An executor's test is
//! `with_mode(Mode::Fused, || check_case(&case, &mut rng, sizes, dtype, &device))` over
//! [`CASES`], [`DTYPES`] and every [`Sizes`], inside a body that `test_device!` runs per device.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device, Result, Tensor, D};
use graph_runtime::lazy_graph;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

lazy_graph! {
    /// Softmax over the last axis, written out.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let e = exp(x - max(x, -1));
        e / sum(e, -1)
    }

    /// The `log_softmax` builtin over the last axis of a rank-3 tensor.
    pub fn log_softmax(x: Tensor[B, S, D]) -> Tensor[B, S, D] {
        log_softmax(x, -1)
    }

    /// The `logsumexp` builtin; the reduced axis stays as size 1.
    pub fn logsumexp(x: Tensor[N, D]) -> Tensor[N, 1] {
        x.logsumexp(-1)
    }

    /// RMS normalisation with a learned scale.
    pub fn rms_norm(x: Tensor[B, S, D], w: Tensor[D], eps: f32) -> Tensor[B, S, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Layer normalisation with population variance, scale and shift.
    pub fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        (x - mean(x, -1)) * rsqrt(var(x, -1) + eps) * w + b
    }

    /// GELU, tanh approximation.
    pub fn gelu(x: Tensor[N, D]) -> Tensor[N, D] {
        gelu(x)
    }

    /// GELU, exact (erf) form.
    pub fn gelu_erf(x: Tensor[N, D]) -> Tensor[N, D] {
        x.gelu_erf()
    }

    pub fn silu(x: Tensor[N, D]) -> Tensor[N, D] {
        silu(x)
    }

    /// The gated activation of LLaMA-style MLPs.
    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        g.silu() * u
    }

    /// Rotary embedding, rotate-half form, with per-position cos/sin tables of half width.
    pub fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
        let x1 = narrow(x, -1, 0, D / 2);
        let x2 = narrow(x, -1, D / 2, D / 2);
        let c = cat([cos, cos], -1);
        let s = cat([sin, sin], -1);
        x * c + cat([-x2, x1], -1) * s
    }

    /// A linear layer with a low-rank adapter.
    pub fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
        x.matmul(w) + x.matmul(a).matmul(b) * scale
    }

    /// Attention probabilities; `mask` is 1 where a query may see a key and 0 elsewhere.
    pub fn attention(q: Tensor[B, H, S, K], k: Tensor[B, H, T, K], mask: Tensor[S, T], scale: f32) -> Tensor[B, H, S, T] {
        let scores = q.matmul(k.transpose(-2, -1)) * scale;
        softmax(where_(mask > 0.5, scores, -1e9), -1)
    }

    /// The residual stream and its normalised copy: two outputs.
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    /// Column means (a reduction over axis 0) and the centred columns.
    pub fn center_columns(x: Tensor[N, D]) -> (Tensor[1, D], Tensor[N, D]) {
        let m = mean(x, 0);
        (m, x - m)
    }
}

// ---------------------------------------------------------------------------------------------
// Cases: each example graph with its input generator and its f64 reference.

/// Arguments of one call: tensors in parameter order, then scalars in parameter order.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub tensors: Vec<Tensor>,
    pub scalars: Vec<f32>,
}

impl Inputs {
    /// Applies `f` to every tensor.
    pub fn map(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Inputs> {
        Ok(Inputs {
            tensors: self.tensors.iter().map(f).collect::<Result<_>>()?,
            scalars: self.scalars.clone(),
        })
    }

    /// The inputs stored as `dtype` on `device`.
    pub fn to(&self, dtype: DType, device: &Device) -> Result<Inputs> {
        self.map(|t| t.to_dtype(dtype)?.to_device(device))
    }

    pub fn shapes(&self) -> Vec<Vec<usize>> {
        self.tensors.iter().map(|t| t.dims().to_vec()).collect()
    }
}

/// A function of a case's f64 inputs that gives one tensor per output.
pub type PerOutput = fn(&Inputs) -> Result<Vec<Tensor>>;

/// The future of a case's asynchronous call.
pub type Pending =
    std::pin::Pin<Box<dyn std::future::Future<Output = graph_runtime::Result<Vec<Tensor>>> + Send>>;

/// One example graph: how to draw its inputs, call it, and compute what it must return.
#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    /// Random f64 inputs on the CPU, sized by `Sizes`.
    pub draw: fn(&mut StdRng, Sizes) -> Result<Inputs>,
    /// Calls the generated function.
    pub graph: fn(&Inputs) -> graph_runtime::Result<Vec<Tensor>>,
    /// Calls its asynchronous twin.
    pub graph_async: fn(&Inputs) -> Pending,
    /// Hand-written Candle ops on f64 CPU tensors: the oracle.
    pub reference: PerOutput,
    /// For pointwise cases, the magnitude of each output's operands (f64 inputs in, one tensor
    /// per output): see [`rel_err`]. `None` measures against the reference alone.
    pub magnitude: Option<PerOutput>,
}

/// How large the drawn dims are. Graphs pick which of their symbols are rows (the last, reduced
/// axis), leading dims or other outer dims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Small random sizes, odd ones included.
    Small,
    /// Every dim 1 (2 where a graph needs an even size).
    Unit,
    /// Few rows of 4 000 to 20 000 elements.
    LongRows,
    /// The leading dim is 0; the rest are small.
    Empty,
}

impl Sizes {
    /// The leading (batch) dim.
    pub fn lead(self, rng: &mut StdRng) -> usize {
        match self {
            Sizes::Empty => 0,
            _ => self.outer(rng),
        }
    }

    /// A dim other than the leading one and the row.
    pub fn outer(self, rng: &mut StdRng) -> usize {
        match self {
            Sizes::Unit => 1,
            Sizes::LongRows => rng.gen_range(1..=2),
            Sizes::Small | Sizes::Empty => rng.gen_range(1..=7),
        }
    }

    /// The last axis, the one row reductions run over.
    pub fn row(self, rng: &mut StdRng) -> usize {
        match self {
            Sizes::Unit => 1,
            Sizes::LongRows => rng.gen_range(4_000..=20_000),
            Sizes::Small | Sizes::Empty => rng.gen_range(1..=67),
        }
    }
}

/// Every example graph, for tests that loop over all of them.
pub const CASES: &[Case] = &[
    SOFTMAX,
    LOG_SOFTMAX,
    LOGSUMEXP,
    RMS_NORM,
    LAYER_NORM,
    GELU,
    GELU_ERF,
    SILU,
    SWIGLU,
    ROPE,
    LORA,
    ATTENTION,
    ADD_RMS_NORM,
    CENTER_COLUMNS,
];

fn one(t: graph_runtime::Result<Tensor>) -> graph_runtime::Result<Vec<Tensor>> {
    Ok(vec![t?])
}

/// Draws `[lead, row]` standard normal values.
fn rows(rng: &mut StdRng, sizes: Sizes) -> Result<Inputs> {
    let shape = [sizes.lead(rng), sizes.row(rng)];
    Ok(Inputs {
        tensors: vec![randn(rng, &shape, 0.0, 2.0)?],
        scalars: vec![],
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

/// Pointwise cases draw from a wide range so both tails of each activation are exercised.
fn wide(rng: &mut StdRng, sizes: Sizes) -> Result<Inputs> {
    let shape = [sizes.lead(rng), sizes.row(rng)];
    Ok(Inputs {
        tensors: vec![randn(rng, &shape, 0.0, 4.0)?],
        scalars: vec![],
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

pub const ROPE: Case = Case {
    name: "rope",
    draw: |rng, sizes| {
        let (b, h, s) = (sizes.lead(rng), sizes.outer(rng), sizes.outer(rng));
        let half = sizes.row(rng).div_ceil(2);
        let (cos, sin) = rope_tables(rng, s, half)?;
        Ok(Inputs {
            tensors: vec![randn(rng, &[b, h, s, 2 * half], 0.0, 1.0)?, cos, sin],
            scalars: vec![],
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
        let scores = (q.matmul(&k.t()?)? * i.scalars[0] as f64)?;
        let masked = mask.ge(0.5)?.broadcast_as(scores.shape())?.where_cond(
            &scores,
            &Tensor::full(f64::NEG_INFINITY, scores.shape(), &Device::Cpu)?,
        )?;
        Ok(vec![ref_softmax(&masked)?])
    },
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

pub const CENTER_COLUMNS: Case = Case {
    name: "center_columns",
    draw: |rng, sizes| {
        let shape = [sizes.lead(rng), sizes.row(rng)];
        Ok(Inputs {
            tensors: vec![randn(rng, &shape, 2.0, 1.0)?],
            scalars: vec![],
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
    magnitude: None,
};

// ---------------------------------------------------------------------------------------------
// f64 references. Written from the textbook definitions with Candle ops, independently of the
// graphs' own formulations where that is easy (merged LoRA weights, pairwise RoPE rotation).

/// The row maxima; Candle refuses to reduce tensors without elements.
fn row_max(x: &Tensor) -> Result<Tensor> {
    if x.elem_count() == 0 {
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = 1;
        return Tensor::full(f64::NEG_INFINITY, dims, x.device());
    }
    x.max_keepdim(D::Minus1)
}

pub fn ref_softmax(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&row_max(x)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

pub fn ref_logsumexp(x: &Tensor) -> Result<Tensor> {
    let m = row_max(x)?;
    let s = x.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?;
    m + s.log()?
}

pub fn ref_rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / x.dim(D::Minus1)? as f64)?;
    x.broadcast_div(&(ms + eps as f64)?.sqrt()?)?.broadcast_mul(w)
}

pub fn ref_layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
    let n = x.dim(D::Minus1)? as f64;
    let centred = x.broadcast_sub(&(x.sum_keepdim(D::Minus1)? / n)?)?;
    let var = (centred.sqr()?.sum_keepdim(D::Minus1)? / n)?;
    centred
        .broadcast_div(&(var + eps as f64)?.sqrt()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)
}

pub fn ref_gelu_tanh(x: &Tensor) -> Result<Tensor> {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let inner = ((x + (x.powf(3.0)? * 0.044715)?)? * k)?;
    x * ((inner.tanh()? + 1.0)? * 0.5)?
}

pub fn ref_silu(x: &Tensor) -> Result<Tensor> {
    x / (x.neg()?.exp()? + 1.0)?
}

/// Rotates each pair `(x[i], x[i + D/2])` by the angle whose cos/sin the tables hold.
pub fn ref_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let out1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let out2 = (x1.broadcast_mul(sin)? + x2.broadcast_mul(cos)?)?;
    Tensor::cat(&[out1, out2], D::Minus1)
}

// ---------------------------------------------------------------------------------------------
// Random inputs.

/// A generator seeded afresh each run; the seed is printed so a failure can be replayed with
/// `LAZY_GRAPH_SEED=<seed> cargo test ...`.
pub fn rng() -> StdRng {
    let seed = std::env::var("LAZY_GRAPH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("random inputs from LAZY_GRAPH_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// Normal values (Box–Muller) as an f64 CPU tensor.
pub fn randn(rng: &mut StdRng, shape: &[usize], mean: f64, std: f64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]: ln stays finite
            let u2: f64 = rng.gen();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            mean + std * z
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Cos/sin tables `[s, half]` of random angles, as RoPE caches hold.
pub fn rope_tables(rng: &mut StdRng, s: usize, half: usize) -> Result<(Tensor, Tensor)> {
    let angles = randn(rng, &[s, half], 0.0, 3.0)?;
    Ok((angles.cos()?, angles.sin()?))
}

// ---------------------------------------------------------------------------------------------
// Comparing results.

/// The largest allowed [`rel_err`] of a result stored as `dtype`, against the f64 reference
/// computed from the same (already rounded) inputs. The one place tolerances are stated.
///
/// Graphs compute f16/bf16/f32 in f32 and f64 in f64, so the error is the compute type's
/// accumulated rounding plus the final rounding to the storage type. Observed worst cases of the
/// eager executor over thousands of random draws (rows up to 20 000, see [`Sizes`]) in brackets:
/// - f64 [7e-15]: only f64 reordering; 1e-10 leaves room for any summation order.
/// - f32 [1e-6 for row ops; 9e-6 for LoRA, a 20 000-long matmul inner dim]: a sequential f32 sum
///   of n signed terms is off by about 2^-24 * sqrt(n/2) of its RMS (6e-6 for n = 20 000), with
///   outliers at several times that; 5e-5 admits any honest summation order (one accumulator,
///   SIMD lanes, threads) at that length, and still fails any real bug.
/// - f16 [4.9e-4 = 2^-11, one rounding]: 2e-3 allows four roundings in the half type (a kernel
///   that stores an intermediate as f16, an output rounded then reused).
/// - bf16 [3.9e-3 = 2^-8, one rounding]: 1.6e-2 allows the same four; it is also
///   `torch.testing`'s bf16 default.
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-10,
        DType::F32 => 5e-5,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        other => panic!("no tolerance for {other:?}: graphs compute in float types only"),
    }
}

/// The largest allowed [`rel_err`] between a graph and candle-nn's fused op for the same inputs
/// (rows up to 67 elements). candle-nn computes f32 and f64 as we do, so those agree within
/// [`tolerance`]. In f16/bf16 its CPU softmax runs exp, max, sum and division in the half type and
/// its rope multiplies and adds in it: observed up to 4.5e-3 (f16) and 3.3e-2 (bf16) from the f64
/// result, about twice our tolerance, so the halves get four times it.
pub fn candle_nn_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 4.0 * tolerance(dtype),
        _ => tolerance(dtype),
    }
}

/// The dtypes every numeric test runs in.
pub const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// [`rel_err`] without operand magnitudes.
pub fn max_rel_err(actual: &Tensor, reference: &Tensor) -> Result<f64> {
    rel_err(actual, reference, None)
}

/// `max_i |a_i - r_i| / max(|r_i|, rms(r), m_i)`: the relative error of each element, where
/// elements much smaller than the tensor's RMS count relative to the RMS instead, and elements
/// much smaller than their operands' magnitude `m_i` (if given) relative to that.
///
/// Pure relative error would fail honest results wherever a value cancels to near zero (a
/// centred layer-norm input, log_softmax of the largest entry): the absolute error there scales
/// with the operands, not with the result. The RMS covers that for tensors of many elements;
/// `m` covers pointwise functions in their tails, where one element can be alone: `gelu(-10)` is
/// `0.5 * x * (1 + tanh(-8.6))`, whose `1 + tanh` cancels, so its error is a fraction of `|x|`,
/// not of the 1e-23 result. NaN where the reference is not (or the reverse) is infinite error.
pub fn rel_err(actual: &Tensor, reference: &Tensor, magnitude: Option<&Tensor>) -> Result<f64> {
    let a = flat_f64(actual)?;
    let r = flat_f64(reference)?;
    assert_eq!(a.len(), r.len(), "compared tensors differ in size");
    let m = match magnitude {
        Some(m) => flat_f64(&m.broadcast_as(reference.shape())?)?,
        None => vec![0.0; r.len()],
    };
    if r.is_empty() {
        return Ok(0.0);
    }
    let rms = (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt();
    let mut worst = 0f64;
    for ((&a, &r), &m) in a.iter().zip(&r).zip(&m) {
        if a == r || (a.is_nan() && r.is_nan()) {
            continue; // equal infinities, or the mean of nothing on both sides
        }
        let err = (a - r).abs() / r.abs().max(rms).max(m).max(f64::MIN_POSITIVE);
        worst = worst.max(if err.is_nan() { f64::INFINITY } else { err });
    }
    Ok(worst)
}

fn flat_f64(t: &Tensor) -> Result<Vec<f64>> {
    t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1()
}

/// Asserts equal shapes and `max_rel_err(actual, reference) <= tol`, naming `what` on failure.
pub fn assert_close(actual: &Tensor, reference: &Tensor, tol: f64, what: &str) -> Result<()> {
    assert_close_scaled(actual, reference, None, tol, what)
}

/// [`assert_close`] with operand magnitudes: see [`rel_err`].
pub fn assert_close_scaled(
    actual: &Tensor,
    reference: &Tensor,
    magnitude: Option<&Tensor>,
    tol: f64,
    what: &str,
) -> Result<()> {
    assert_eq!(actual.dims(), reference.dims(), "{what}: shapes differ");
    let err = rel_err(actual, reference, magnitude)?;
    assert!(
        err <= tol,
        "{what}: max relative error {err:e} exceeds {tol:e} (shape {:?})",
        actual.dims()
    );
    Ok(())
}

/// Runs `case` on inputs of `sizes` stored as `dtype` on `device`, and checks every output's
/// dtype, shape, device and values against the f64 reference. Returns the largest error seen.
pub fn check_case(case: &Case, rng: &mut StdRng, sizes: Sizes, dtype: DType, device: &Device) -> Result<f64> {
    let drawn = (case.draw)(rng, sizes)?;
    if device.is_cuda() && drawn.tensors.iter().any(|t| t.elem_count() == 0) {
        // Candle 0.11 cannot make an empty CUDA tensor (its zero-byte allocation fails with
        // CUDA_ERROR_INVALID_VALUE), so no graph can receive one there.
        eprintln!(
            "**** SKIPPED on CUDA: {} with empty inputs (Candle cannot allocate them) ****",
            case.name
        );
        return Ok(0.0);
    }
    let stored = drawn.to(dtype, device)?;
    let exact = stored.to(DType::F64, &Device::Cpu)?;
    let what = format!(
        "{} in {dtype:?} on {:?}, inputs {:?}",
        case.name,
        device.location(),
        stored.shapes()
    );
    let outputs = (case.graph)(&stored).unwrap_or_else(|e| panic!("{what}: {e}"));
    let expected = (case.reference)(&exact)?;
    let magnitudes = match case.magnitude {
        Some(f) => f(&exact)?.into_iter().map(Some).collect(),
        None => vec![None; expected.len()],
    };
    assert_eq!(outputs.len(), expected.len(), "{what}: output count");
    let mut worst = 0f64;
    for (k, ((out, exp), mag)) in outputs.iter().zip(&expected).zip(&magnitudes).enumerate() {
        let what = format!("{what}, output {k}");
        assert_eq!(out.dtype(), dtype, "{what}: dtype");
        assert!(out.device().same_device(device), "{what}: device");
        assert_close_scaled(out, exp, mag.as_ref(), tolerance(dtype), &what)?;
        worst = worst.max(rel_err(out, exp, mag.as_ref())?);
    }
    Ok(worst)
}

// ---------------------------------------------------------------------------------------------
// Devices.

/// Runs a test body `fn(&Device) -> candle_core::Result<()>` once per device, as candle-core's
/// tests do: `test_device!(softmax)` (after `#[macro_use] mod common;`) makes `softmax::cpu` and,
/// with the `cuda` feature, `softmax::cuda`, which skips loudly where no GPU answers; likewise
/// `softmax::metal` with the `metal` feature.
macro_rules! test_device {
    ($name:ident) => {
        mod $name {
            #[test]
            fn cpu() -> candle_core::Result<()> {
                super::$name(&candle_core::Device::Cpu)
            }

            #[cfg(feature = "cuda")]
            #[test]
            fn cuda() -> candle_core::Result<()> {
                match crate::common::cuda_device() {
                    Some(device) => super::$name(&device),
                    None => Ok(()),
                }
            }

            #[cfg(feature = "metal")]
            #[test]
            fn metal() -> candle_core::Result<()> {
                match crate::common::metal_device() {
                    Some(device) => super::$name(&device),
                    None => Ok(()),
                }
            }
        }
    };
}

/// The Metal GPU (one device for the whole test binary), or `None` after a loud notice where
/// there is none (a `metal` build on a Mac without a usable GPU, such as a CI virtual machine).
pub fn metal_device() -> Option<Device> {
    static DEVICE: std::sync::OnceLock<std::result::Result<Device, String>> = std::sync::OnceLock::new();
    match DEVICE.get_or_init(|| Device::new_metal(0).map_err(|e| e.to_string())) {
        Ok(device) => Some(device.clone()),
        Err(why) => {
            eprintln!("\n**** SKIPPED on Metal: no usable GPU ({why}) ****\n");
            None
        }
    }
}

/// [`DTYPES`] that `device` stores and computes: all but f64 on Metal, which has no double (nor
/// Candle any f64 Metal kernels), with a loud notice.
pub fn dtypes(device: &Device) -> &'static [DType] {
    if device.is_metal() {
        eprintln!("**** SKIPPED on Metal: f64 (Metal has no double) ****");
        &DTYPES_BUT_F64
    } else {
        &DTYPES
    }
}

const DTYPES_BUT_F64: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// GPU 0 (one device for the whole test binary), or `None` after a loud notice where there is
/// none: a CUDA build runs on machines whose driver reports no device, and their tests must skip,
/// not fail.
pub fn cuda_device() -> Option<Device> {
    static DEVICE: std::sync::OnceLock<Option<Device>> = std::sync::OnceLock::new();
    let device = DEVICE.get_or_init(|| Device::new_cuda(0).map_err(|e| e.to_string()).ok());
    if device.is_none() {
        let why = Device::new_cuda(0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        eprintln!("\n**** SKIPPED on CUDA: no usable GPU ({why}) ****\n");
    }
    device.clone()
}
