//! The fused executor (generated CPU kernels): every example graph against its f64 reference and
//! against the eager executor, in f32, f64, f16 and bf16, on small, odd, size-1, long-row and
//! empty shapes, and on strided and broadcast inputs (the kernels' strided variant).

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{assert_close, check_case, tolerance, Sizes, CASES, DTYPES};
use graph_runtime::{with_mode, Mode};

fn fused<T>(f: impl FnOnce() -> T) -> T {
    with_mode(Mode::Fused, f)
}

fn every_case_matches_the_reference(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for case in CASES {
        for &dtype in common::dtypes(device) {
            for sizes in [
                Sizes::Small,
                Sizes::Small,
                Sizes::Small,
                Sizes::Unit,
                Sizes::LongRows,
                Sizes::Empty,
            ] {
                fused(|| check_case(case, &mut rng, sizes, dtype, device))?;
            }
        }
    }
    Ok(())
}
test_device!(every_case_matches_the_reference);

/// Fused and eager compute in the same type from the same inputs, so they agree to within the
/// storage type's rounding, twice: summation orders differ, and a value crossing from a library
/// step into a kernel (`center_columns`' column mean) is stored in the storage type once more on
/// the fused path, as Candle and Inductor store intermediates.
fn fused_equals_eager(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for case in CASES {
        for &dtype in common::dtypes(device) {
            for sizes in [Sizes::Small, Sizes::LongRows] {
                let inputs = (case.draw)(&mut rng, sizes)?.to(dtype, device)?;
                let a = fused(|| (case.graph)(&inputs)).expect("fused runs");
                let b = with_mode(Mode::Eager, || (case.graph)(&inputs)).expect("eager runs");
                for (k, (a, b)) in a.iter().zip(&b).enumerate() {
                    let what = format!(
                        "{} {dtype:?} {:?} output {k}: fused vs eager",
                        case.name,
                        inputs.shapes()
                    );
                    assert_eq!(a.dtype(), b.dtype(), "{what}");
                    assert_close(a, b, 2.0 * tolerance(dtype), &what)?;
                }
            }
        }
    }
    Ok(())
}
test_device!(fused_equals_eager);

/// Transposed (column stride != 1), offset and broadcast views run the strided kernel variant
/// and give the results of contiguous copies.
fn strided_inputs(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for case in CASES {
        for dtype in [DType::F32, DType::BF16] {
            let inputs = (case.draw)(&mut rng, Sizes::Small)?.to(dtype, device)?;
            let expected = fused(|| (case.graph)(&inputs)).expect("contiguous runs");
            for view in [transposed as fn(&Tensor) -> Result<Tensor>, offset] {
                let viewed = inputs.map(view)?;
                let got = fused(|| (case.graph)(&viewed)).expect("views run");
                for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
                    let what = format!("{} {dtype:?} output {k} on views", case.name);
                    assert_close(g, e, tolerance(dtype), &what)?;
                }
            }
        }
    }
    Ok(())
}
test_device!(strided_inputs);

/// The same values, laid out transposed in memory (last-dim stride != 1 for rank >= 2).
fn transposed(t: &Tensor) -> Result<Tensor> {
    if t.rank() < 2 {
        return Ok(t.clone());
    }
    let r = t.rank();
    t.transpose(r - 2, r - 1)?.contiguous()?.transpose(r - 2, r - 1)
}

/// The same values at a non-zero offset in a larger buffer.
fn offset(t: &Tensor) -> Result<Tensor> {
    if t.rank() == 0 {
        return Ok(t.clone());
    }
    let padded = Tensor::cat(&[t, t], 0)?;
    padded.narrow(0, t.dim(0)?, t.dim(0)?)
}

