//! The unary op table: one row per op, holding everything the code knows about it.
//!
//! Every consumer reads its part of a row instead of matching on [`UnaryOp`] itself: the DSL's
//! name lookup (graph-macros `check/builtins.rs`), constant folding and the tests' references
//! ([`UnaryInfo::eval`]), the CPU emitter ([`UnaryInfo::cpu`], a method of
//! [`crate::cpu::Float`]), the CUDA and Metal emitters ([`UnaryInfo::c`], a function of both
//! preludes), the CPU row planner ([`UnaryInfo::costly`]) and the eager executor
//! ([`UnaryInfo::eager`], Candle ops). A unary op is pointwise: its result has its argument's
//! shape, and it fuses into any kernel.
//!
//! The row holds the op's derivative too ([`UnaryInfo::vjp`]): a rule building `dx` from `x`,
//! `y = f(x)` and the cotangent `dy`, written against [`super::vjp::Builder`] so that the macro
//! can build it as graph nodes for a backward kernel; `graph-ir/tests/vjp.rs` holds each rule
//! to central differences of the row's `eval`.
//!
//! The rows are in [`UnaryOp::ALL`]'s order, so a variant without a row does not compile (the
//! table's length is the variant count) and a row out of place fails `rows_are_in_order`.

#[cfg(feature = "eager")]
use candle_core::{Result, Tensor};

#[cfg(feature = "eager")]
use super::candle;

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

use super::vjp::{UnaryRule, Vjp};
use crate::math;

/// Declares [`UnaryOp`] and [`UnaryOp::ALL`] from one list, so the two cannot disagree.
macro_rules! unary_ops {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// One-input pointwise ops. What each computes, and how every backend spells it, is its
        /// row of the table: [`UnaryOp::info`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum UnaryOp {
            $($(#[$doc])* $variant,)*
        }

        impl UnaryOp {
            /// Every unary op, in declaration (and table) order.
            pub const ALL: [UnaryOp; [$(UnaryOp::$variant),*].len()] = [$(UnaryOp::$variant),*];
        }
    };
}

