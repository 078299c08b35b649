//! Seeds derived from seeds: the one place netcalc turns a run's seed and a counter (an epoch,
//! a batch, an element) into another, so that every random stream of a run is repeatable on
//! its own.

/// `2⁶⁴ / φ`, the odd constant of Weyl sequences and SplitMix64: multiples of it spread
/// consecutive counters over all 64 bits.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// `seed ^ counter·γ`: the seed of stream `counter` of a run seeded with `seed` (the shuffle of
/// an epoch, the draws of a batch).
pub fn stream(seed: u64, counter: u64) -> u64 {
    seed ^ counter.wrapping_mul(GOLDEN_GAMMA)
}

/// SplitMix64's output for element `i` of the sequence seeded with `seed`: `seed + i·γ` through
/// its finalizer. Uniform 64-bit values, each computed on its own (no state), so a mask can be
/// drawn in any order or in parallel.
pub fn splitmix64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(GOLDEN_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // SplitMix64 seeded with 0: its first outputs (the sequence starts at seed + γ), as in
        // the reference implementation (Steele, Lea and Flood; Vigna's splitmix64.c)
        assert_eq!(splitmix64(0, 1), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0, 2), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(stream(5, 0), 5);
        assert_eq!(stream(0, 1), GOLDEN_GAMMA);
    }
}
