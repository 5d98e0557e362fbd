use graph_runtime::lazy_graph;

lazy_graph! {
    /// Row sums, with the axis forgotten in method syntax.
    pub fn row_sums(x: Tensor[N, D]) -> Tensor[N, 1] {
        x.sum()
    }
}

fn main() {}