/// A `[D]` weight given as a broadcast view and a `[1, D]`-strided row reads the same values.
fn broadcast_weight(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    let x = common::randn(&mut rng, &[5, 3, 33], 0.0, 1.0)?
        .to_dtype(DType::F32)?
        .to_device(device)?;
    let w = common::randn(&mut rng, &[33], 1.0, 0.5)?
        .to_dtype(DType::F32)?
        .to_device(device)?;
    let w_view = w
        .unsqueeze(0)?
        .broadcast_as((4, 33))?
        .narrow(0, 2, 1)?
        .squeeze(0)?;
    let a = fused(|| common::rms_norm(&x, &w, 1e-5)).expect("runs");
    let b = fused(|| common::rms_norm(&x, &w_view, 1e-5)).expect("runs");
    assert_close(&a, &b, 0.0, "broadcast weight view")
}
test_device!(broadcast_weight);

/// The plan printed for a fused graph names its kernels, their nodes, inputs and outputs.
#[test]
fn plan_text_shows_kernels() {
    let text = common::add_rms_norm::GRAPH.to_text();
    assert!(text.contains("Row kernel add_rms_norm_k0"), "{text}");
    assert!(
        text.contains("reads [") && text.contains("writes [") && text.contains("computes ["),
        "{text}"
    );
    let lora = common::lora::GRAPH.to_text();
    assert_eq!(lora.matches("library").count(), 3, "{lora}");
    assert_eq!(lora.matches("Pointwise kernel").count(), 1, "{lora}");
}

/// A graph planned as one kernel that reads parameters and constants only carries, from the
/// macro, where that kernel reads each input (its calls skip the node table); graphs with
/// library steps, or whose kernel reads a value another step computes, do not.
#[test]
fn one_kernel_graphs_list_their_kernel_sources() {
    use graph_runtime::ir::Source;
    let rms = common::rms_norm::GRAPH
        .single()
        .expect("rms_norm is one kernel on its parameters");
    for s in [Source::Tensor(0), Source::Tensor(1), Source::Scalar(0)] {
        assert!(rms.contains(&s), "{rms:?} lacks {s:?}");
    }
    assert_eq!(rms.len(), 3, "{rms:?}");
    let add = common::add_rms_norm::GRAPH
        .single()
        .expect("add_rms_norm is one kernel");
    assert!(add.contains(&Source::Tensor(2)), "{add:?}");
    assert!(common::lora::GRAPH.single().is_none(), "lora has matmuls");
    assert!(
        common::attention::GRAPH.single().is_none(),
        "attention has a matmul"
    );
    assert!(
        common::center_columns::GRAPH.single().is_none(),
        "a column mean is a library step"
    );
}

// ---------------------------------------------------------------------------------------------
// Kernel shapes the example graphs do not reach.

graph_runtime::lazy_graph! {
    /// Three unequal parts, two of them narrowed: the write loop splits each row at two bounds.
    fn shuffle(x: Tensor[N, 6], y: Tensor[N, 3], s: f32) -> Tensor[N, 9] {
        cat([narrow(x, -1, 4, 2), x * s, -narrow(y, -1, 1, 1)], -1)
    }

    /// Five parts: more bounds than the write loop specialises, so it keeps a branch per column.
    fn spread(x: Tensor[N, 4]) -> Tensor[N, 10] {
        let a = narrow(x, -1, 3, 1);
        cat([a, narrow(x, -1, 0, 1), exp(a), x, -narrow(x, -1, 1, 3)], -1)
    }

    /// Nine inputs and five outputs in one kernel: more than the runtime keeps on the stack.
    fn many(
        x0: Tensor[N, D], x1: Tensor[N, D], x2: Tensor[N, D], x3: Tensor[N, D], x4: Tensor[N, D],
        x5: Tensor[N, D], x6: Tensor[N, D], x7: Tensor[N, D], w: Tensor[D],
    ) -> (Tensor[N, D], Tensor[N, D], Tensor[N, D], Tensor[N, D], Tensor[N, D]) {
        let s = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
        (s, s * w, s - x0, exp(x1) * s, x3 / (s * s + 1.0))
    }
}

