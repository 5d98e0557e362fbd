//! Every derivative in the op tables, against central differences of the op's own f64 math.
//!
//! A rule is built with [`Eval`], a builder whose values are rows of f64: one element for a
//! pointwise op, a reduction's row for a reduction (its one-element values broadcast against
//! the row). At random points drawn away from each op's kinks, jumps and poles, the rule's
//! cotangent must match `dy * (f(x + h) - f(x - h)) / 2h` to [`TOL`]. An op whose row says its
//! derivative is zero, or that no gradient flows through it, must be flat there instead. At the
//! points where central differences say nothing (a kink, a tie, a zero base), the values are
//! PyTorch's, written out.
//!
//! A row cannot leave its derivative out: the field is required, so a new op does not compile
//! until its row says `Vjp::Rule`, `Vjp::Zero` or `Vjp::NotDifferentiable`; and the domains below
//! are exhaustive matches, so its test does not compile until it says where to draw points.

use graph_ir::ops::vjp::{self, BinaryRules, Builder, Vjp};
use graph_ir::{BinaryCpuForm, BinaryOp, ReduceOp, UnaryOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The error allowed, relative to the larger of the derivative's size and 1. Central
/// differences err by about `h^2 |f'''| / 6` (under 1e-8 relative on these domains) plus the
/// rounding of `f`, `2^-52 |f| / h` (under 1e-9): a wrong rule is off by far more.
const TOL: f64 = 1e-6;
/// The step of the central differences, relative to the larger of `|x|` and 1.
const H: f64 = 1e-6;
/// How far drawn points stay from the nearest point an op is not smooth at.
const MARGIN: f64 = 1e-3;
/// Points per op.
const POINTS: usize = 400;

/// A builder computing in f64, on rows that broadcast as the graph's values do: a row of one
/// element against a row of any length.
#[derive(Debug, Default)]
struct Eval {
    rows: Vec<Vec<f64>>,
}

impl Eval {
    fn row(&mut self, row: Vec<f64>) -> usize {
        self.rows.push(row);
        self.rows.len() - 1
    }

    /// `f` of the arguments, element by element, broadcast.
    fn map(&mut self, args: &[usize], f: impl Fn(&[f64]) -> f64) -> usize {
        let len = args
            .iter()
            .map(|&a| self.rows[a].len())
            .max()
            .expect("an argument");
        let row = (0..len)
            .map(|i| {
                let at: Vec<f64> = args.iter().map(|&a| broadcast(&self.rows[a], len)[i]).collect();
                f(&at)
            })
            .collect();
        self.row(row)
    }
}

/// `row` as `len` elements: itself, or its one element repeated.
fn broadcast(row: &[f64], len: usize) -> Vec<f64> {
    match row.len() {
        n if n == len => row.to_vec(),
        1 => vec![row[0]; len],
        n => panic!("a row of {n} does not broadcast to {len}"),
    }
}

impl Builder for Eval {
    type V = usize;
    fn constant(&mut self, v: f64) -> usize {
        self.row(vec![v])
    }
    fn unary(&mut self, op: UnaryOp, x: usize) -> usize {
        self.map(&[x], |v| op.eval(v[0]))
    }
    fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> usize {
        self.map(&[a, b], |v| op.eval(v[0], v[1]))
    }
    fn select(&mut self, cond: usize, a: usize, b: usize) -> usize {
        self.map(&[cond, a, b], |v| if v[0] != 0.0 { v[1] } else { v[2] })
    }
    fn sum(&mut self, x: usize) -> usize {
        let total = self.rows[x].iter().sum();
        self.row(vec![total])
    }
    fn count(&mut self, x: usize) -> usize {
        let n = self.rows[x].len() as f64;
        self.row(vec![n])
    }
}

/// A unary op's rule at `x`, for the cotangent `dy`.
fn unary_vjp(op: UnaryOp, rule: vjp::UnaryRule, x: f64, dy: f64) -> f64 {
    let mut e = Eval::default();
    let args = [x, op.eval(x), dy].map(|v| e.row(vec![v]));
    let dx = vjp::unary(rule, &mut e, args[0], args[1], args[2]);
    scalar(&e.rows[dx])
}

/// A binary op's rules at `(a, b)`, for the cotangent `dy`: `(da, db)`.
fn binary_vjp(op: BinaryOp, rules: BinaryRules, a: f64, b: f64, dy: f64) -> (f64, f64) {
    let mut e = Eval::default();
    let args = [a, b, op.eval(a, b), dy].map(|v| e.row(vec![v]));
    let [a, b, y, dy] = args;
    let da = vjp::binary(rules.da, &mut e, a, b, y, dy);
    let db = vjp::binary(rules.db, &mut e, a, b, y, dy);
    (scalar(&e.rows[da]), scalar(&e.rows[db]))
}

/// A reduction's rule on the row `x`, for the cotangent `dy`: `dx`, broadcast to `x`'s length.
fn reduce_vjp(op: ReduceOp, rule: vjp::ReduceRule, x: &[f64], dy: f64) -> Vec<f64> {
    let mut e = Eval::default();
    let (xv, y, dyv) = (e.row(x.to_vec()), e.row(vec![op.eval(x)]), e.row(vec![dy]));
    let dx = vjp::reduce(rule, &mut e, xv, y, dyv);
    broadcast(&e.rows[dx], x.len())
}

fn scalar(row: &[f64]) -> f64 {
    assert_eq!(row.len(), 1, "a pointwise rule on scalars gives a scalar");
    row[0]
}

/// `f'(x)` by central differences.
fn central(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = H * x.abs().max(1.0);
    let (lo, hi) = (x - h, x + h);
    (f(hi) - f(lo)) / (hi - lo)
}

/// Whether `f` takes the same value on both sides of `x`: no gradient to speak of.
fn flat(f: impl Fn(f64) -> f64, x: f64) -> bool {
    let h = H * x.abs().max(1.0);
    f(x - h) == f(x + h)
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= TOL * want.abs().max(1.0)
}

/// A point of `lo..hi` that `keep` accepts.
fn draw(rng: &mut StdRng, (lo, hi): (f64, f64), keep: impl Fn(f64) -> bool) -> f64 {
    loop {
        let x = rng.gen_range(lo..hi);
        if keep(x) {
            return x;
        }
    }
}

/// Where a unary op's points are drawn, and their distance to the nearest point the op is not
/// smooth at (which must exceed [`MARGIN`]).
fn unary_domain(op: UnaryOp) -> ((f64, f64), fn(f64) -> f64) {
    use UnaryOp::*;
    let smooth: fn(f64) -> f64 = |_| f64::INFINITY;
    match op {
        Neg | Exp | Sqr | Sin | Cos | Sigmoid | Silu | Expm1 => ((-10.0, 10.0), smooth),
        Tanh | Erf | Gelu | GeluErf => ((-6.0, 6.0), smooth),
        // Poles at 0, and the domain's edge.
        Log | Sqrt | Rsqrt => ((0.05, 10.0), smooth),
        Recip => ((-10.0, 10.0), |x| x.abs() - 0.05),
        Log1p => ((-0.95, 10.0), smooth),
        // A kink or a jump at 0.
        Abs | Relu | Sign => ((-10.0, 10.0), f64::abs),
        // Jumps at the integers, or halfway between them.
        Floor | Ceil => ((-10.0, 10.0), |x| (x - x.round()).abs()),
        Round => ((-10.0, 10.0), |x| (x - x.floor() - 0.5).abs()),
    }
}

/// Where a binary op's points are drawn, and whether a pair keeps [`MARGIN`] from where the op
/// is not smooth.
#[allow(clippy::type_complexity)]
fn binary_domain(op: BinaryOp) -> ((f64, f64), (f64, f64), fn(f64, f64) -> bool) {
    use BinaryOp::*;
    let wide = (-10.0, 10.0);
    match op {
        Add | Sub | Mul => (wide, wide, |_, _| true),
        Div => (wide, wide, |_, b| b.abs() > 0.05),
        // `ln a` needs a positive base; the zero base is a special point below.
        Pow => ((0.05, 5.0), (-3.0, 3.0), |_, _| true),
        // Ties are special points.
        Maximum | Minimum | Eq | Ne | Lt | Le | Gt | Ge => (wide, wide, |a, b| (a - b).abs() > MARGIN),
    }
}

/// Whether a reduction's row keeps [`MARGIN`] from where it is not smooth.
fn reduce_smooth(op: ReduceOp, x: &[f64]) -> bool {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => true,
        // Ties are special points.
        ReduceOp::Max | ReduceOp::Min => x
            .iter()
            .enumerate()
            .all(|(i, a)| x[i + 1..].iter().all(|b| (a - b).abs() > MARGIN)),
    }
}

