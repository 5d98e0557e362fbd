use graph_runtime::lazy_graph;

lazy_graph! {
    /// A projection of a single vector, which matmul does not take.
    pub fn project(x: Tensor[I], w: Tensor[I, O]) -> Tensor[O] {
        x.matmul(w)
    }
}

fn main() {}
