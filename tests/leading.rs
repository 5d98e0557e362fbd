//! Functions generic over leading dims (`x: Tensor[.., D]`) and reductions over several axes
//! (`sum(x, [-2, -1])`): each function called with inputs of rank 1 to 4, an empty leading dim
//! and non-contiguous views, fused and eager, against f64 references written with Candle ops,
//! in every dtype; gradients through `loss.backward()` and `name_backward` against Candle's
//! autograd of the same function written with Candle ops; the asynchronous twin; and wrong
//! leading dims, which are errors, not panics.

#[macro_use]
mod common;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use common::{
    assert_close, assert_close_scaled, randn, ref_rms_norm, ref_rope, rope_tables, round_to, tolerance,
};
use graph_runtime::{lazy_graph, with_mode, Error, Mode};
use rand::rngs::StdRng;

lazy_graph! {
    /// RMSNorm over the last axis, whatever the leading dims.
    pub fn rms_norm(x: Tensor[.., D], w: Tensor[D], eps: f32) -> Tensor[.., D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Two parameters sharing the leading dims, two outputs with them.
    pub fn add_rms_norm(x: Tensor[.., D], r: Tensor[.., D], w: Tensor[D], eps: f32)
        -> (Tensor[.., D], Tensor[.., D])
    {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }

    /// Pairwise rotation by the halves of the last axis (narrow and cat on `-1`), for any batch
    /// and head dims before `[T, D]`.
    pub fn rope(x: Tensor[.., T, D], cos: Tensor[T, D / 2], sin: Tensor[T, D / 2]) -> Tensor[.., T, D] {
        let x1 = x.narrow(-1, 0, D / 2);
        let x2 = x.narrow(-1, D / 2, D / 2);
        cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
    }

    /// A reshape that keeps the leading dims and splits the last.
    pub fn halves(x: Tensor[.., D]) -> Tensor[.., 2, D / 2] {
        reshape(x, [.., 2, D / 2]) * 2.0
    }

    /// A matmul whose left side has the leading dims (a Candle step), then a kernel.
    pub fn project(x: Tensor[.., K], w: Tensor[K, N]) -> Tensor[.., N] {
        silu(x.matmul(w))
    }

    /// Every reduction over the last two axes, whatever the leading dims.
    pub fn plane_stats(x: Tensor[.., S, D])
        -> (Tensor[.., 1, 1], Tensor[.., 1, 1], Tensor[.., 1, 1], Tensor[.., 1, 1], Tensor[.., 1, 1])
    {
        (sum(x, [-2, -1]), x.mean([-1, -2]), max(x, [-2, -1]), min(x, [-2, -1]), var(x, [-2, -1]))
    }

    /// Reductions over several axes of a tensor of fixed rank, axes in any order.
    pub fn stats(x: Tensor[A, B, C])
        -> (Tensor[1, B, 1], Tensor[1, B, 1], Tensor[1, 1, 1], Tensor[A, 1, 1], Tensor[1, 1, C], Tensor[A, B, C])
    {
        (sum(x, [0, 2]), mean(x, [-1, 0]), max(x, [0, 1, 2]), min(x, [1, -1]), var(x, [0, 1]), softmax(x, [0, -1]))
    }
}

/// `x` drawn in f64 and stored as `dtype`, with the f64 values the stored ones hold.
fn draw(rng: &mut StdRng, shape: &[usize], dtype: DType) -> Result<(Tensor, Tensor)> {
    let x = randn(rng, shape, 0.0, 1.0)?.to_dtype(dtype)?;
    let exact = x.to_dtype(DType::F64)?;
    Ok((x, exact))
}

/// The shapes of `[.., named]` inputs the tests call with: ranks 1 to 4 (no leading dim to
/// three), a leading dim of 0, and a size-1 one.
fn leading_shapes(named: &[usize]) -> Vec<Vec<usize>> {
    [&[][..], &[5], &[2, 3], &[2, 1, 3], &[0], &[3, 0], &[1]]
        .iter()
        .map(|lead| lead.iter().chain(named).copied().collect())
        .collect()
}

/// Views of `x` (contiguous, of the same shape) whose leading dims are not laid out as one:
/// the leading dims transposed, and a narrow of a wider last axis. Both hold `x`'s values.
fn views(x: &Tensor) -> Result<Vec<Tensor>> {
    let mut out = vec![x.clone()];
    let rank = x.rank();
    if rank >= 3 {
        out.push(x.transpose(0, 1)?.contiguous()?.transpose(0, 1)?);
    }
    if rank >= 2 {
        // The last axis transposed with the one before: a column stride other than 1.
        out.push(
            x.transpose(rank - 2, rank - 1)?
                .contiguous()?
                .transpose(rank - 2, rank - 1)?,
        );
    }
    let wide = Tensor::cat(&[x, x], rank - 1)?;
    out.push(wide.narrow(rank - 1, 0, x.dim(rank - 1)?)?);
    Ok(out)
}

/// `f` fused and eager, each against `reference` at the dtype's tolerance, and against each
/// other at twice it.
fn check<const N: usize>(
    what: &str,
    dtype: DType,
    f: impl Fn() -> graph_runtime::Result<[Tensor; N]>,
    reference: &[Tensor; N],
) -> Result<()> {
    check_scaled(what, dtype, f, reference, &[(); N].map(|()| None))
}

/// [`check`] with the operand magnitude of each output where it has one (see
/// `common::compare::rel_err`): a sum's rounding error scales with the sum of its operands'
/// magnitudes, not with a result that cancels to near zero.
fn check_scaled<const N: usize>(
    what: &str,
    dtype: DType,
    f: impl Fn() -> graph_runtime::Result<[Tensor; N]>,
    reference: &[Tensor; N],
    magnitude: &[Option<Tensor>; N],
) -> Result<()> {
    let fused = with_mode(Mode::Fused, &f).unwrap_or_else(|e| panic!("{what}: fused: {e}"));
    let eager = with_mode(Mode::Eager, &f).unwrap_or_else(|e| panic!("{what}: eager: {e}"));
    for k in 0..N {
        let what = format!("{what} {dtype:?} output {k}");
        assert_eq!(fused[k].dtype(), dtype, "{what}");
        let m = magnitude[k].as_ref();
        let tol = tolerance(dtype);
        assert_close_scaled(&fused[k], &reference[k], m, tol, &format!("{what}: fused"))?;
        assert_close_scaled(&eager[k], &reference[k], m, tol, &format!("{what}: eager"))?;
        let vs = format!("{what}: fused vs eager");
        assert_close_scaled(&fused[k], &eager[k], m, 2.0 * tol, &vs)?;
    }
    Ok(())
}

fn rms_norm_any_rank(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for &dtype in common::dtypes(device) {
        for shape in leading_shapes(&[24]) {
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let (w, we) = draw(&mut rng, &[24], dtype)?;
            let reference = ref_rms_norm(&xe, &we, 1e-5)?;
            for v in views(&x)? {
                let (v, w) = (v.to_device(device)?, w.to_device(device)?);
                if device.is_cuda() && v.elem_count() == 0 {
                    continue; // Candle 0.11 cannot allocate empty CUDA tensors.
                }
                let what = format!("rms_norm {shape:?} (strides {:?})", v.stride());
                check(
                    &what,
                    dtype,
                    || Ok([rms_norm(&v, &w, 1e-5)?]),
                    std::array::from_ref(&reference),
                )?;
            }
        }
    }
    Ok(())
}
test_device!(rms_norm_any_rank);

fn add_rms_norm_any_rank(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for &dtype in common::dtypes(device) {
        for shape in leading_shapes(&[16]) {
            if device.is_cuda() && shape.contains(&0) {
                continue;
            }
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let (r, re) = draw(&mut rng, &shape, dtype)?;
            let (w, we) = draw(&mut rng, &[16], dtype)?;
            // The sum is stored in the dtype before the norm reads it again on neither path
            // (one kernel), so the reference norms the exact sum.
            let h = (&xe + &re)?;
            let reference = [h.clone(), ref_rms_norm(&h, &we, 1e-5)?];
            let (x, r, w) = (x.to_device(device)?, r.to_device(device)?, w.to_device(device)?);
            let f = || {
                let (h, y) = add_rms_norm(&x, &r, &w, 1e-5)?;
                Ok([h, y])
            };
            check(&format!("add_rms_norm {shape:?}"), dtype, f, &reference)?;
        }
    }
    Ok(())
}
test_device!(add_rms_norm_any_rank);

fn rope_any_rank(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    let (t, d) = (5, 8);
    for &dtype in common::dtypes(device) {
        let (cos, sin) = rope_tables(&mut rng, t, d / 2)?;
        let (cos, sin) = (cos.to_dtype(dtype)?, sin.to_dtype(dtype)?);
        let (cose, sine) = (cos.to_dtype(DType::F64)?, sin.to_dtype(DType::F64)?);
        for shape in leading_shapes(&[t, d]) {
            if device.is_cuda() && shape.contains(&0) {
                continue;
            }
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let reference = ref_rope(&xe, &cose, &sine)?;
            for v in views(&x)? {
                let (v, c, s) = (
                    v.to_device(device)?,
                    cos.to_device(device)?,
                    sin.to_device(device)?,
                );
                let what = format!("rope {shape:?} (strides {:?})", v.stride());
                check(
                    &what,
                    dtype,
                    || Ok([rope(&v, &c, &s)?]),
                    std::array::from_ref(&reference),
                )?;
            }
        }
    }
    Ok(())
}
test_device!(rope_any_rank);

/// A reshape keeping `..`, and a matmul (a library step) between the flattened leading dims
/// and a kernel.
fn layout_and_matmul_any_rank(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for &dtype in common::dtypes(device) {
        let (w, we) = draw(&mut rng, &[12, 7], dtype)?;
        for shape in leading_shapes(&[12]) {
            if device.is_cuda() && shape.contains(&0) {
                continue;
            }
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let mut split: Vec<usize> = shape[..shape.len() - 1].to_vec();
            split.extend([2, 6]);
            let halved = (xe.reshape(split)? * 2.0)?;
            // The product is stored in the dtype before the kernel reads it (a library step).
            let lead = &shape[..shape.len() - 1];
            let rows = xe.reshape(((), 12))?.matmul(&we)?;
            let silu = |v: &Tensor| v / (v.neg()?.exp()? + 1.0)?;
            let mut out_shape = lead.to_vec();
            out_shape.push(7);
            let projected = silu(&round_to(&rows, dtype)?)?.reshape(out_shape)?;
            let (xd, wd) = (x.to_device(device)?, w.to_device(device)?);
            check(
                &format!("halves {shape:?}"),
                dtype,
                || Ok([halves(&xd)?]),
                &[halved],
            )?;
            check(
                &format!("project {shape:?}"),
                dtype,
                || Ok([project(&xd, &wd)?]),
                &[projected],
            )?;
        }
    }
    Ok(())
}
test_device!(layout_and_matmul_any_rank);

/// The reference of a reduction over `axes` with Candle's own single-axis reductions, kept.
fn reduce_ref(x: &Tensor, axes: &[usize], op: fn(&Tensor, usize) -> Result<Tensor>) -> Result<Tensor> {
    axes.iter().try_fold(x.clone(), |v, &a| op(&v, a))
}

fn var_ref(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(axes)?)?;
    centred.sqr()?.mean_keepdim(axes)
}

