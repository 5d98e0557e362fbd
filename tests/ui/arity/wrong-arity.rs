use graph_runtime::lazy_graph;

lazy_graph! {
    /// The first half of the features, with the start offset forgotten.
    pub fn first_half(x: Tensor[N, D]) -> Tensor[N, D / 2] {
        narrow(x, -1, D / 2)
    }
}

fn main() {}
