//! The text of each diagnostic: how every [`Diag`] variant reads to the user.

use std::fmt;

use super::Diag;

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Diag::*;
        match self {
            UnknownParamType { name } => write!(
                f,
                "unknown parameter type `{name}`; a parameter is a `Tensor[dims]`, an `f32` or an `f64`"
            ),
            ExpectedParamType => write!(
                f,
                "expected a parameter type: `Tensor[dims]`, `f32` or `f64` (tensors are passed by \
                 reference for you, so write no `&`)"
            ),
            ExpectedTensorType => write!(
                f,
                "expected `Tensor[dims]`; a graph function returns tensors, such as `Tensor[N, D]` or \
                 `(Tensor[N, D], Tensor[N, 1])`"
            ),
            MissingShape => write!(
                f,
                "expected the shape after `Tensor`, such as `Tensor[B, D]` (`Tensor[]` for rank 0)"
            ),
            MissingReturnType => write!(
                f,
                "expected `->` and a return type; a graph function returns tensors, such as \
                 `-> Tensor[N, D]`"
            ),
            ReservedName { name, what } => write!(
                f,
                "`{name}` is the built-in infinity and cannot name a {what}; choose another name"
            ),
            UnknownName { name, suggestion } => {
                write!(f, "cannot find `{name}` in this graph")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => write!(f, "; declare it as a parameter or bind it with `let`"),
                }
            }
            UnknownOp {
                name,
                suggestion,
                instead,
            } => {
                write!(f, "unknown op `{name}`")?;
                match (instead, suggestion) {
                    (Some(how), _) => write!(f, "; {how}"),
                    (None, Some(s)) => write!(f, "; did you mean `{s}`?"),
                    (None, None) => write!(f, "; the crate docs of graph_runtime list every op"),
                }
            }
            WrongArity {
                op,
                expected,
                found,
                usage,
            } => write!(
                f,
                "`{op}` takes {expected} argument{} but {found} {} given; call it as `{usage}`",
                if *expected == 1 { "" } else { "s" },
                if *found == 1 { "was" } else { "were" },
            ),
            ExpectedTensor { usage, arg, what } => write!(
                f,
                "`{usage}` needs a tensor as `{arg}`, found {what}; scalars combine with tensors \
                 only through arithmetic and pointwise ops"
            ),
            ExpectedScalar {
                usage,
                arg,
                what,
                instead,
            } => {
                write!(
                    f,
                    "`{usage}` needs a scalar as `{arg}`, found {what}; pass an `f32`/`f64` \
                     parameter or a literal"
                )?;
                match instead {
                    Some(alt) => write!(f, "; {alt}"),
                    None => Ok(()),
                }
            }
            ExpectedAxis { twin } => {
                write!(
                    f,
                    "expected an axis: an integer literal such as `-1` or `0` (axes are fixed at compile time)"
                )?;
                match twin {
                    Some((op, elementwise)) => write!(
                        f,
                        "; `{op}` reduces along an axis: for the elementwise {elementwise} of two values, use `{elementwise}(x, y)`"
                    ),
                    None => Ok(()),
                }
            }
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
            SameAxis {
                first,
                second,
                axis,
                rank,
            } => {
                if first == second {
                    write!(f, "transpose swaps axis {first} with itself")?;
                } else {
                    write!(
                        f,
                        "axes {first} and {second} are both axis {axis} of a tensor of rank {rank}, \
                         so transpose would swap it with itself"
                    )?;
                }
                write!(f, "; name two different axes")
            }
            DuplicateAxis {
                axis,
                first,
                normalized,
                rank,
            } => {
                match axis == first {
                    true => write!(f, "axis {axis} is listed twice")?,
                    false => write!(
                        f,
                        "axes {first} and {axis} are both axis {normalized} of a tensor of rank {rank}"
                    )?,
                }
                write!(f, "; list each reduced axis once")
            }
            EmptyAxes => write!(
                f,
                "expected at least one axis: a reduction takes an axis (`-1`) or a list of axes \
                 (`[-2, -1]`)"
            ),
            LeadingNotFirst => write!(
                f,
                "`..` (any number of leading dims) may only be the first dim, once: write \
                 `Tensor[.., D]`"
            ),
            LeadingUnbound => write!(
                f,
                "`..` stands for the leading dims of the parameters declared with it, and no \
                 parameter is; declare one as `Tensor[.., D]`"
            ),
            LeadingAxis { axis, shape, named } => {
                match *axis >= 0 {
                    true => write!(
                        f,
                        "axis {axis} counts from the front of {shape}, whose number of leading dims \
                         `..` is known only when it is called; count from the end with a negative axis"
                    )?,
                    false => write!(
                        f,
                        "axis {axis} of {shape} reaches into its leading dims `..`, which a function \
                         generic over them cannot name one by one"
                    )?,
                }
                match named {
                    0 => write!(f, " (it has no dims after `..`)"),
                    1 => write!(f, " (-1 is the dim after `..`)"),
                    n => write!(f, " (-1 to -{n} are the dims after `..`)"),
                }
            }
            LeadingBroadcast {
                lead,
                other,
                matmul: true,
                ..
            } => write!(
                f,
                "cannot multiply {lead} by {other}: the batch dims would line up with the leading \
                 dims `..`, whose number is known only when it is called; declare the other side \
                 with `..` too, or as a matrix"
            ),
            LeadingBroadcast {
                lead, other, named, ..
            } => write!(
                f,
                "cannot broadcast {other} against {lead}: dims of {other} would line up with the \
                 leading dims `..`, whose number is known only when it is called; give it at most \
                 the {named} dim{} after `..`, or declare it with `..` too",
                if *named == 1 { "" } else { "s" }
            ),
            LeadingReshape { from, to } => write!(
                f,
                "cannot reshape {from} to {to}: a function generic over leading dims keeps them; \
                 start the shape with `..`, as in `reshape(x, [.., H, D / H])`"
            ),
            BroadcastMismatch {
                left,
                right,
                lhs,
                rhs,
            } => write!(
                f,
                "cannot broadcast {lhs} against {rhs}: `{left}` and `{right}` differ; paired dims must \
                 be the same symbol or literal, or one of them `1`"
            ),
            MatmulRank { side, shape, fix } => write!(
                f,
                "matmul needs rank 2 or more on both sides, but the {side} side has shape {shape}; \
                 reshape it to {fix} first"
            ),
            MatmulInnerDim {
                left,
                right,
                lhs,
                rhs,
                transposed,
            } => {
                write!(
                    f,
                    "matmul inner dims differ: the left side {lhs} has `{left}` columns but the right \
                     side {rhs} has `{right}` rows"
                )?;
                if *transposed {
                    write!(
                        f,
                        "; did you mean to transpose the right side with `.transpose(-2, -1)`?"
                    )
                } else {
                    write!(f, "; the left's last dim must equal the right's second-to-last")
                }
            }
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
                "narrow from {start} with length {len} ends at {}, past the end of the dim of size \
                 {size}; start + length must be at most {size}",
                start.saturating_add(*len)
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
            EmptyCat => write!(f, "cat needs at least one tensor; list them, such as `[a, b]`"),
            ReturnCount { declared, found } => write!(
                f,
                "the body returns {found} value{} but the signature declares {declared}; return one \
                 value per declared output, as a tuple `(a, b)` when there are several",
                if *found == 1 { "" } else { "s" }
            ),
            ReturnShape {
                declared,
                found,
                kept_axis,
            } => {
                write!(
                    f,
                    "the body returns shape {found} but the signature declares {declared}"
                )?;
                if *kept_axis {
                    write!(
                        f,
                        "; reductions keep their axis as size 1: declare {found}, or reshape the \
                         result to {declared}"
                    )
                } else {
                    write!(f, "; declare {found}, or change the body")
                }
            }
            ReturnScalar { what, declared } => write!(
                f,
                "the body returns {what} but the signature declares the tensor {declared}; outputs \
                 must be tensors"
            ),
            GeneratedName { name, owner, what } => write!(
                f,
                "`{name}` is the name of the {what} that `lazy_graph!` generates for `{owner}`; \
                 rename one of the two functions"
            ),
            DuplicateParam { name } => {
                write!(f, "parameter `{name}` is declared twice; rename one of them")
            }
            UnusedParam { name } => write!(
                f,
                "parameter `{name}` is never used; remove it, or name it `_{name}` to keep it"
            ),
            UnknownSymbol { name, known } => write!(
                f,
                "shape symbol `{name}` does not appear in any parameter; a return shape may only \
                 use the parameters' symbols ({known}) and literals"
            ),
            UnboundSymbol { name } => write!(
                f,
                "shape symbol `{name}` appears only inside expressions; give it a dim of its own \
                 (`{name}`) in some parameter so its size can be read at run time"
            ),
            NegativeSize => write!(
                f,
                "sizes cannot be negative (no dim is inferred from `-1`); write a symbol or an integer"
            ),
            DimTooComplex => write!(
                f,
                "this size is too complex: a size multiplies at most 4 symbols; use fewer factors"
            ),
            UnsupportedExpr { what, instead } => {
                write!(f, "{what} is not supported in a graph; {instead}")
            }
            UnsupportedStmt => write!(
                f,
                "only `let name = expr;` statements and a final expression are supported in a graph"
            ),
            TooDeep { limit } => write!(
                f,
                "this expression nests more than {limit} levels deep (brackets, and operators or \
                 method calls in a row, each add one); split it into several `let` statements"
            ),
            RankTooLarge { rank, limit } => write!(
                f,
                "this tensor has rank {rank}, above the limit of {limit} dims; merge dims into one \
                 (`B * S` in a reshape) to lower the rank"
            ),
            TooManyParams { count, limit } => write!(
                f,
                "this function declares {count} parameters, above the limit of {limit}; pass \
                 related tensors stacked in one parameter"
            ),
            TooManySymbols { name, limit } => write!(
                f,
                "shape symbol `{name}` is one more than the limit of {limit} symbols in one \
                 function; reuse a symbol where two dims are always equal, or write a literal size"
            ),
            TooManyCatParts { parts, limit } => write!(
                f,
                "this `cat` joins {parts} parts, above the limit of {limit}; concatenate groups of \
                 parts first and then the groups"
            ),
            DivideByZero => write!(f, "this size divides by zero; divide by a positive integer"),
            SizeOverflow => write!(
                f,
                "this size does not fit in 64 bits; write a smaller literal or fewer factors"
            ),
            AttributeInBody => write!(
                f,
                "attributes such as `#[cfg(..)]` have no effect inside a graph body; remove it (to \
                 leave code out, put the attribute on the whole function)"
            ),
            MutBinding => write!(
                f,
                "graph values cannot be mutated; remove `mut` and bind each new value with its own `let`"
            ),
            TrailingSemicolon => write!(
                f,
                "the body must end with the returned expression; remove this semicolon"
            ),
            MissingTail => write!(
                f,
                "the body must end with the returned expression, such as `y` after `let y = ...;`"
            ),
        }
    }
}