#[test]
fn unary_rules_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    for op in UnaryOp::ALL {
        let (interval, edge) = unary_domain(op);
        let f = |x| op.eval(x);
        for _ in 0..POINTS {
            let x = draw(&mut rng, interval, |x| edge(x) > MARGIN);
            match op.info().vjp {
                Vjp::Rule(rule) => {
                    let dy = rng.gen_range(-3.0..3.0);
                    let (got, want) = (unary_vjp(op, rule, x, dy), dy * central(f, x));
                    assert!(
                        close(got, want),
                        "{}'s rule at x = {x}, dy = {dy}: {got}; central differences: {want}",
                        op.name()
                    );
                }
                Vjp::Zero => assert!(
                    flat(f, x),
                    "{} has a zero derivative, but moves at {x}",
                    op.name()
                ),
                Vjp::NotDifferentiable => panic!("{} has no derivative: a unary op needs one", op.name()),
            }
        }
    }
}

#[test]
fn binary_rules_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    for op in BinaryOp::ALL {
        let (ia, ib, keep) = binary_domain(op);
        for _ in 0..POINTS {
            let (a, b) = loop {
                let (a, b) = (rng.gen_range(ia.0..ia.1), rng.gen_range(ib.0..ib.1));
                if keep(a, b) {
                    break (a, b);
                }
            };
            let (fa, fb) = (|v| op.eval(v, b), |v| op.eval(a, v));
            match op.info().vjp {
                Vjp::Rule(rules) => {
                    let dy = rng.gen_range(-3.0..3.0);
                    let (da, db) = binary_vjp(op, rules, a, b, dy);
                    for (side, got, want) in [("a", da, dy * central(fa, a)), ("b", db, dy * central(fb, b))]
                    {
                        assert!(
                            close(got, want),
                            "{}'s rule for {side} at ({a}, {b}), dy = {dy}: {got}; central differences: {want}",
                            op.name()
                        );
                    }
                }
                Vjp::Zero | Vjp::NotDifferentiable => {
                    assert!(flat(fa, a) && flat(fb, b), "{} moves at ({a}, {b})", op.name());
                }
            }
        }
    }
}

