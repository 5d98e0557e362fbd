use graph_runtime::lazy_graph;

lazy_graph! {
    /// Sixty-five parts, one more than a `cat` may join.
    pub fn wide(x: Tensor[N, 1]) -> Tensor[N, 65] {
        cat([x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x], -1)
    }
}

fn main() {}
