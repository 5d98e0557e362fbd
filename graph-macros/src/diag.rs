//! The catalogue of user-facing diagnostics, and the collector that gathers them.
//!
//! Every message the macro can show a user is a variant here: lowercase, no final period, what is
//! wrong and then how to fix it. `tests/ui/` has one trybuild case per variant.

use std::fmt;

use proc_macro2::Span;
use quote::ToTokens;

/// A user mistake found by `check`.
#[derive(Debug)]
pub enum Diag {
    UnknownName {
        name: String,
        suggestion: Option<String>,
    },
    UnknownOp {
        name: String,
        suggestion: Option<String>,
    },
    WrongArity {
        op: &'static str,
        expected: usize,
        found: usize,
        signature: String,
    },
    ExpectedTensor {
        what: String,
    },
    ExpectedScalar {
        what: String,
    },
    ExpectedAxis,
    ExpectedSize,
    ExpectedShapeList,
    ExpectedTensorList,
    UnknownDType {
        name: String,
    },
    AxisOutOfRange {
        axis: i64,
        rank: usize,
    },
    SameAxis {
        axis: usize,
    },
    BroadcastMismatch {
        left: String,
        right: String,
        lhs: String,
        rhs: String,
    },
    MatmulRank {
        side: &'static str,
        rank: usize,
    },
    MatmulInnerDim {
        left: String,
        right: String,
    },
    ReshapeCount {
        from: String,
        to: String,
        from_count: String,
        to_count: String,
    },
    BroadcastTo {
        from: String,
        to: String,
    },
    NarrowOutOfRange {
        start: String,
        len: String,
        size: String,
    },
    CatMismatch {
        axis: usize,
        first: String,
        other: String,
    },
    CatSize {
        dims: String,
    },
    EmptyCat,
    ReturnCount {
        declared: usize,
        found: usize,
    },
    ReturnShape {
        declared: String,
        found: String,
    },
    DuplicateParam {
        name: String,
    },
    UnusedParam {
        name: String,
    },
    UnknownSymbol {
        name: String,
    },
    UnboundSymbol {
        name: String,
    },
    NegativeSize,
    DimTooComplex,
    UnsupportedExpr {
        what: &'static str,
    },
    UnsupportedStmt,
    MissingTail,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Diag::*;
        match self {
            UnknownName { name, suggestion } => {
                write!(f, "cannot find `{name}` in this graph")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => write!(f, "; declare it as a parameter or bind it with `let`"),
                }
            }
            UnknownOp { name, suggestion } => {
                write!(f, "unknown op `{name}`")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => write!(f, "; the crate docs of graph_runtime list every op"),
                }
            }
            WrongArity {
                op,
                expected,
                found,
                signature,
            } => write!(
                f,
                "`{op}` takes {expected} argument{} but {found} {} given: `{signature}`",
                if *expected == 1 { "" } else { "s" },
                if *found == 1 { "was" } else { "were" },
            ),
            ExpectedTensor { what } => {
                write!(
                    f,
                    "expected a tensor, found {what}; this argument must be a tensor"
                )
            }
            ExpectedScalar { what } => write!(
                f,
                "expected a scalar, found {what}; pass an `f32`/`f64` parameter or a literal here"
            ),
            ExpectedAxis => write!(f, "expected an axis: an integer literal such as `-1` or `0`"),
            ExpectedSize => write!(
                f,
                "expected a size: an integer, a shape symbol, or a product such as `B * S` or `D / 2`"
            ),
            ExpectedShapeList => write!(f, "expected a shape in brackets, such as `[B * S, D]`"),
            ExpectedTensorList => write!(f, "expected tensors in brackets, such as `[a, b]`"),
            UnknownDType { name } => {
                write!(
                    f,
                    "unknown dtype `{name}`; expected one of `f16`, `bf16`, `f32`, `f64`"
                )
            }
            AxisOutOfRange { axis, rank } => write!(
                f,
                "axis {axis} is out of range for a tensor of rank {rank}; valid axes are {} to {}",
                -(*rank as i64),
                *rank as i64 - 1
            ),
            SameAxis { axis } => write!(
                f,
                "transpose swaps axis {axis} with itself; name two different axes"
            ),
            BroadcastMismatch {
                left,
                right,
                lhs,
                rhs,
            } => write!(
                f,
                "cannot broadcast `{left}` against `{right}` (shapes {lhs} and {rhs}); \
                 dims must be the same symbol or literal, or one of them `1`"
            ),
            MatmulRank { side, rank } => write!(
                f,
                "matmul needs tensors of rank 2 or more, but the {side} side has rank {rank}"
            ),
            MatmulInnerDim { left, right } => write!(
                f,
                "matmul inner dims differ: the left side has `{left}` columns but the right side \
                 has `{right}` rows"
            ),
            ReshapeCount {
                from,
                to,
                from_count,
                to_count,
            } => write!(
                f,
                "cannot reshape {from} into {to}: {from_count} elements vs {to_count}; the element \
                 counts must be equal"
            ),
            BroadcastTo { from, to } => write!(
                f,
                "cannot broadcast {from} to {to}; each dim must match the target's or be `1`"
            ),
            NarrowOutOfRange { start, len, size } => write!(
                f,
                "narrow from {start} with length {len} runs past the end of a dim of size {size}"
            ),
            CatMismatch { axis, first, other } => write!(
                f,
                "cannot concatenate {first} with {other} along axis {axis}; all other dims must be equal"
            ),
            CatSize { dims } => write!(
                f,
                "the concatenated size {dims} is not a single symbolic dim; concatenate parts of one \
                 symbol (such as `D / 2` twice) or literal sizes"
            ),
            EmptyCat => write!(f, "cat needs at least one tensor"),
            ReturnCount { declared, found } => write!(
                f,
                "the body returns {found} value{} but the signature declares {declared}",
                if *found == 1 { "" } else { "s" }
            ),
            ReturnShape { declared, found } => write!(
                f,
                "the body returns shape {found} but the signature declares {declared}"
            ),
            DuplicateParam { name } => {
                write!(f, "parameter `{name}` is declared twice; rename one of them")
            }
            UnusedParam { name } => write!(
                f,
                "parameter `{name}` is never used; remove it, or name it `_{name}` to keep it"
            ),
            UnknownSymbol { name } => write!(
                f,
                "shape symbol `{name}` does not appear in any parameter; return shapes may only \
                 use symbols the inputs define"
            ),
            UnboundSymbol { name } => write!(
                f,
                "shape symbol `{name}` appears only inside expressions; give it a dim of its own \
                 (`{name}`) in some parameter so its size can be read at run time"
            ),
            NegativeSize => write!(f, "sizes cannot be negative"),
            DimTooComplex => write!(
                f,
                "this size is too complex: at most 4 symbol factors and coefficients that fit in u64"
            ),
            UnsupportedExpr { what } => write!(
                f,
                "{what} is not supported in a graph; use tensor ops, arithmetic, literals and `let`"
            ),
            UnsupportedStmt => {
                write!(
                    f,
                    "only `let name = expr;` statements and a final expression are supported"
                )
            }
            MissingTail => write!(
                f,
                "the body must end with the returned expression, without a trailing semicolon"
            ),
        }
    }
}

