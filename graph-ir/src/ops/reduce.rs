//! The reduction table: one row per reduction, holding everything the code knows about it.
//!
//! Every consumer reads its part of a row instead of matching on [`ReduceOp`] itself: the DSL's
//! name lookup (graph-macros `check/builtins.rs`), the tests' references ([`ReduceOp::eval`],
//! from the row's identity, combine and finish), the CPU row loops ([`ReduceInfo::cpu`]), the
//! CUDA and Metal row loops ([`ReduceInfo::c`]) and the eager executor ([`ReduceInfo::eager`],
//! Candle ops). A reduction runs along one axis and keeps it with size 1.
//!
//! A reduction starts from its identity, takes in each value with its combine (a binary op,
//! whose row spells it on every backend: partial results of lanes and threads combine with it
//! too), and finishes the total (a mean divides it by the count).
//!
//! The row holds the reduction's derivative too ([`ReduceInfo::vjp`]): a rule building `dx`
//! from `x`, the result `y` and its cotangent `dy`, written against [`super::vjp::Builder`] so
//! that the macro can build it as graph nodes for a backward kernel; `graph-ir/tests/vjp.rs`
//! holds each rule to central differences of [`ReduceOp::eval`].
//!
//! The rows are in [`ReduceOp::ALL`]'s order, so a variant without a row does not compile (the
//! table's length is the variant count) and a row out of place fails `rows_are_in_order`.

#[cfg(feature = "eager")]
use candle_core::{Result, Tensor};

#[cfg(feature = "eager")]
use super::candle;
use super::vjp::{ReduceRule, Vjp};
use super::BinaryOp;

/// Declares [`ReduceOp`] and [`ReduceOp::ALL`] from one list, so the two cannot disagree.
macro_rules! reduce_ops {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// Reductions over one axis; the axis is kept with size 1. What each computes, and how
        /// every backend spells it, is its row of the table: [`ReduceOp::info`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ReduceOp {
            $($(#[$doc])* $variant,)*
        }

        impl ReduceOp {
            /// Every reduction, in declaration (and table) order.
            pub const ALL: [ReduceOp; [$(ReduceOp::$variant),*].len()] = [$(ReduceOp::$variant),*];
        }
    };
}

reduce_ops! {
    /// The sum.
    Sum,
    /// The arithmetic mean.
    Mean,
    /// The largest value; NaN if any is (as `torch.amax`).
    Max,
    /// The smallest value; NaN if any is.
    Min,
}

/// What a reduction makes of the combination of its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceFinish {
    /// It is the result.
    Total,
    /// It is divided by the count of values: a mean (NaN for no values, as `torch.mean`).
    DivideByCount,
}

/// How a CPU kernel's accumulator lane takes in a value `v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceCpuStep {
    /// `acc = acc op v`, in the CPU spelling of the row's combine.
    Combine,
    /// `acc = if v op acc { v } else { acc }` with this comparison (`>` for a max): an order
    /// select, which compiles to one max/min instruction per lane, but skips a NaN. A NaN met
    /// is kept apart, in lanes of its own, and is the result at the end.
    Select(&'static str),
}

/// How a CPU kernel computes a reduction on its compute type `C: Float` ([`crate::cpu::Float`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceCpuForm {
    /// The `Float` constant the accumulators start from (`ZERO`): the row's identity.
    pub identity: &'static str,
    /// How a lane takes in a value; lanes combine by the row's combine.
    pub step: ReduceCpuStep,
}

/// How a CUDA or Metal kernel computes a reduction on its compute type `C`. Each thread takes in
/// its values by the C spelling of the row's combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceCForm {
    /// The accumulators' first value (`(C)0`): the row's identity.
    pub identity: &'static str,
    /// The prelude function combining the threads' accumulators across a row:
    /// `lg_reduce_{across}` (`sum`), in both preludes (`exec/cuda/prelude.cuh`,
    /// `exec/metal/prelude.metal`).
    pub across: &'static str,
}

