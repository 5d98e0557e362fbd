//! Vector-Jacobian products: the rules the op tables hold, and what the rules build with.
//!
//! Reverse mode runs a graph backwards: each node's cotangent `dy` (the gradient of the loss
//! with respect to the node) becomes a cotangent for each argument. An op's row says how, as
//! PyTorch's `derivatives.yaml` and JAX's per-primitive rules do: [`UnaryInfo::vjp`] builds
//! `dx` from `x`, `y = f(x)` and `dy`; [`BinaryInfo::vjp`] builds `da` and `db` from `a`, `b`,
//! `y` and `dy`; [`ReduceInfo::vjp`] builds `dx` from `x`, `y` and `dy`. Where an op has no
//! rule, the row says why ([`Vjp`]).
//!
//! # One rule, any builder
//!
//! A rule is written once, with operators and methods on [`Expr`] (`|_, y, dy| dy * (1.0 - y *
//! y)`, tanh's), and built by any [`Builder`]: the macro's will add graph nodes, the tests' compute
//! f64 numbers. A rule generic over its builder could not sit in a static table (a generic
//! function has no single pointer), and one taking `&mut dyn Builder` could not name the
//! builder's own value type. So a rule records what it computes on a small tape that lives for
//! one call (the lifetime of [`Expr`] keeps its values there), and [`unary`], [`binary`] and
//! [`reduce`] replay the tape into the builder, handing it its own values. The rules stay plain
//! data (`fn` pointers in the rows); the builders stay free to be anything.
//!
//! # Shapes
//!
//! Pointwise rules compute on values that broadcast, and their result has the op's result
//! shape: a binary op's argument that was broadcast gets back more than its shape, which the
//! caller sums over the broadcast dims ("unbroadcast", as JAX does). A reduction's `y` and `dy`
//! keep the reduced axis with size 1; [`Expr::sum`] sums over that axis (keeping it) and
//! [`Expr::count`] is its length; the rule's result broadcasts against `x`, and the caller
//! broadcasts it where it does not already have `x`'s shape (a sum's `dx` is its `dy`).
//!
//! # Special values
//!
//! Rules follow PyTorch's formulas, masking included: `relu`'s passes `dy` through a select
//! rather than multiplying it by a mask, so an infinite `dy` gives exact zeros where the
//! mask is 0, and `pow`'s masks the points where its closed form is `0 * inf` (see the row).
//!
//! [`UnaryInfo::vjp`]: super::UnaryInfo::vjp
//! [`BinaryInfo::vjp`]: super::BinaryInfo::vjp
//! [`ReduceInfo::vjp`]: super::ReduceInfo::vjp

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};

use super::{BinaryOp, UnaryOp};

/// What rules build with: graph nodes in the macro, numbers in tests.
///
/// Values broadcast as the graph's pointwise ops do. A reduction's rule is built in the
/// context of its axis, which the builder knows: [`Builder::sum`] and [`Builder::count`] are
/// along it.
pub trait Builder {
    /// The builder's handle for a value: a node id, a number.
    type V: Copy;
    /// The literal `v`, a scalar.
    fn constant(&mut self, v: f64) -> Self::V;
    /// A unary op of the table.
    fn unary(&mut self, op: UnaryOp, x: Self::V) -> Self::V;
    /// A binary op of the table; the arguments broadcast.
    fn binary(&mut self, op: BinaryOp, a: Self::V, b: Self::V) -> Self::V;
    /// `where_(cond, a, b)`: `a` where `cond != 0`, else `b`; the three broadcast.
    fn select(&mut self, cond: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// The sum of `x` over the reduced axis, which is kept with size 1.
    fn sum(&mut self, x: Self::V) -> Self::V;
    /// The length of `x`'s reduced axis (which `x` has in full), as a scalar.
    fn count(&mut self, x: Self::V) -> Self::V;
}

/// An op's derivative, as its row holds it.
///
/// [`Vjp::Zero`] and [`Vjp::NotDifferentiable`] both send nothing to the arguments; they differ
/// for the op's result: a zero-gradient op (`floor`) takes a cotangent and passes on zeros
/// (PyTorch's `zeros_like(grad)`), a non-differentiable one (`lt`) has a result no gradient can
/// be asked of (PyTorch's comparisons give tensors that do not require grad).
#[derive(Clone, Copy, Debug)]
pub enum Vjp<R> {
    /// The rule building the arguments' cotangents.
    Rule(R),
    /// The derivative is zero wherever it exists (a step function): the arguments' cotangents
    /// are exact zeros, without computing `0 * dy` (NaN for an infinite `dy`).
    Zero,
    /// No gradient flows through the op.
    NotDifferentiable,
}

impl<R> Vjp<R> {
    /// The rule, if the op has one.
    pub fn rule(self) -> Option<R> {
        match self {
            Vjp::Rule(rule) => Some(rule),
            Vjp::Zero | Vjp::NotDifferentiable => None,
        }
    }
}

/// A unary op's rule: `dx` from `x`, its result `y = f(x)` and `y`'s cotangent `dy`.
pub type UnaryRule = for<'t> fn(x: Expr<'t>, y: Expr<'t>, dy: Expr<'t>) -> Expr<'t>;

