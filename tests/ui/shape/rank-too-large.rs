use graph_runtime::lazy_graph;

lazy_graph! {
    /// Nine dims, one more than a tensor may have.
    pub fn nine(x: Tensor[A, B, C, D, E, F, G, H, I]) -> Tensor[A, B, C, D, E, F, G, 1] {
        reshape(max(x, -1), [A, B, C, D, E, F, G, 1])
    }
}

fn main() {}
