use graph_runtime::lazy_graph;

lazy_graph! {
    /// Means over an axis a matrix does not have.
    pub fn col_mean(x: Tensor[N, D]) -> Tensor[N, 1] {
        mean(x, 2)
    }
}

fn main() {}
