//! Symbolic dimensions.
//!
//! A [`Dim`] is a monomial with a rational coefficient over the function's shape symbols:
//! `64`, `D`, `B * S`, `D / 2`, `2 * H`. Monomials are closed under the products that reshape,
//! matmul and element counts need, and two dims are equal exactly when their normal forms are, so
//! the macro decides shape equality at compile time without knowing any size.

use std::fmt;

/// Most symbol factors one dim may hold (`B * S * H * D`).
pub const MAX_FACTORS: usize = 4;

/// Marks an unused factor slot. Real symbol ids sort below it, so slots stay sorted.
const NO_SYMBOL: u16 = u16::MAX;

/// A symbolic dimension: `num / den * product(symbols)`, kept in normal form.
///
/// Normal form: `gcd(num, den) == 1`, `den >= 1`, factors sorted with unused slots last. The type is
/// `Copy` and const-constructible so the macro can emit it into `static` plans.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dim {
    num: u64,
    den: u64,
    factors: [u16; MAX_FACTORS],
}

/// Why a dim has no size for the bound symbols: see [`Dim::try_eval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// The size is not a whole number (`D / 2` with `D` odd).
    Fraction,
    /// The size does not fit in `usize` (`B * S` of two huge views).
    Overflow,
    /// A symbol id past the bound values (generated code never passes one).
    UnknownSymbol,
}

/// Why two dims could not be combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimError {
    /// The product has more than [`MAX_FACTORS`] symbol factors.
    TooManyFactors,
    /// Division by zero.
    DivideByZero,
    /// A coefficient overflowed `u64`.
    Overflow,
}

impl Dim {
    /// A literal size.
    pub const fn lit(n: u64) -> Dim {
        Dim {
            num: n,
            den: 1,
            factors: [NO_SYMBOL; MAX_FACTORS],
        }
    }

    /// The symbol with id `id` (its index in the graph's symbol table).
    pub const fn sym(id: u16) -> Dim {
        Dim {
            num: 1,
            den: 1,
            factors: [id, NO_SYMBOL, NO_SYMBOL, NO_SYMBOL],
        }
    }

    /// Rebuilds a dim from the parts [`Dim::parts`] returned; used by generated code.
    ///
    /// The parts must already be in normal form (as `parts` returns them).
    pub const fn from_parts(num: u64, den: u64, factors: [u16; MAX_FACTORS]) -> Dim {
        Dim { num, den, factors }
    }

    /// `(numerator, denominator, factors)`; unused factor slots hold `u16::MAX`.
    pub const fn parts(&self) -> (u64, u64, [u16; MAX_FACTORS]) {
        (self.num, self.den, self.factors)
    }

    /// The literal size, if the dim has no symbols and an integer value.
    pub fn as_lit(&self) -> Option<u64> {
        (self.factors[0] == NO_SYMBOL && self.den == 1).then_some(self.num)
    }

    /// The symbol id, if the dim is exactly one symbol (`D`, not `2 * D`).
    pub fn as_sym(&self) -> Option<u16> {
        let single = self.num == 1 && self.den == 1 && self.factors[1] == NO_SYMBOL;
        (single && self.factors[0] != NO_SYMBOL).then_some(self.factors[0])
    }

    /// Whether this is the literal `1`, the only size that broadcasts.
    pub fn is_one(&self) -> bool {
        self.as_lit() == Some(1)
    }

