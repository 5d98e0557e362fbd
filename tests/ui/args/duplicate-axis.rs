use graph_runtime::lazy_graph;

lazy_graph! {
    /// `-1` and `1` are one axis of a matrix.
    pub fn total(x: Tensor[N, D]) -> Tensor[1, 1] {
        sum(x, [0, -1, 1])
    }

    pub fn twice(x: Tensor[N, D]) -> Tensor[N, 1] {
        mean(x, [-1, -1])
    }
}

fn main() {}
