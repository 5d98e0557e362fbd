//! The binary op table: one row per op, holding everything the code knows about it.
//!
//! Every consumer reads its part of a row instead of matching on [`BinaryOp`] itself: the DSL's
//! name lookup (graph-macros `check/builtins.rs`), constant folding and the tests' references
//! ([`BinaryInfo::eval`]), the CPU emitter ([`BinaryInfo::cpu`]), the CUDA and Metal emitters
//! ([`BinaryInfo::c`]), the CPU row planner ([`BinaryInfo::costly`]), the reductions that
//! combine with the op ([`super::ReduceInfo::combine`]) and the eager executor
//! ([`BinaryInfo::eager`], Candle ops). A binary op is pointwise: both arguments broadcast to
//! the result's shape, and it fuses into any kernel.
//!
//! The row holds the op's derivative too ([`BinaryInfo::vjp`]): a rule for each argument,
//! building its cotangent from `a`, `b`, `y` and the cotangent `dy`, written against
//! [`super::vjp::Builder`] so that the macro can build it as graph nodes for a backward kernel;
//! `graph-ir/tests/vjp.rs` holds each rule to central differences of the row's `eval`.
//!
//! The rows are in [`BinaryOp::ALL`]'s order, so a variant without a row does not compile (the
//! table's length is the variant count) and a row out of place fails `rows_are_in_order`.

#[cfg(feature = "eager")]
use candle_core::{Result, Tensor};

#[cfg(feature = "eager")]
use super::candle;

use super::vjp::{BinaryRules, Vjp};
use crate::math;

/// Declares [`BinaryOp`] and [`BinaryOp::ALL`] from one list, so the two cannot disagree.
macro_rules! binary_ops {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// Two-input pointwise ops; both sides broadcast. What each computes, and how every
        /// backend spells it, is its row of the table: [`BinaryOp::info`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum BinaryOp {
            $($(#[$doc])* $variant,)*
        }

        impl BinaryOp {
            /// Every binary op, in declaration (and table) order.
            pub const ALL: [BinaryOp; [$(BinaryOp::$variant),*].len()] = [$(BinaryOp::$variant),*];
        }
    };
}

