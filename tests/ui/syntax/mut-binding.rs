use graph_runtime::lazy_graph;

lazy_graph! {
    /// Accumulates into a mutable binding.
    pub fn accumulate(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[N, D] {
        let mut acc = x;
        acc + y
    }
}

fn main() {}