/// One side of a binary op's rule: that argument's cotangent from `a`, `b`, the result `y` and
/// its cotangent `dy`, in `y`'s shape.
pub type BinaryRule = for<'t> fn(a: Expr<'t>, b: Expr<'t>, y: Expr<'t>, dy: Expr<'t>) -> Expr<'t>;

/// A binary op's rule: one for each argument.
#[derive(Clone, Copy, Debug)]
pub struct BinaryRules {
    /// The cotangent of the left argument.
    pub da: BinaryRule,
    /// The cotangent of the right argument.
    pub db: BinaryRule,
}

/// A reduction's rule: `dx` from `x`, the result `y` and its cotangent `dy` (both with the
/// reduced axis of size 1), broadcasting against `x`.
pub type ReduceRule = for<'t> fn(x: Expr<'t>, y: Expr<'t>, dy: Expr<'t>) -> Expr<'t>;

/// Builds a unary op's rule with `b`: `dx`.
pub fn unary<B: Builder>(rule: UnaryRule, b: &mut B, x: B::V, y: B::V, dy: B::V) -> B::V {
    record(b, &[x, y, dy], |v| rule(v[0], v[1], v[2]))
}

/// Builds one side of a binary op's rule with `b`: `da` or `db`, in `y`'s shape.
pub fn binary<B: Builder>(rule: BinaryRule, b: &mut B, lhs: B::V, rhs: B::V, y: B::V, dy: B::V) -> B::V {
    record(b, &[lhs, rhs, y, dy], |v| rule(v[0], v[1], v[2], v[3]))
}

/// Builds a reduction's rule with `b`, in the context of the reduced axis: `dx`, broadcasting
/// against `x`.
pub fn reduce<B: Builder>(rule: ReduceRule, b: &mut B, x: B::V, y: B::V, dy: B::V) -> B::V {
    record(b, &[x, y, dy], |v| rule(v[0], v[1], v[2]))
}

/// Runs `rule` on `args.len()` arguments, recording its steps, then builds them with `b`.
fn record<B: Builder>(b: &mut B, args: &[B::V], rule: impl for<'t> FnOnce(&[Expr<'t>]) -> Expr<'t>) -> B::V {
    let tape = Tape::default();
    let inputs: Vec<Expr<'_>> = (0..args.len()).map(|i| tape.push(Step::Arg(i))).collect();
    let result = rule(&inputs).id;
    let steps = tape.steps.into_inner();
    let mut built: Vec<B::V> = Vec::with_capacity(steps.len());
    for step in steps {
        let v = match step {
            Step::Arg(i) => args[i],
            Step::Const(v) => b.constant(v),
            Step::Unary(op, x) => b.unary(op, built[x]),
            Step::Binary(op, x, y) => b.binary(op, built[x], built[y]),
            Step::Select(c, x, y) => b.select(built[c], built[x], built[y]),
            Step::Sum(x) => b.sum(built[x]),
            Step::Count(x) => b.count(built[x]),
        };
        built.push(v);
    }
    built[result]
}

/// What a rule computed, in order; arguments are indices of earlier steps.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The rule's argument with this index.
    Arg(usize),
    Const(f64),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    Select(usize, usize, usize),
    Sum(usize),
    Count(usize),
}

/// The steps of one rule's call.
#[derive(Debug, Default)]
struct Tape {
    steps: RefCell<Vec<Step>>,
}

impl Tape {
    fn push(&self, step: Step) -> Expr<'_> {
        let mut steps = self.steps.borrow_mut();
        steps.push(step);
        Expr {
            tape: self,
            id: steps.len() - 1,
        }
    }
}

/// A value in a rule: one of its arguments, or what it computed from them. Arithmetic works
/// with other values and with `f64` literals on either side (`1.0 - y * y`).
#[derive(Clone, Copy)]
pub struct Expr<'t> {
    tape: &'t Tape,
    id: usize,
}

impl std::fmt::Debug for Expr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "%{} = {:?}", self.id, self.tape.steps.borrow()[self.id])
    }
}

/// The right side of an op in a rule: a value, or an `f64` literal.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'t> {
    /// A value of the rule.
    Expr(Expr<'t>),
    /// A literal.
    Const(f64),
}

impl<'t> From<Expr<'t>> for Operand<'t> {
    fn from(e: Expr<'t>) -> Self {
        Operand::Expr(e)
    }
}

impl From<f64> for Operand<'_> {
    fn from(v: f64) -> Self {
        Operand::Const(v)
    }
}

impl<'t> Expr<'t> {
    fn operand(self, o: impl Into<Operand<'t>>) -> usize {
        match o.into() {
            Operand::Expr(e) => e.id,
            Operand::Const(v) => self.tape.push(Step::Const(v)).id,
        }
    }

