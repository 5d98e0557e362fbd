//! Branch-free f32 `exp` and `tanh` that the compiler vectorises inside kernel loops (libm's are
//! opaque calls, one element at a time). Cephes' polynomials: within 2 ulp of the f64 results
//! over the whole range (`tests` below sweeps it), with IEEE results for NaN and infinities.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (SSE2 has no round).
const ROUND: f32 = 12_582_912.0;
/// Above this `exp` overflows; below `EXP_MIN` it is subnormal, returned as 0.
const EXP_MAX: f32 = 88.722_84;
const EXP_MIN: f32 = -87.336_55;

/// `e^x`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted`: read it without a float-to-int
    // conversion, which SSE2 cannot vectorise with Rust's saturating semantics.
    let k = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5e-1;
    // 2^n in two factors: n reaches 128 just below EXP_MAX and -126 at EXP_MIN.
    let (n1, n2) = (k >> 1, k - (k >> 1));
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = (p * r * r + r + 1.0) * pow2(n1) * pow2(n2);
    // A NaN stays NaN through the clamp and the arithmetic, and fails both tests.
    let y = if x > EXP_MAX { f32::INFINITY } else { y };
    if x < EXP_MIN {
        0.0
    } else {
        y
    }
}

/// `tanh(x)`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = a * a;
    let small = ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
        - 3.333_328e-1)
        * z
        * a
        + a;
    let large = 1.0 - 2.0 / (exp_f32(a + a) + 1.0);
    (if a < 0.625 { small } else { large }).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error in units of the last place of the correctly rounded f32 result.
    fn ulps(got: f32, exact: f64) -> f64 {
        let want = exact as f32;
        if got == want || (got.is_nan() && want.is_nan()) {
            return 0.0;
        }
        let ulp = (f32::from_bits(want.abs().to_bits() + 1) - want.abs()) as f64;
        (got as f64 - exact).abs() / ulp
    }

    fn sweep(lo: f32, hi: f32, steps: u32) -> impl Iterator<Item = f32> {
        (0..=steps).map(move |i| lo + (hi - lo) * i as f32 / steps as f32)
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        for x in sweep(-87.0, 88.7, 2_000_000).chain(sweep(-1e-3, 1e-3, 100_000)) {
            worst = worst.max(ulps(exp_f32(x), (x as f64).exp()));
        }
        assert!(worst <= 2.0, "worst exp error {worst} ulp");
    }

    #[test]
    fn exp_edges_follow_ieee() {
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_two_ulp() {
        let mut worst = 0f64;
        for x in sweep(-12.0, 12.0, 2_000_000).chain(sweep(-1e-4, 1e-4, 100_000)) {
            worst = worst.max(ulps(tanh_f32(x), (x as f64).tanh()));
        }
        assert!(worst <= 2.0, "worst tanh error {worst} ulp");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
