use graph_runtime::lazy_graph;

lazy_graph! {
    /// A literal product past `u64`.
    pub fn huge(x: Tensor[N, 4294967296 * 4294967296]) -> Tensor[N, 1] {
        sum(x, -1)
    }
}

fn main() {}
