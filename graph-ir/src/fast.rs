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
/// Above this `exp` overflows; below `EXP_MIN` it is subnormal, returned as 0.
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
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = madd::<FMA>(xc, LOG2E, ROUND);
    let n = shifted - ROUND;
    // The integer n sits in the low mantissa bits of `shifted`: read it without a float-to-int
    // conversion, which SSE2 cannot vectorise with Rust's saturating semantics.
    let k = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, xc));
    let p = [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1]
        .into_iter()
        .fold(1.987_569_2e-4, |p, c| madd::<FMA>(p, r, c));
    // 2^n in two factors: n reaches 128 just below EXP_MAX and -126 at EXP_MIN.
    let (n1, n2) = (k >> 1, k - (k >> 1));
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = (madd::<FMA>(p * r, r, r) + 1.0) * pow2(n1) * pow2(n2);
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
    fn exp_edges_follow_ieee() {
        for exp in [exp_f32, exp_f32_with::<true>] {
            assert_eq!(exp(f32::INFINITY), f32::INFINITY);
            assert_eq!(exp(100.0), f32::INFINITY);
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