fn softmax_ref(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let m = reduce_ref(x, axes, |v, a| v.max_keepdim(a))?;
    let e = x.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(axes)?)
}

fn max_keep(v: &Tensor, a: usize) -> Result<Tensor> {
    v.max_keepdim(a)
}

fn min_keep(v: &Tensor, a: usize) -> Result<Tensor> {
    v.min_keepdim(a)
}

/// Reductions over several axes against Candle's `sum_keepdim((a, b))`, `mean_keepdim`, and
/// successive `max_keepdim`/`min_keepdim`, in every dtype.
fn several_axes(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for &dtype in common::dtypes(device) {
        for shape in [[3, 4, 5], [1, 7, 2], [6, 1, 33]] {
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let reference = [
                xe.sum_keepdim((0, 2))?,
                xe.mean_keepdim((0, 2))?,
                reduce_ref(&xe, &[0, 1, 2], max_keep)?,
                reduce_ref(&xe, &[1, 2], min_keep)?,
                var_ref(&xe, &[0, 1])?,
                softmax_ref(&xe, &[0, 2])?,
            ];
            let ax = xe.abs()?;
            let magnitude = [
                Some(ax.sum_keepdim((0, 2))?),
                Some(ax.mean_keepdim((0, 2))?),
                None,
                None,
                None,
                None,
            ];
            let x = x.to_device(device)?;
            check_scaled(
                &format!("stats {shape:?}"),
                dtype,
                || stats(&x).map(<[Tensor; 6]>::from),
                &reference,
                &magnitude,
            )?;
        }
        for shape in leading_shapes(&[3, 10]) {
            if shape.contains(&0) {
                // Reductions of nothing: checked below (Candle refuses to max over empty axes).
                continue;
            }
            let (x, xe) = draw(&mut rng, &shape, dtype)?;
            let (a, b) = (shape.len() - 2, shape.len() - 1);
            let reference = [
                xe.sum_keepdim((a, b))?,
                xe.mean_keepdim((a, b))?,
                reduce_ref(&xe, &[b, a], max_keep)?,
                reduce_ref(&xe, &[b, a], min_keep)?,
                var_ref(&xe, &[a, b])?,
            ];
            let ax = xe.abs()?;
            let magnitude = [
                Some(ax.sum_keepdim((a, b))?),
                Some(ax.mean_keepdim((a, b))?),
                None,
                None,
                None,
            ];
            for v in views(&x)? {
                let v = v.to_device(device)?;
                let what = format!("plane_stats {shape:?} (strides {:?})", v.stride());
                check_scaled(
                    &what,
                    dtype,
                    || plane_stats(&v).map(<[Tensor; 5]>::from),
                    &reference,
                    &magnitude,
                )?;
            }
        }
    }
    Ok(())
}
test_device!(several_axes);

