//! The one source of randomness in this crate: a seeded generator, so every generated, sampled or
//! mixed suite is a function of its inputs and the seed.

/// splitmix64: a small, well-mixed generator; enough to pick phrasings and samples reproducibly.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0). The modulo bias is below 2^-40 for any
    /// bound this crate uses (at most a few million).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next() % bound
    }

    pub(crate) fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        let idx = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(idx).copied().unwrap_or("")
    }
}
