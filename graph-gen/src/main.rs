//! The random-graph tests' companion tool.
//!
//! ```text
//! cargo run -p graph-gen -- show SEED INDEX [COUNT]   # print functions as the tests compile them
//! cargo run -p graph-gen -- shrink SEED INDEX         # minimise a failing function
//! ```
//!
//! `shrink` edits the function's recorded choices (deleting runs of them, or setting one to 0,
//! which the generator reads as its simplest option), compiles each round's candidates into
//! `tests/random.rs` through `LAZY_GRAPH_RANDOM_CHOICES`, and keeps the smallest candidate that
//! still fails: to compile, or against the reference. It prints the minimised function, its
//! failure, and its choices. Set `LAZY_GRAPH_RANDOM_INPUTS` to shrink with fixed inputs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use graph_gen::{generate, generate_from};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| usage())
    };
    match args.first().map(String::as_str) {
        Some("show") => {
            let (seed, index) = (num(1), num(2) as usize);
            let count = if args.len() > 3 { num(3) as usize } else { 1 };
            for i in index..index + count {
                let f = generate(seed, i);
                println!(
                    "{}\n// reference:\n// {}\n",
                    f.source,
                    f.reference.replace('\n', "\n// ")
                );
            }
        }
        Some("shrink") => shrink(generate(num(1), num(2) as usize).choices),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: graph-gen show SEED INDEX [COUNT] | graph-gen shrink SEED INDEX");
    std::process::exit(2)
}

/// What became of one candidate.
#[derive(Debug, Clone)]
enum Outcome {
    Passed,
    Failed(String),
}

fn shrink(mut best: Vec<u64>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join("graph-gen-shrink");
    std::fs::create_dir_all(&work).expect("a work folder");
    // The caller's target folder where it has one (`cargo run` has let go of it by now), so the
    // first round does not build Candle again.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| work.join("target"), PathBuf::from);
    let first = run(&root, &work, &target, std::slice::from_ref(&best));
    let Outcome::Failed(mut why) = first[0].clone() else {
        println!("the function passes: nothing to shrink");
        return;
    };
    println!(
        "shrinking {} ({} choices): {}",
        generate_from(best.clone(), 0).source,
        best.len(),
        why.lines().next().unwrap_or("")
    );
    for round in 1.. {
        let size = |c: &[u64]| generate_from(c.to_vec(), 0).source.len();
        let candidates = candidates(&best, size(&best));
        if candidates.is_empty() {
            break;
        }
        let outcomes = run(&root, &work, &target, &candidates);
        let smallest = candidates
            .iter()
            .zip(&outcomes)
            .filter_map(|(c, o)| match o {
                Outcome::Failed(w) => Some((size(c), c, w)),
                Outcome::Passed => None,
            })
            .min_by_key(|(s, _, _)| *s);
        match smallest {
            Some((s, c, w)) if s < size(&best) => {
                println!(
                    "round {round}: {} candidates, smallest failing one has {s} characters",
                    candidates.len()
                );
                best = c.clone();
                why = w.clone();
            }
            _ => break,
        }
    }
    let f = generate_from(best.clone(), 0);
    println!(
        "\nminimised function:\n{}\nfailure:\n{why}\nchoices: {:?}",
        f.source, best
    );
}

/// Smaller variants of `choices`: runs of them deleted, single ones set to 0, and the tail cut;
/// only those whose function is shorter, at most 48.
fn candidates(choices: &[u64], size: usize) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |c: Vec<u64>| {
        let s = generate_from(c.clone(), 0).source;
        if s.len() < size && seen.insert(s) {
            out.push(c);
        }
    };
    for cut in [choices.len() / 2, choices.len() * 3 / 4] {
        push(choices[..cut].to_vec());
    }
    for len in [8, 4, 2, 1] {
        for start in (0..choices.len()).step_by(len.max(choices.len() / 12)) {
            let mut c = choices.to_vec();
            c.drain(start..(start + len).min(c.len()));
            push(c);
        }
    }
    for i in (0..choices.len()).step_by((choices.len() / 16).max(1)) {
        if choices[i] != 0 {
            let mut c = choices.to_vec();
            c[i] = 0;
            push(c);
        }
    }
    out.truncate(48);
    out
}

/// Compiles and runs `candidates` through `tests/random.rs`; what became of each.
fn run(root: &Path, work: &Path, target: &Path, candidates: &[Vec<u64>]) -> Vec<Outcome> {
    let mut outcomes = vec![Outcome::Passed; candidates.len()];
    let mut live: Vec<usize> = (0..candidates.len()).collect();
    loop {
        let file = work.join("choices.txt");
        let lines: Vec<String> = live
            .iter()
            .map(|&i| {
                candidates[i]
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        std::fs::write(&file, lines.join("\n") + "\n").expect("writing the candidates");
        let output = Command::new(env!("CARGO"))
            .args(["test", "--test", "random", "--", "cpu"])
            .current_dir(root)
            .env("LAZY_GRAPH_RANDOM_CHOICES", &file)
            .env("CARGO_TARGET_DIR", target)
            .output()
            .expect("running cargo");
        let text =
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        // Compile errors: map each to the function whose `lazy_graph!` holds its line.
        let broken = compile_errors(&text);
        if !broken.is_empty() {
            for (k, message) in broken {
                if let Some(&i) = live.get(k) {
                    outcomes[i] = Outcome::Failed(format!("does not compile:\n{message}"));
                }
            }
            live.retain(|&i| matches!(outcomes[i], Outcome::Passed));
            if live.is_empty() {
                return outcomes;
            }
            continue;
        }
        for (k, &i) in live.iter().enumerate() {
            let marker = format!("---- f{k} ");
            if let Some(at) = text.find(&marker) {
                let rest = &text[at..];
                let end = rest[5..].find("\n---- ").map_or(rest.len(), |e| e + 5);
                outcomes[i] = Outcome::Failed(rest[..end].trim().to_string());
            }
        }
        if !output.status.success() && outcomes.iter().all(|o| matches!(o, Outcome::Passed)) {
            panic!("cargo test failed without naming a function:\n{text}");
        }
        return outcomes;
    }
}

/// `(function index, message)` for each compile error in the generated module.
fn compile_errors(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("random_graphs.rs:") {
        let line: usize = text[at + 17..]
            .split(':')
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let path_start = text[..at].rfind(' ').map_or(0, |p| p + 1);
        let path = &text[path_start..at + 16];
        let Ok(module) = std::fs::read_to_string(path) else {
            continue;
        };
        let function = module
            .lines()
            .take(line)
            .filter_map(|l| l.strip_prefix("// function f"))
            .last()
            .and_then(|n| n.parse().ok());
        if let Some(k) = function {
            let start = text[..at].rfind("error").unwrap_or(at);
            out.push((k, text[start..(at + 200).min(text.len())].to_string()));
        }
    }
    out
}