/// Collects every error of every phase; `propagate` turns them into one `syn::Error`.
///
/// Like serde's `Ctxt`, it panics when dropped with errors never propagated, so no phase can lose
/// a diagnostic by accident.
pub struct Errors {
    errors: Vec<syn::Error>,
    checked: bool,
}

impl Errors {
    pub fn new() -> Errors {
        Errors {
            errors: Vec::new(),
            checked: false,
        }
    }

    /// An error spanning the given tokens (first to last).
    pub fn at<T: ToTokens>(&mut self, tokens: T, diag: Diag) {
        self.errors.push(syn::Error::new_spanned(tokens, diag));
    }

    /// An error at one span, for places whose tokens are gone (IR nodes keep spans only).
    pub fn at_span(&mut self, span: Span, diag: Diag) {
        self.errors.push(syn::Error::new(span, diag));
    }

    /// All errors so far as one combined error, or `Ok` when there are none.
    pub fn propagate(&mut self) -> syn::Result<()> {
        self.checked = true;
        let mut errors = std::mem::take(&mut self.errors).into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        first.extend(errors);
        Err(first)
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.checked && !self.errors.is_empty() && !std::thread::panicking() {
            panic!(
                "lazy_graph: {} diagnostics were dropped without being reported",
                self.errors.len()
            );
        }
    }
}

/// The known name nearest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.len() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, k)| (d, k.len()))
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_only() {
        let known = ["softmax", "sum", "sqrt", "silu"];
        assert_eq!(nearest("sofmax", known), Some("softmax".into()));
        assert_eq!(nearest("sqrtt", known), Some("sqrt".into()));
        assert_eq!(nearest("banana", known), None);
    }
}
