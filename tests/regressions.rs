//! Regression tests for bugs the random-graph tests (`tests/random.rs`) and hand-written probes
//! found: each function below once failed to compile, panicked, or computed a wrong value. Each
//! runs fused and eager and compares against plain Candle ops in f64.

use candle_core::{DType, Device, Result, Tensor};
use graph_runtime::{lazy_graph, with_mode, Mode};

lazy_graph! {
    /// A row-scalar value (last dim literal 1) used directly and through a derived value: the
    /// CPU emitter once scoped the shared value inside the first use's block (`e0_0` not found).
    pub fn tiny(y: Tensor[1]) -> Tensor[1] {
        exp(y) * y
    }

    /// The same, through two narrows of width 1.
    pub fn pair(x: Tensor[N, 2]) -> Tensor[N, 1] {
        narrow(x, -1, 0, 1) * 2.0 + narrow(x, -1, 1, 1) * 2.0
    }

    /// Common subexpression elimination once merged nodes that differ only in their type:
    /// the two broadcasts, the two reshapes and the two narrows below became one each.
    pub fn same_op_other_shape(t: Tensor[1, 1], a: Tensor[N, M], b: Tensor[M, N], x: Tensor[N * M], v: Tensor[8])
        -> (Tensor[N, M], Tensor[M, N], Tensor[N, M], Tensor[M, N], Tensor[2], Tensor[3])
    {
        (broadcast(t, [N, M]) + a, broadcast(t, [M, N]) * b, reshape(x, [N, M]), reshape(x, [M, N]),
         narrow(v, 0, 1, 2), narrow(v, 0, 1, 3))
    }

    /// A reshape whose element count has 5 symbol factors: once "too complex" (the limit of 4
    /// is for sizes a user writes).
    pub fn rank5(x: Tensor[N, D, D, N, B]) -> Tensor[N, D, D, N * B] {
        reshape(x, [N, D, D, N * B]) * 2.0
    }

    /// A `cat` of parts with different dtypes (the first part's wins): the fused library step
    /// once handed Candle two dtypes.
    pub fn mixed_cat(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[2 * N, D] {
        cat([cast(x, f16), y], 0)
    }

    /// A matmul with three batch dims: Candle's takes at most two.
    pub fn batched(a: Tensor[B, C, E, M, K], b: Tensor[K, N]) -> Tensor[B, C, E, M, N] {
        matmul(a, b)
    }

    /// A max over a broadcast axis (stride 0), where Candle's CPU max divides by the stride.
    pub fn max_of_broadcast(x: Tensor[1, D], _n: Tensor[N]) -> Tensor[1, D] {
        max(broadcast(x, [N, D]), 0) + logsumexp(narrow(broadcast(x, [N, D]), 0, 0, N), 0)
    }

    /// A reshape that only drops a leading 1 of a broadcast view, read by a row kernel: the
    /// kernel's input then has more dims than the kernel.
    pub fn extra_dims(x0: Tensor[16, 1], _n: Tensor[N]) -> Tensor[16, N] {
        cat([reshape(x0.broadcast_as([1, 16, N / 2]), [16, N / 2]), broadcast(x0, [16, N / 2])], -1) / 3.0
    }

    /// One row kernel with rows of two lengths: a mean over `2 * N` columns and a write of `D`.
    /// The reduction's loop once cut every input into its chunks, the shorter ones too.
    pub fn two_lengths(x0: Tensor[N, 2 * N], x2: Tensor[1, D], x3: Tensor[N, D]) -> Tensor[N, D] {
        let m = x0.mean(1);
        (x2 - x3) - x2.minimum(m)
    }

    /// Per-row scalars reading one input at two columns (`n2` and `n3`): the GPU emitters once
    /// declared both loads under one name, which NVRTC rejects (`tests/nvrtc.rs` compiles it).
    pub fn two_columns(x2: Tensor[1]) -> Tensor[4, 2] {
        let t3 = x2 * x2;
        let t4 = cat([neg(relu(t3).broadcast_as([4, 2]).narrow(-1, 1, 1)), narrow(relu(t3).broadcast_as([4, 2]), -1, 0, 1)], -1);
        sub(narrow(t3.neg().broadcast_as([4, 4]), -1, 1, 2), t4)
    }

    /// A pointwise kernel over a possibly empty view.
    pub fn scale(x: Tensor[N, D]) -> Tensor[N, D] {
        x * 2.0
    }

    /// The same with a cast output, which no generated code serves for a bf16 input: the
    /// kernel's nodes then run through Candle, whose casts once read an empty view past its
    /// storage (a panic in cudarc on CUDA, in a slice index on the CPU).
    pub fn scale_cast(x: Tensor[N, D]) -> Tensor[N, D] {
        cast(x * 2.0, f16)
    }

    /// Values with elements from inputs without: a product over `K = 0` (zeros), a `cat` with
    /// an empty part, and a sum over nothing. On CUDA, Candle's ops once got these empty
    /// tensors and launched grids of no blocks (`CUDA_ERROR_INVALID_VALUE`).
    pub fn from_nothing(a: Tensor[M, K], b: Tensor[K, 4], c: Tensor[M, 4])
        -> (Tensor[M, 4], Tensor[M, 4], Tensor[M, 1])
    {
        (matmul(a, b) + c, cat([narrow(c, -1, 0, 0), c], -1), sum(a, -1) + 1.0)
    }
}

fn modes<T>(f: impl Fn() -> graph_runtime::Result<T>) -> Vec<T> {
    [Mode::Fused, Mode::Eager]
        .map(|m| with_mode(m, &f).expect("a valid call"))
        .into_iter()
        .collect()
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f64, 1.0, shape, &Device::Cpu).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f64) -> Result<()> {
    assert_eq!(got.dims(), want.dims());
    let on_cpu = |t: &Tensor| t.to_device(&Device::Cpu)?.to_dtype(DType::F64);
    let diff = (on_cpu(got)? - on_cpu(want)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()?;
    assert!(diff <= tol, "largest difference {diff:e} over {tol:e}");
    Ok(())
}

#[test]
fn row_scalars_share_one_scope() -> Result<()> {
    let y = randn(&[1]);
    for got in modes(|| tiny(&y)) {
        assert_close(&got, &(y.exp()? * &y)?, 1e-12)?;
    }
    let x = randn(&[5, 2]);
    let want = ((x.narrow(1, 0, 1)? * 2.0)? + (x.narrow(1, 1, 1)? * 2.0)?)?;
    for got in modes(|| pair(&x)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}

#[test]
fn nodes_of_other_types_stay_apart() -> Result<()> {
    let (n, m) = (3, 4);
    let (t, a, b, x, v) = (
        randn(&[1, 1]),
        randn(&[n, m]),
        randn(&[m, n]),
        randn(&[n * m]),
        randn(&[8]),
    );
    for got in modes(|| same_op_other_shape(&t, &a, &b, &x, &v)) {
        let (p, q, r, s, u, w) = got;
        assert_close(&p, &t.broadcast_as((n, m))?.add(&a)?, 1e-12)?;
        assert_close(&q, &t.broadcast_as((m, n))?.mul(&b)?, 1e-12)?;
        assert_close(&r, &x.reshape((n, m))?, 0.0)?;
        assert_close(&s, &x.reshape((m, n))?, 0.0)?;
        assert_close(&u, &v.narrow(0, 1, 2)?, 0.0)?;
        assert_close(&w, &v.narrow(0, 1, 3)?, 0.0)?;
    }
    Ok(())
}

#[test]
fn reshape_counts_beyond_four_symbols() -> Result<()> {
    let x = randn(&[2, 3, 3, 2, 5]);
    for got in modes(|| rank5(&x)) {
        assert_close(&got, &(x.reshape((2, 3, 3, 10))? * 2.0)?, 0.0)?;
    }
    Ok(())
}

#[test]
fn cat_of_mixed_dtypes() -> Result<()> {
    for dtype in [DType::F32, DType::BF16, DType::F64] {
        let (x, y) = (randn(&[2, 3]).to_dtype(dtype)?, randn(&[2, 3]).to_dtype(dtype)?);
        let want = Tensor::cat(&[x.to_dtype(DType::F16)?, y.to_dtype(DType::F16)?], 0)?;
        for got in modes(|| mixed_cat(&x, &y)) {
            assert_eq!(got.dtype(), DType::F16);
            assert_close(&got, &want, 0.0)?;
        }
    }
    Ok(())
}

#[test]
fn matmul_with_three_batch_dims() -> Result<()> {
    let (a, b) = (randn(&[2, 3, 2, 4, 5]), randn(&[5, 3]));
    let want = a
        .reshape((12, 4, 5))?
        .broadcast_matmul(&b)?
        .reshape((2, 3, 2, 4, 3))?;
    for got in modes(|| batched(&a, &b)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}

#[test]
fn max_over_a_broadcast_axis() -> Result<()> {
    let (x, n) = (randn(&[1, 6]), randn(&[5]));
    // Every row is `x`: the max is `x`, the logsumexp `x + ln 5`.
    let want = ((&x * 2.0)? + 5f64.ln())?;
    for got in modes(|| max_of_broadcast(&x, &n)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}

#[test]
fn kernel_inputs_with_leading_ones() -> Result<()> {
    let (x, n) = (randn(&[16, 1]), randn(&[6]));
    let want = (x.broadcast_as((16, 6))? / 3.0)?;
    for got in modes(|| extra_dims(&x, &n)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}

#[test]
fn empty_views_as_inputs_and_outputs() -> Result<()> {
    for dev in devices() {
        // A narrow of an empty tensor starts past its (empty) storage.
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            let x = Tensor::zeros((0, 5), dtype, &dev)?.narrow(1, 1, 3)?;
            for got in modes(|| scale(&x)) {
                assert_eq!((got.dims(), got.dtype()), (&[0, 3][..], dtype));
                assert_eq!(got.elem_count(), 0);
            }
            for got in modes(|| scale_cast(&x)) {
                assert_eq!((got.dims(), got.dtype()), (&[0, 3][..], DType::F16));
            }
        }
        let x = Tensor::zeros((4, 3), DType::F32, &dev)?.narrow(1, 1, 0)?;
        for got in modes(|| scale(&x)) {
            assert_eq!(got.dims(), &[4, 0]);
        }
        for dtype in [DType::F32, DType::BF16] {
            let a = Tensor::zeros((3, 0), dtype, &dev)?;
            let b = Tensor::zeros((0, 4), dtype, &dev)?;
            let c = randn(&[3, 4]).to_dtype(dtype)?.to_device(&dev)?;
            for (product, joined, sum) in modes(|| from_nothing(&a, &b, &c)) {
                assert_close(&product, &c, 0.0)?;
                assert_close(&joined, &c, 0.0)?;
                assert_close(&sum, &Tensor::ones((3, 1), DType::F64, &Device::Cpu)?, 0.0)?;
            }
        }
    }
    Ok(())
}

/// The CPU, and the first CUDA device where there is one (said when there is none).
fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut devices = vec![Device::Cpu];
    #[cfg(feature = "cuda")]
    match Device::new_cuda(0) {
        Ok(dev) => devices.push(dev),
        Err(why) => eprintln!("\n**** SKIPPED on CUDA: no usable GPU ({why}) ****\n"),
    }
    devices
}

#[test]
fn one_kernel_two_row_lengths() -> Result<()> {
    // Rows of 2N = 80 columns (two chunks of 32 and a tail) against rows of D = 5.
    let (x0, x2, x3) = (randn(&[40, 80]), randn(&[1, 5]), randn(&[40, 5]));
    let m = x0.mean_keepdim(1)?;
    let want = (x2.broadcast_sub(&x3)? - x2.broadcast_minimum(&m)?)?;
    for got in modes(|| two_lengths(&x0, &x2, &x3)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}

#[test]
fn row_scalars_read_at_two_columns() -> Result<()> {
    let x = randn(&[1]);
    let t3 = x.sqr()?;
    // Every column is -t3 - (-relu(t3)) or -t3 - relu(t3).
    let r = t3.relu()?;
    let row = Tensor::cat(&[(t3.neg()? + &r)?, (t3.neg()? - &r)?], 0)?;
    let want = row.unsqueeze(0)?.broadcast_as((4, 2))?;
    for got in modes(|| two_columns(&x)) {
        assert_close(&got, &want, 1e-12)?;
    }
    Ok(())
}
