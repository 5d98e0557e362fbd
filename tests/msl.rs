//! The generated Metal Shading Language, checked where no Metal compiler exists: every Metal
//! kernel of the test and example graphs, in configurations that cover every path of its template
//! (see `covering_configs`), compiles with clang as C++14 (MSL is C++14-based) against
//! `tests/msl/metal_stdlib`, a shim of the Metal types and functions the prelude uses. That
//! catches undeclared names, type errors, address-space mismatches and C++17 constructs; it does
//! not prove that Metal accepts the source (see the shim's header) or computes the right values:
//! that takes a Mac (`cargo test --features metal`).
//!
//! The prelude's own arithmetic (erf, bf16 rounding, division by magic numbers) is plain C++ over
//! the shim's math, so it also runs here, on the host, against Rust references.
//!
//! Needs clang++ (or `LAZY_GRAPH_CLANG`); skips loudly without it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use graph_runtime::ir::Step;
use graph_runtime::testing::metal::{covering_configs, full_source, PRELUDE};

#[macro_use]
#[allow(unused_macros)]
mod common;

// The examples' graphs, linked into this binary; their `main`s go unused.
#[allow(dead_code)]
#[path = "../examples/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[allow(dead_code)]
#[path = "../examples/serve.rs"]
mod serve;

/// The attributes generated kernels may carry: clang ignores unknown attributes, so a misspelt
/// one would pass the compile check.
const ATTRIBUTES: [&str; 6] = [
    "kernel",
    "max_total_threads_per_threadgroup",
    "buffer",
    "thread_position_in_threadgroup",
    "threadgroup_position_in_grid",
    "threadgroups_per_grid",
];

/// The clang++ to run, or `None` after a loud notice.
fn clang() -> Option<String> {
    let clang = std::env::var("LAZY_GRAPH_CLANG").unwrap_or_else(|_| "clang++".to_string());
    match Command::new(&clang).arg("--version").output() {
        Ok(out) if out.status.success() => Some(clang),
        _ => {
            eprintln!(
                "\n**** SKIPPED: no {clang} to check the generated Metal source with \
                 (apt-get install -y clang, or set LAZY_GRAPH_CLANG) ****\n"
            );
            None
        }
    }
}

