use graph_runtime::lazy_graph;

lazy_graph! {
    /// Declares a Rust result type instead of the output tensor.
    pub fn double(x: Tensor[N, D]) -> Result<Tensor> {
        x + x
    }
}

fn main() {}