unary_ops! {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// `1 / x`.
    Recip,
    /// `x * x`.
    Sqr,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Hyperbolic tangent.
    Tanh,
    /// The error function.
    Erf,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x * sigmoid(x)`.
    Silu,
    /// GELU, tanh approximation.
    Gelu,
    /// GELU, exact (erf) form.
    GeluErf,
    /// `max(x, 0)`.
    Relu,
    /// The largest integer not above `x`.
    Floor,
    /// The smallest integer not below `x`.
    Ceil,
    /// The nearest integer, ties to even (as `torch.round`).
    Round,
    /// `1`, `0` or `-1` as `x` is above, equal to or below 0; 0 for NaN (as `torch.sign`).
    Sign,
    /// `ln(1 + x)`, accurate for `x` near 0.
    Log1p,
    /// `e^x - 1`, accurate for `x` near 0.
    Expm1,
}

/// How a CPU kernel computes an op on its compute type `C: Float` ([`crate::cpu::Float`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuForm {
    /// The operator `-x`.
    Neg,
    /// The method `x.name()`.
    Method(&'static str),
    /// The method `x.name_with::<FMA>()`: computed with fused multiply-adds in the kernel copy
    /// compiled for a CPU that has them.
    Fma(&'static str),
}

/// How a CUDA or Metal kernel computes an op on its compute type `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CForm {
    /// The operator `-x`.
    Neg,
    /// `x * x`.
    Square,
    /// A function both preludes define (`exec/cuda/prelude.cuh`, `exec/metal/prelude.metal`).
    Call(&'static str),
}

/// Everything about one unary op: a row of the table.
#[derive(Clone, Copy, Debug)]
pub struct UnaryInfo {
    /// The op the row describes.
    pub op: UnaryOp,
    /// The DSL name: `exp(x)`, `x.exp()`.
    pub name: &'static str,
    /// The reference semantics, in f64: constant folding computes with it, and so do the
    /// tests' oracles. Special values are PyTorch's (see `tests/special.rs`).
    pub eval: fn(f64) -> f64,
    /// The CPU kernels' spelling.
    pub cpu: CpuForm,
    /// The CUDA and Metal kernels' spelling.
    pub c: CForm,
    /// Costs a transcendental function or more: where a row kernel's reduction pass and its
    /// write pass both need such a value (softmax's `exp`), the CPU kernel keeps it in a scratch
    /// row instead of computing it twice.
    pub costly: bool,
    /// The derivative: a rule building `dx` from `x`, `y` and `dy` ([`super::vjp::unary`]), with
    /// PyTorch's formula and its masking; [`Vjp::Zero`] for a step function (`floor`), whose
    /// derivative is 0 wherever it has one, as PyTorch's.
    pub vjp: Vjp<UnaryRule>,
    /// The eager executor's Candle ops, on a tensor in the compute dtype.
    #[cfg(feature = "eager")]
    pub eager: fn(&Tensor) -> Result<Tensor>,
}

impl UnaryOp {
    /// The op's row of the table.
    pub fn info(self) -> &'static UnaryInfo {
        &TABLE[self as usize]
    }

    /// The DSL name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The reference semantics, in f64.
    pub fn eval(self, x: f64) -> f64 {
        (self.info().eval)(x)
    }
}

static TABLE: [UnaryInfo; UnaryOp::ALL.len()] = [
    UnaryInfo {
        op: UnaryOp::Neg,
        name: "neg",
        eval: |x| -x,
        cpu: CpuForm::Neg,
        c: CForm::Neg,
        costly: false,
        vjp: Vjp::Rule(|_, _, dy| -dy),
        #[cfg(feature = "eager")]
        eager: Tensor::neg,
    },
    UnaryInfo {
        op: UnaryOp::Abs,
        name: "abs",
        eval: f64::abs,
        cpu: CpuForm::Method("abs"),
        c: CForm::Call("lg_abs"),
        costly: false,
        vjp: Vjp::Rule(|x, _, dy| dy * x.sign()),
        #[cfg(feature = "eager")]
        eager: Tensor::abs,
    },
    UnaryInfo {
        op: UnaryOp::Exp,
        name: "exp",
        eval: f64::exp,
        cpu: CpuForm::Fma("exp"),
        c: CForm::Call("lg_exp"),
        costly: true,
        vjp: Vjp::Rule(|_, y, dy| dy * y),
        #[cfg(feature = "eager")]
        eager: Tensor::exp,
    },
    UnaryInfo {
        op: UnaryOp::Log,
        name: "log",
        eval: f64::ln,
        cpu: CpuForm::Method("ln"),
        c: CForm::Call("lg_log"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| dy / x),
        #[cfg(feature = "eager")]
        eager: Tensor::log,
    },
    UnaryInfo {
        op: UnaryOp::Sqrt,
        name: "sqrt",
        eval: f64::sqrt,
        cpu: CpuForm::Method("sqrt"),
        c: CForm::Call("lg_sqrt"),
        costly: false,
        vjp: Vjp::Rule(|_, y, dy| dy / (2.0 * y)),
        #[cfg(feature = "eager")]
        eager: Tensor::sqrt,
    },
    UnaryInfo {
        op: UnaryOp::Rsqrt,
        name: "rsqrt",
        eval: |x| 1.0 / x.sqrt(),
        cpu: CpuForm::Method("rsqrt"),
        c: CForm::Call("lg_rsqrt"),
        costly: false,
        vjp: Vjp::Rule(|_, y, dy| -0.5 * dy * (y * y * y)),
        #[cfg(feature = "eager")]
        eager: |x| x.sqrt()?.recip(),
    },
    UnaryInfo {
        op: UnaryOp::Recip,
        name: "recip",
        eval: |x| 1.0 / x,
        cpu: CpuForm::Method("recip"),
        c: CForm::Call("lg_recip"),
        costly: false,
        vjp: Vjp::Rule(|_, y, dy| -dy * (y * y)),
        #[cfg(feature = "eager")]
        eager: Tensor::recip,
    },
    UnaryInfo {
        op: UnaryOp::Sqr,
        name: "sqr",
        eval: |x| x * x,
        cpu: CpuForm::Method("sqr"),
        c: CForm::Square,
        costly: false,
        vjp: Vjp::Rule(|x, _, dy| dy * (2.0 * x)),
        #[cfg(feature = "eager")]
        eager: Tensor::sqr,
    },
    UnaryInfo {
        op: UnaryOp::Sin,
        name: "sin",
        eval: f64::sin,
        cpu: CpuForm::Method("sin"),
        c: CForm::Call("lg_sin"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| dy * x.cos()),
        #[cfg(feature = "eager")]
        eager: Tensor::sin,
    },
    UnaryInfo {
        op: UnaryOp::Cos,
        name: "cos",
        eval: f64::cos,
        cpu: CpuForm::Method("cos"),
        c: CForm::Call("lg_cos"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| dy * -x.sin()),
        #[cfg(feature = "eager")]
        eager: Tensor::cos,
    },
    UnaryInfo {
        op: UnaryOp::Tanh,
        name: "tanh",
        eval: f64::tanh,
        cpu: CpuForm::Fma("tanh"),
        c: CForm::Call("lg_tanh"),
        costly: true,
        vjp: Vjp::Rule(|_, y, dy| dy * (1.0 - y * y)),
        #[cfg(feature = "eager")]
        eager: Tensor::tanh,
    },
    UnaryInfo {
        op: UnaryOp::Erf,
        name: "erf",
        eval: math::erf,
        cpu: CpuForm::Method("erf"),
        c: CForm::Call("lg_erf"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| dy * (FRAC_2_SQRT_PI * (-(x * x)).exp())),
        #[cfg(feature = "eager")]
        eager: Tensor::erf,
    },
    UnaryInfo {
        op: UnaryOp::Sigmoid,
        name: "sigmoid",
        eval: |x| 1.0 / (1.0 + (-x).exp()),
        cpu: CpuForm::Fma("sigmoid"),
        c: CForm::Call("lg_sigmoid"),
        costly: true,
        vjp: Vjp::Rule(|_, y, dy| dy * (1.0 - y) * y),
        #[cfg(feature = "eager")]
        eager: |x| (x.neg()?.exp()? + 1.0)?.recip(),
    },
    UnaryInfo {
        op: UnaryOp::Silu,
        name: "silu",
        eval: |x| x / (1.0 + (-x).exp()),
        cpu: CpuForm::Fma("silu"),
        c: CForm::Call("lg_silu"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| {
            let s = x.sigmoid();
            dy * s * (1.0 + x * (1.0 - s))
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::silu,
    },
    UnaryInfo {
        op: UnaryOp::Gelu,
        name: "gelu",
        eval: math::gelu_tanh,
        cpu: CpuForm::Fma("gelu"),
        c: CForm::Call("lg_gelu"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| {
            // `0.5 x (1 + t)` with `t = tanh(k (x + 0.044715 x^3))`, as `math::gelu_tanh`.
            let k = math::SQRT_2_OVER_PI;
            let t = (k * (x + 0.044715 * (x * x * x))).tanh();
            let dt = (1.0 - t * t) * (k * (1.0 + 3.0 * 0.044715 * (x * x)));
            dy * (0.5 * (1.0 + t) + 0.5 * x * dt)
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::gelu,
    },
    UnaryInfo {
        op: UnaryOp::GeluErf,
        name: "gelu_erf",
        eval: |x| 0.5 * x * (1.0 + math::erf(x / std::f64::consts::SQRT_2)),
        cpu: CpuForm::Method("gelu_erf"),
        c: CForm::Call("lg_gelu_erf"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| {
            // `x Φ(x)`: `Φ(x) + x φ(x)`, with `φ(x) = exp(-x^2 / 2) / sqrt(2π)`.
            let cdf = 0.5 * (1.0 + (x * FRAC_1_SQRT_2).erf());
            let pdf = (FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5) * (-0.5 * (x * x)).exp();
            dy * (cdf + x * pdf)
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::gelu_erf,
    },
    UnaryInfo {
        op: UnaryOp::Relu,
        name: "relu",
        eval: math::relu,
        cpu: CpuForm::Method("relu"),
        c: CForm::Call("lg_relu"),
        costly: false,
        // PyTorch's `threshold_backward(grad, result, 0)`: a select, so an infinite `dy` gives
        // exact zeros where `x <= 0`; `0` at the kink.
        vjp: Vjp::Rule(|_, y, dy| y.le(0.0).select(0.0, dy)),
        // Candle's relu turns NaN into 0.
        #[cfg(feature = "eager")]
        eager: |x| x.lt(0.0)?.where_cond(&x.zeros_like()?, x),
    },
    UnaryInfo {
        op: UnaryOp::Floor,
        name: "floor",
        eval: f64::floor,
        cpu: CpuForm::Method("floor"),
        c: CForm::Call("lg_floor"),
        costly: false,
        vjp: Vjp::Zero,
        #[cfg(feature = "eager")]
        eager: Tensor::floor,
    },
    UnaryInfo {
        op: UnaryOp::Ceil,
        name: "ceil",
        eval: f64::ceil,
        cpu: CpuForm::Method("ceil"),
        c: CForm::Call("lg_ceil"),
        costly: false,
        vjp: Vjp::Zero,
        #[cfg(feature = "eager")]
        eager: Tensor::ceil,
    },
    UnaryInfo {
        op: UnaryOp::Round,
        name: "round",
        eval: f64::round_ties_even,
        cpu: CpuForm::Method("round_ties_even"),
        c: CForm::Call("lg_round"),
        costly: false,
        vjp: Vjp::Zero,
        #[cfg(feature = "eager")]
        eager: candle::round_ties_even,
    },
    UnaryInfo {
        op: UnaryOp::Sign,
        name: "sign",
        eval: math::sign,
        cpu: CpuForm::Method("sign"),
        c: CForm::Call("lg_sign"),
        costly: false,
        vjp: Vjp::Zero,
        // Candle's sign is `(x > 0) - (x < 0)`, as PyTorch's.
        #[cfg(feature = "eager")]
        eager: Tensor::sign,
    },
    UnaryInfo {
        op: UnaryOp::Log1p,
        name: "log1p",
        eval: f64::ln_1p,
        cpu: CpuForm::Method("ln_1p"),
        c: CForm::Call("lg_log1p"),
        costly: true,
        vjp: Vjp::Rule(|x, _, dy| dy / (x + 1.0)),
        #[cfg(feature = "eager")]
        eager: candle::log1p,
    },
    UnaryInfo {
        op: UnaryOp::Expm1,
        name: "expm1",
        eval: f64::exp_m1,
        cpu: CpuForm::Method("exp_m1"),
        c: CForm::Call("lg_expm1"),
        costly: true,
        vjp: Vjp::Rule(|_, y, dy| dy * (y + 1.0)),
        #[cfg(feature = "eager")]
        eager: candle::expm1,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_order() {
        for (i, op) in UnaryOp::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].op, op, "row {i}");
            assert_eq!(op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn names_are_distinct_identifiers() {
        for (i, a) in UnaryOp::ALL.into_iter().enumerate() {
            let name = a.name();
            let mut chars = name.chars();
            let first = chars.next().is_some_and(|c| c.is_ascii_lowercase());
            let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(first && rest, "{name} is no lowercase identifier");
            for b in &UnaryOp::ALL[i + 1..] {
                assert_ne!(name, b.name());
            }
        }
    }
}
