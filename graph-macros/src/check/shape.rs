//! Symbolic shape rules. Each rule takes argument shapes and returns the result shape, or the
//! diagnostic that explains why the shapes do not fit.
//!
//! Rules, with what they reject:
//! - broadcast: dims are right-aligned; equal dims (same symbol or literal) stay, a literal `1`
//!   stretches. `[N, D] + [N, E]` is rejected: `D` and `E` might differ at run time.
//! - reduce: the axis keeps size 1, so `x - max(x, -1)` broadcasts back.
//! - matmul: `[.., M, K] x [.., K, N] -> [.., M, N]`, batch dims broadcast; `K` must match.
//! - reshape: element counts must be equal monomials: `[B, S, D] -> [B * S, D]` is fine,
//!   `[B, S, D] -> [B, D]` is not.
//! - narrow: a literal range must fit a literal dim (symbolic ranges are checked at run time).
//! - cat: all dims but the axis equal; the axis sizes must add to one monomial (`D/2 + D/2`).

use graph_ir::{display_shape, Dim, DimError};

use crate::diag::Diag;

pub struct Shapes<'a> {
    pub names: &'a [&'a str],
}

impl Shapes<'_> {
    pub fn show(&self, shape: &[Dim]) -> String {
        display_shape(shape, self.names)
    }

    fn dim(&self, d: &Dim) -> String {
        d.display(self.names).to_string()
    }

    /// Normalises a possibly negative axis.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize, Diag> {
        let r = rank as i64;
        if (-r..r).contains(&axis) {
            Ok(axis.rem_euclid(r.max(1)) as usize)
        } else {
            Err(Diag::AxisOutOfRange { axis, rank })
        }
    }

    pub fn broadcast(&self, a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, Diag> {
        let rank = a.len().max(b.len());
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let da = (i + a.len()).checked_sub(rank).map(|j| a[j]);
            let db = (i + b.len()).checked_sub(rank).map(|j| b[j]);
            out.push(match (da, db) {
                (Some(x), None) | (None, Some(x)) => x,
                (Some(x), Some(y)) if x == y || y.is_one() => x,
                (Some(x), Some(y)) if x.is_one() => y,
                (Some(x), Some(y)) => {
                    return Err(Diag::BroadcastMismatch {
                        left: self.dim(&x),
                        right: self.dim(&y),
                        lhs: self.show(a),
                        rhs: self.show(b),
                    })
                }
                (None, None) => unreachable!("i < rank"),
            });
        }
        Ok(out)
    }

    pub fn reduce(&self, x: &[Dim], axis: usize) -> Vec<Dim> {
        let mut out = x.to_vec();
        out[axis] = Dim::lit(1);
        out
    }

    pub fn matmul(&self, a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, Diag> {
        for (side, x) in [("left", a), ("right", b)] {
            if x.len() < 2 {
                // A vector becomes a row on the left and a column on the right.
                let ones = std::iter::repeat_n(Dim::lit(1), 2 - x.len());
                let fix: Vec<Dim> = match side {
                    "left" => ones.chain(x.iter().copied()).collect(),
                    _ => x.iter().copied().chain(ones).collect(),
                };
                return Err(Diag::MatmulRank {
                    side,
                    shape: self.show(x),
                    fix: self.show(&fix),
                });
            }
        }
        let (k1, k2) = (a[a.len() - 1], b[b.len() - 2]);
        if k1 != k2 {
            return Err(Diag::MatmulInnerDim {
                left: self.dim(&k1),
                right: self.dim(&k2),
                lhs: self.show(a),
                rhs: self.show(b),
                transposed: b[b.len() - 1] == k1,
            });
        }
        let mut out = self.broadcast(&a[..a.len() - 2], &b[..b.len() - 2])?;
        out.push(a[a.len() - 2]);
        out.push(b[b.len() - 1]);
        Ok(out)
    }

    /// Swaps two axes, each given as written and as normalised.
    pub fn transpose(&self, x: &[Dim], a: (i64, usize), b: (i64, usize)) -> Result<Vec<Dim>, Diag> {
        if a.1 == b.1 {
            return Err(Diag::SameAxis {
                first: a.0,
                second: b.0,
                axis: a.1,
                rank: x.len(),
            });
        }
        let mut out = x.to_vec();
        out.swap(a.1, b.1);
        Ok(out)
    }

    pub fn reshape(&self, x: &[Dim], to: &[Dim]) -> Result<Vec<Dim>, Diag> {
        // Element counts compare as products of any length: the limit of 4 symbol factors is
        // for sizes a user writes, not for the count of a rank-5 `[N, N, D, D, N]`.
        let (from_count, to_count) = (element_count(x), element_count(to));
        if from_count.is_none() || to_count.is_none() {
            return Err(Diag::DimTooComplex);
        }
        if from_count != to_count {
            let count = |shape: &[Dim]| match Dim::product(shape) {
                Ok(d) => self.dim(&d),
                Err(_) => shape.iter().map(|d| self.dim(d)).collect::<Vec<_>>().join(" * "),
            };
            return Err(Diag::ReshapeCount {
                from: self.show(x),
                to: self.show(to),
                from_count: count(x),
                to_count: count(to),
            });
        }
        Ok(to.to_vec())
    }

    pub fn broadcast_to(&self, x: &[Dim], to: &[Dim]) -> Result<Vec<Dim>, Diag> {
        let fits = x.len() <= to.len()
            && x.iter()
                .rev()
                .zip(to.iter().rev())
                .all(|(d, t)| d == t || d.is_one());
        if !fits {
            return Err(Diag::BroadcastTo {
                from: self.show(x),
                to: self.show(to),
            });
        }
        Ok(to.to_vec())
    }

    pub fn narrow(&self, x: &[Dim], axis: usize, start: Dim, len: Dim) -> Result<Vec<Dim>, Diag> {
        if let (Some(s), Some(l), Some(n)) = (start.as_lit(), len.as_lit(), x[axis].as_lit()) {
            if s.checked_add(l).is_none_or(|end| end > n) {
                return Err(Diag::NarrowOutOfRange {
                    start: s,
                    len: l,
                    size: n,
                });
            }
        }
        let mut out = x.to_vec();
        out[axis] = len;
        Ok(out)
    }

    /// The shape of concatenating `parts` along `axis`; `Err((i, diag))` blames part `i`.
    pub fn cat(&self, parts: &[&[Dim]], axis: usize) -> Result<Vec<Dim>, (usize, Diag)> {
        let first = parts[0];
        let mut total = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let same_rest = p.len() == first.len()
                && p.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(j, (a, b))| j == axis || a == b);
            if !same_rest {
                let diag = Diag::CatMismatch {
                    axis,
                    first: self.show(first),
                    other: self.show(p),
                };
                return Err((i, diag));
            }
            total.push(p[axis]);
        }
        let sum = add_dims(&total).ok_or_else(|| {
            let dims: Vec<String> = total.iter().map(|d| self.dim(d)).collect();
            (
                0,
                Diag::CatSize {
                    dims: dims.join(" + "),
                },
            )
        })?;
        let mut out = first.to_vec();
        out[axis] = sum;
        Ok(out)
    }
}

