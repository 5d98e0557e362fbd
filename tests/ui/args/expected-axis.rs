use graph_runtime::lazy_graph;

lazy_graph! {
    /// Softmax with the axis passed as a scalar parameter.
    pub fn softmax(x: Tensor[N, D], axis: f32) -> Tensor[N, D] {
        softmax(x, axis)
    }
}

fn main() {}
