use graph_runtime::lazy_graph;

lazy_graph! {
    /// Flattens the batch, with the shape written as a tuple.
    pub fn flatten(x: Tensor[B, S, D]) -> Tensor[B * S, D] {
        x.reshape((B * S, D))
    }
}

fn main() {}
