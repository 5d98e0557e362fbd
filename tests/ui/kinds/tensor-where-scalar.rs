use graph_runtime::lazy_graph;

lazy_graph! {
    /// Clamps activations, with a tensor passed as the lower bound.
    pub fn clip(x: Tensor[N, D], lo: Tensor[N, D]) -> Tensor[N, D] {
        clamp(x, lo, 6.0)
    }
}

fn main() {}
