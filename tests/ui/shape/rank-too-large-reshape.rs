use graph_runtime::lazy_graph;

lazy_graph! {
    /// A reshape to seventeen dims.
    pub fn unfold(x: Tensor[N]) -> Tensor[N] {
        let y = reshape(x, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, N]);
        reshape(y, [N])
    }
}

fn main() {}