#[test]
fn reduction_rules_match_central_differences() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    for op in ReduceOp::ALL {
        let Vjp::Rule(rule) = op.info().vjp else {
            panic!("{} has no rule: every reduction has one", op.name());
        };
        for _ in 0..POINTS / 4 {
            let n = rng.gen_range(1..=8);
            let x = loop {
                let x: Vec<f64> = (0..n).map(|_| rng.gen_range(-10.0..10.0)).collect();
                if reduce_smooth(op, &x) {
                    break x;
                }
            };
            let dy = rng.gen_range(-3.0..3.0);
            let dx = reduce_vjp(op, rule, &x, dy);
            for i in 0..n {
                let f = |v| {
                    let mut x = x.clone();
                    x[i] = v;
                    op.eval(&x)
                };
                let want = dy * central(f, x[i]);
                assert!(
                    close(dx[i], want),
                    "{}'s rule at {x:?}, dy = {dy}, element {i}: {}; central differences: {want}",
                    op.name(),
                    dx[i]
                );
            }
        }
    }
}

/// Bits alike, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Where central differences say nothing, the rules give PyTorch's values.
#[test]
fn special_points_follow_pytorch() {
    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;
    // (op, x, dy, dx)
    let unary = [
        // `threshold_backward`: 0 at the kink, and exact zeros below it even for an infinite dy.
        (UnaryOp::Relu, 0.0, 1.0, 0.0),
        (UnaryOp::Relu, -1.0, INF, 0.0),
        (UnaryOp::Relu, 2.0, INF, INF),
        // `sgn(0) = 0`.
        (UnaryOp::Abs, 0.0, 1.0, 0.0),
        (UnaryOp::Abs, -0.0, 1.0, 0.0),
        (UnaryOp::Sqrt, 0.0, 1.0, INF),
        (UnaryOp::Log, 0.0, 1.0, INF),
        (UnaryOp::Recip, 0.0, 1.0, -INF),
    ];
    for (op, x, dy, want) in unary {
        let got = unary_vjp(op, op.info().vjp.rule().expect("a rule"), x, dy);
        assert!(
            same(got, want),
            "{}'s rule at x = {x}, dy = {dy}: {got}, want {want}",
            op.name()
        );
    }
    // (op, a, b, dy, da, db)
    let binary = [
        // A tie splits dy evenly; a NaN passes it to both sides.
        (BinaryOp::Maximum, 1.0, 1.0, 1.0, 0.5, 0.5),
        (BinaryOp::Minimum, -2.0, -2.0, 3.0, 1.5, 1.5),
        (BinaryOp::Maximum, NAN, 1.0, 1.0, 1.0, 1.0),
        (BinaryOp::Minimum, 1.0, NAN, 1.0, 1.0, 1.0),
        // A zero base with a non-negative exponent: `db` is 0, not `0 * ln 0`; a zero exponent:
        // `da` is 0, not `0 * 0^-1`.
        (BinaryOp::Pow, 0.0, 2.0, 1.0, 0.0, 0.0),
        (BinaryOp::Pow, 0.0, 0.5, 1.0, INF, 0.0),
        (BinaryOp::Pow, 0.0, 0.0, 1.0, 0.0, 0.0),
        (BinaryOp::Pow, 2.0, 0.0, 1.0, 0.0, std::f64::consts::LN_2),
        (BinaryOp::Pow, 0.0, -1.0, 1.0, -INF, -INF),
        // A negative base: `da` where C's pow is defined, `ln a` is NaN.
        (BinaryOp::Pow, -2.0, 3.0, 1.0, 12.0, NAN),
    ];
    for (op, a, b, dy, want_a, want_b) in binary {
        let (da, db) = binary_vjp(op, op.info().vjp.rule().expect("a rule"), a, b, dy);
        assert!(
            same(da, want_a) && same(db, want_b),
            "{}'s rules at ({a}, {b}), dy = {dy}: ({da}, {db}), want ({want_a}, {want_b})",
            op.name()
        );
    }
    // (op, x, dy, dx): ties share dy evenly.
    let reductions: [(ReduceOp, &[f64], f64, &[f64]); 5] = [
        (ReduceOp::Max, &[1.0, 3.0, 3.0], 1.0, &[0.0, 0.5, 0.5]),
        (ReduceOp::Min, &[2.0, 2.0, 2.0, 2.0], 2.0, &[0.5; 4]),
        (ReduceOp::Max, &[-INF, 0.0], 1.0, &[0.0, 1.0]),
        (ReduceOp::Mean, &[1.0, 2.0, 3.0, 4.0], 2.0, &[0.5; 4]),
        (ReduceOp::Sum, &[1.0, -1.0, INF], 2.0, &[2.0; 3]),
    ];
    for (op, x, dy, want) in reductions {
        let got = reduce_vjp(op, op.info().vjp.rule().expect("a rule"), x, dy);
        assert!(
            got.iter().zip(want).all(|(&g, &w)| same(g, w)),
            "{}'s rule at {x:?}, dy = {dy}: {got:?}, want {want:?}",
            op.name()
        );
    }
}

