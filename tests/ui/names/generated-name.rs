use graph_runtime::lazy_graph;

lazy_graph! {
    pub fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }

    /// Named like the backward function generated for `rms_norm`.
    pub fn rms_norm_backward(x: Tensor[N, D]) -> Tensor[N, D] {
        x * 2.0
    }

    /// Named like the asynchronous twin of `rms_norm`.
    pub fn rms_norm_async(x: Tensor[N, D]) -> Tensor[N, D] {
        x * 3.0
    }
}

fn main() {}
