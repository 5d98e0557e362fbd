//! f64 references, written from the textbook definitions with Candle ops, independently of the
//! graphs' own formulations where that is easy (merged LoRA weights, pairwise RoPE rotation);
//! and the random inputs they are compared on.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device, Result, Tensor, D};
use rand::rngs::StdRng;
use rand::Rng;

/// The row maxima; Candle refuses to reduce tensors without elements.
pub fn row_max(x: &Tensor) -> Result<Tensor> {
    if x.elem_count() == 0 {
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank >= 1") = 1;
        return Tensor::full(f64::NEG_INFINITY, dims, x.device());
    }
    x.max_keepdim(D::Minus1)
}

/// `x` (f64) rounded to `dtype` and back: what a library step stores between two kernels.
pub fn round_to(x: &Tensor, dtype: DType) -> Result<Tensor> {
    x.to_dtype(dtype)?.to_dtype(DType::F64)
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