/// Fused equals eager on `inputs` (tensors stored as `dtype`), output by output.
fn check_against_eager(
    what: &str,
    inputs: &[Tensor],
    dtype: DType,
    f: impl Fn(&[Tensor]) -> graph_runtime::Result<Vec<Tensor>>,
) -> Result<()> {
    let stored: Vec<Tensor> = inputs.iter().map(|t| t.to_dtype(dtype)).collect::<Result<_>>()?;
    let a = fused(|| f(&stored)).expect("fused runs");
    let b = with_mode(Mode::Eager, || f(&stored)).expect("eager runs");
    for (k, (a, b)) in a.iter().zip(&b).enumerate() {
        let what = format!(
            "{what} {dtype:?} {:?} output {k}: fused vs eager",
            stored[0].dims()
        );
        assert_close(a, b, 2.0 * tolerance(dtype), &what)?;
    }
    Ok(())
}

/// Rows of `cat`s with unequal and narrowed parts, on odd row counts, one row, none, and enough
/// rows to spread over threads; contiguous and transposed.
#[test]
fn cat_parts_of_unequal_length() -> Result<()> {
    let mut rng = common::rng();
    for dtype in DTYPES {
        for n in [0, 1, 7, 9000] {
            let x = common::randn(&mut rng, &[n, 6], 0.0, 1.0)?;
            let y = common::randn(&mut rng, &[n, 3], 0.0, 1.0)?;
            for view in [Ok as fn(Tensor) -> Result<Tensor>, |t: Tensor| transposed(&t)] {
                let inputs = [view(x.clone())?, view(y.clone())?];
                check_against_eager("shuffle", &inputs, dtype, |t| {
                    Ok(vec![shuffle(&t[0], &t[1], 0.5)?])
                })?;
                // Four of the six columns: rows 6 apart.
                let inputs = [view(x.narrow(1, 0, 4)?)?];
                check_against_eager("spread", &inputs, dtype, |t| Ok(vec![spread(&t[0])?]))?;
            }
        }
    }
    Ok(())
}

/// A kernel with more inputs and outputs than the runtime's stack lists hold.
#[test]
fn many_inputs_and_outputs() -> Result<()> {
    let mut rng = common::rng();
    for dtype in DTYPES {
        for (n, d) in [(0, 5), (1, 1), (3, 33), (70, 1001)] {
            let mut inputs: Vec<Tensor> = (0..8)
                .map(|_| common::randn(&mut rng, &[n, d], 0.0, 1.0))
                .collect::<Result<_>>()?;
            inputs.push(common::randn(&mut rng, &[d], 1.0, 0.5)?);
            check_against_eager("many", &inputs, dtype, |t| {
                let (a, b, c, d, e) = many(&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8])?;
                Ok(vec![a, b, c, d, e])
            })?;
        }
    }
    Ok(())
}

/// Row kernels whose last write runs with the next row's first reduction (softmax, RMSNorm,
/// LayerNorm) on row lengths at the edges of its blocks of columns and of the reduction's
/// lanes, one row (no next row) and several.
#[test]
fn pipelined_rows_at_block_edges() -> Result<()> {
    use graph_runtime::testing::{LANES, PIPELINE_BLOCK};
    let mut rng = common::rng();
    let (l, b) = (LANES, PIPELINE_BLOCK);
    let lengths = [1, l - 1, l, l + 1, b - 1, b, b + 1, b + l, 2 * b + l - 1, 3 * b];
    for dtype in DTYPES {
        for d in lengths {
            for n in [1, 2, 5] {
                let x = common::randn(&mut rng, &[n, d], 0.0, 2.0)?;
                let w = common::randn(&mut rng, &[d], 1.0, 0.5)?;
                let bias = common::randn(&mut rng, &[d], 0.0, 0.5)?;
                check_against_eager("softmax", std::slice::from_ref(&x), dtype, |t| {
                    Ok(vec![common::softmax(&t[0])?])
                })?;
                let x3 = x.unsqueeze(0)?;
                check_against_eager("rms_norm", &[x3, w.clone()], dtype, |t| {
                    Ok(vec![common::rms_norm(&t[0], &t[1], 1e-5)?])
                })?;
                check_against_eager("layer_norm", &[x, w, bias], dtype, |t| {
                    Ok(vec![common::layer_norm(&t[0], &t[1], &t[2], 1e-5)?])
                })?;
            }
        }
    }
    Ok(())
}

