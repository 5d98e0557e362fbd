//! Every rank from 0 to 12, past Candle's CPU limit of 8 dims for binary ops
//! (`candle_core::nditer::MAX_DIMS`): pointwise work with a broadcast input, a reduction over
//! the last axis, and reductions over axis 0, in every dtype, fused and eager, against f64
//! references computed at rank 2.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{assert_close, dtypes, tolerance};
use graph_runtime::{lazy_graph, with_mode, Mode};

lazy_graph! {
    fn pw0(x: Tensor[], _w: Tensor[]) -> Tensor[] { exp(x) * 2.0 }
    fn pw1(x: Tensor[A], w: Tensor[A]) -> Tensor[A] { exp(x) * w }
    fn row1(x: Tensor[A]) -> Tensor[A] { x - max(x, -1) }
    fn col1(x: Tensor[A]) -> Tensor[A] { x - max(x, 0) }
    fn sum1(x: Tensor[A]) -> Tensor[A] { x * sum(x, 0) }
    fn pw2(x: Tensor[A, B], w: Tensor[B]) -> Tensor[A, B] { exp(x) * w }
    fn row2(x: Tensor[A, B]) -> Tensor[A, B] { x - max(x, -1) }
    fn col2(x: Tensor[A, B]) -> Tensor[A, B] { x - max(x, 0) }
    fn sum2(x: Tensor[A, B]) -> Tensor[A, B] { x * sum(x, 0) }
    fn pw3(x: Tensor[A, B, C], w: Tensor[C]) -> Tensor[A, B, C] { exp(x) * w }
    fn row3(x: Tensor[A, B, C]) -> Tensor[A, B, C] { x - max(x, -1) }
    fn col3(x: Tensor[A, B, C]) -> Tensor[A, B, C] { x - max(x, 0) }
    fn sum3(x: Tensor[A, B, C]) -> Tensor[A, B, C] { x * sum(x, 0) }
    fn pw4(x: Tensor[A, B, C, D], w: Tensor[D]) -> Tensor[A, B, C, D] { exp(x) * w }
    fn row4(x: Tensor[A, B, C, D]) -> Tensor[A, B, C, D] { x - max(x, -1) }
    fn col4(x: Tensor[A, B, C, D]) -> Tensor[A, B, C, D] { x - max(x, 0) }
    fn sum4(x: Tensor[A, B, C, D]) -> Tensor[A, B, C, D] { x * sum(x, 0) }
    fn pw5(x: Tensor[A, B, C, D, E], w: Tensor[E]) -> Tensor[A, B, C, D, E] { exp(x) * w }
    fn row5(x: Tensor[A, B, C, D, E]) -> Tensor[A, B, C, D, E] { x - max(x, -1) }
    fn col5(x: Tensor[A, B, C, D, E]) -> Tensor[A, B, C, D, E] { x - max(x, 0) }
    fn sum5(x: Tensor[A, B, C, D, E]) -> Tensor[A, B, C, D, E] { x * sum(x, 0) }
    fn pw6(x: Tensor[A, B, C, D, E, F], w: Tensor[F]) -> Tensor[A, B, C, D, E, F] { exp(x) * w }
    fn row6(x: Tensor[A, B, C, D, E, F]) -> Tensor[A, B, C, D, E, F] { x - max(x, -1) }
    fn col6(x: Tensor[A, B, C, D, E, F]) -> Tensor[A, B, C, D, E, F] { x - max(x, 0) }
    fn sum6(x: Tensor[A, B, C, D, E, F]) -> Tensor[A, B, C, D, E, F] { x * sum(x, 0) }
    fn pw7(x: Tensor[A, B, C, D, E, F, G], w: Tensor[G]) -> Tensor[A, B, C, D, E, F, G] { exp(x) * w }
    fn row7(x: Tensor[A, B, C, D, E, F, G]) -> Tensor[A, B, C, D, E, F, G] { x - max(x, -1) }
    fn col7(x: Tensor[A, B, C, D, E, F, G]) -> Tensor[A, B, C, D, E, F, G] { x - max(x, 0) }
    fn sum7(x: Tensor[A, B, C, D, E, F, G]) -> Tensor[A, B, C, D, E, F, G] { x * sum(x, 0) }
    fn pw8(x: Tensor[A, B, C, D, E, F, G, H], w: Tensor[H]) -> Tensor[A, B, C, D, E, F, G, H] { exp(x) * w }
    fn row8(x: Tensor[A, B, C, D, E, F, G, H]) -> Tensor[A, B, C, D, E, F, G, H] { x - max(x, -1) }
    fn col8(x: Tensor[A, B, C, D, E, F, G, H]) -> Tensor[A, B, C, D, E, F, G, H] { x - max(x, 0) }
    fn sum8(x: Tensor[A, B, C, D, E, F, G, H]) -> Tensor[A, B, C, D, E, F, G, H] { x * sum(x, 0) }
    fn pw9(x: Tensor[A, B, C, D, E, F, G, H, I], w: Tensor[I]) -> Tensor[A, B, C, D, E, F, G, H, I] { exp(x) * w }
    fn row9(x: Tensor[A, B, C, D, E, F, G, H, I]) -> Tensor[A, B, C, D, E, F, G, H, I] { x - max(x, -1) }
    fn col9(x: Tensor[A, B, C, D, E, F, G, H, I]) -> Tensor[A, B, C, D, E, F, G, H, I] { x - max(x, 0) }
    fn sum9(x: Tensor[A, B, C, D, E, F, G, H, I]) -> Tensor[A, B, C, D, E, F, G, H, I] { x * sum(x, 0) }
    fn pw10(x: Tensor[A, B, C, D, E, F, G, H, I, J], w: Tensor[J]) -> Tensor[A, B, C, D, E, F, G, H, I, J] { exp(x) * w }
    fn row10(x: Tensor[A, B, C, D, E, F, G, H, I, J]) -> Tensor[A, B, C, D, E, F, G, H, I, J] { x - max(x, -1) }
    fn col10(x: Tensor[A, B, C, D, E, F, G, H, I, J]) -> Tensor[A, B, C, D, E, F, G, H, I, J] { x - max(x, 0) }
    fn sum10(x: Tensor[A, B, C, D, E, F, G, H, I, J]) -> Tensor[A, B, C, D, E, F, G, H, I, J] { x * sum(x, 0) }
    fn pw11(x: Tensor[A, B, C, D, E, F, G, H, I, J, K], w: Tensor[K]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K] { exp(x) * w }
    fn row11(x: Tensor[A, B, C, D, E, F, G, H, I, J, K]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K] { x - max(x, -1) }
    fn col11(x: Tensor[A, B, C, D, E, F, G, H, I, J, K]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K] { x - max(x, 0) }
    fn sum11(x: Tensor[A, B, C, D, E, F, G, H, I, J, K]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K] { x * sum(x, 0) }
    fn pw12(x: Tensor[A, B, C, D, E, F, G, H, I, J, K, L], w: Tensor[L]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K, L] { exp(x) * w }
    fn row12(x: Tensor[A, B, C, D, E, F, G, H, I, J, K, L]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K, L] { x - max(x, -1) }
    fn col12(x: Tensor[A, B, C, D, E, F, G, H, I, J, K, L]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K, L] { x - max(x, 0) }
    fn sum12(x: Tensor[A, B, C, D, E, F, G, H, I, J, K, L]) -> Tensor[A, B, C, D, E, F, G, H, I, J, K, L] { x * sum(x, 0) }

    /// A comparison and `where_` at rank 9: the eager executor's other ops Candle walks with
    /// its 8-dim iterator.
    fn select9(x: Tensor[A, B, C, D, E, F, G, H, I], w: Tensor[I]) -> Tensor[A, B, C, D, E, F, G, H, I] {
        where_(x > w, x, w * 2.0)
    }
}

