use graph_runtime::lazy_graph;

lazy_graph! {
    /// Returns the scale instead of the scaled tensor.
    pub fn scaled(x: Tensor[N, D], scale: f32) -> Tensor[N, D] {
        let _y = x * scale;
        scale
    }
}

fn main() {}
