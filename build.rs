//! Writes the random-graph functions that `tests/random.rs` compiles (see its docs), from the
//! seeded generator in `graph-gen`.

fn main() {
    let var = |name: &str, default: u64| -> u64 {
        println!("cargo:rerun-if-env-changed={name}");
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
            Err(_) => default,
        }
    };
    let seed = var("LAZY_GRAPH_RANDOM_SEED", 1);
    let first = var("LAZY_GRAPH_RANDOM_FIRST", 0) as usize;
    let count = var("LAZY_GRAPH_RANDOM_COUNT", 500) as usize;
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // The shrinker's candidates: recorded choices, one function per line.
    println!("cargo:rerun-if-env-changed=LAZY_GRAPH_RANDOM_CHOICES");
    let module = match std::env::var("LAZY_GRAPH_RANDOM_CHOICES") {
        Ok(path) => {
            println!("cargo:rerun-if-changed={path}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
            graph_gen::module_from_choices(&text)
        }
        Err(_) => graph_gen::module(seed, first, count),
    };
    std::fs::write(out.join("random_graphs.rs"), module).expect("writing the random graphs");
}