/// The sum of dims that are rational multiples of one monomial (`D/2 + D/2 = D`, `3 + 5 = 8`).
fn add_dims(dims: &[Dim]) -> Option<Dim> {
    let (_, _, factors) = dims[0].parts();
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for d in dims {
        let (n, dd, f) = d.parts();
        if f != factors {
            return None;
        }
        num = num
            .checked_mul(dd as u128)?
            .checked_add((n as u128).checked_mul(den)?)?;
        den = den.checked_mul(dd as u128)?;
    }
    let unit = Dim::from_parts(1, 1, factors);
    let num = u64::try_from(num).ok()?;
    let den = u64::try_from(den).ok()?;
    unit.times(Dim::lit(num)).ok()?.div_lit(den).ok()
}

/// The diagnostic for a size that cannot be computed.
pub fn dim_error(err: DimError) -> Diag {
    match err {
        DimError::TooManyFactors => Diag::DimTooComplex,
        DimError::DivideByZero => Diag::DivideByZero,
        DimError::Overflow => Diag::SizeOverflow,
    }
}

/// The element count of a shape as a reduced fraction and its sorted symbol factors, with no
/// limit on their number; `None` where the literal factors overflow `u128`.
fn element_count(shape: &[Dim]) -> Option<(u128, u128, Vec<u16>)> {
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let (mut num, mut den, mut syms) = (1u128, 1u128, Vec::new());
    for d in shape {
        let (n, m, _) = d.parts();
        num = num.checked_mul(u128::from(n))?;
        den = den.checked_mul(u128::from(m))?;
        let g = gcd(num, den).max(1);
        (num, den) = (num / g, den / g);
        syms.extend(d.symbols());
    }
    syms.sort_unstable();
    Some((num, den, syms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["N", "D", "E"];

    fn shapes() -> Shapes<'static> {
        Shapes { names: NAMES }
    }

    #[test]
    fn broadcast_right_aligns_and_stretches_ones() {
        let (n, d) = (Dim::sym(0), Dim::sym(1));
        let s = shapes();
        assert_eq!(s.broadcast(&[n, d], &[d]).unwrap(), vec![n, d]);
        assert_eq!(s.broadcast(&[n, Dim::lit(1)], &[n, d]).unwrap(), vec![n, d]);
        assert!(s.broadcast(&[n, d], &[n, Dim::sym(2)]).is_err());
        assert!(s.broadcast(&[d], &[Dim::lit(64)]).is_err());
    }

    #[test]
    fn matmul_checks_inner_dims() {
        let (n, d, e) = (Dim::sym(0), Dim::sym(1), Dim::sym(2));
        let s = shapes();
        assert_eq!(s.matmul(&[n, d], &[d, e]).unwrap(), vec![n, e]);
        assert!(matches!(
            s.matmul(&[n, d], &[e, d]),
            Err(Diag::MatmulInnerDim { .. })
        ));
        assert!(matches!(s.matmul(&[d], &[d, e]), Err(Diag::MatmulRank { .. })));
    }

    #[test]
    fn matmul_errors_say_how_to_fix() {
        let (n, d, e) = (Dim::sym(0), Dim::sym(1), Dim::sym(2));
        let s = shapes();
        let Err(Diag::MatmulRank { side, fix, .. }) = s.matmul(&[d], &[d, e]) else {
            panic!("a vector on the left is rejected")
        };
        assert_eq!((side, fix.as_str()), ("left", "[1, D]"));
        let Err(Diag::MatmulRank { side, fix, .. }) = s.matmul(&[n, d], &[d]) else {
            panic!("a vector on the right is rejected")
        };
        assert_eq!((side, fix.as_str()), ("right", "[D, 1]"));
        let Err(Diag::MatmulInnerDim { transposed, .. }) = s.matmul(&[n, d], &[e, d]) else {
            panic!("different inner dims are rejected")
        };
        assert!(transposed, "[N, D] x [E, D] is a transposed right side");
    }

    #[test]
    fn transpose_rejects_one_axis_twice() {
        let (n, d) = (Dim::sym(0), Dim::sym(1));
        let s = shapes();
        assert_eq!(s.transpose(&[n, d], (0, 0), (-1, 1)).unwrap(), vec![d, n]);
        assert!(matches!(
            s.transpose(&[n, d], (-1, 1), (1, 1)),
            Err(Diag::SameAxis {
                first: -1,
                second: 1,
                ..
            })
        ));
    }

    #[test]
    fn reshape_compares_element_counts() {
        let (n, d) = (Dim::sym(0), Dim::sym(1));
        let s = shapes();
        let nd = n.times(d).unwrap();
        assert_eq!(s.reshape(&[n, d], &[nd]).unwrap(), vec![nd]);
        assert!(s.reshape(&[n, d], &[n]).is_err());
    }

    #[test]
    fn cat_adds_halves() {
        let d = Dim::sym(1);
        let half = d.div_lit(2).unwrap();
        let s = shapes();
        assert_eq!(s.cat(&[&[half], &[half]], 0).unwrap(), vec![d]);
        assert_eq!(
            s.cat(&[&[Dim::lit(3)], &[Dim::lit(5)]], 0).unwrap(),
            vec![Dim::lit(8)]
        );
        assert!(s.cat(&[&[d], &[Dim::sym(2)]], 0).is_err());
    }

    #[test]
    fn axes_count_from_the_end() {
        let s = shapes();
        assert_eq!(s.axis(-1, 3).unwrap(), 2);
        assert_eq!(s.axis(0, 3).unwrap(), 0);
        assert!(s.axis(3, 3).is_err());
        assert!(s.axis(-4, 3).is_err());
    }
}
