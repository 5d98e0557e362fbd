//! Sizes as the generator writes them: a literal, a symbol, or a monomial `k * A * B` or `A / 2`.

/// `num * syms... / den`; `syms` sorted, `den` is 1 or 2 (2 only for one even symbol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dim {
    /// The literal factor.
    pub num: u64,
    /// The divisor (1, or 2 for `D / 2`).
    pub den: u64,
    /// Symbol indices, sorted (a product).
    pub syms: Vec<usize>,
}

impl Dim {
    /// The literal `n`.
    pub fn lit(n: u64) -> Dim {
        Dim {
            num: n,
            den: 1,
            syms: Vec::new(),
        }
    }

    /// The symbol `s`.
    pub fn sym(s: usize) -> Dim {
        Dim {
            num: 1,
            den: 1,
            syms: vec![s],
        }
    }

    /// The literal value, if the dim is one.
    pub fn as_lit(&self) -> Option<u64> {
        self.syms.is_empty().then_some(self.num / self.den)
    }

    /// Whether the dim is the literal 1.
    pub fn is_one(&self) -> bool {
        self.as_lit() == Some(1)
    }

    /// `self * other`, if it stays a monomial of at most 3 symbols.
    pub fn mul(&self, other: &Dim) -> Option<Dim> {
        if self.den * other.den != 1 || self.syms.len() + other.syms.len() > 3 {
            return None;
        }
        let mut syms = [self.syms.clone(), other.syms.clone()].concat();
        syms.sort_unstable();
        Some(Dim {
            num: self.num * other.num,
            den: 1,
            syms,
        })
    }

    /// `k * self`.
    pub fn times(&self, k: u64) -> Dim {
        let mut d = self.clone();
        d.num *= k;
        if d.den == 2 && d.num.is_multiple_of(2) {
            d.num /= 2;
            d.den = 1;
        }
        d
    }

    /// Half of the dim, if expressible: an even literal factor, or `D / 2` of a lone symbol (which
    /// then must be even at run time: see [`Dim::halved_symbol`]).
    pub fn half(&self) -> Option<Dim> {
        if self.den == 1 && self.num.is_multiple_of(2) {
            return Some(Dim {
                num: self.num / 2,
                ..self.clone()
            });
        }
        (self.den == 1 && self.num == 1 && self.syms.len() == 1).then(|| Dim {
            den: 2,
            ..self.clone()
        })
    }

    /// The symbol that must be even for this dim to be whole.
    pub fn halved_symbol(&self) -> Option<usize> {
        (self.den == 2).then(|| self.syms[0])
    }

    /// The DSL spelling: `3`, `D`, `B * S`, `2 * D`, `D / 2`.
    pub fn render(&self, names: &[String]) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.num != 1 || self.syms.is_empty() {
            parts.push(self.num.to_string());
        }
        parts.extend(self.syms.iter().map(|&s| names[s].clone()));
        let product = parts.join(" * ");
        if self.den == 1 {
            product
        } else {
            format!("{product} / {}", self.den)
        }
    }

    /// Rust code computing the size from `sz: &[usize]` (the symbols' sizes).
    pub fn code(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.num != 1 || self.syms.is_empty() {
            parts.push(self.num.to_string());
        }
        parts.extend(self.syms.iter().map(|s| format!("sz[{s}]")));
        match self.den {
            1 => parts.join(" * "),
            den => format!("{} / {den}", parts.join(" * ")),
        }
    }

    /// The size with every symbol at its largest (`max[s]`).
    pub fn max(&self, max: &[u64]) -> u64 {
        self.syms.iter().fold(self.num, |a, &s| a * max[s]) / self.den
    }
}
