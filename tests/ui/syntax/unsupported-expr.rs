use graph_runtime::lazy_graph;

lazy_graph! {
    /// Branches with `if`, which a graph cannot express.
    pub fn relu(x: Tensor[N, D]) -> Tensor[N, D] {
        if x > 0.0 { x } else { 0.0 }
    }
}

fn main() {}