/// A half-type sum over several axes accumulates once, in f32, and rounds once: within half an
/// ulp of the exact sum plus f32's accumulation error, in fused mode, over consecutive axes
/// (`plane_stats`) and axes apart (`stats`). Rounding a partial sum per row to the half type
/// between axes (their old lowering) misses this by far on a sum that cancels.
fn several_axes_round_once(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for dtype in [DType::F16, DType::BF16] {
        let ulp = if dtype == DType::F16 {
            2f64.powi(-10)
        } else {
            2f64.powi(-7)
        };
        for _ in 0..20 {
            let (x, xe) = draw(&mut rng, &[3, 40], dtype)?;
            let (y, ye) = draw(&mut rng, &[30, 1, 20], dtype)?;
            let (x, y) = (x.to_device(device)?, y.to_device(device)?);
            let (fx, fy) = with_mode(Mode::Fused, || -> graph_runtime::Result<_> {
                Ok((plane_stats(&x)?.0, stats(&y)?.0))
            })
            .expect("runs");
            let cases = [
                (fx, xe.sum_keepdim((0, 1))?, xe.abs()?.sum_all()?),
                (fy, ye.sum_keepdim((0, 2))?, ye.abs()?.sum_all()?),
            ];
            for (fused, exact, magnitude) in cases {
                let f = fused.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0];
                let e = exact.flatten_all()?.to_vec1::<f64>()?[0];
                let m = magnitude.to_scalar::<f64>()?;
                // Half an ulp of |e| (at most |e| * ulp / 2 above its binade's start).
                let allowed = e.abs() * ulp / 2.0 + 1e-5 * m;
                assert!(
                    (f - e).abs() <= allowed,
                    "{dtype:?} {:?}: fused sum {f} vs exact {e}: off by {:e} > {allowed:e}",
                    fused.dims(),
                    (f - e).abs()
                );
            }
        }
    }
    Ok(())
}
test_device!(several_axes_round_once);