/// Everything about one reduction: a row of the table.
#[derive(Clone, Copy, Debug)]
pub struct ReduceInfo {
    /// The reduction the row describes.
    pub op: ReduceOp,
    /// The DSL name: `sum(x, axis)`, `x.sum(axis)`.
    pub name: &'static str,
    /// The value the reduction starts from, which `combine` leaves any other value unchanged
    /// with.
    pub identity: f64,
    /// How the reduction takes in a value, and how partial results combine.
    pub combine: BinaryOp,
    /// What becomes of the combination.
    pub finish: ReduceFinish,
    /// The CPU kernels' spelling.
    pub cpu: ReduceCpuForm,
    /// The CUDA and Metal kernels' spelling.
    pub c: ReduceCForm,
    /// The derivative: a rule building `dx` from `x`, `y` and `dy` ([`super::vjp::reduce`]),
    /// with PyTorch's formula. `y` and `dy` keep the reduced axis with size 1, and so may the
    /// rule's result: it broadcasts against `x`.
    pub vjp: Vjp<ReduceRule>,
    /// The eager executor's Candle ops: the reduction of a tensor in the compute dtype along an
    /// axis, kept. The executor handles what no Candle op should see (axes of one element,
    /// tensors without elements, more dims than Candle walks).
    #[cfg(feature = "eager")]
    pub eager: fn(&Tensor, usize) -> Result<Tensor>,
}

impl ReduceOp {
    /// The reduction's row of the table.
    pub fn info(self) -> &'static ReduceInfo {
        &TABLE[self as usize]
    }

    /// The DSL name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The reference semantics, in f64: the reduction of `values` (of none: the identity,
    /// finished).
    pub fn eval(self, values: &[f64]) -> f64 {
        let info = self.info();
        let total = values
            .iter()
            .fold(info.identity, |acc, &v| info.combine.eval(acc, v));
        match info.finish {
            ReduceFinish::Total => total,
            ReduceFinish::DivideByCount => total / values.len() as f64,
        }
    }
}

