//! The catalogue of user-facing diagnostics, and the collector that gathers them.
//!
//! Every message the macro can show a user is a variant here, its text in `messages.rs`:
//! lowercase, no final period, what is wrong and then how to fix it.
//! `tests/ui/<topic>/<variant>.rs` is a trybuild case for each one.

mod errors;
mod messages;
mod nearest;

pub use errors::Errors;
pub use nearest::nearest;

/// A user mistake, found by `parse` (malformed signatures) or by `check` (everything else).
#[derive(Debug)]
pub enum Diag {
    // Parse errors: the signature's own grammar.
    UnknownParamType {
        name: String,
    },
    ExpectedParamType,
    ExpectedTensorType,
    MissingShape,
    MissingReturnType,
    // Names and calls.
    UnknownName {
        name: String,
        suggestion: Option<String>,
    },
    /// A parameter, `let` or shape symbol named like a built-in constant (`inf`).
    ReservedName {
        name: &'static str,
        what: &'static str,
    },
    UnknownOp {
        name: String,
        suggestion: Option<String>,
        /// How the DSL writes an op of another library of this name.
        instead: Option<&'static str>,
    },
    WrongArity {
        op: &'static str,
        expected: usize,
        found: usize,
        usage: String,
    },
    // Argument kinds.
    ExpectedTensor {
        usage: String,
        arg: &'static str,
        what: String,
    },
    ExpectedScalar {
        usage: String,
        arg: &'static str,
        what: String,
        instead: Option<&'static str>,
    },
    /// `twin`: the reduction called and the elementwise op of that name users mean with a value
    /// there (`max(x, 0.0)`: `maximum`).
    ExpectedAxis {
        twin: Option<(&'static str, &'static str)>,
    },
    ExpectedSize,
    ExpectedShapeList,
    ExpectedTensorList,
    UnknownDType {
        name: String,
    },
    // Shapes.
    AxisOutOfRange {
        axis: i64,
        rank: usize,
    },
    SameAxis {
        first: i64,
        second: i64,
        axis: usize,
        rank: usize,
    },
    /// A reduction listing one axis twice (`[-1, 1]` of a rank-2 tensor).
    DuplicateAxis {
        axis: i64,
        first: i64,
        normalized: usize,
        rank: usize,
    },
    EmptyAxes,
    // The leading dims `..`.
    /// `..` elsewhere than first in a type or shape (`Tensor[B, .., D]`, `Tensor[.., ..]`).
    LeadingNotFirst,
    /// `..` in a return type or a shape of a function none of whose parameters declares it.
    LeadingUnbound,
    /// An axis of a tensor with leading dims `..` that does not count among its `named` dims
    /// after them: a non-negative axis, or a negative one reaching into `..`.
    LeadingAxis {
        axis: i64,
        shape: String,
        named: usize,
    },
    /// A value whose dims would line up with the leading dims `..` of another, in a broadcast,
    /// or (`matmul`, then `lead` and `other` are the left and right sides) in a matmul.
    LeadingBroadcast {
        lead: String,
        other: String,
        named: usize,
        matmul: bool,
    },
    /// A reshape of a tensor with leading dims to a shape without them.
    LeadingReshape {
        from: String,
        to: String,
    },
    BroadcastMismatch {
        left: String,
        right: String,
        lhs: String,
        rhs: String,
    },
    MatmulRank {
        side: &'static str,
        shape: String,
        fix: String,
    },
    MatmulInnerDim {
        left: String,
        right: String,
        lhs: String,
        rhs: String,
        /// The right side's last dim is the left's inner dim: it was probably meant transposed.
        transposed: bool,
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
        start: u64,
        len: u64,
        size: u64,
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
    // Returns.
    ReturnCount {
        declared: usize,
        found: usize,
    },
    ReturnShape {
        declared: String,
        found: String,
        /// The shapes differ only in size-1 dims, as when a reduction keeps its axis.
        kept_axis: bool,
    },
    ReturnScalar {
        what: String,
        declared: String,
    },
    /// A function named like an item the macro generates for another function of the block
    /// (`f_async`, `f_backward`).
    GeneratedName {
        name: String,
        owner: String,
        what: &'static str,
    },
    // Parameters and shape symbols.
    DuplicateParam {
        name: String,
    },
    UnusedParam {
        name: String,
    },
    UnknownSymbol {
        name: String,
        known: String,
    },
    UnboundSymbol {
        name: String,
    },
    NegativeSize,
    DimTooComplex,
    // Rust syntax a graph has no meaning for.
    UnsupportedExpr {
        what: String,
        instead: &'static str,
    },
    UnsupportedStmt,
    MutBinding,
    // Limits (`limits.rs`).
    TooDeep {
        limit: usize,
    },
    RankTooLarge {
        rank: usize,
        limit: usize,
    },
    TooManyParams {
        count: usize,
        limit: usize,
    },
    TooManySymbols {
        name: String,
        limit: usize,
    },
    TooManyCatParts {
        parts: usize,
        limit: usize,
    },
    DivideByZero,
    SizeOverflow,
    AttributeInBody,
    TrailingSemicolon,
    MissingTail,
}
