use graph_runtime::lazy_graph;

lazy_graph! {
    /// Forgets the return type.
    pub fn double(x: Tensor[N, D]) {
        x + x
    }
}

fn main() {}
