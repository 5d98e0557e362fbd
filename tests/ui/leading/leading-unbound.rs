use graph_runtime::lazy_graph;

lazy_graph! {
    /// No parameter declares `..`, so a result cannot take it.
    pub fn widen(x: Tensor[N, D]) -> Tensor[.., D] {
        x
    }

    pub fn reshaped(x: Tensor[N, D]) -> Tensor[N, D] {
        reshape(x, [.., D])
    }
}

fn main() {}
