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

#[macro_use]
mod devices;
mod columns;
mod compare;
mod graphs;
mod matmul;
mod pointwise;
mod reference;
mod rows;
mod seed;

use candle_core::{DType, Device, Result, Tensor};
use rand::rngs::StdRng;
use rand::Rng;

// Not every test crate uses every part.
#[allow(unused_imports)]
pub use columns::*;
#[allow(unused_imports)]
pub use compare::*;
#[allow(unused_imports)]
pub use devices::*;
#[allow(unused_imports)]
pub use graphs::*;
#[allow(unused_imports)]
pub use matmul::*;
#[allow(unused_imports)]
pub use pointwise::*;
#[allow(unused_imports)]
pub use reference::*;
#[allow(unused_imports)]
pub use rows::*;
#[allow(unused_imports)]
pub use seed::*;

// ---------------------------------------------------------------------------------------------
// Cases: each example graph with its input generator and its f64 reference.

/// Arguments of one call: tensors in parameter order, then scalars in parameter order.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub tensors: Vec<Tensor>,
    pub scalars: Vec<f32>,
    /// The dtype the graph's matmuls store their products in, which a reference rounds them to
    /// before the next kernel reads them (set by [`check_case`]; F64 as drawn).
    pub products: DType,
}

impl Inputs {
    /// Applies `f` to every tensor.
    pub fn map(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Inputs> {
        Ok(Inputs {
            tensors: self.tensors.iter().map(f).collect::<Result<_>>()?,
            scalars: self.scalars.clone(),
            products: self.products,
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
    COLUMN_STATS,
    ROUNDING,
    LOG1P_EXPM1,
    MASKED,
];

fn one(t: graph_runtime::Result<Tensor>) -> graph_runtime::Result<Vec<Tensor>> {
    Ok(vec![t?])
}