static TABLE: [ReduceInfo; ReduceOp::ALL.len()] = [
    ReduceInfo {
        op: ReduceOp::Sum,
        name: "sum",
        identity: 0.0,
        combine: BinaryOp::Add,
        finish: ReduceFinish::Total,
        cpu: ReduceCpuForm {
            identity: "ZERO",
            step: ReduceCpuStep::Combine,
        },
        c: ReduceCForm {
            identity: "(C)0",
            across: "sum",
        },
        vjp: Vjp::Rule(|_, _, dy| dy),
        #[cfg(feature = "eager")]
        eager: |x, axis| x.sum_keepdim(axis),
    },
    ReduceInfo {
        op: ReduceOp::Mean,
        name: "mean",
        identity: 0.0,
        combine: BinaryOp::Add,
        finish: ReduceFinish::DivideByCount,
        cpu: ReduceCpuForm {
            identity: "ZERO",
            step: ReduceCpuStep::Combine,
        },
        c: ReduceCForm {
            identity: "(C)0",
            across: "sum",
        },
        vjp: Vjp::Rule(|x, _, dy| dy / x.count()),
        #[cfg(feature = "eager")]
        eager: |x, axis| x.mean_keepdim(axis),
    },
    ReduceInfo {
        op: ReduceOp::Max,
        name: "max",
        identity: f64::NEG_INFINITY,
        combine: BinaryOp::Maximum,
        finish: ReduceFinish::Total,
        cpu: ReduceCpuForm {
            identity: "NEG_INFINITY",
            step: ReduceCpuStep::Select(">"),
        },
        c: ReduceCForm {
            identity: "(C)(-LG_INF)",
            across: "max",
        },
        // PyTorch's `amax`: `dy` split evenly among the values equal to the result.
        vjp: Vjp::Rule(|x, y, dy| {
            let at = x.eq(y);
            dy / at.sum() * at
        }),
        #[cfg(feature = "eager")]
        eager: candle::max_keepdim,
    },
    ReduceInfo {
        op: ReduceOp::Min,
        name: "min",
        identity: f64::INFINITY,
        combine: BinaryOp::Minimum,
        finish: ReduceFinish::Total,
        cpu: ReduceCpuForm {
            identity: "INFINITY",
            step: ReduceCpuStep::Select("<"),
        },
        c: ReduceCForm {
            identity: "(C)LG_INF",
            across: "min",
        },
        vjp: Vjp::Rule(|x, y, dy| {
            let at = x.eq(y);
            dy / at.sum() * at
        }),
        #[cfg(feature = "eager")]
        eager: candle::min_keepdim,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;

    #[test]
    fn rows_are_in_order() {
        for (i, op) in ReduceOp::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].op, op, "row {i}");
            assert_eq!(op as usize, i, "{op:?}");
        }
    }

    #[test]
    fn names_are_distinct_and_not_binary_ops() {
        for (i, a) in ReduceOp::ALL.into_iter().enumerate() {
            for b in &ReduceOp::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
            assert!(BinaryOp::ALL.iter().all(|b| b.name() != a.name()), "{a:?}");
        }
    }

    /// The identity is one for the combine, and each spelling of it is that value.
    #[test]
    fn identities_are_identities_everywhere() {
        for op in ReduceOp::ALL {
            let info = op.info();
            for v in [-INF, -1.0, 0.5, 2.0, INF] {
                assert_eq!(info.combine.eval(info.identity, v), v, "{op:?} at {v}");
            }
            let cpu = match info.cpu.identity {
                "ZERO" => 0.0,
                "NEG_INFINITY" => -INF,
                "INFINITY" => INF,
                other => panic!("{op:?} starts from {other}, no Float constant this test knows"),
            };
            let c = match info.c.identity {
                "(C)0" => 0.0,
                "(C)(-LG_INF)" => -INF,
                "(C)LG_INF" => INF,
                other => panic!("{op:?} starts from {other}, no C value this test knows"),
            };
            assert_eq!((cpu, c), (info.identity, info.identity), "{op:?}");
        }
    }

    /// Selecting by the CPU step's comparison is the combine, where no NaN is involved.
    #[test]
    fn selects_are_their_combine() {
        for op in ReduceOp::ALL {
            let info = op.info();
            let ReduceCpuStep::Select(cmp) = info.cpu.step else {
                continue;
            };
            let holds = |v: f64, acc: f64| match cmp {
                ">" => v > acc,
                "<" => v < acc,
                other => panic!("{op:?} selects by {other}, no comparison this test knows"),
            };
            for v in [-INF, -1.0, 0.5, 2.0, INF] {
                for acc in [-INF, 0.0, 1.0, INF] {
                    let selected = if holds(v, acc) { v } else { acc };
                    assert_eq!(selected, info.combine.eval(acc, v), "{op:?}({acc}, {v})");
                }
            }
        }
    }

    #[test]
    fn eval_follows_pytorch() {
        let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
        let cases = [
            (ReduceOp::Sum, &[1.0, 2.0, 3.5][..], 6.5),
            (ReduceOp::Mean, &[1.0, 2.0, 3.0], 2.0),
            (ReduceOp::Max, &[1.0, 3.0, 2.0], 3.0),
            (ReduceOp::Min, &[1.0, 3.0, -2.0], -2.0),
            // A NaN anywhere is the result; so is inf - inf.
            (ReduceOp::Max, &[NAN, 1.0], NAN),
            (ReduceOp::Max, &[1.0, NAN], NAN),
            (ReduceOp::Min, &[1.0, NAN, -INF], NAN),
            (ReduceOp::Sum, &[INF, -INF], NAN),
            // Nothing: the identity, and for a mean 0 / 0.
            (ReduceOp::Sum, &[], 0.0),
            (ReduceOp::Max, &[], -INF),
            (ReduceOp::Min, &[], INF),
            (ReduceOp::Mean, &[], NAN),
        ];
        for (op, values, want) in cases {
            let got = op.eval(values);
            assert!(same(got, want), "{}({values:?}) = {got}, want {want}", op.name());
        }
    }
}
