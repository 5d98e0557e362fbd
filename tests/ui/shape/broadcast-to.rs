use graph_runtime::lazy_graph;

lazy_graph! {
    /// Broadcasts a bias to a shape its width does not match.
    pub fn expand_bias(b: Tensor[D], x: Tensor[N, E]) -> Tensor[N, E] {
        broadcast(b, [N, E]) + x
    }
}

fn main() {}
