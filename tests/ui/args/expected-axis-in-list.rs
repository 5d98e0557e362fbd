use graph_runtime::lazy_graph;

lazy_graph! {
    /// Every axis of a list is an integer literal.
    pub fn total(x: Tensor[N, D], y: Tensor[N, D]) -> Tensor[1, 1] {
        sum(x, [0, y])
    }
}

fn main() {}
