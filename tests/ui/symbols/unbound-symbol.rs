use graph_runtime::lazy_graph;

lazy_graph! {
    /// Rotary tables declared only by their half width.
    pub fn rotate(x: Tensor[S, 2 * H], cos: Tensor[S, 2 * H]) -> Tensor[S, 2 * H] {
        x * cos
    }
}

fn main() {}