type Pointwise = fn(&Tensor, &Tensor) -> graph_runtime::Result<Tensor>;
type Unary = fn(&Tensor) -> graph_runtime::Result<Tensor>;
/// One rank's functions (rank 0 has no axis to reduce).
type Rank = (Pointwise, Option<Unary>, Option<Unary>, Option<Unary>);

/// Per rank: `exp(x) * w`, `x - max(x, -1)`, `x - max(x, 0)` and `x * sum(x, 0)`.
const BY_RANK: [Rank; 13] = [
    (pw0, None, None, None),
    (pw1, Some(row1), Some(col1), Some(sum1)),
    (pw2, Some(row2), Some(col2), Some(sum2)),
    (pw3, Some(row3), Some(col3), Some(sum3)),
    (pw4, Some(row4), Some(col4), Some(sum4)),
    (pw5, Some(row5), Some(col5), Some(sum5)),
    (pw6, Some(row6), Some(col6), Some(sum6)),
    (pw7, Some(row7), Some(col7), Some(sum7)),
    (pw8, Some(row8), Some(col8), Some(sum8)),
    (pw9, Some(row9), Some(col9), Some(sum9)),
    (pw10, Some(row10), Some(col10), Some(sum10)),
    (pw11, Some(row11), Some(col11), Some(sum11)),
    (pw12, Some(row12), Some(col12), Some(sum12)),
];

/// Sizes 3 first, 5 last and 2 between (rank 12 has 15 360 elements): no dim of 1, so nothing
/// merges away, and the first and last axes differ.
fn shape(rank: usize) -> Vec<usize> {
    (0..rank)
        .map(|i| match i {
            0 => 3,
            _ if i + 1 == rank => 5,
            _ => 2,
        })
        .collect()
}

