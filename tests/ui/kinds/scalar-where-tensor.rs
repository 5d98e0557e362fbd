use graph_runtime::lazy_graph;

lazy_graph! {
    /// RMS normalisation that reduces the epsilon instead of the input.
    pub fn rms_norm(x: Tensor[N, D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(eps, -1) + eps)
    }
}

fn main() {}
