use graph_runtime::lazy_graph;

lazy_graph! {
    /// The residual stream and its normalised copy, with the stream forgotten in the body.
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        h * rsqrt(mean(h * h, -1) + eps) * w
    }
}

fn main() {}
