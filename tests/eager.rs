//! The eager executor: every example graph against its f64 reference in f32, f64, f16 and bf16,
//! against candle-nn's fused ops, and on non-contiguous and broadcast-view inputs.
//!
//! Every call goes through [`eager`], which pins this thread to the eager executor whatever
//! `LAZY_GRAPH_MODE` says; the fused executor's tests run the same cases under `Mode::Fused`.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor, D};
use common::{assert_close, candle_nn_tolerance, check_case, tolerance, Case, Sizes, DTYPES};

/// Runs `f` with generated functions on the eager executor.
fn eager<T>(f: impl FnOnce() -> T) -> T {
    graph_runtime::with_mode(graph_runtime::Mode::Eager, f)
}

/// Random small shapes (odd sizes included) in every dtype, then size-1 dims, long rows and an
/// empty leading dim.
fn matches_reference(case: &Case, device: &Device) -> Result<()> {
    let mut rng = common::rng();
    eager(|| {
        for &dtype in common::dtypes(device) {
            for _ in 0..6 {
                check_case(case, &mut rng, Sizes::Small, dtype, device)?;
            }
            for sizes in [Sizes::Unit, Sizes::LongRows, Sizes::Empty] {
                check_case(case, &mut rng, sizes, dtype, device)?;
            }
        }
        Ok(())
    })
}

macro_rules! reference_tests {
    ($($name:ident: $case:ident,)*) => {
        /// Each example graph equals its f64 reference.
        mod reference {
            use super::*;
            $(
                fn $name(device: &Device) -> Result<()> {
                    matches_reference(&common::$case, device)
                }
                test_device!($name);
            )*

            /// A case added to `CASES` without a test here fails this.
            #[test]
            fn every_case_is_tested() {
                let tested = [$(common::$case.name),*];
                let all: Vec<&str> = common::CASES.iter().map(|c| c.name).collect();
                assert_eq!(tested.as_slice(), all.as_slice());
            }
        }
    };
}

reference_tests! {
    softmax: SOFTMAX,
    log_softmax: LOG_SOFTMAX,
    logsumexp: LOGSUMEXP,
    rms_norm: RMS_NORM,
    layer_norm: LAYER_NORM,
    gelu: GELU,
    gelu_erf: GELU_ERF,
    silu: SILU,
    swiglu: SWIGLU,
    rope: ROPE,
    lora: LORA,
    attention: ATTENTION,
    add_rms_norm: ADD_RMS_NORM,
    center_columns: CENTER_COLUMNS,
    column_stats: COLUMN_STATS,
    rounding: ROUNDING,
    log1p_expm1: LOG1P_EXPM1,
    masked: MASKED,
}

// ---------------------------------------------------------------------------------------------
// candle-nn's fused ops, within `candle_nn_tolerance` (which says why it differs for halves).

/// The dtypes a candle-nn op supports on the CPU.
const ALL: &[DType] = &DTYPES;
const NO_F64: &[DType] = &[DType::F32, DType::F16, DType::BF16];

fn against_candle_nn(
    device: &Device,
    dtypes: &[DType],
    mut draw: impl FnMut(&mut rand::rngs::StdRng) -> Result<Vec<Tensor>>,
    ours: impl Fn(&[Tensor]) -> graph_runtime::Result<Tensor>,
    theirs: impl Fn(&[Tensor]) -> Result<Tensor>,
    name: &str,
) -> Result<()> {
    let mut rng = common::rng();
    for &dtype in dtypes.iter().filter(|d| common::dtypes(device).contains(d)) {
        for _ in 0..6 {
            let inputs: Vec<Tensor> = draw(&mut rng)?
                .iter()
                .map(|t| t.to_dtype(dtype)?.to_device(device))
                .collect::<Result<_>>()?;
            let shapes: Vec<_> = inputs.iter().map(|t| t.dims().to_vec()).collect();
            let what = format!("{name} vs candle-nn in {dtype:?}, inputs {shapes:?}");
            let ours = eager(|| ours(&inputs))?;
            assert_eq!(ours.dtype(), dtype, "{what}");
            assert_close(&ours, &theirs(&inputs)?, candle_nn_tolerance(dtype), &what)?;
        }
    }
    Ok(())
}

fn small(rng: &mut rand::rngs::StdRng) -> usize {
    Sizes::Small.outer(rng)
}

fn row(rng: &mut rand::rngs::StdRng) -> usize {
    Sizes::Small.row(rng)
}

fn candle_nn_softmax(device: &Device) -> Result<()> {
    against_candle_nn(
        device,
        ALL,
        |rng| {
            let shape = [small(rng), row(rng)];
            Ok(vec![common::randn(rng, &shape, 0.0, 2.0)?])
        },
        |t| common::softmax(&t[0]),
        |t| candle_nn::ops::softmax_last_dim(&t[0]),
        "softmax",
    )
}
test_device!(candle_nn_softmax);

fn candle_nn_rms_norm(device: &Device) -> Result<()> {
    against_candle_nn(
        device,
        NO_F64,
        |rng| {
            let (b, s, d) = (small(rng), small(rng), row(rng));
            Ok(vec![
                common::randn(rng, &[b, s, d], 0.5, 1.5)?,
                common::randn(rng, &[d], 1.0, 0.5)?,
            ])
        },
        |t| common::rms_norm(&t[0], &t[1], 1e-5),
        |t| candle_nn::ops::rms_norm(&t[0], &t[1], 1e-5),
        "rms_norm",
    )
}
test_device!(candle_nn_rms_norm);

