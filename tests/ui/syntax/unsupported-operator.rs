use graph_runtime::lazy_graph;

lazy_graph! {
    /// Uses the remainder operator.
    pub fn wrap(x: Tensor[N, D]) -> Tensor[N, D] {
        x % 2.0
    }
}

fn main() {}
