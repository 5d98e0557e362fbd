use graph_runtime::lazy_graph;

lazy_graph! {
    /// Declares a return width that no input defines.
    pub fn project(x: Tensor[B, I], w: Tensor[I, O]) -> Tensor[B, H] {
        x.matmul(w)
    }
}

fn main() {}
