//! Branch-free f32 `exp` and `tanh` that the compiler vectorises inside kernel loops (libm's are
//! opaque calls, one element at a time). Cephes' polynomials: within 2 ulp of the f64 results
//! over the whole range (`tests` below sweeps it), with IEEE results for NaN and infinities.
//! Each comes in two versions of the same arithmetic: with separate multiplies and adds, and with
//! fused multiply-adds for kernels compiled for CPUs that have them (`cpu::dispatch`).

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (SSE2 has no round).
const ROUND: f32 = 12_582_912.0;
/// From this on `exp` overflows (e^88.72284 rounds to infinity in f32); at and below `EXP_MIN`
/// it is subnormal, returned as 0.
const EXP_MAX: f32 = 88.722_84;
const EXP_MIN: f32 = -87.336_55;

/// `a * b + c`, with one rounding where `FMA` (a kernel compiled for a CPU with fused
/// multiply-add), two otherwise.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_f32_with::<false>(x)
}

/// `e^x`, with fused multiply-adds where `FMA`: about a third fewer instructions, and as
/// accurate (`tests` sweeps both).
#[inline(always)]
pub fn exp_f32_with<const FMA: bool>(x: f32) -> f32 {
    // No clamp: outside [EXP_MIN, EXP_MAX] the integer arithmetic below wraps to garbage, which
    // the two selects at the end replace. Fewer instructions per element in vectorised loops,
    // which spend most of their time here (SiLU, GELU, softmax).
    let shifted = madd::<FMA>(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted`: read it without a float-to-int
    // conversion, which SSE2 cannot vectorise with Rust's saturating semantics.
    let k = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, x));
    let p = [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1]
        .into_iter()
        .fold(1.987_569_2e-4, |p, c| madd::<FMA>(p, r, c));
    // e^r, in [0.7, 1.42], scaled by 2^n by adding n to its exponent field. Between the ends,
    // that field stays in 1..=254: where n = 128 the result is below f32::MAX, so e^r < 1 and
    // its field is 126; where n = -126 the result is at least 2^-126, so e^r >= 1 and its field
    // is 127.
    let m = madd::<FMA>(p * r, r, r) + 1.0;
    let y = f32::from_bits((m.to_bits() as i32).wrapping_add(k.wrapping_shl(23)) as u32);
    // A NaN stays NaN through the arithmetic, and fails both tests.
    let y = if x >= EXP_MAX { f32::INFINITY } else { y };
    if x <= EXP_MIN {
        0.0
    } else {
        y
    }
}

/// `tanh(x)`.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    tanh_f32_with::<false>(x)
}

/// `tanh(x)`, with fused multiply-adds where `FMA`.
#[inline(always)]
pub fn tanh_f32_with<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let z = a * a;
    let p = [2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1]
        .into_iter()
        .fold(-5.704_988_7e-3, |p, c| madd::<FMA>(p, z, c));
    let small = madd::<FMA>(p * z, a, a);
    let large = 1.0 - 2.0 / (exp_f32_with::<FMA>(a + a) + 1.0);
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
        let (mut worst, mut worst_fma) = (0f64, 0f64);
        for x in sweep(-87.0, 88.7, 2_000_000).chain(sweep(-1e-3, 1e-3, 100_000)) {
            worst = worst.max(ulps(exp_f32(x), (x as f64).exp()));
            worst_fma = worst_fma.max(ulps(exp_f32_with::<true>(x), (x as f64).exp()));
        }
        assert!(worst <= 2.0, "worst exp error {worst} ulp");
        assert!(worst_fma <= 2.0, "worst exp error with FMA {worst_fma} ulp");
    }

    #[test]
    fn exp_is_accurate_at_the_ends_of_its_range() {
        // Where the scaling by 2^n meets the ends of the exponent field (n = 128 and n = -126).
        let below_max = f32::from_bits(EXP_MAX.to_bits() - 1);
        let above_min = f32::from_bits(EXP_MIN.to_bits() - 1);
        let ends = sweep(EXP_MAX - 0.05, below_max, 200_000).chain(sweep(above_min, EXP_MIN + 0.05, 200_000));
        for x in ends {
            for (exp, name) in [
                (exp_f32 as fn(f32) -> f32, "exp"),
                (exp_f32_with::<true>, "exp with FMA"),
            ] {
                let (got, exact) = (exp(x), (x as f64).exp());
                assert!(got.is_finite() && got > 0.0, "{name}({x}) = {got}");
                assert!(ulps(got, exact) <= 2.0, "{name}({x}) = {got}, want {exact}");
            }
        }
    }

    #[test]
    fn exp_edges_follow_ieee() {
        for exp in [exp_f32, exp_f32_with::<true>] {
            assert_eq!(exp(f32::INFINITY), f32::INFINITY);
            assert_eq!(exp(100.0), f32::INFINITY);
            assert_eq!(exp(EXP_MAX), f32::INFINITY);
            assert_eq!(exp(EXP_MIN), 0.0);
            assert!(((EXP_MIN as f64).exp() as f32) < f32::MIN_POSITIVE);
            assert_eq!((EXP_MAX as f64).exp() as f32, f32::INFINITY);
            assert_eq!(exp(f32::NEG_INFINITY), 0.0);
            assert_eq!(exp(0.0), 1.0);
            assert!(exp(f32::NAN).is_nan());
        }
    }

    #[test]
    fn tanh_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut worst_fma = 0f64;
        for x in sweep(-12.0, 12.0, 2_000_000).chain(sweep(-1e-4, 1e-4, 100_000)) {
            worst = worst.max(ulps(tanh_f32(x), (x as f64).tanh()));
            worst_fma = worst_fma.max(ulps(tanh_f32_with::<true>(x), (x as f64).tanh()));
        }
        assert!(worst <= 2.0, "worst tanh error {worst} ulp");
        assert!(worst_fma <= 2.0, "worst tanh error with FMA {worst_fma} ulp");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
