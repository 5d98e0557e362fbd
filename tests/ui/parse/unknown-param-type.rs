use graph_runtime::lazy_graph;

lazy_graph! {
    /// Takes an integer parameter, which graphs do not have.
    pub fn scale(x: Tensor[N, D], factor: i32) -> Tensor[N, D] {
        x * factor
    }
}

fn main() {}