/// Over empty axes, the reductions of nothing of the language: sum 0, mean NaN, max -inf,
/// min +inf, in both executors; over an empty leading dim, empty results of the right shape.
#[test]
fn several_axes_of_nothing() -> Result<()> {
    let x = Tensor::zeros((2, 0, 3), DType::F32, &Device::Cpu)?;
    for mode in [Mode::Fused, Mode::Eager] {
        let (s, m, hi, lo, _) = with_mode(mode, || plane_stats(&x)).expect("runs");
        let values: Vec<f32> = [s, m, hi, lo]
            .iter()
            .map(|t| t.flatten_all()?.get(0)?.to_scalar::<f32>())
            .collect::<Result<_>>()?;
        assert_eq!(values[0], 0.0, "{mode:?}: sum of nothing");
        assert!(values[1].is_nan(), "{mode:?}: mean of nothing");
        assert_eq!(
            values[2..],
            [f32::NEG_INFINITY, f32::INFINITY],
            "{mode:?}: max, min of nothing"
        );
        let empty = Tensor::zeros((0, 3, 4), DType::F32, &Device::Cpu)?;
        let (s, ..) = with_mode(mode, || plane_stats(&empty)).expect("runs");
        assert_eq!(s.dims(), &[0, 1, 1]);
    }
    Ok(())
}

