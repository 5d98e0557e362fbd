use graph_runtime::lazy_graph;

lazy_graph! {
    /// Masks attention scores with a mask over the wrong key length.
    pub fn masked(scores: Tensor[B, H, T, S], mask: Tensor[T, T]) -> Tensor[B, H, T, S] {
        where_(mask, scores, -1e9)
    }
}

fn main() {}
