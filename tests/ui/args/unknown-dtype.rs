use graph_runtime::lazy_graph;

lazy_graph! {
    /// Upcasts to a dtype the graph does not support.
    pub fn upcast(x: Tensor[N, D]) -> Tensor[N, D] {
        x.to_dtype(i64)
    }
}

fn main() {}