/// `rms_norm` written with Candle ops, for Candle's autograd.
fn rms_norm_ops(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_mul(&(ms + eps)?.sqrt()?.recip()?)?.broadcast_mul(w)
}

/// Gradients of a `..` function through `loss.backward()`, fused (from its backward graph) and
/// eager, and from `rms_norm_backward`, against Candle's autograd of the same function in
/// Candle ops, in f64, for inputs of ranks 1 to 4 and a transposed view.
fn rms_norm_gradients(device: &Device) -> Result<()> {
    let mut rng = common::rng();
    for shape in leading_shapes(&[16]) {
        if shape.contains(&0) {
            continue;
        }
        for transposed in [false, true] {
            if transposed && shape.len() < 3 {
                continue;
            }
            let x0 = randn(&mut rng, &shape, 0.0, 1.0)?.to_device(device)?;
            let w0 = randn(&mut rng, &[16], 1.0, 0.3)?.to_device(device)?;
            let c = randn(&mut rng, &shape, 0.0, 1.0)?.to_device(device)?;
            let what = format!("rms_norm {shape:?} (leading dims transposed: {transposed})");
            // The variable is laid out transposed; the function sees it as `shape`.
            let (xv, wv) = match transposed {
                true => (
                    Var::from_tensor(&x0.transpose(0, 1)?.contiguous()?)?,
                    Var::from_tensor(&w0)?,
                ),
                false => (Var::from_tensor(&x0)?, Var::from_tensor(&w0)?),
            };
            let x = match transposed {
                true => xv.as_tensor().transpose(0, 1)?,
                false => xv.as_tensor().clone(),
            };
            let grads = |y: Tensor| -> Result<(Tensor, Tensor)> {
                let g = (y * &c)?.sum_all()?.backward()?;
                let gx = g.get(xv.as_tensor()).expect("x has a gradient").clone();
                let gw = g.get(wv.as_tensor()).expect("w has a gradient").clone();
                Ok((gx, gw))
            };
            let expected = grads(rms_norm_ops(&x, wv.as_tensor(), 1e-5)?)?;
            let tied = graph_runtime::testing::tied_outputs();
            let fused = grads(with_mode(Mode::Fused, || rms_norm(&x, wv.as_tensor(), 1e-5))?)?;
            assert!(
                graph_runtime::testing::tied_outputs() > tied,
                "{what}: the fused gradient did not come from the backward graph"
            );
            let eager = grads(with_mode(Mode::Eager, || rms_norm(&x, wv.as_tensor(), 1e-5))?)?;
            for (mode, (gx, gw)) in [("fused", &fused), ("eager", &eager)] {
                assert_close(gx, &expected.0, 1e-10, &format!("{what}: {mode} dx"))?;
                assert_close(gw, &expected.1, 1e-10, &format!("{what}: {mode} dw"))?;
            }
            // The explicit backward, on the plain tensors: dx of x's shape as called.
            let dx_as_called = match transposed {
                true => expected.0.transpose(0, 1)?,
                false => expected.0.clone(),
            };
            for mode in [Mode::Fused, Mode::Eager] {
                let (dx, dw) = with_mode(mode, || rms_norm_backward(&x0, &w0, 1e-5, &c))?;
                assert_close(
                    &dx,
                    &dx_as_called,
                    1e-10,
                    &format!("{what}: {mode:?} rms_norm_backward dx"),
                )?;
                assert_close(
                    &dw,
                    &expected.1,
                    1e-10,
                    &format!("{what}: {mode:?} rms_norm_backward dw"),
                )?;
            }
        }
    }
    Ok(())
}
test_device!(rms_norm_gradients);

