use graph_runtime::lazy_graph;

lazy_graph! {
    /// Flattens the batch, forgetting the feature dim.
    pub fn flatten(x: Tensor[B, S, D]) -> Tensor[B * S] {
        x.reshape([B * S])
    }
}

fn main() {}