/// Runs `clang` on `source` (C++14 against the shim) with `args`; the error is its output.
fn compile(clang: &str, source: &str, args: &[&str]) -> Result<(), String> {
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/msl");
    let mut child = Command::new(clang)
        .args([
            "-std=c++14",
            "-nostdinc",
            "-nostdinc++",
            "-Wno-unknown-attributes",
        ])
        .arg("-I")
        .arg(&shim)
        .args(args)
        .args(["-x", "c++", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {clang}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(source.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && log.is_empty() {
        Ok(())
    } else {
        Err(log)
    }
}

/// The attribute names in `source`'s `[[...]]` lists.
fn attributes(source: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for part in source.split("[[").skip(1) {
        let list = part.split("]]").next().unwrap_or_default();
        for attr in list.split(',') {
            found.push(attr.split('(').next().unwrap_or_default().trim());
        }
    }
    found
}

#[test]
fn every_generated_kernel_type_checks() {
    let Some(clang) = clang() else { return };
    // Kernels by configuration: each configuration's kernels make one translation unit, each in
    // a namespace of its own (graphs in different modules may reuse a kernel name).
    let mut units: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
    let mut names = Vec::new();
    for graph in graph_runtime::graphs() {
        for step in graph.plan() {
            if let Step::Kernel(k) = step {
                names.push(k.name);
                for attr in attributes(k.gpu.metal) {
                    assert!(ATTRIBUTES.contains(&attr), "{}: unknown attribute {attr}", k.name);
                }
                for config in covering_configs(k) {
                    units
                        .entry(config.defines())
                        .or_default()
                        .push((k.name, k.gpu.metal));
                }
            }
        }
    }
    // The graphs of tests/common and the three examples: a floor that catches graphs going
    // missing.
    assert!(names.len() >= 20, "only {} kernels found: {names:?}", names.len());
    let unit = |defines: &str, kernels: &[(&str, &str)]| {
        let mut text = full_source(defines, "");
        for (i, (_, source)) in kernels.iter().enumerate() {
            text += &format!("namespace lg_check{i} {{\n{source}}}\n");
        }
        text
    };
    let start = Instant::now();
    let units: Vec<(String, Vec<(&str, &str)>)> = units.into_iter().collect();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((defines, kernels)) = units.get(i) else {
                    break;
                };
                if compile(&clang, &unit(defines, kernels), &["-fsyntax-only"]).is_ok() {
                    continue;
                }
                // Name the kernels that fail, one by one.
                for kernel in kernels {
                    let text = unit(defines, std::slice::from_ref(kernel));
                    if let Err(log) = compile(&clang, &text, &["-fsyntax-only"]) {
                        let config = defines.replace('\n', "; ");
                        failures.lock().unwrap().push(format!(
                            "{} with {config}:\n{log}\n--- source ---\n{text}",
                            kernel.0
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let checks: usize = units.iter().map(|(_, k)| k.len()).sum();
    eprintln!(
        "clang: {checks} kernel configurations of {} kernels in {} units, {:.1?}",
        names.len(),
        units.len(),
        start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
}

/// A host program: the prelude (in a bf16 configuration) and `main`, printing what `main` prints.
fn run_on_host(clang: &str, main: &str) -> String {
    // One file per call: the tests run in parallel, and a program being written cannot run.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let exe = dir.join(format!("msl-host-{}-{call}", std::process::id()));
    let defines = "#define LG_DTYPE 3\n#define LG_VEC 1\n#define LG_WIDE 0\n#define LG_BLOCK 256\n";
    let source = format!("{defines}{PRELUDE}\nextern \"C\" int printf(const char*, ...);\n{main}");
    let exe_arg = exe.to_str().expect("a UTF-8 temporary path");
    if let Err(log) = compile(clang, &source, &["-O1", "-o", exe_arg]) {
        panic!("the host program does not build:\n{log}\n--- source ---\n{source}");
    }
    let out = Command::new(&exe).output().expect("the host program runs");
    let _ = std::fs::remove_file(&exe);
    assert!(out.status.success(), "the host program failed");
    String::from_utf8(out.stdout).expect("ASCII output")
}

/// `uint` literals of the bits of `values`, as a C array initialiser.
fn bits_array(values: impl IntoIterator<Item = f32>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| format!("{}u", v.to_bits())).collect();
    format!("{{{}}}", items.join(", "))
}

/// Lines of two `u32`s: an input's bits and the result's.
fn pairs(out: &str) -> Vec<(u32, u32)> {
    out.lines()
        .map(|l| {
            let mut it = l.split(' ').map(|w| w.parse::<u32>().expect("a number"));
            (it.next().expect("input"), it.next().expect("output"))
        })
        .collect()
}

/// Metal has no erf: the prelude's stays within a few f32 ulp of the true value everywhere,
/// including near zero (relative error), across its two ranges and at their seams.
#[test]
fn prelude_erf_is_accurate() {
    let Some(clang) = clang() else { return };
    let mut xs: Vec<f32> = (-6000..=6000).map(|i| i as f32 * 1e-3).collect();
    xs.extend([
        1e-30,
        1e-10,
        1e-4,
        0.899_999_9,
        0.9,
        3.999_999_8,
        4.0,
        9.0,
        f32::INFINITY,
    ]);
    xs.extend(xs.clone().iter().map(|x| -x));
    let main = format!(
        "int main() {{\n  const uint xs[] = {};\n  for (uint x : xs) printf(\"%u %u\\n\", x, \
         as_type<uint>(lg_erf(as_type<float>(x))));\n  return 0;\n}}\n",
        bits_array(xs.iter().copied())
    );
    let mut worst = (0f64, 0f32);
    for (x, y) in pairs(&run_on_host(&clang, &main)) {
        let (x, y) = (f32::from_bits(x), f32::from_bits(y));
        let exact = graph_ir::math::erf(f64::from(x));
        // Relative to the value, or to an ulp of 1 where erf rounds to +-1.
        let err = (f64::from(y) - exact).abs() / exact.abs().max(f64::MIN_POSITIVE);
        if err > worst.0 {
            worst = (err, x);
        }
    }
    eprintln!("lg_erf: max relative error {:e} at {}", worst.0, worst.1);
    assert!(
        worst.0 < 4.0 * f64::from(f32::EPSILON),
        "lg_erf({}) is off by {:e}",
        worst.1,
        worst.0
    );
}

/// The prelude's own functions at zeros, infinities and NaN give PyTorch's results, as the CPU
/// kernels do (`tests/special.rs` runs the whole table where a device runs the kernels):
/// `maximum`/`minimum` propagate NaN (Metal's `fmax` would not), `relu(NaN)` is NaN, `erf(±inf)`
/// is ±1 and `erf(NaN)` NaN.
#[test]
fn prelude_special_values_follow_pytorch() {
    let Some(clang) = clang() else { return };
    let specials = [0.0, -0.0, 1.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    let (a, b): (Vec<f32>, Vec<f32>) = specials.iter().flat_map(|&a| specials.map(|b| (a, b))).unzip();
    let main = format!(
        "int main() {{\n  const uint as[] = {};\n  const uint bs[] = {};\n  \
         for (int i = 0; i < {n}; ++i) {{\n    const float a = as_type<float>(as[i]), b = as_type<float>(bs[i]);\n    \
         printf(\"%u %u %u %u\\n\", as_type<uint>(lg_maximum(a, b)), as_type<uint>(lg_minimum(a, b)), \
         as_type<uint>(lg_relu(a)), as_type<uint>(lg_erf(a)));\n  }}\n  return 0;\n}}\n",
        bits_array(a.iter().copied()),
        bits_array(b.iter().copied()),
        n = a.len(),
    );
    let out = run_on_host(&clang, &main);
    let same = |got: f32, want: f64| (got.is_nan() && want.is_nan()) || f64::from(got) == want;
    let mut failures = Vec::new();
    for (line, (&a, &b)) in out.lines().zip(a.iter().zip(&b)) {
        let got: Vec<f32> = line
            .split(' ')
            .map(|w| f32::from_bits(w.parse().expect("a number")))
            .collect();
        let (x, y) = (f64::from(a), f64::from(b));
        let erf = if x.is_infinite() {
            x.signum()
        } else {
            graph_ir::math::erf(x)
        };
        let want = [
            ("maximum", graph_ir::math::maximum(x, y)),
            ("minimum", graph_ir::math::minimum(x, y)),
            ("relu", graph_ir::math::relu(x)),
            ("erf", f64::from(erf as f32)),
        ];
        for (&g, (name, w)) in got.iter().zip(want) {
            // erf is within a few ulp (prelude_erf_is_accurate); here only its class matters.
            let close = name == "erf" && w.is_finite() && (f64::from(g) - w).abs() < 1e-6;
            if !same(g, w) && !close {
                failures.push(format!("{name}({a}, {b}) = {g}, want {w}"));
            }
        }
    }
    assert_eq!(out.lines().count(), a.len(), "one line per case");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every unary op the Metal kernels call a prelude function for computes the op table's f64
/// math (`graph_ir::UnaryOp::info`), on the host: special values by class (both NaN, the same
/// infinity), the rest within 8 f32 ulp of `max(|want|, 1)` (`prelude_erf_is_accurate` and the
/// ops' own tests hold the accuracy near 0, relative to the value).
#[test]
fn prelude_unary_ops_follow_the_table() {
    use graph_ir::{CForm, UnaryOp};
    let Some(clang) = clang() else { return };
    let mut xs: Vec<f32> = (-64..=64).map(|i| i as f32 * 0.125).collect();
    xs.extend([
        0.1, -0.1, 1e-3, -1e-3, 3e-5, -3e-5, 0.4999, 2.5, -2.5, 10.7, -10.7, 88.0, -88.0,
    ]);
    xs.extend([-0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    let ops: Vec<(UnaryOp, &str)> = UnaryOp::ALL
        .into_iter()
        .filter_map(|op| match op.info().c {
            CForm::Call(f) => Some((op, f)),
            CForm::Neg | CForm::Square => None,
        })
        .collect();
    let prints: String = ops
        .iter()
        .map(|(_, f)| format!("    printf(\" %u\", as_type<uint>({f}(x)));\n"))
        .collect();
    let main = format!(
        "int main() {{\n  const uint xs[] = {};\n  for (uint b : xs) {{\n    const float x = \
         as_type<float>(b);\n    printf(\"%u\", b);\n{prints}    printf(\"\\n\");\n  }}\n  \
         return 0;\n}}\n",
        bits_array(xs.iter().copied())
    );
    let out = run_on_host(&clang, &main);
    assert_eq!(out.lines().count(), xs.len(), "one line per input");
    let mut failures = Vec::new();
    for line in out.lines() {
        let words: Vec<f32> = line
            .split(' ')
            .map(|w| f32::from_bits(w.parse().expect("a number")))
            .collect();
        let x = words[0];
        for (&got, (op, f)) in words[1..].iter().zip(&ops) {
            let want = op.eval(f64::from(x));
            let got64 = f64::from(got);
            let ok = if want.is_nan() || want.is_infinite() {
                (got.is_nan() && want.is_nan()) || got64 == want
            } else {
                got.is_finite() && (got64 - want).abs() <= 8.0 * f64::from(f32::EPSILON) * want.abs().max(1.0)
            };
            if !ok {
                failures.push(format!("{f}({x}) = {got}, want {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Metal has no log1p or expm1: the prelude's stay within a few f32 ulp of the true values,
/// relative to the value, near 0 (where the naive forms lose every digit), at the seams of their
/// two ranges, and far out.
#[test]
fn prelude_log1p_and_expm1_are_accurate() {
    let Some(clang) = clang() else { return };
    let mut xs: Vec<f32> = (-3000..=3000).map(|i| i as f32 * 1e-3).collect();
    xs.extend([
        1e-30,
        1e-10,
        1e-7,
        1e-4,
        0.292_893_2,
        0.346_573_6,
        0.414_213_5,
        5.0,
        30.0,
        80.0,
    ]);
    xs.extend(xs.clone().iter().map(|x| -x));
    xs.retain(|&x| x > -1.0);
    let main = format!(
        "int main() {{\n  const uint xs[] = {};\n  for (uint x : xs) printf(\"%u %u %u\\n\", x, \
         as_type<uint>(lg_log1p(as_type<float>(x))), as_type<uint>(lg_expm1(as_type<float>(x))));\n  \
         return 0;\n}}\n",
        bits_array(xs.iter().copied())
    );
    let out = run_on_host(&clang, &main);
    let mut worst = [(0f64, 0f32); 2];
    for line in out.lines() {
        let w: Vec<f32> = line
            .split(' ')
            .map(|w| f32::from_bits(w.parse().expect("a number")))
            .collect();
        let x = f64::from(w[0]);
        for (k, want) in [x.ln_1p(), x.exp_m1()].into_iter().enumerate() {
            let err = (f64::from(w[1 + k]) - want).abs() / want.abs().max(f64::MIN_POSITIVE);
            if err > worst[k].0 {
                worst[k] = (err, w[0]);
            }
        }
    }
    assert_eq!(out.lines().count(), xs.len(), "one line per input");
    for (name, (err, x)) in ["lg_log1p", "lg_expm1"].iter().zip(worst) {
        eprintln!("{name}: max relative error {err:e} at {x}");
        assert!(
            err < 4.0 * f64::from(f32::EPSILON),
            "{name}({x}) is off by {err:e}"
        );
    }
}

/// bf16 stores round to nearest even, as the `half` crate (and so the CPU kernels) does, and
/// keep NaNs NaN; loads are exact.
#[test]
fn prelude_bf16_rounds_like_the_cpu() {
    let Some(clang) = clang() else { return };
    let mut values: Vec<f32> = vec![0.0, -0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, 1e-40, f32::INFINITY];
    values.extend([f32::NEG_INFINITY, f32::NAN, -f32::NAN]);
    // Ties (to even, both ways) and neighbours of ties.
    for base in [0x3f80_0000u32, 0x3f81_0000, 0x4049_0000, 0x7f7f_0000] {
        for low in [0x7fff, 0x8000, 0x8001, 0xffff] {
            values.push(f32::from_bits(base | low));
        }
    }
    let mut state = 0x2545_f491_u32;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        values.push(f32::from_bits(state));
    }
    let main = format!(
        "int main() {{\n  const uint xs[] = {};\n  for (uint x : xs) {{\n    const lg_bf16 h = \
         lg_to_bf16(as_type<float>(x));\n    if (as_type<uint>(lg_ld(h)) != (uint(h) << 16)) \
         return 1;\n    printf(\"%u %u\\n\", x, uint(h));\n  }}\n  return 0;\n}}\n",
        bits_array(values.iter().copied())
    );
    for (x, b) in pairs(&run_on_host(&clang, &main)) {
        let f = f32::from_bits(x);
        let want = half::bf16::from_f32(f);
        let got = half::bf16::from_bits(b as u16);
        if f.is_nan() {
            assert!(got.is_nan(), "{f} ({x:#x}) stored as {b:#x}");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{f} ({x:#x})");
        }
    }
}

/// Row indices divide by multiply and shift with `graph_ir::gpu::magic`'s words, as on CUDA.
#[test]
fn prelude_magic_division_is_exact() {
    let Some(clang) = clang() else { return };
    let divisors = [1u32, 2, 3, 7, 10, 1000, 4097, 65535, (1 << 31) - 1];
    let numerators = [0u32, 1, 2, 999, 1 << 20, (1 << 31) - 2, (1 << 31) - 1];
    let mut cases = String::new();
    for d in divisors {
        let m = graph_ir::gpu::magic(d);
        for n in numerators {
            cases += &format!("  printf(\"%u %u\\n\", {n}u, lg_udiv({n}u, {m}l));\n");
        }
    }
    let out = run_on_host(&clang, &format!("int main() {{\n{cases}  return 0;\n}}\n"));
    let got = pairs(&out);
    let mut i = 0;
    for d in divisors {
        for n in numerators {
            assert_eq!(got[i], (n, n / d), "{n} / {d}");
            i += 1;
        }
    }
}

/// The launch configurations the Metal runtime chooses, for every kernel over row lengths that
/// reach each shape (a thread, part of a simdgroup, a simdgroup, a threadgroup per row; rows in
/// registers or re-read), aligned or not, under every threadgroup limit a pipeline may report:
/// within the limit, covering each row, vectorised only where that is safe. (Whether they are
/// fast is for a Mac to measure.)
#[test]
fn launch_configurations_are_valid() {
    use graph_ir::{Access, ArgLayout};
    use graph_runtime::testing::metal::{
        choose, dtype_code, groups, words, Input, LaunchRequest, Operand, Shape,
    };

    assert_eq!(
        dtype_code(candle_core::DType::F64),
        None,
        "Metal has no f64 kernels"
    );
    for graph in graph_runtime::graphs() {
        for step in graph.plan() {
            let Step::Kernel(k) = step else { continue };
            for dtype in [
                candle_core::DType::F32,
                candle_core::DType::F16,
                candle_core::DType::BF16,
            ] {
                let (code, size) = dtype_code(dtype).expect("a Metal dtype");
                for n in [1, 3, 7, 32, 100, 127, 1000, 1024, 4096, 4099, 32000, 70000] {
                    for (rows, offset) in [(1, 0), (5, 2), (67, 16)] {
                        let rank = k.prefix.len();
                        // The first row dim holds every row (a rank-0 prefix has one).
                        let prefix: Vec<usize> = (0..rank).map(|d| if d == 0 { rows } else { 1 }).collect();
                        let rows: usize = prefix.iter().product();
                        let inputs = k
                            .access
                            .iter()
                            .map(|a| match a {
                                Access::Scalar => Operand::Scalar(0.1),
                                Access::RowScalar => Operand::Tensor(Input {
                                    start: offset as u64,
                                    col_stride: 0,
                                    row_strides: vec![1; rank].into(),
                                    len: 1,
                                }),
                                Access::Column => Operand::Tensor(Input {
                                    start: offset as u64,
                                    col_stride: 1,
                                    row_strides: vec![n; rank].into(),
                                    len: n,
                                }),
                            })
                            .collect();
                        let out_shape: Vec<usize> = prefix.iter().copied().chain([n]).collect();
                        let req = LaunchRequest {
                            kernel: k,
                            dtype: code,
                            elem_bytes: size,
                            sizes: vec![n; k.sizes.len()].into(),
                            prefix: prefix.into(),
                            rows,
                            out_shapes: vec![out_shape.into(); k.outputs.len()].into(),
                            out_lens: vec![n; k.outputs.len()].into(),
                            inputs,
                        };
                        for max_threads in [1024, 512, 256, 64, 32] {
                            let c = choose(&req, max_threads);
                            let what = format!(
                                "{} n={n} rows={rows} offset={offset} max={max_threads}: {c:?}",
                                k.name
                            );
                            assert!(c.threads() <= max_threads, "{what}");
                            assert!(
                                c.vec == 1 || (n % c.vec as usize == 0 && offset % 16 == 0),
                                "{what}"
                            );
                            assert!(c.vec == 1 || c.vec as usize * size == 16, "{what}");
                            if let Shape::Row {
                                group,
                                rows_per_block,
                                cache,
                                unroll,
                            } = c.shape
                            {
                                assert!(
                                    unroll == 1 || (k.gpu.remaps && (unroll == 4) == (c.vec == 1)),
                                    "{what}"
                                );
                                assert!(group.is_power_of_two(), "{what}");
                                assert!(group <= 32 || rows_per_block == 1, "{what}");
                                let chunks = n.div_ceil(c.vec as usize);
                                assert!(cache == 0 || (cache * group) as usize >= chunks, "{what}");
                                assert!(cache == 0 || !k.gpu.remaps, "{what}");
                            }
                            assert!(groups(&req, &c) >= 1, "{what}");
                            let w = words(&req, &c);
                            let l = ArgLayout {
                                inputs: k.inputs.len(),
                                outputs: k.outputs.len(),
                                rank: k.prefix.len(),
                                sizes: k.sizes.len(),
                                columns: matches!(k.kind, graph_ir::KernelKind::Column { .. }),
                            };
                            assert_eq!(w.len(), l.words(), "{what}");
                            for (i, input) in req.inputs.iter().enumerate() {
                                if let Operand::Scalar(_) = input {
                                    assert_eq!(w[l.scalar(i)], i64::from(0.1f32.to_bits()), "{what}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
