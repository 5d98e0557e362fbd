use graph_runtime::lazy_graph;

lazy_graph! {
    /// Ends with a semicolon, so returns nothing.
    pub fn gelu_scaled(x: Tensor[N, D], scale: f32) -> Tensor[N, D] {
        gelu(x) * scale;
    }
}

fn main() {}