/// A builder recording what it builds, to write it out as a formula: with the operators of the
/// table's CPU spelling, parentheses only where they are needed, and a name for each value used
/// more than once (the graph computes it once).
#[derive(Debug, Default)]
struct Formula {
    nodes: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Name(&'static str),
    Const(f64),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    Call(&'static str, Vec<usize>),
}

/// How strongly an expression's outermost operator binds.
const CMP: u8 = 0;
const ADD: u8 = 1;
const MUL: u8 = 2;
const NEG: u8 = 3;
const ATOM: u8 = 4;

impl Formula {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn names(&mut self, names: &[&'static str]) -> Vec<usize> {
        names.iter().map(|n| self.push(Node::Name(n))).collect()
    }

    fn args(node: &Node) -> Vec<usize> {
        match node {
            Node::Name(_) | Node::Const(_) => vec![],
            Node::Unary(_, x) => vec![*x],
            Node::Binary(_, a, b) => vec![*a, *b],
            Node::Call(_, args) => args.clone(),
        }
    }

    /// `v` written out: `t1 = tanh(x); dx = dy * (1 - t1 * t1)`, with `result` naming it.
    fn write(&self, result: &str, v: usize) -> String {
        let mut uses = vec![0; self.nodes.len()];
        let mut reached = vec![false; self.nodes.len()];
        reached[v] = true;
        for i in (0..=v).rev() {
            if reached[i] {
                for a in Self::args(&self.nodes[i]) {
                    uses[a] += 1;
                    reached[a] = true;
                }
            }
        }
        let mut names: Vec<Option<String>> = vec![None; self.nodes.len()];
        let mut lines = Vec::new();
        for i in 0..v {
            let shared = uses[i] > 1 && !matches!(self.nodes[i], Node::Name(_) | Node::Const(_));
            if reached[i] && shared {
                lines.push(format!("t{} = {}", lines.len() + 1, self.text(i, &names).0));
                names[i] = Some(format!("t{}", lines.len()));
            }
        }
        lines.push(format!("{result} = {}", self.text(v, &names).0));
        lines.join("; ")
    }

    /// `v`'s text and how strongly it binds.
    fn text(&self, v: usize, names: &[Option<String>]) -> (String, u8) {
        if let Some(name) = &names[v] {
            return (name.clone(), ATOM);
        }
        // An operand, parenthesised unless it binds at least as strongly as `strength`.
        let operand = |a: usize, strength: u8| {
            let (text, s) = self.text(a, names);
            if s >= strength {
                text
            } else {
                format!("({text})")
            }
        };
        let call = |name: &str, args: &[usize]| {
            let args: Vec<String> = args.iter().map(|&a| self.text(a, names).0).collect();
            (format!("{name}({})", args.join(", ")), ATOM)
        };
        match self.nodes[v] {
            Node::Name(name) => (name.to_string(), ATOM),
            Node::Const(c) => (c.to_string(), if c < 0.0 { NEG } else { ATOM }),
            Node::Unary(UnaryOp::Neg, x) => (format!("-{}", operand(x, NEG)), NEG),
            Node::Unary(op, x) => call(op.name(), &[x]),
            Node::Binary(op, a, b) => {
                let (symbol, strength) = match op.info().cpu {
                    BinaryCpuForm::Infix(s @ ("+" | "-")) => (s, ADD),
                    BinaryCpuForm::Infix(s) => (s, MUL),
                    BinaryCpuForm::Compare(s) => (s, CMP),
                    BinaryCpuForm::Method(_) => return call(op.name(), &[a, b]),
                };
                // Float arithmetic does not reassociate: a right operand as strong keeps its
                // parentheses.
                let (a, b) = (operand(a, strength), operand(b, strength + 1));
                (format!("{a} {symbol} {b}"), strength)
            }
            Node::Call(name, ref args) => call(name, args),
        }
    }
}

impl Builder for Formula {
    type V = usize;
    fn constant(&mut self, v: f64) -> usize {
        self.push(Node::Const(v))
    }
    fn unary(&mut self, op: UnaryOp, x: usize) -> usize {
        self.push(Node::Unary(op, x))
    }
    fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> usize {
        self.push(Node::Binary(op, a, b))
    }
    fn select(&mut self, cond: usize, a: usize, b: usize) -> usize {
        self.push(Node::Call("where", vec![cond, a, b]))
    }
    fn sum(&mut self, x: usize) -> usize {
        self.push(Node::Call("sum", vec![x]))
    }
    fn count(&mut self, x: usize) -> usize {
        self.push(Node::Call("count", vec![x]))
    }
}

/// What a row without a rule says.
fn marker<R>(vjp: &Vjp<R>) -> String {
    match vjp {
        Vjp::Rule(_) => unreachable!("a rule is written out"),
        Vjp::Zero => "zero".to_string(),
        Vjp::NotDifferentiable => "not differentiable".to_string(),
    }
}

/// Every row's derivative as a formula, so a change to a rule shows up in review as a diff.
#[test]
fn rules_read_as_formulas() {
    let mut lines = Vec::new();
    for op in UnaryOp::ALL {
        let line = match op.info().vjp {
            Vjp::Rule(rule) => {
                let mut f = Formula::default();
                let [x, y, dy] = f.names(&["x", "y", "dy"])[..] else {
                    unreachable!()
                };
                let dx = vjp::unary(rule, &mut f, x, y, dy);
                f.write("dx", dx)
            }
            ref other => marker(other),
        };
        lines.push(format!("{}: {line}", op.name()));
    }
    for op in BinaryOp::ALL {
        let line = match op.info().vjp {
            Vjp::Rule(rules) => {
                let mut f = Formula::default();
                let [a, b, y, dy] = f.names(&["a", "b", "y", "dy"])[..] else {
                    unreachable!()
                };
                let da = vjp::binary(rules.da, &mut f, a, b, y, dy);
                let db = vjp::binary(rules.db, &mut f, a, b, y, dy);
                format!("{}; {}", f.write("da", da), f.write("db", db))
            }
            ref other => marker(other),
        };
        lines.push(format!("{}: {line}", op.name()));
    }
    for op in ReduceOp::ALL {
        let line = match op.info().vjp {
            Vjp::Rule(rule) => {
                let mut f = Formula::default();
                let [x, y, dy] = f.names(&["x", "y", "dy"])[..] else {
                    unreachable!()
                };
                let dx = vjp::reduce(rule, &mut f, x, y, dy);
                f.write("dx", dx)
            }
            ref other => marker(other),
        };
        lines.push(format!("{}: {line}", op.name()));
    }
    insta::assert_snapshot!(lines.join("\n"));
}