fn candle_nn_layer_norm(device: &Device) -> Result<()> {
    against_candle_nn(
        device,
        NO_F64,
        |rng| {
            let (n, d) = (small(rng), row(rng));
            Ok(vec![
                common::randn(rng, &[n, d], 1.0, 2.0)?,
                common::randn(rng, &[d], 1.0, 0.5)?,
                common::randn(rng, &[d], 0.0, 0.5)?,
            ])
        },
        |t| common::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        |t| candle_nn::ops::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        "layer_norm",
    )
}
test_device!(candle_nn_layer_norm);

fn candle_nn_rope(device: &Device) -> Result<()> {
    against_candle_nn(
        device,
        ALL,
        |rng| {
            let (b, h, s, half) = (small(rng), small(rng), small(rng), row(rng).div_ceil(2));
            let (cos, sin) = common::rope_tables(rng, s, half)?;
            Ok(vec![
                common::randn(rng, &[b, h, s, 2 * half], 0.0, 1.0)?,
                cos,
                sin,
            ])
        },
        |t| common::rope(&t[0], &t[1], &t[2]),
        |t| candle_nn::rotary_emb::rope(&t[0], &t[1], &t[2]),
        "rope",
    )
}
test_device!(candle_nn_rope);

// ---------------------------------------------------------------------------------------------
// Layouts: strided and broadcast views compute what their contiguous copies compute.

/// The same values, stored with the last two axes swapped (rank 1: every other element of a
/// wider buffer). Non-contiguous whenever the tensor has more than one element per swapped axis.
fn transposed_view(t: &Tensor) -> Result<Tensor> {
    if t.rank() >= 2 {
        let r = t.rank();
        t.transpose(r - 2, r - 1)?.contiguous()?.transpose(r - 2, r - 1)
    } else {
        let junk = Tensor::full(f32::NAN, t.shape(), t.device())?.to_dtype(t.dtype())?;
        Tensor::stack(&[t, &junk], 1)?.narrow(1, 0, 1)?.squeeze(1)
    }
}

/// The same values, each row padded with NaN on both sides: a narrow of a wider buffer, with
/// an offset and a row stride past the row length. A kernel that reads the padding returns NaN.
fn padded_view(t: &Tensor) -> Result<Tensor> {
    let mut pad_shape = t.dims().to_vec();
    *pad_shape.last_mut().expect("inputs have rank >= 1") = 1;
    let pad = Tensor::full(f32::NAN, pad_shape, t.device())?.to_dtype(t.dtype())?;
    let n = t.dim(D::Minus1)?;
    Tensor::cat(&[&pad, t, &pad], D::Minus1)?.narrow(D::Minus1, 1, n)
}

/// The first entry along axis 0 repeated with stride 0 (new values: compared with its own copy).
fn broadcast_view(t: &Tensor) -> Result<Tensor> {
    t.narrow(0, 0, 1)?.broadcast_as(t.shape())
}

/// Makes a view of a tensor.
type View = fn(&Tensor) -> Result<Tensor>;

/// Each case on views of its inputs equals the case on contiguous copies of the same views,
/// for each kind of view.
fn views(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    let kinds: [(&str, View); 3] = [
        ("transposed", transposed_view),
        ("padded", padded_view),
        ("broadcast", broadcast_view),
    ];
    for case in common::CASES {
        for dtype in [DType::F32, DType::BF16] {
            for (kind, view) in kinds {
                // Small draws may make every view contiguous (all dims 1): draw again.
                let viewed = std::iter::repeat_with(|| {
                    (case.draw)(&mut rng, Sizes::Small)?.to(dtype, device)?.map(view)
                })
                .take(50)
                .find(|v| {
                    v.as_ref()
                        .map_or(true, |v| v.tensors.iter().any(|t| !t.is_contiguous()))
                })
                .expect("50 draws without a non-contiguous view")?;
                let copied = viewed.map(|t| t.contiguous())?;
                let what = format!("{} on {kind} views {:?} in {dtype:?}", case.name, viewed.shapes());
                let got = eager(|| (case.graph)(&viewed))?;
                let want = eager(|| (case.graph)(&copied))?;
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_close(g, w, tolerance(dtype), &format!("{what}, output {k}"))?;
                }
            }
        }
    }
    Ok(())
}
test_device!(views);

// ---------------------------------------------------------------------------------------------
// Choosing the executor from the environment.

/// `LAZY_GRAPH_MODE=eager` runs every call on the eager executor, and `fused` on the fused one.
/// The variable is read once per process, so each value is tried in a child process running
/// only this test; the child checks the mode and that a call without `with_mode` returns what
/// the named executor returns.
#[test]
fn mode_from_environment() -> Result<()> {
    use graph_runtime::{with_mode, Mode};
    if let Ok(expected) = std::env::var("LAZY_GRAPH_TEST_EXPECT") {
        let expected = if expected == "eager" {
            Mode::Eager
        } else {
            Mode::Fused
        };
        assert_eq!(graph_runtime::mode(), expected);
        let x = common::randn(&mut common::rng(), &[37, 1001], 0.0, 3.0)?.to_dtype(DType::F32)?;
        let got = common::softmax(&x).expect("runs");
        let want = with_mode(expected, || common::softmax(&x)).expect("runs");
        return assert_close(&got, &want, 0.0, "a call in the environment's mode");
    }
    for mode in ["eager", "fused"] {
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["--exact", "mode_from_environment", "--nocapture"])
            .env("LAZY_GRAPH_MODE", mode)
            .env("LAZY_GRAPH_TEST_EXPECT", mode)
            .output()?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr),
        );
        assert!(
            child.status.success(),
            "LAZY_GRAPH_MODE={mode}:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("1 passed"), "the child ran the test:\n{stdout}");
    }
    Ok(())
}
