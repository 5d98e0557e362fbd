use graph_runtime::lazy_graph;

lazy_graph! {
    /// Declares a tensor without its shape.
    pub fn double(x: Tensor) -> Tensor[N, D] {
        x + x
    }
}

fn main() {}
