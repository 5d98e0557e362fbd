//! The DSL's op names and their signatures: which arguments are values, axes, sizes, shapes,
//! tensor lists or dtypes. Lowering to primitives lives in `lower.rs`.

use graph_ir::{BinaryOp, ReduceOp, UnaryOp};

/// A callable name of the DSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Clamp,
    Where,
    Reduce(ReduceOp),
    Var,
    Softmax,
    LogSoftmax,
    LogSumExp,
    Matmul,
    Transpose,
    Reshape,
    Broadcast,
    Narrow,
    Cat,
    Cast,
}

/// What an argument position accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A tensor or a scalar.
    Value,
    /// A tensor only.
    Tensor,
    /// A scalar only.
    Scalar,
    /// An integer literal, negative from the end.
    Axis,
    /// An axis, or a list of distinct axes: `-1`, `[-2, -1]`.
    Axes,
    /// A size expression: `4`, `D`, `B * S`, `D / 2`.
    Size,
    /// `[size, ...]`
    Shape,
    /// `[tensor, ...]`
    Tensors,
    /// `f16`, `bf16`, `f32` or `f64`.
    DType,
}

/// The names users may call besides the ops of the tables (unary, binary, reductions), aliases
/// included, for lookup and "did you mean".
const NAMED: &[(&str, Builtin)] = &[
    ("where_", Builtin::Where),
    ("where_cond", Builtin::Where),
    ("clamp", Builtin::Clamp),
    ("var", Builtin::Var),
    ("softmax", Builtin::Softmax),
    ("log_softmax", Builtin::LogSoftmax),
    ("logsumexp", Builtin::LogSumExp),
    ("matmul", Builtin::Matmul),
    ("transpose", Builtin::Transpose),
    ("reshape", Builtin::Reshape),
    ("broadcast", Builtin::Broadcast),
    ("broadcast_as", Builtin::Broadcast),
    ("narrow", Builtin::Narrow),
    ("cat", Builtin::Cat),
    ("cast", Builtin::Cast),
    ("to_dtype", Builtin::Cast),
];

/// Names of other tensor libraries' ops (PyTorch, Candle, NumPy) that the DSL spells another way,
/// with how: an unknown op of these names gets this hint instead of the nearest name by spelling
/// (`t` is one letter from `lt`, and `broadcast_mul` nearest to `broadcast_as`).
const ELSEWHERE: &[(&[&str], &str)] = &[
    (&["t"], "to swap the last two axes, write `x.transpose(-2, -1)`"),
    (
        &["broadcast_mul", "broadcast_add", "broadcast_sub", "broadcast_div"],
        "arithmetic broadcasts: write `x * w` (`+`, `-`, `/`)",
    ),
    (
        &["broadcast_maximum", "broadcast_minimum"],
        "`maximum(x, y)` and `minimum(x, y)` broadcast",
    ),
    (
        &["sum_keepdim", "mean_keepdim", "max_keepdim", "min_keepdim"],
        "reductions keep their axis: write `sum(x, axis)` (`mean`, `max`, `min`)",
    ),
    (&["amax", "amin"], "write `max(x, axis)` or `min(x, axis)`"),
    (
        &["unsqueeze", "squeeze", "view", "flatten"],
        "write `reshape(x, [dims])` with the new shape",
    ),
    (&["permute"], "`transpose(x, a, b)` swaps two axes"),
    (&["concat", "concatenate"], "write `cat([a, b], axis)`"),
    (&["mm", "bmm", "dot"], "write `matmul(a, b)`"),
    (&["clip"], "write `clamp(x, lo, hi)`"),
    (&["affine"], "write `x * a + b`"),
];

/// How the DSL writes op `name` of another tensor library, if it is one of [`ELSEWHERE`].
pub fn spelled_elsewhere(name: &str) -> Option<&'static str> {
    ELSEWHERE
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, hint)| *hint)
}

/// The elementwise op a reduction of the same name is confused with: `max(x, 0.0)` means
/// `maximum(x, 0.0)`.
pub fn elementwise_twin(op: Builtin) -> Option<&'static str> {
    match op {
        Builtin::Reduce(ReduceOp::Max) => Some("maximum"),
        Builtin::Reduce(ReduceOp::Min) => Some("minimum"),
        _ => None,
    }
}

impl Builtin {
    pub fn lookup(name: &str) -> Option<Builtin> {
        if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == name) {
            return Some(Builtin::Unary(u));
        }
        if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == name) {
            return Some(Builtin::Binary(b));
        }
        if let Some(r) = ReduceOp::ALL.into_iter().find(|r| r.name() == name) {
            return Some(Builtin::Reduce(r));
        }
        NAMED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// Every name `lookup` accepts.
    pub fn names() -> impl Iterator<Item = &'static str> {
        UnaryOp::ALL
            .into_iter()
            .map(UnaryOp::name)
            .chain(BinaryOp::ALL.into_iter().map(BinaryOp::name))
            .chain(ReduceOp::ALL.into_iter().map(ReduceOp::name))
            .chain(NAMED.iter().map(|(n, _)| *n))
    }

    /// The canonical name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Unary(u) => u.name(),
            Builtin::Binary(b) => b.name(),
            Builtin::Reduce(r) => r.name(),
            other => NAMED
                .iter()
                .find(|(_, b)| *b == other)
                .map(|(n, _)| *n)
                .unwrap_or("?"),
        }
    }

    /// Argument names and kinds, receiver first for method syntax.
    pub fn signature(self) -> &'static [(&'static str, ArgKind)] {
        use ArgKind::*;
        match self {
            Builtin::Unary(_) => &[("x", Value)],
            Builtin::Binary(_) => &[("a", Value), ("b", Value)],
            Builtin::Clamp => &[("x", Value), ("min", Scalar), ("max", Scalar)],
            Builtin::Where => &[("cond", Value), ("on_true", Value), ("on_false", Value)],
            Builtin::Reduce(_)
            | Builtin::Var
            | Builtin::Softmax
            | Builtin::LogSoftmax
            | Builtin::LogSumExp => &[("x", Tensor), ("axis", Axes)],
            Builtin::Matmul => &[("a", Tensor), ("b", Tensor)],
            Builtin::Transpose => &[("x", Tensor), ("axis0", Axis), ("axis1", Axis)],
            Builtin::Reshape | Builtin::Broadcast => &[("x", Tensor), ("shape", Shape)],
            Builtin::Narrow => &[("x", Tensor), ("axis", Axis), ("start", Size), ("len", Size)],
            Builtin::Cat => &[("tensors", Tensors), ("axis", Axis)],
            Builtin::Cast => &[("x", Tensor), ("dtype", DType)],
        }
    }

    /// `name(a, b)`, or `a.name(b)` in method syntax, for messages.
    pub fn usage(self, method: bool) -> String {
        let args: Vec<&str> = self.signature().iter().map(|(n, _)| *n).collect();
        match args.split_first() {
            Some((receiver, rest)) if method => {
                format!("{receiver}.{}({})", self.name(), rest.join(", "))
            }
            _ => format!("{}({})", self.name(), args.join(", ")),
        }
    }

    /// What to call instead when a tensor is passed where this op wants a scalar.
    pub fn tensor_alternative(self) -> Option<&'static str> {
        match self {
            Builtin::Clamp => Some("for tensor bounds use `minimum(maximum(x, lo), hi)`"),
            _ => None,
        }
    }
}
