use graph_runtime::lazy_graph;

lazy_graph! {
    /// Flattens more symbols than one size can hold.
    pub fn flatten(x: Tensor[A, B, C, D, E]) -> Tensor[A * B, C * D * E] {
        x.reshape([A * B * C * D * E])
    }
}

fn main() {}
