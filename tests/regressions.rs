//! Regression tests for bugs the random-graph tests (`tests/random.rs`) and the probes
//! found: each function below once failed to compile, panicked, or computed a wrong value. Each
//! runs fused and eager and compares against plain Candle ops in f64.

use candle_core::{DType, Device, Result, Tensor};
use graph_runtime::{lazy_graph, with_mode, Mode};

lazy_graph! {
    /// CPU emitter once scoped the shared value inside the first use's block (`e0_0` not found).
    pub fn tiny(y: Tensor[1]) -> Tensor[1] {
        exp(y) * y
    }

    /// The same, through two narrows of width 1.
    pub fn pair(x: Tensor[N, 2]) -> Tensor[N, 1] {
        narrow(x, -1, 0, 1) * 2.0 + narrow(x, -1, 1, 1) * 2.0
    }

    /// the two broadcasts, the two reshapes and the two narrows below became one each.
    pub fn same_op_other_shape(t: Tensor[1, 1], a: Tensor[N, M], b: Tensor[M, N], x: Tensor[N * M], v: Tensor[8])
        -> (Tensor[N, M], Tensor[M, N], Tensor[N, M], Tensor[M, N], Tensor[2], Tensor[3])
    {
        (broadcast(t, [N, M]) + a, broadcast(t, [M, N]) * b, reshape(x, [N, M]), reshape(x, [M, N]),
         narrow(v, 0, 1, 2), narrow(v, 0, 1, 3))
    }

    /// is for sizes a user writes).
    pub fn rank5(x: Tensor[N, D, D, N, B]) -> Tensor[N, D, D, N * B] {
        reshape(x, [N, D, D, N * B]) * 2.0
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
    let diff = (got.to_dtype(DType::F64)? - want.to_dtype(DType::F64)?)?
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