    /// The unary op `op` of the value.
    pub fn unary(self, op: UnaryOp) -> Expr<'t> {
        self.tape.push(Step::Unary(op, self.id))
    }

    /// The binary op `op` of the value and `rhs`.
    pub fn binary(self, op: BinaryOp, rhs: impl Into<Operand<'t>>) -> Expr<'t> {
        let rhs = self.operand(rhs);
        self.tape.push(Step::Binary(op, self.id, rhs))
    }

    /// `where_(self, a, b)`: `a` where the value is not 0, else `b`.
    pub fn select(self, a: impl Into<Operand<'t>>, b: impl Into<Operand<'t>>) -> Expr<'t> {
        let (a, b) = (self.operand(a), self.operand(b));
        self.tape.push(Step::Select(self.id, a, b))
    }

    /// The sum over a reduction's axis, kept with size 1.
    pub fn sum(self) -> Expr<'t> {
        self.tape.push(Step::Sum(self.id))
    }

    /// The length of a reduction's axis, as a scalar.
    pub fn count(self) -> Expr<'t> {
        self.tape.push(Step::Count(self.id))
    }
}

/// The named forms of the ops the rules use: `x.exp()` is `x.unary(UnaryOp::Exp)`.
macro_rules! named {
    ($($name:ident: $kind:ident($op:ident),)*) => {
        impl<'t> Expr<'t> {
            $(named!(@one $name $kind $op);)*
        }
    };
    (@one $name:ident unary $op:ident) => {
        #[doc = concat!("The value's `", stringify!($name), "`.")]
        pub fn $name(self) -> Expr<'t> {
            self.unary(UnaryOp::$op)
        }
    };
    (@one $name:ident binary $op:ident) => {
        #[doc = concat!("`", stringify!($name), "(self, rhs)`.")]
        pub fn $name(self, rhs: impl Into<Operand<'t>>) -> Expr<'t> {
            self.binary(BinaryOp::$op, rhs)
        }
    };
}

named! {
    exp: unary(Exp),
    ln: unary(Log),
    sin: unary(Sin),
    cos: unary(Cos),
    tanh: unary(Tanh),
    erf: unary(Erf),
    sigmoid: unary(Sigmoid),
    sign: unary(Sign),
    pow: binary(Pow),
    eq: binary(Eq),
    lt: binary(Lt),
    le: binary(Le),
    gt: binary(Gt),
    ge: binary(Ge),
}

/// The arithmetic operators, with a value or a literal on either side.
macro_rules! arithmetic {
    ($($trait:ident $method:ident $op:ident,)*) => {$(
        impl<'t, R: Into<Operand<'t>>> $trait<R> for Expr<'t> {
            type Output = Expr<'t>;
            fn $method(self, rhs: R) -> Expr<'t> {
                self.binary(BinaryOp::$op, rhs)
            }
        }

        impl<'t> $trait<Expr<'t>> for f64 {
            type Output = Expr<'t>;
            fn $method(self, rhs: Expr<'t>) -> Expr<'t> {
                let lhs = rhs.tape.push(Step::Const(self));
                lhs.binary(BinaryOp::$op, rhs)
            }
        }
    )*};
}

arithmetic! {
    Add add Add,
    Sub sub Sub,
    Mul mul Mul,
    Div div Div,
}

impl<'t> Neg for Expr<'t> {
    type Output = Expr<'t>;
    fn neg(self) -> Expr<'t> {
        self.unary(UnaryOp::Neg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes what it builds as text, one step a line.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Builder for Log {
        type V = usize;
        fn constant(&mut self, v: f64) -> usize {
            self.line(format!("{v:?}"))
        }
        fn unary(&mut self, op: UnaryOp, x: usize) -> usize {
            self.line(format!("{}(%{x})", op.name()))
        }
        fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> usize {
            self.line(format!("{}(%{a}, %{b})", op.name()))
        }
        fn select(&mut self, c: usize, a: usize, b: usize) -> usize {
            self.line(format!("where(%{c}, %{a}, %{b})"))
        }
        fn sum(&mut self, x: usize) -> usize {
            self.line(format!("sum(%{x})"))
        }
        fn count(&mut self, x: usize) -> usize {
            self.line(format!("count(%{x})"))
        }
    }

    impl Log {
        fn line(&mut self, s: String) -> usize {
            self.0.push(s);
            100 + self.0.len() - 1
        }
    }

    /// The builder sees the rule's steps in order, with its own handles for the arguments (which
    /// cost it nothing to build).
    #[test]
    fn a_rule_is_built_in_order_with_the_builders_values() {
        let mut log = Log::default();
        let rule: UnaryRule = |_, y, dy| dy * (1.0 - y * y);
        let dx = unary(rule, &mut log, 7, 8, 9);
        assert_eq!(dx, 103);
        assert_eq!(log.0, ["mul(%8, %8)", "1.0", "sub(%101, %100)", "mul(%9, %102)"]);
        let mut log = Log::default();
        let dx = reduce(|x, y, dy| dy / x.eq(y).sum().select(y, -x), &mut log, 1, 2, 3);
        assert_eq!(dx, 104);
        assert_eq!(
            log.0,
            [
                "eq(%1, %2)",
                "sum(%100)",
                "neg(%1)",
                "where(%101, %2, %102)",
                "div(%3, %103)"
            ]
        );
    }
}
