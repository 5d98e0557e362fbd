//! The runtime's error type. Every failure names the function, the parameter and what was
//! expected; it converts into `candle_core::Error` so `?` works in Candle model code.

/// A `Result` with the runtime's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong when a generated function ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor has a different rank than its parameter declares.
    #[error("{func}: parameter `{param}` must have rank {expected} (declared {declared}), but has shape {actual:?}")]
    Rank {
        func: &'static str,
        param: &'static str,
        declared: String,
        expected: usize,
        actual: Vec<usize>,
    },

    /// A tensor has fewer dims than its parameter names after the leading dims `..`.
    #[error(
        "{func}: parameter `{param}` must have at least {expected} dims (declared {declared}), but has shape {actual:?}"
    )]
    RankAtLeast {
        func: &'static str,
        param: &'static str,
        declared: String,
        expected: usize,
        actual: Vec<usize>,
    },

    /// Two parameters declared with the leading dims `..` have different leading dims.
    #[error(transparent)]
    Leading(Box<LeadingMismatch>),

    /// A dim differs from a literal size of the declaration.
    #[error(
        "{func}: parameter `{param}` dim {dim} must be {expected} (declared {declared}), but is {actual}"
    )]
    Dim {
        func: &'static str,
        param: &'static str,
        dim: usize,
        declared: String,
        expected: usize,
        actual: usize,
    },

    /// A symbol has two different sizes.
    #[error(transparent)]
    Symbol(Box<SymbolMismatch>),

    /// A derived size such as `D / 2` is not a whole number for the bound symbols.
    #[error("{func}: size `{size}` of {what} is not a whole number for {symbols}")]
    Fraction {
        func: &'static str,
        what: String,
        size: String,
        symbols: String,
    },

    /// A derived size such as `B * S` does not fit in `usize` for the bound symbols (huge
    /// broadcast views).
    #[error("{func}: size `{size}` of {what} overflows usize for {symbols}; use smaller sizes")]
    Overflow {
        func: &'static str,
        what: String,
        size: String,
        symbols: String,
    },

    /// A value the call would allocate has more bytes than any allocation can hold
    /// (`isize::MAX`), or its element count overflows `usize`: a product of huge broadcast
    /// views.
    #[error(
        "{func}: {what} of shape {shape:?} would take more than isize::MAX bytes; no allocation can hold it"
    )]
    TooLarge {
        func: &'static str,
        what: String,
        shape: Vec<usize>,
    },

    /// A fused CPU kernel could not allocate an output (the system refused the memory). Candle
    /// ops, as eager mode runs them, abort the process instead, as any Candle op does.
    #[error("{func}: could not allocate {bytes} bytes for {what}")]
    Alloc {
        func: &'static str,
        what: String,
        bytes: usize,
    },

    /// A tensor's dtype differs from the first tensor parameter's.
    #[error("{func}: parameter `{param}` has dtype {actual:?}, but `{first}` has {expected:?}; all tensors of a graph share one dtype")]
    DType {
        func: &'static str,
        param: &'static str,
        first: &'static str,
        expected: candle_core::DType,
        actual: candle_core::DType,
    },

    /// A tensor has a dtype graphs do not compute in.
    #[error("{func}: parameter `{param}` has dtype {actual:?}; graphs take f16, bf16, f32 or f64 tensors")]
    UnsupportedDType {
        func: &'static str,
        param: &'static str,
        actual: candle_core::DType,
    },

    /// Tensors live on different devices.
    #[error(
        "{func}: parameter `{param}` is on {actual}, but `{first}` is on {expected}; move them to one device"
    )]
    Device {
        func: &'static str,
        param: &'static str,
        first: &'static str,
        expected: String,
        actual: String,
    },

    /// A `narrow` runs past the end of its dim at run time.
    #[error("{func}: narrow of axis {axis} from {start} with length {len} runs past its size {size}")]
    Narrow {
        func: &'static str,
        axis: usize,
        start: usize,
        len: usize,
        size: usize,
    },

    /// A generated GPU kernel could not be compiled, loaded or launched. This is a bug in
    /// lazy_graph or a broken GPU setup, not a mistake in the inputs: the message says which.
    #[error("{func}: GPU kernel {kernel}: {message}")]
    Gpu {
        func: &'static str,
        kernel: &'static str,
        message: String,
    },

    /// A CUDA graph could not be captured or replayed (see [`crate::cuda_graph`]): the message
    /// says what the recorded work did that a capture cannot hold, or what the driver reported.
    #[error("CUDA graph: {0}")]
    Capture(String),

    /// An operation failed inside Candle.
    #[error("{func}: {source}")]
    Candle {
        func: &'static str,
        #[source]
        source: candle_core::Error,
    },
}

/// Details of [`Error::Symbol`]: the size a symbol was bound to, and the dim that disagrees.
#[derive(Debug, thiserror::Error)]
#[error(
    "{func}: symbol `{symbol}` is {bound} (from `{bound_by}` dim {bound_dim}), but parameter \
     `{param}` dim {dim} (declared {declared}) is {actual}, not {expected}"
)]
pub struct SymbolMismatch {
    pub func: &'static str,
    pub symbol: &'static str,
    pub bound: usize,
    pub bound_by: &'static str,
    pub bound_dim: usize,
    pub param: &'static str,
    pub dim: usize,
    pub declared: String,
    pub expected: usize,
    pub actual: usize,
}

/// Details of [`Error::Leading`]: the leading dims `..` of the first parameter declared with
/// them, and those of a later one that differ.
#[derive(Debug, thiserror::Error)]
#[error(
    "{func}: parameter `{param}` has leading dims {actual:?} (shape {actual_shape:?}, declared \
     {declared}), but `{first}` has {expected:?} (shape {first_shape:?}); every parameter \
     declared with `..` takes the same leading dims"
)]
pub struct LeadingMismatch {
    pub func: &'static str,
    pub param: &'static str,
    pub declared: String,
    pub first: &'static str,
    pub expected: Vec<usize>,
    pub actual: Vec<usize>,
    pub first_shape: Vec<usize>,
    pub actual_shape: Vec<usize>,
}

impl From<Error> for candle_core::Error {
    fn from(e: Error) -> Self {
        candle_core::Error::wrap(e)
    }
}

/// Attaches the function name to Candle errors.
pub(crate) trait Context<T> {
    fn within(self, func: &'static str) -> Result<T>;
}

impl<T> Context<T> for candle_core::Result<T> {
    fn within(self, func: &'static str) -> Result<T> {
        self.map_err(|source| Error::Candle { func, source })
    }
}
