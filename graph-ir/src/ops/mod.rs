//! The op tables: every primitive a graph node can hold, and its math.
//!
//! Composite ops of the DSL (`softmax`, `var`, `clamp`, `gelu` variants are primitives, `mean` is a
//! reduction) are lowered by the macro to these primitives. [`Op`] is one closed enum; its
//! unary ops, binary ops and reductions are rows of tables ([`UnaryOp::info`] in `unary.rs`,
//! [`BinaryOp::info`] in `binary.rs`, [`ReduceOp::info`] in `reduce.rs`) that the runtime, the
//! optimiser and every kernel emitter read instead of matching on the op. Each row holds the
//! op's derivative too, as a rule written against [`vjp::Builder`] (`vjp.rs`).

mod binary;
#[cfg(feature = "eager")]
mod candle;
mod reduce;
mod unary;
pub mod vjp;

pub use binary::{BinaryCForm, BinaryCpuForm, BinaryInfo, BinaryOp};
pub use reduce::{ReduceCForm, ReduceCpuForm, ReduceCpuStep, ReduceFinish, ReduceInfo, ReduceOp};
pub use unary::{CForm, CpuForm, UnaryInfo, UnaryOp};

use crate::dim::Dim;

/// A float literal stored by its bits, so ops stay `Eq + Hash` for common-subexpression lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lit(u64);

impl Lit {
    /// The literal `v`; `-0.0` and `0.0` (and NaN payloads) stay distinct.
    pub const fn new(v: f64) -> Lit {
        Lit(v.to_bits())
    }

    /// Rebuilds a literal from [`Lit::bits`]; used by generated code.
    pub const fn from_bits(bits: u64) -> Lit {
        Lit(bits)
    }

    /// The `f64` bit pattern.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The value.
    pub fn value(self) -> f64 {
        f64::from_bits(self.0)
    }
}

impl std::fmt::Debug for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.value())
    }
}

/// Storage types a graph can cast to; computation runs in f32 (f64 for f64 graphs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
}

impl DType {
    /// Every dtype, in order of width.
    pub const ALL: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

    /// The DSL spelling (`f16`, `bf16`, `f32`, `f64`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// The dtype the DSL spells `name`, if any.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// A graph node's operation. Axes are already normalised to `0..rank`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The tensor parameter with this index.
    Input(u16),
    /// The scalar parameter with this index.
    Scalar(u16),
    /// A float literal (a scalar).
    Const(Lit),
    /// The run-time size of a symbolic dim, as a scalar (`x / D`).
    Size(Dim),
    /// A one-input pointwise op.
    Unary(UnaryOp),
    /// A two-input pointwise op; the arguments broadcast.
    Binary(BinaryOp),
    /// `where_(cond, a, b)`: `a` where `cond != 0`, else `b`.
    Where,
    /// A reduction over the axis; the axis is kept with size 1.
    Reduce(ReduceOp, u8),
    /// Batched matrix product; batch dims broadcast.
    Matmul,
    /// Swap two axes.
    Transpose(u8, u8),
    /// Reshape to the node's shape (row-major order).
    Reshape,
    /// Broadcast to the node's shape.
    Broadcast,
    /// `narrow(x, axis, start, len)`; `len` is the node's dim at `axis`.
    Narrow(u8, Dim),
    /// Concatenate the arguments along an axis.
    Cat(u8),
    /// Round through a storage type; the node's values have that type.
    Cast(DType),
}

/// How the planner may treat an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// Parameters, literals and sizes.
    Leaf,
    /// Elementwise with broadcasting: fuses into any kernel.
    Pointwise,
    /// A reduction over one axis.
    Reduce,
    /// Moves data without arithmetic.
    Layout,
    /// Matrix product, run by the device's library.
    Matmul,
}

impl Op {
    /// How the planner may treat the op.
    pub fn class(&self) -> OpClass {
        match self {
            Op::Input(_) | Op::Scalar(_) | Op::Const(_) | Op::Size(_) => OpClass::Leaf,
            Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast(_) => OpClass::Pointwise,
            Op::Reduce(..) => OpClass::Reduce,
            Op::Matmul => OpClass::Matmul,
            Op::Transpose(..) | Op::Reshape | Op::Broadcast | Op::Narrow(..) | Op::Cat(_) => OpClass::Layout,
        }
    }

    /// How many arguments the op takes: `Some(n)` for every op but `cat`, which takes one or
    /// more parts (`None`).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::Input(_) | Op::Scalar(_) | Op::Const(_) | Op::Size(_) => Some(0),
            Op::Unary(_)
            | Op::Reduce(..)
            | Op::Transpose(..)
            | Op::Reshape
            | Op::Broadcast
            | Op::Narrow(..)
            | Op::Cast(_) => Some(1),
            Op::Binary(_) | Op::Matmul => Some(2),
            Op::Where => Some(3),
            Op::Cat(_) => None,
        }
    }

    /// Whether a gradient flows from the op's result back to its argument `arg`: not into a
    /// `where_`'s condition, nor through an op whose row is not differentiable (comparisons),
    /// as in PyTorch, where such inputs get no gradient at all. An op whose derivative is zero
    /// (`floor`) does carry one: exact zeros.
    pub fn carries_gradient(&self, arg: usize) -> bool {
        use vjp::Vjp::NotDifferentiable;
        match self {
            Op::Unary(u) => !matches!(u.info().vjp, NotDifferentiable),
            Op::Binary(b) => !matches!(b.info().vjp, NotDifferentiable),
            Op::Reduce(r, _) => !matches!(r.info().vjp, NotDifferentiable),
            Op::Where => arg != 0,
            _ => true,
        }
    }

    /// The op's name in printed graphs (`exp`, `mean`, `narrow`); leaves print their value.
    pub fn name(&self) -> String {
        match self {
            Op::Input(i) => format!("input {i}"),
            Op::Scalar(i) => format!("scalar {i}"),
            Op::Const(v) => format!("{:?}", v.value()),
            Op::Size(d) => format!("size {d:?}"),
            Op::Unary(u) => u.name().to_string(),
            Op::Binary(b) => b.name().to_string(),
            Op::Where => "where".to_string(),
            Op::Reduce(r, _) => r.name().to_string(),
            Op::Matmul => "matmul".to_string(),
            Op::Transpose(..) => "transpose".to_string(),
            Op::Reshape => "reshape".to_string(),
            Op::Broadcast => "broadcast".to_string(),
            Op::Narrow(..) => "narrow".to_string(),
            Op::Cat(_) => "cat".to_string(),
            Op::Cast(_) => "cast".to_string(),
        }
    }

    /// The op's own arguments besides its inputs (`axis 1`, `f16`), if it has any. Shapes are not
    /// listed: reshape and broadcast go to the node's shape.
    pub fn attrs(&self) -> Option<String> {
        match self {
            Op::Reduce(_, axis) | Op::Cat(axis) => Some(format!("axis {axis}")),
            Op::Transpose(a, b) => Some(format!("{a}, {b}")),
            Op::Narrow(axis, start) => Some(format!("axis {axis}, start {start:?}")),
            Op::Cast(t) => Some(t.name().to_string()),
            _ => None,
        }
    }

    /// A short label for printing graphs: the name with its attributes, `mean(axis 1)`.
    pub fn label(&self) -> String {
        match self.attrs() {
            Some(attrs) => format!("{}({attrs})", self.name()),
            None => self.name(),
        }
    }
}
