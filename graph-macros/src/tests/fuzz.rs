//! Fuzzes [`expand`] on `proc_macro2` tokens, with no rustc per case: mutated valid programs
//! (the `lazy_graph!` bodies of the examples, the pass cases and the compile-fail cases) and
//! random token streams. An input may be rejected with any error, but the macro must never panic,
//! overflow its stack, or take long.
//!
//! Each case runs on a thread of its own with [`STACK`] bytes of stack, named after the case's
//! seed: a panic fails the test with the seed and the input, and a stack overflow aborts the
//! process with the thread's name in the message (`thread 'fuzz case 0x…' has overflowed its
//! stack`). Cases are reproducible: case `i` of a run with seed `s` uses the seed
//! `splitmix(s + i)`, and `LAZY_GRAPH_FUZZ_SEED=<case seed> LAZY_GRAPH_FUZZ_CASES=1` runs exactly
//! that case.
//!
//! ```text
//! cargo test -p graph-macros fuzz                                   # the default, in CI
//! LAZY_GRAPH_FUZZ_CASES=200000 cargo test -p graph-macros --release fuzz -- --nocapture
//! LAZY_GRAPH_FUZZ_SEED=12345 LAZY_GRAPH_FUZZ_CASES=50000 cargo test -p graph-macros fuzz
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream, TokenTree};

use crate::check::builtins::Builtin;
use crate::expand::expand;

/// The stack each case runs with: what rustc gives the thread that runs a proc macro is at least
/// this (its main thread has 8 MiB, and `RUST_MIN_STACK` only raises it).
pub const STACK: usize = 8 << 20;

/// Cases per run unless `LAZY_GRAPH_FUZZ_CASES` says otherwise: a few seconds in debug.
const DEFAULT_CASES: u64 = 3000;

/// The longest one case may take, in debug, before the run fails as too slow: a hang guard,
/// generous for a busy 2-core machine (the slowest case took 12 to 16 s there under load, a few
/// seconds quiet).
const CASE_LIMIT: Duration = Duration::from_secs(40);

