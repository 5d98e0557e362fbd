use graph_runtime::lazy_graph;

lazy_graph! {
    /// Joins two halves, listed in a tuple instead of brackets.
    pub fn join(a: Tensor[N, D], b: Tensor[N, D]) -> Tensor[N, 2 * D] {
        cat((a, b), -1)
    }
}

fn main() {}
