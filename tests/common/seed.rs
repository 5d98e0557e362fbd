//! The seeded generator of every test's random draws. Standalone, so that test crates without
//! the rest of `common` (the Llama tests) include it with `#[path]`.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// A generator seeded afresh each run; the seed is printed so a failure can be replayed with
/// `LAZY_GRAPH_SEED=<seed> cargo test ...`.
pub fn rng() -> StdRng {
    let seed = std::env::var("LAZY_GRAPH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("random inputs from LAZY_GRAPH_SEED={seed}");
    StdRng::seed_from_u64(seed)
}
