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

/// The larger of two values; a NaN on either side is the result (PyTorch's `torch.maximum`,
/// IEEE 754-2019 `maximum`), not the other value as with `f64::max` (`maxNum`).
pub fn maximum(a: f64, b: f64) -> f64 {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// The smaller of two values; a NaN on either side is the result (`torch.minimum`).
pub fn minimum(a: f64, b: f64) -> f64 {
    if a < b || a.is_nan() {
        a
    } else {
        b
    }
}

/// `max(x, 0)`, with NaN kept (PyTorch's `relu` is `clamp_min(x, 0)`, which propagates NaN).
pub fn relu(x: f64) -> f64 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// `1`, `0` or `-1` as `x` is above, equal to or below 0, computed as `(x > 0) - (x < 0)`: `0`
/// for NaN and for both zeros, as PyTorch's `torch.sign` (unlike `f64::signum`, which is NaN for
/// NaN and `-1` for `-0`).
pub fn sign(x: f64) -> f64 {
    f64::from(u8::from(x > 0.0)) - f64::from(u8::from(x < 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maximum_and_minimum_propagate_nan() {
        for (a, b) in [(f64::NAN, 1.0), (1.0, f64::NAN), (f64::NAN, f64::NEG_INFINITY)] {
            assert!(maximum(a, b).is_nan(), "maximum({a}, {b})");
            assert!(minimum(a, b).is_nan(), "minimum({a}, {b})");
        }
        assert_eq!(maximum(1.0, 2.0), 2.0);
        assert_eq!(maximum(f64::NEG_INFINITY, -1.0), -1.0);
        assert_eq!(minimum(1.0, 2.0), 1.0);
        assert_eq!(minimum(f64::INFINITY, 1.0), 1.0);
    }

    #[test]
    fn sign_is_zero_for_nan_and_zeros() {
        for (x, want) in [
            (f64::NAN, 0.0),
            (-0.0, 0.0),
            (0.0, 0.0),
            (-2.5, -1.0),
            (f64::INFINITY, 1.0),
        ] {
            assert_eq!(sign(x).to_bits(), f64::to_bits(want), "sign({x})");
        }
    }

    #[test]
    fn relu_keeps_nan() {
        assert!(relu(f64::NAN).is_nan());
        assert_eq!(relu(-1.0), 0.0);
        assert_eq!(relu(f64::NEG_INFINITY), 0.0);
        assert_eq!(relu(f64::INFINITY), f64::INFINITY);
        assert_eq!(relu(2.5), 2.5);
    }
}
