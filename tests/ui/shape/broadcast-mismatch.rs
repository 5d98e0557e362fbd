use graph_runtime::lazy_graph;

lazy_graph! {
    /// A residual add across two different feature widths.
    pub fn residual(x: Tensor[N, D], r: Tensor[N, E]) -> Tensor[N, D] {
        x + r
    }
}

fn main() {}
