//! Matrix products and layout ops: matmul (batched), transpose, reshape, broadcast, narrow, cat
//! and cast, with literal, symbolic and derived (`D / 2`, `H * K`) dims.

use candle_core::{DType, Device, Tensor};
use graph_runtime::lazy_graph;

lazy_graph! {
    /// A LoRA-adapted linear layer: plain and chained matmuls.
    pub fn lora(x: Tensor[B, I], w: Tensor[I, O], a: Tensor[I, R], b: Tensor[R, O], scale: f32) -> Tensor[B, O] {
        x.matmul(w) + matmul(x.matmul(a), b) * scale
    }

    /// Causal attention scores: a batched matmul against transposed keys, masked with `where_`.
    pub fn scores(q: Tensor[B, H, T, K], k: Tensor[B, H, T, K], mask: Tensor[T, T]) -> Tensor[B, H, T, T] {
        let s = q.matmul(k.transpose(-2, -1)) / sqrt(K);
        softmax(where_(mask, s, -1e9), -1)
    }

    /// Splits heads and merges them back: reshapes over derived sizes, and `transpose` as a call.
    pub fn heads(x: Tensor[B, S, H * K], h: Tensor[H], k: Tensor[K]) -> Tensor[B, S, H * K] {
        let split = x.reshape([B, S, H, K]) * k + reshape(h, [H, 1]);
        let swapped = transpose(split, 1, 2);
        swapped.transpose(1, 2).reshape([B, S, H * K])
    }

    /// Rotary embeddings in rotate-half form: `narrow` with `D / 2` and `cat` of the halves.
    pub fn rope(x: Tensor[B, H, T, D], cos: Tensor[T, D], sin: Tensor[T, D]) -> Tensor[B, H, T, D] {
        let x1 = x.narrow(-1, 0, D / 2);
        let x2 = narrow(x, 3, D / 2, D / 2);
        x * cos + cat([-x2, x1], -1) * sin
    }

    /// Literal dims: a fixed window, literal halves joined, broadcasts of a bias.
    pub fn window(x: Tensor[N, 64], bias: Tensor[1, 32]) -> (Tensor[N, 32], Tensor[N, 64], Tensor[N, 32]) {
        let w = narrow(x, 1, 16, 32);
        let joined = cat([narrow(x, -1, 0, 32), narrow(x, -1, 32, 32)], 1);
        (w + broadcast(bias, [N, 32]), joined, bias.broadcast_as([N, 32]))
    }

    /// Rounds through lower precisions and back, by both names.
    pub fn roundtrip(x: Tensor[N, D]) -> (Tensor[N, D], Tensor[N, D]) {
        (cast(x, bf16).to_dtype(f32), x.to_dtype(f16) + cast(x, f64))
    }
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let rand = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &dev);

    assert_eq!(
        lora(
            &rand(&[2, 6])?,
            &rand(&[6, 3])?,
            &rand(&[6, 2])?,
            &rand(&[2, 3])?,
            0.5
        )?
        .dims(),
        &[2, 3]
    );

    let mask = Tensor::tril2(4, DType::F32, &dev)?;
    assert_eq!(
        scores(&rand(&[1, 2, 4, 8])?, &rand(&[1, 2, 4, 8])?, &mask)?.dims(),
        &[1, 2, 4, 4]
    );

    assert_eq!(
        heads(&rand(&[2, 3, 8])?, &rand(&[2])?, &rand(&[4])?)?.dims(),
        &[2, 3, 8]
    );

    assert_eq!(
        rope(&rand(&[1, 2, 3, 8])?, &rand(&[3, 8])?, &rand(&[3, 8])?)?.dims(),
        &[1, 2, 3, 8]
    );

    let (w, joined, b) = window(&rand(&[2, 64])?, &rand(&[1, 32])?)?;
    assert_eq!(
        (w.dims(), joined.dims(), b.dims()),
        (&[2, 32][..], &[2, 64][..], &[2, 32][..])
    );

    let (r, mixed) = roundtrip(&rand(&[2, 3])?)?;
    assert_eq!((r.dims(), mixed.dims()), (&[2, 3][..], &[2, 3][..]));
    Ok(())
}