    /// The symbol ids this dim mentions, with repetition for powers.
    pub fn symbols(&self) -> impl Iterator<Item = u16> + '_ {
        self.factors.iter().copied().take_while(|&f| f != NO_SYMBOL)
    }

    /// The product of two dims.
    pub fn times(self, other: Dim) -> Result<Dim, DimError> {
        let mut factors: Vec<u16> = self.symbols().chain(other.symbols()).collect();
        if factors.len() > MAX_FACTORS {
            return Err(DimError::TooManyFactors);
        }
        factors.sort_unstable();
        let mut slots = [NO_SYMBOL; MAX_FACTORS];
        slots[..factors.len()].copy_from_slice(&factors);
        let num = self.num.checked_mul(other.num).ok_or(DimError::Overflow)?;
        let den = self.den.checked_mul(other.den).ok_or(DimError::Overflow)?;
        Ok(Dim {
            num,
            den,
            factors: slots,
        }
        .normalized())
    }

    /// This dim divided by a literal.
    pub fn div_lit(self, d: u64) -> Result<Dim, DimError> {
        if d == 0 {
            return Err(DimError::DivideByZero);
        }
        let den = self.den.checked_mul(d).ok_or(DimError::Overflow)?;
        Ok(Dim { den, ..self }.normalized())
    }

    /// The product of many dims; the empty product is `1`.
    pub fn product<'a>(dims: impl IntoIterator<Item = &'a Dim>) -> Result<Dim, DimError> {
        dims.into_iter().try_fold(Dim::lit(1), |acc, d| acc.times(*d))
    }

    fn normalized(self) -> Dim {
        if self.num == 0 {
            return Dim::lit(0);
        }
        let g = gcd(self.num, self.den);
        Dim {
            num: self.num / g,
            den: self.den / g,
            ..self
        }
    }

    /// The size for the given symbol values, or `None` when it is not a whole number (`D / 2`
    /// with `D` odd) or overflows.
    #[inline]
    pub fn eval(&self, symbols: &[usize]) -> Option<usize> {
        // Most dims are one symbol or a literal: no wide arithmetic for those (every call binds
        // and evaluates a graph's shapes, so this is on the latency path of small calls).
        if self.den == 1 {
            if self.factors[0] == NO_SYMBOL {
                return usize::try_from(self.num).ok();
            }
            if self.num == 1 && self.factors[1] == NO_SYMBOL {
                return symbols.get(self.factors[0] as usize).copied();
            }
        }
        self.eval_wide(symbols)
    }

    fn eval_wide(&self, symbols: &[usize]) -> Option<usize> {
        self.try_eval(symbols).ok()
    }

    /// [`Dim::eval`], saying why a dim has no size: it is not whole, or it overflows `usize`.
    ///
    /// A product past `u128` overflows whatever the denominator (which is below 2^64), so it
    /// is an overflow even where it might also not be whole.
    pub fn try_eval(&self, symbols: &[usize]) -> Result<usize, EvalError> {
        let mut n = self.num as u128;
        for s in self.symbols() {
            let v = *symbols.get(s as usize).ok_or(EvalError::UnknownSymbol)?;
            n = n.checked_mul(v as u128).ok_or(EvalError::Overflow)?;
        }
        if !n.is_multiple_of(self.den as u128) {
            return Err(EvalError::Fraction);
        }
        usize::try_from(n / self.den as u128).map_err(|_| EvalError::Overflow)
    }

    /// Writes the dim with symbol names, e.g. `B*S` or `D/2`.
    pub fn display<'a>(&'a self, names: &'a [&'a str]) -> impl fmt::Display + 'a {
        DisplayDim { dim: self, names }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

struct DisplayDim<'a> {
    dim: &'a Dim,
    names: &'a [&'a str],
}

impl fmt::Display for DisplayDim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if self.dim.num != 1 || self.dim.factors[0] == NO_SYMBOL {
            write!(f, "{}", self.dim.num)?;
            first = false;
        }
        for s in self.dim.symbols() {
            if !first {
                f.write_str("*")?;
            }
            first = false;
            match self.names.get(s as usize) {
                Some(name) => f.write_str(name)?,
                None => write!(f, "?{s}")?,
            }
        }
        if self.dim.den != 1 {
            write!(f, "/{}", self.dim.den)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
        write!(f, "{}", self.display(&NAMES))
    }
}