/// SplitMix64: small, seedable, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The seed of case `i` of a run seeded `seed`.
fn case_seed(seed: u64, i: u64) -> u64 {
    Rng::new(seed.wrapping_add(i)).next()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The workspace root, where the corpus lives.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `lazy_graph! { ... }` bodies of every `.rs` file under the corpus folders.
pub fn corpus() -> Vec<TokenStream> {
    let mut files = Vec::new();
    for dir in ["examples", "tests", "tests/ui"] {
        collect_rs(&root().join(dir), &mut files);
    }
    files.sort();
    let mut bodies = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("corpus files are readable");
        let Ok(tokens) = TokenStream::from_str(&text) else {
            continue;
        };
        find_bodies(tokens, &mut bodies);
    }
    assert!(
        bodies.len() >= 20,
        "the corpus has the examples' graphs, found {}",
        bodies.len()
    );
    bodies
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.parent() == Some(&root().join("tests/ui")) {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Collects the group after each `lazy_graph !`, at any depth.
fn find_bodies(tokens: TokenStream, out: &mut Vec<TokenStream>) {
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in tts.iter().enumerate() {
        match tt {
            TokenTree::Ident(id) if id == "lazy_graph" => {
                if let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) =
                    (tts.get(i + 1), tts.get(i + 2))
                {
                    if p.as_char() == '!' {
                        out.push(g.stream());
                    }
                }
            }
            TokenTree::Group(g) => find_bodies(g.stream(), out),
            _ => {}
        }
    }
}

const WORDS: &[&str] = &[
    "let", "fn", "pub", "mut", "ref", "if", "else", "match", "for", "while", "loop", "as", "self", "Self",
    "crate", "super", "return", "async", "move", "dyn", "impl", "where", "Tensor", "f32", "f64", "f16",
    "bf16", "u8", "N", "D", "B", "S", "H", "K", "T", "x", "y", "_x", "__out0", "GRAPH", "e0_0", "r0", "n0",
    "c", "FMA", "stash", "NAN", "INFINITY", "nan", "inf",
];

const RAW: &[&str] = &[
    "match", "type", "fn", "let", "async", "dyn", "Tensor", "x", "abs", "exp",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "255",
    "256",
    "257",
    "65535",
    "65536",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "0.0",
    "1.0",
    "-0.0",
    "0.5",
    "1e308",
    "1e309",
    "1e-320",
    "1e999",
    "1.5f32",
    "2f64",
    "3u8",
    "0x10",
    "0b1",
    "1_000",
    "\"s\"",
    "'c'",
    "b'c'",
    "b\"b\"",
    "true",
    "false",
];

const PUNCTS: &[&str] = &[
    "+", "-", "*", "/", "%", ",", ";", ":", "::", ".", "..", "=", "==", "!=", "<", "<=", ">", ">=", "!", "&",
    "&&", "|", "||", "#", "->", "=>", "?", "@", "^", "~", "$",
];

fn word(rng: &mut Rng) -> TokenTree {
    let w = match rng.below(4) {
        0 => Builtin::names()
            .nth(rng.below(Builtin::names().count()))
            .unwrap_or("exp"),
        _ => rng.pick(WORDS),
    };
    match syn::parse_str::<TokenStream>(w)
        .ok()
        .and_then(|t| t.into_iter().next())
    {
        Some(tt) => tt,
        None => TokenTree::Ident(Ident::new("x", Span::call_site())),
    }
}

fn raw(rng: &mut Rng) -> TokenTree {
    TokenTree::Ident(Ident::new_raw(rng.pick(RAW), Span::call_site()))
}

fn single(text: &str) -> TokenStream {
    TokenStream::from_str(text).unwrap_or_default()
}

/// One random token (or a short run, for multi-character punctuation and raw identifiers).
fn random_tokens(rng: &mut Rng) -> Vec<TokenTree> {
    match rng.below(10) {
        0..=3 => vec![word(rng)],
        4 => vec![raw(rng)],
        5 | 6 => single(rng.pick(LITERALS)).into_iter().collect(),
        7 | 8 => single(rng.pick(PUNCTS)).into_iter().collect(),
        _ => {
            let delim = rng.pick(&[
                Delimiter::Parenthesis,
                Delimiter::Bracket,
                Delimiter::Brace,
                Delimiter::None,
            ]);
            let inner: TokenStream = (0..rng.below(3)).flat_map(|_| random_tokens(rng)).collect();
            vec![TokenTree::Group(Group::new(delim, inner))]
        }
    }
}

/// A random token stream, up to `depth` groups deep.
pub fn random_stream(rng: &mut Rng, depth: usize) -> TokenStream {
    let len = rng.below(40);
    let mut out = Vec::new();
    for _ in 0..len {
        if depth > 0 && rng.chance(15) {
            let delim = rng.pick(&[Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace]);
            out.push(TokenTree::Group(Group::new(delim, random_stream(rng, depth - 1))));
        } else {
            out.extend(random_tokens(rng));
        }
    }
    out.into_iter().collect()
}

/// Applies one mutation somewhere in `tokens`: at this level, or inside one of its groups.
pub fn mutate(tokens: TokenStream, rng: &mut Rng) -> TokenStream {
    let mut tts: Vec<TokenTree> = tokens.into_iter().collect();
    let groups: Vec<usize> = (0..tts.len())
        .filter(|&i| matches!(tts[i], TokenTree::Group(_)))
        .collect();
    if !groups.is_empty() && rng.chance(70) {
        let i = rng.pick(&groups);
        if let TokenTree::Group(g) = &tts[i] {
            let mut new = Group::new(g.delimiter(), mutate(g.stream(), rng));
            new.set_span(g.span());
            tts[i] = TokenTree::Group(new);
        }
        return tts.into_iter().collect();
    }
    let n = tts.len();
    let at = |rng: &mut Rng| rng.below(n.max(1));
    match rng.below(10) {
        0 if n > 0 => {
            tts.remove(at(rng));
        }
        1 if n > 0 => {
            let i = at(rng);
            let t = tts[i].clone();
            tts.insert(i, t);
        }
        2 if n > 1 => {
            let (i, j) = (at(rng), at(rng));
            tts.swap(i, j);
        }
        3 if n > 0 => {
            let i = at(rng);
            let new = random_tokens(rng);
            tts.splice(i..=i, new);
        }
        4 => {
            let i = rng.below(n + 1);
            let new = random_tokens(rng);
            tts.splice(i..i, new);
        }
        5 if n > 0 => {
            // Wrap a run in a group.
            let i = at(rng);
            let j = (i + 1 + rng.below(4)).min(n);
            let delim = rng.pick(&[
                Delimiter::Parenthesis,
                Delimiter::Bracket,
                Delimiter::Brace,
                Delimiter::None,
            ]);
            let inner: TokenStream = tts.drain(i..j).collect();
            tts.insert(i, TokenTree::Group(Group::new(delim, inner)));
        }
        6 if !groups.is_empty() => {
            // Splice a group's contents into its place.
            let i = rng.pick(&groups);
            if let TokenTree::Group(g) = tts.remove(i) {
                tts.splice(i..i, g.stream());
            }
        }
        7 => {
            // A literal becomes an extreme one.
            let lits: Vec<usize> = (0..n)
                .filter(|&i| matches!(tts[i], TokenTree::Literal(_)))
                .collect();
            if let Some(i) = (!lits.is_empty()).then(|| rng.pick(&lits)) {
                let new = match rng.below(3) {
                    0 => TokenTree::Literal(Literal::u64_unsuffixed(rng.next() >> rng.below(64))),
                    // Finite: the top bits cleared keep the exponent below infinity's.
                    1 => TokenTree::Literal(Literal::f64_unsuffixed(f64::from_bits(
                        rng.next() >> (2 + rng.below(8)),
                    ))),
                    _ => single(rng.pick(LITERALS)).into_iter().next().expect("one token"),
                };
                tts[i] = new;
            }
        }
        8 => {
            // An identifier becomes another name, an op, a keyword or a raw identifier.
            let ids: Vec<usize> = (0..n)
                .filter(|&i| matches!(tts[i], TokenTree::Ident(_)))
                .collect();
            if let Some(i) = (!ids.is_empty()).then(|| rng.pick(&ids)) {
                tts[i] = match rng.below(3) {
                    0 => raw(rng),
                    _ => word(rng),
                };
            }
        }
        _ => {
            // Repeat a run a few times: long chains and wide lists.
            if n > 0 {
                let i = at(rng);
                let j = (i + 1 + rng.below(6)).min(n);
                let run: Vec<TokenTree> = tts[i..j].to_vec();
                for _ in 0..rng.below(8) {
                    tts.splice(i..i, run.clone());
                }
            }
        }
    }
    tts.into_iter().collect()
}

/// The input of the case seeded `seed`.
pub fn case_input(corpus: &[TokenStream], seed: u64) -> TokenStream {
    let mut rng = Rng::new(seed);
    match rng.below(10) {
        0 => random_stream(&mut rng, 3),
        1 => {
            // Random tokens in a function body and in a signature.
            let body = random_stream(&mut rng, 2);
            let ty = random_stream(&mut rng, 1);
            quote::quote!(fn f(x: Tensor[N, D], y: #ty) -> Tensor[N, D] { #body })
        }
        _ => {
            let mut t = corpus[rng.below(corpus.len())].clone();
            for _ in 0..1 + rng.below(4) {
                t = mutate(t, &mut rng);
            }
            t
        }
    }
}

/// Runs `expand` on the tokens `input` builds, on a thread with [`STACK`] bytes of stack: the
/// expansion as text and how long it took, or the panic message.
///
/// `proc_macro2` tokens are not `Send`, so they are built on that thread.
pub fn run_bounded(
    name: String,
    input: impl FnOnce() -> TokenStream + Send + 'static,
) -> Result<(String, Duration), String> {
    let handle = std::thread::Builder::new()
        .name(name)
        .stack_size(STACK)
        .spawn(move || {
            let tokens = input();
            let start = Instant::now();
            let out = expand(tokens);
            let time = start.elapsed();
            (out.to_string(), time)
        })
        .expect("spawn a fuzz thread");
    handle.join().map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic with no message".into())
    })
}

#[test]
fn fuzz_expand_never_panics() {
    let corpus = corpus();
    let seed = env_u64("LAZY_GRAPH_FUZZ_SEED").unwrap_or(0x6c61_7a79);
    let cases = env_u64("LAZY_GRAPH_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let start = Instant::now();
    let mut slowest = (Duration::ZERO, 0);
    let mut failures = Vec::new();
    for i in 0..cases {
        // With one case, the seed is the case's own: how a failure is replayed.
        let s = if cases == 1 { seed } else { case_seed(seed, i) };
        let input = case_input(&corpus, s);
        let text = input.to_string();
        let lex = move || TokenStream::from_str(&text).expect("printed tokens lex again");
        match run_bounded(format!("fuzz case {s:#x}"), lex) {
            Ok((_, time)) => {
                if time > slowest.0 {
                    slowest = (time, s);
                }
                if time > CASE_LIMIT {
                    failures.push(format!("case seed {s:#x} took {time:?}\ninput: {input}"));
                }
            }
            Err(msg) => failures.push(format!("case seed {s:#x} panicked: {msg}\ninput: {input}")),
        }
        if failures.len() >= 5 {
            break;
        }
    }
    println!(
        "fuzzed {cases} cases from seed {seed:#x} in {:?}; slowest {:?} (case seed {:#x})",
        start.elapsed(),
        slowest.0,
        slowest.1
    );
    assert!(
        failures.is_empty(),
        "replay one with LAZY_GRAPH_FUZZ_SEED=<case seed> LAZY_GRAPH_FUZZ_CASES=1\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn mutations_are_reproducible() {
    let corpus = corpus();
    for s in 0..50 {
        assert_eq!(
            case_input(&corpus, s).to_string(),
            case_input(&corpus, s).to_string(),
            "the same seed gives the same input"
        );
    }
}