/// `x` as `[d0, rest]` (`first`) or `[rest, d_last]`, where Candle's ops all work.
fn rank2(x: &Tensor, first: bool) -> Result<Tensor> {
    let dims = x.dims();
    match (first, dims.len()) {
        (_, 0) => x.reshape((1, 1)),
        (true, _) => x.reshape((dims[0], x.elem_count() / dims[0])),
        (false, r) => x.reshape((x.elem_count() / dims[r - 1], dims[r - 1])),
    }
}

fn each_rank(device: &Device) -> Result<()> {
    for (rank, (pw, row, col, sum)) in BY_RANK.into_iter().enumerate() {
        let dims = shape(rank);
        let x64 = Tensor::randn(0f64, 1.0, dims.as_slice(), device)?;
        let w64 = Tensor::randn(
            0f64,
            1.0,
            dims.last().map_or(&[][..], std::slice::from_ref),
            device,
        )?;
        for &dtype in dtypes(device) {
            let (x, w) = (x64.to_dtype(dtype)?, w64.to_dtype(dtype)?);
            // The references start from the inputs as the graph reads them, rounded to `dtype`.
            let (x64, w64) = (x.to_dtype(DType::F64)?, w.to_dtype(DType::F64)?);
            let reference = |f: &dyn Fn(&Tensor) -> Result<Tensor>, first: bool| -> Result<Tensor> {
                f(&rank2(&x64, first)?)?.reshape(dims.as_slice())
            };
            let exp_w = match rank {
                0 => (x64.exp()? * 2.0)?,
                _ => reference(&|x| x.exp()?.broadcast_mul(&w64), false)?,
            };
            let minus_row_max = reference(&|x| x.broadcast_sub(&x.max_keepdim(1)?), false)?;
            let minus_col_max = reference(&|x| x.broadcast_sub(&x.max_keepdim(0)?), true)?;
            let times_col_sum = reference(&|x| x.broadcast_mul(&x.sum_keepdim(0)?), true)?;
            let cases: [(&str, Option<Unary>, &Tensor); 3] = [
                ("x - max(x, -1)", row, &minus_row_max),
                ("x - max(x, 0)", col, &minus_col_max),
                ("x * sum(x, 0)", sum, &times_col_sum),
            ];
            for mode in [Mode::Fused, Mode::Eager] {
                let what = |op: &str| format!("{op} at rank {rank}, {dtype:?}, {mode:?}");
                let y = with_mode(mode, || pw(&x, &w))?;
                assert_close(&y, &exp_w, tolerance(dtype), &what("exp(x) * w"))?;
                for (op, f, expected) in cases {
                    let Some(f) = f else { continue };
                    let y = with_mode(mode, || f(&x))?;
                    assert_close(&y, expected, tolerance(dtype), &what(op))?;
                }
            }
        }
    }
    Ok(())
}
test_device!(each_rank);

/// The case that panicked: a rank-9 bf16 `x - max(x, 0)` in the default fused mode, whose column
/// maximum stays f32 so the subtraction ran as a Candle op on a rank-9 tensor.
#[test]
fn rank_9_bf16_column_max() -> Result<()> {
    let x = Tensor::randn(0f32, 1.0, shape(9), &Device::Cpu)?.to_dtype(DType::BF16)?;
    let y = col9(&x)?;
    assert_eq!(y.dims(), shape(9));
    let expected = rank2(&x.to_dtype(DType::F64)?, true)?;
    let expected = expected
        .broadcast_sub(&expected.max_keepdim(0)?)?
        .reshape(shape(9))?;
    assert_close(&y, &expected, tolerance(DType::BF16), "rank-9 bf16 x - max(x, 0)")
}

#[test]
fn rank_9_comparison_and_where() -> Result<()> {
    let dims = shape(9);
    let x64 = Tensor::randn(0f64, 1.0, dims.as_slice(), &Device::Cpu)?;
    let w64 = Tensor::randn(0f64, 1.0, 5, &Device::Cpu)?;
    for dtype in common::DTYPES {
        let (x, w) = (x64.to_dtype(dtype)?, w64.to_dtype(dtype)?);
        let (x2, w2) = (rank2(&x.to_dtype(DType::F64)?, false)?, w.to_dtype(DType::F64)?);
        let expected = x2
            .broadcast_gt(&w2)?
            .where_cond(&x2, &(w2 * 2.0)?.broadcast_as(x2.shape())?)?
            .reshape(dims.as_slice())?;
        for mode in [Mode::Fused, Mode::Eager] {
            let y = with_mode(mode, || select9(&x, &w))?;
            assert_close(
                &y,
                &expected,
                tolerance(dtype),
                &format!("where_ at rank 9, {dtype:?}, {mode:?}"),
            )?;
        }
    }
    Ok(())
}
