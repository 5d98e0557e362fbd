use graph_runtime::lazy_graph;

lazy_graph! {
    /// A residual add whose second input was never declared.
    pub fn residual(x: Tensor[N, D]) -> Tensor[N, D] {
        x + residual_stream
    }
}

fn main() {}