/// Writes a shape as `[B, S, D]`.
pub fn display_shape(shape: &[Dim], names: &[&str]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.display(names).to_string()).collect();
    format!("[{}]", dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_normal_forms() {
        let (b, s) = (Dim::sym(0), Dim::sym(1));
        assert_eq!(b.times(s).unwrap(), s.times(b).unwrap());
        assert_ne!(b.times(s).unwrap(), b);
        let half = Dim::sym(2).div_lit(2).unwrap();
        assert_eq!(half.times(Dim::lit(2)).unwrap(), Dim::sym(2));
        assert_eq!(
            Dim::lit(6).div_lit(4).unwrap().times(Dim::lit(2)).unwrap(),
            Dim::lit(3)
        );
        assert_eq!(
            Dim::product(&[Dim::lit(4), Dim::lit(3)]).unwrap().as_lit(),
            Some(12)
        );
    }

    #[test]
    fn eval_rejects_fractions() {
        let half = Dim::sym(0).div_lit(2).unwrap();
        assert_eq!(half.eval(&[10]), Some(5));
        assert_eq!(half.eval(&[7]), None);
        assert_eq!(Dim::sym(3).eval(&[1]), None);
    }

    #[test]
    fn fast_paths_agree_with_wide_arithmetic() {
        let symbols = [7usize, 1, 4096, usize::MAX];
        let dims = [
            Dim::lit(0),
            Dim::lit(1),
            Dim::lit(u64::MAX),
            Dim::sym(0),
            Dim::sym(2),
            Dim::sym(3),
            Dim::sym(9),
            Dim::sym(2).times(Dim::lit(3)).unwrap(),
            Dim::sym(2).div_lit(2).unwrap(),
            Dim::sym(0).times(Dim::sym(2)).unwrap(),
            Dim::sym(3).times(Dim::sym(3)).unwrap(),
        ];
        for d in dims {
            assert_eq!(d.eval(&symbols), d.eval_wide(&symbols), "{d:?}");
        }
        assert_eq!(Dim::sym(2).eval(&symbols), Some(4096));
        assert_eq!(Dim::sym(9).eval(&symbols), None);
        assert_eq!(Dim::sym(3).times(Dim::lit(2)).unwrap().eval(&symbols), None);
    }

    #[test]
    fn eval_errors_say_why() {
        let (b, s) = (Dim::sym(0), Dim::sym(1));
        let bs = b.times(s).unwrap();
        let big = 1usize << 40;
        assert_eq!(bs.try_eval(&[big, 1 << 20]), Ok(1 << 60));
        assert_eq!(bs.try_eval(&[big, big]), Err(EvalError::Overflow));
        // Past u128 before the division.
        let b4 = Dim::product(&[b, b, b, b]).unwrap().div_lit(3).unwrap();
        assert_eq!(b4.try_eval(&[usize::MAX]), Err(EvalError::Overflow));
        // Whole after the division only: the wide product is divided before it narrows.
        let half = bs.div_lit(2).unwrap();
        assert_eq!(half.try_eval(&[usize::MAX, 2]), Ok(usize::MAX));
        assert_eq!(half.try_eval(&[3, 5]), Err(EvalError::Fraction));
        assert_eq!(Dim::sym(3).try_eval(&[1]), Err(EvalError::UnknownSymbol));
        assert_eq!(Dim::lit(u64::MAX).try_eval(&[]), Ok(usize::MAX));
    }

    #[test]
    fn too_many_factors_is_an_error() {
        let d = Dim::product(&[Dim::sym(0), Dim::sym(1), Dim::sym(2), Dim::sym(3)]).unwrap();
        assert_eq!(d.times(Dim::sym(0)), Err(DimError::TooManyFactors));
    }

    #[test]
    fn display_uses_names() {
        let d = Dim::sym(1).times(Dim::sym(0)).unwrap().div_lit(2).unwrap();
        assert_eq!(d.display(&["B", "S"]).to_string(), "B*S/2");
        assert_eq!(Dim::lit(64).display(&[]).to_string(), "64");
        assert_eq!(display_shape(&[Dim::sym(0), Dim::lit(3)], &["N"]), "[N, 3]");
    }
}
