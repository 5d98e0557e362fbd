//! Scalar math shared by constant folding, the CPU kernels and the eager oracle, so every path
//! computes the same function.

/// `sqrt(2 / pi)`, the GELU tanh-approximation constant.
pub const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// The error function.
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
}

/// The larger of two values; a NaN on one side yields the other (IEEE `maxNum`, as `fmax`).
pub fn maximum(a: f64, b: f64) -> f64 {
    a.max(b)
}

/// The smaller of two values; a NaN on one side yields the other (IEEE `minNum`, as `fmin`).
pub fn minimum(a: f64, b: f64) -> f64 {
    a.min(b)
}
