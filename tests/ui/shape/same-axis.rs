use graph_runtime::lazy_graph;

lazy_graph! {
    /// A transpose that names one axis twice.
    pub fn keys_t(k: Tensor[B, S, D]) -> Tensor[B, D, S] {
        k.transpose(-1, 2)
    }
}

fn main() {}