/// The asynchronous twin gives what the function gives, for every rank, and its errors.
#[test]
fn async_twin() -> Result<()> {
    let mut rng = common::rng();
    let w = randn(&mut rng, &[8], 1.0, 0.3)?.to_dtype(DType::F32)?;
    for shape in leading_shapes(&[8]) {
        let x = randn(&mut rng, &shape, 0.0, 1.0)?.to_dtype(DType::F32)?;
        let sync = rms_norm(&x, &w, 1e-5)?;
        let got = futures::executor::block_on(rms_norm_async(&x, &w, 1e-5))?;
        assert_eq!(got.dims(), &shape[..]);
        assert_close(&got, &sync, 0.0, &format!("rms_norm_async {shape:?}"))?;
    }
    let (x, r) = (
        Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu)?,
        Tensor::zeros((3, 2, 4), DType::F32, &Device::Cpu)?,
    );
    let w = Tensor::zeros(4, DType::F32, &Device::Cpu)?;
    let sync = add_rms_norm(&x, &r, &w, 1e-5).unwrap_err().to_string();
    let future = futures::executor::block_on(add_rms_norm_async(&x, &r, &w, 1e-5)).unwrap_err();
    assert_eq!(future.to_string(), sync);
    Ok(())
}

/// Leading dims that differ between two `..` parameters, a rank below the named dims, and a
/// named dim that disagrees: errors naming the parameter and the shapes, in both executors
/// and from the backward function.
#[test]
fn wrong_leading_dims_are_errors() -> Result<()> {
    let zeros = |s: &[usize]| Tensor::zeros(s, DType::F32, &Device::Cpu).expect("allocates");
    let w = zeros(&[4]);
    for mode in [Mode::Fused, Mode::Eager] {
        let err = with_mode(mode, || {
            add_rms_norm(&zeros(&[2, 3, 4]), &zeros(&[3, 2, 4]), &w, 1e-5)
        })
        .unwrap_err();
        assert!(matches!(err, Error::Leading(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "add_rms_norm: parameter `r` has leading dims [3, 2] (shape [3, 2, 4], declared [.., D]), \
             but `x` has [2, 3] (shape [2, 3, 4]); every parameter declared with `..` takes the same \
             leading dims"
        );
        // Same product, different dims; and a different number of them.
        let err = with_mode(mode, || {
            add_rms_norm(&zeros(&[6, 4]), &zeros(&[2, 3, 4]), &w, 1e-5)
        })
        .unwrap_err();
        assert!(matches!(err, Error::Leading(_)), "{err}");
        let err = with_mode(mode, || add_rms_norm(&zeros(&[4]), &zeros(&[1, 4]), &w, 1e-5)).unwrap_err();
        assert!(matches!(err, Error::Leading(_)), "{err}");

        let err = with_mode(mode, || rope(&zeros(&[8]), &zeros(&[5, 4]), &zeros(&[5, 4]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rope: parameter `x` must have at least 2 dims (declared [.., T, D]), but has shape [8]"
        );
        // Named dims are numbered as the caller's tensor has them.
        let err = with_mode(mode, || rms_norm(&zeros(&[2, 3, 5]), &w, 1e-5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rms_norm: symbol `D` is 5 (from `x` dim 2), but parameter `w` dim 0 (declared [D]) is 4, not 5"
        );
        let err = with_mode(mode, || {
            rms_norm_backward(&zeros(&[2, 3, 4]), &w, 1e-5, &zeros(&[3, 2, 4]))
        })
        .unwrap_err();
        assert!(matches!(&err, Error::Leading(m) if m.param == "dy"), "{err}");
    }
    Ok(())
}

/// The printed graph shows `..` where the signature has it.
#[test]
fn graphs_print_leading_dims() {
    let text = rms_norm::GRAPH.to_text();
    assert!(
        text.starts_with("graph rms_norm(x: Tensor[.., D], w: Tensor[D], eps: f32)\n"),
        "{text}"
    );
    assert!(text.contains("%0 = x : [.., D]"), "{text}");
    assert!(rope::BACKWARD.to_text().contains("dy: Tensor[.., T, D]"));
    assert!(rms_norm::GRAPH.to_dot().contains(".."));
    let lead = rms_norm::GRAPH.leading().expect("rms_norm has leading dims");
    assert_eq!(rms_norm::GRAPH.symbols()[lead as usize], "..");
    assert_eq!(stats::GRAPH.leading(), None);
}