/// The contiguous kernels run compiled for AVX2 and FMA where the CPU has them, and for the
/// target's baseline otherwise: the same operations in the same order, but for the roundings
/// fused multiply-adds save in `exp` and `tanh`.
#[test]
fn simd_and_baseline_kernels_agree() -> Result<()> {
    let mut rng = common::rng();
    for case in CASES {
        for dtype in DTYPES {
            for sizes in [Sizes::Small, Sizes::LongRows] {
                let inputs = (case.draw)(&mut rng, sizes)?.to(dtype, &Device::Cpu)?;
                graph_ir::cpu::set_simd(false);
                let baseline = fused(|| (case.graph)(&inputs)).expect("baseline runs");
                graph_ir::cpu::set_simd(true);
                let simd = fused(|| (case.graph)(&inputs)).expect("simd runs");
                for (k, (a, b)) in simd.iter().zip(&baseline).enumerate() {
                    let what = format!("{} {dtype:?} output {k}: simd vs baseline", case.name);
                    assert_close(a, b, tolerance(dtype), &what)?;
                }
            }
        }
    }
    Ok(())
}

/// Inputs large enough to be split over threads, with prefix dims that do not divide the tasks
/// evenly: the executor hands the kernel runs of rows along the last prefix dim, which tasks
/// start and end in the middle of. A broadcast view makes an input's rows repeat.
#[test]
fn rows_split_over_threads() -> Result<()> {
    let mut rng = common::rng();
    let x = common::randn(&mut rng, &[3, 5, 7, 2500], 0.0, 1.0)?;
    let (cos, sin) = common::rope_tables(&mut rng, 7, 1250)?;
    let h = common::randn(&mut rng, &[3, 7, 12_503], 0.5, 1.5)?;
    let w = common::randn(&mut rng, &[12_503], 1.0, 0.5)?;
    let repeated = h.narrow(0, 1, 1)?.broadcast_as(h.shape())?;
    for dtype in [DType::F32, DType::BF16] {
        check_against_eager("rope", &[x.clone(), cos.clone(), sin.clone()], dtype, |t| {
            Ok(vec![common::rope(&t[0], &t[1], &t[2])?])
        })?;
        for h in [&h, &repeated] {
            check_against_eager("rms_norm", &[h.clone(), w.clone()], dtype, |t| {
                Ok(vec![common::rms_norm(&t[0], &t[1], 1e-5)?])
            })?;
        }
    }
    Ok(())
}

/// Column kernels reduce in two fixed stages (chunks of the reduced rows, then their partial
/// results in order), so their results are the same bits whatever the threads: on one thread,
/// two and four, here on columns long enough to be cut into many chunks and spread.
#[test]
fn column_reductions_repeat_bit_for_bit_over_threads() -> Result<()> {
    let mut rng = common::rng();
    for dtype in [DType::F32, DType::BF16] {
        for (n, s, d) in [(3000, 3, 37), (257, 9, 1), (40_000, 1, 16)] {
            let x = common::randn(&mut rng, &[n, s, d], 0.0, 1.0)?.to_dtype(dtype)?;
            let w = common::randn(&mut rng, &[d], 1.0, 0.5)?.to_dtype(dtype)?;
            let run = |threads: usize| -> Vec<Vec<f64>> {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let (a, b, c, e) = pool
                    .install(|| fused(|| common::column_stats(&x, &w)))
                    .expect("runs");
                [a, b, c, e]
                    .iter()
                    .map(|t| {
                        t.to_dtype(DType::F64)
                            .and_then(|t| t.flatten_all()?.to_vec1())
                            .unwrap()
                    })
                    .collect()
            };
            let one = run(1);
            for threads in [2, 4] {
                let many = run(threads);
                for (k, (a, b)) in one.iter().zip(&many).enumerate() {
                    let same = a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "column_stats {dtype:?} [{n}, {s}, {d}] output {k}: {threads} threads differ from 1"
                    );
                }
            }
        }
    }
    Ok(())
}
