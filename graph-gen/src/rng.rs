//! The generator's source of choices: SplitMix64 from a seed, recorded as it goes, or a recorded
//! sequence replayed (and edited by the shrinker). The same seed gives the same functions on
//! every machine and every version of every dependency.

/// Random choices: from a seed, or replayed from a list (zeros once the list runs out, which
/// the generator reads as its simplest choices).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    replay: Option<(Vec<u64>, usize)>,
    log: Vec<u64>,
}

impl Rng {
    /// A generator for `seed` (SplitMix64).
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            replay: None,
            log: Vec::new(),
        }
    }

    /// A generator replaying `choices`.
    pub fn replay(choices: Vec<u64>) -> Rng {
        Rng {
            state: 0,
            replay: Some((choices, 0)),
            log: Vec::new(),
        }
    }

    /// Every value drawn so far: replaying them draws the same again.
    pub fn log(&self) -> &[u64] {
        &self.log
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let v = match &mut self.replay {
            Some((choices, at)) => {
                *at += 1;
                choices.get(*at - 1).copied().unwrap_or(0)
            }
            None => {
                self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
        };
        self.log.push(v);
        v
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` (never for the choice 0).
    pub fn chance(&mut self, p: f64) -> bool {
        1.0 - self.unit() <= p
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}
