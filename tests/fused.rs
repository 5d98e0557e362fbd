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
        for dtype in DTYPES {
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
        for dtype in DTYPES {
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