binary_ops! {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a` to the power `b`, as C's `pow`.
    Pow,
    /// The larger of `a` and `b`; NaN if either is (as `torch.maximum`).
    Maximum,
    /// The smaller of `a` and `b`; NaN if either is.
    Minimum,
    /// `a == b`. Comparisons yield 1.0 where true and 0.0 where false, in the compute type.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

/// How a CPU kernel computes a binary op on its compute type `C: Float` ([`crate::cpu::Float`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryCpuForm {
    /// The operator `x op y` (`+`).
    Infix(&'static str),
    /// The method `x.name(y)`.
    Method(&'static str),
    /// The comparison `C::flag(x op y)` (`==`): 1 where it holds, else 0.
    Compare(&'static str),
}

/// How a CUDA or Metal kernel computes a binary op on its compute type `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryCForm {
    /// The operator `x op y` (`+`).
    Infix(&'static str),
    /// A function of two arguments that both preludes define (`exec/cuda/prelude.cuh`,
    /// `exec/metal/prelude.metal`).
    Call(&'static str),
    /// The comparison `x op y ? (C)1 : (C)0` (`==`).
    Compare(&'static str),
}

/// Everything about one binary op: a row of the table.
#[derive(Clone, Copy, Debug)]
pub struct BinaryInfo {
    /// The op the row describes.
    pub op: BinaryOp,
    /// The DSL name: `pow(a, b)`, `a.pow(b)`; the arithmetic and comparison operators (`a + b`,
    /// `a < b`) lower to their op.
    pub name: &'static str,
    /// The reference semantics, in f64: constant folding computes with it, and so do the
    /// tests' oracles. Special values are PyTorch's (see `tests/special.rs`).
    pub eval: fn(f64, f64) -> f64,
    /// A comparison: the result is 1.0 where it holds and 0.0 elsewhere (NaN compares false,
    /// except with `ne`), a step function of its arguments with no useful derivative.
    pub comparison: bool,
    /// The CPU kernels' spelling.
    pub cpu: BinaryCpuForm,
    /// The CUDA and Metal kernels' spelling.
    pub c: BinaryCForm,
    /// Costs a transcendental function or more: see [`super::UnaryInfo::costly`].
    pub costly: bool,
    /// The derivative: a rule for each argument ([`super::vjp::binary`]), with PyTorch's
    /// formula and its masking. Its result has `y`'s shape; the caller sums it over the dims
    /// the argument was broadcast along. [`Vjp::NotDifferentiable`] for a comparison, whose
    /// result no gradient flows through, as PyTorch's.
    pub vjp: Vjp<BinaryRules>,
    /// The eager executor's Candle ops, on tensors in the compute dtype that broadcast to each
    /// other; a comparison's mask comes back in that dtype too.
    #[cfg(feature = "eager")]
    pub eager: fn(&Tensor, &Tensor) -> Result<Tensor>,
    /// The Candle op for a tensor with a scalar on the right, where Candle has one of its own
    /// that computes the row's math; `eager` on a broadcast scalar tensor elsewhere.
    #[cfg(feature = "eager")]
    pub eager_scalar: Option<fn(&Tensor, f64) -> Result<Tensor>>,
}

impl BinaryOp {
    /// The op's row of the table.
    pub fn info(self) -> &'static BinaryInfo {
        &TABLE[self as usize]
    }

    /// The DSL name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Whether the op is one of the comparisons (`eq` .. `ge`).
    pub fn is_comparison(self) -> bool {
        self.info().comparison
    }

    /// The reference semantics, in f64.
    pub fn eval(self, a: f64, b: f64) -> f64 {
        (self.info().eval)(a, b)
    }
}

/// A comparison's result in f64.
fn flag(holds: bool) -> f64 {
    if holds {
        1.0
    } else {
        0.0
    }
}

static TABLE: [BinaryInfo; BinaryOp::ALL.len()] = [
    BinaryInfo {
        op: BinaryOp::Add,
        name: "add",
        eval: |a, b| a + b,
        comparison: false,
        cpu: BinaryCpuForm::Infix("+"),
        c: BinaryCForm::Infix("+"),
        costly: false,
        vjp: Vjp::Rule(BinaryRules {
            da: |_, _, _, dy| dy,
            db: |_, _, _, dy| dy,
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::broadcast_add,
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Sub,
        name: "sub",
        eval: |a, b| a - b,
        comparison: false,
        cpu: BinaryCpuForm::Infix("-"),
        c: BinaryCForm::Infix("-"),
        costly: false,
        vjp: Vjp::Rule(BinaryRules {
            da: |_, _, _, dy| dy,
            db: |_, _, _, dy| -dy,
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::broadcast_sub,
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Mul,
        name: "mul",
        eval: |a, b| a * b,
        comparison: false,
        cpu: BinaryCpuForm::Infix("*"),
        c: BinaryCForm::Infix("*"),
        costly: false,
        vjp: Vjp::Rule(BinaryRules {
            da: |_, b, _, dy| dy * b,
            db: |a, _, _, dy| dy * a,
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::broadcast_mul,
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Div,
        name: "div",
        eval: |a, b| a / b,
        comparison: false,
        cpu: BinaryCpuForm::Infix("/"),
        c: BinaryCForm::Infix("/"),
        costly: false,
        vjp: Vjp::Rule(BinaryRules {
            da: |_, b, _, dy| dy / b,
            db: |_, b, y, dy| -dy * (y / b),
        }),
        #[cfg(feature = "eager")]
        eager: Tensor::broadcast_div,
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Pow,
        name: "pow",
        eval: f64::powf,
        comparison: false,
        cpu: BinaryCpuForm::Method("powf"),
        c: BinaryCForm::Call("lg_pow"),
        costly: true,
        // PyTorch's `pow_backward_self` and `pow_backward_exponent`: `da` is 0 where `b == 0`
        // (at `a == 0` the closed form is `0 * inf`), and `db` where `a == 0` and `b >= 0`
        // (there `y ln a` is `0 * -inf`, or `1 * -inf` for `b == 0`).
        vjp: Vjp::Rule(BinaryRules {
            da: |a, b, _, dy| b.eq(0.0).select(0.0, dy * (b * a.pow(b - 1.0))),
            db: |a, b, y, dy| {
                let d = y * a.ln();
                dy * b.ge(0.0).select(a.eq(0.0).select(0.0, d), d)
            },
        }),
        // Candle's tensor `pow` is `exp(b ln a)`, NaN for every negative base.
        #[cfg(feature = "eager")]
        eager: candle::pow,
        // Candle's `powf` is C's `pow`.
        #[cfg(feature = "eager")]
        eager_scalar: Some(Tensor::powf),
    },
    BinaryInfo {
        op: BinaryOp::Maximum,
        name: "maximum",
        eval: math::maximum,
        comparison: false,
        cpu: BinaryCpuForm::Method("max"),
        c: BinaryCForm::Call("lg_maximum"),
        costly: false,
        // PyTorch's: to the larger side, split evenly on a tie; NaN on either side passes `dy` to
        // both.
        vjp: Vjp::Rule(BinaryRules {
            da: |a, b, _, dy| a.lt(b).select(0.0, a.eq(b).select(dy / 2.0, dy)),
            db: |a, b, _, dy| a.gt(b).select(0.0, a.eq(b).select(dy / 2.0, dy)),
        }),
        #[cfg(feature = "eager")]
        eager: |x, y| candle::nan_either(x, y, Tensor::broadcast_maximum),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Minimum,
        name: "minimum",
        eval: math::minimum,
        comparison: false,
        cpu: BinaryCpuForm::Method("min"),
        c: BinaryCForm::Call("lg_minimum"),
        costly: false,
        vjp: Vjp::Rule(BinaryRules {
            da: |a, b, _, dy| a.gt(b).select(0.0, a.eq(b).select(dy / 2.0, dy)),
            db: |a, b, _, dy| a.lt(b).select(0.0, a.eq(b).select(dy / 2.0, dy)),
        }),
        #[cfg(feature = "eager")]
        eager: |x, y| candle::nan_either(x, y, Tensor::broadcast_minimum),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Eq,
        name: "eq",
        eval: |a, b| flag(a == b),
        comparison: true,
        cpu: BinaryCpuForm::Compare("=="),
        c: BinaryCForm::Compare("=="),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_eq(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Ne,
        name: "ne",
        eval: |a, b| flag(a != b),
        comparison: true,
        cpu: BinaryCpuForm::Compare("!="),
        c: BinaryCForm::Compare("!="),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_ne(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Lt,
        name: "lt",
        eval: |a, b| flag(a < b),
        comparison: true,
        cpu: BinaryCpuForm::Compare("<"),
        c: BinaryCForm::Compare("<"),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_lt(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Le,
        name: "le",
        eval: |a, b| flag(a <= b),
        comparison: true,
        cpu: BinaryCpuForm::Compare("<="),
        c: BinaryCForm::Compare("<="),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_le(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Gt,
        name: "gt",
        eval: |a, b| flag(a > b),
        comparison: true,
        cpu: BinaryCpuForm::Compare(">"),
        c: BinaryCForm::Compare(">"),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_gt(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
    BinaryInfo {
        op: BinaryOp::Ge,
        name: "ge",
        eval: |a, b| flag(a >= b),
        comparison: true,
        cpu: BinaryCpuForm::Compare(">="),
        c: BinaryCForm::Compare(">="),
        costly: false,
        vjp: Vjp::NotDifferentiable,
        #[cfg(feature = "eager")]
        eager: |x, y| candle::flag(x.broadcast_ge(y)?, x),
        #[cfg(feature = "eager")]
        eager_scalar: None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_order() {
        for (i, op) in BinaryOp::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].op, op, "row {i}");
            assert_eq!(op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn names_are_distinct_identifiers() {
        for (i, a) in BinaryOp::ALL.into_iter().enumerate() {
            let name = a.name();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase()),
                "{name} is no lowercase identifier"
            );
            for b in &BinaryOp::ALL[i + 1..] {
                assert_ne!(name, b.name());
            }
        }
    }

    /// A comparison is one in every part of its row: both spellings compare, its f64 math
    /// yields only 1 and 0, and no gradient flows through it.
    #[test]
    fn comparisons_are_comparisons_everywhere() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        let values = [nan, -inf, -1.0, -0.0, 0.0, 0.5, 1.0, inf];
        for op in BinaryOp::ALL {
            let info = op.info();
            let cpu = matches!(info.cpu, BinaryCpuForm::Compare(_));
            let c = matches!(info.c, BinaryCForm::Compare(_));
            assert_eq!((cpu, c), (info.comparison, info.comparison), "{op:?}");
            let none = matches!(info.vjp, Vjp::NotDifferentiable);
            assert_eq!(none, info.comparison, "{op:?}'s derivative");
            if info.comparison {
                for a in values {
                    for b in values {
                        let r = op.eval(a, b);
                        assert!(r == 0.0 || r == 1.0, "{}({a}, {b}) = {r}", op.name());
                    }
                }
            }
        }
    }

    /// Infix operators and comparisons are C's and Rust's alike: both spellings name the same one.
    #[test]
    fn operators_agree() {
        for op in BinaryOp::ALL {
            let info = op.info();
            match (info.cpu, info.c) {
                (BinaryCpuForm::Infix(a), BinaryCForm::Infix(b))
                | (BinaryCpuForm::Compare(a), BinaryCForm::Compare(b)) => assert_eq!(a, b, "{op:?}"),
                (BinaryCpuForm::Method(_), BinaryCForm::Call(_)) => {}
                forms => panic!("{op:?} is spelled {forms:?}"),
            }
        }
    }
}
