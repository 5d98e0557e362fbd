use graph_runtime::lazy_graph;

lazy_graph! {
    /// A parameter with a negative dim.
    pub fn shift(x: Tensor[N, -1]) -> Tensor[N, 1] {
        x + 1.0
    }
}

fn main() {}
