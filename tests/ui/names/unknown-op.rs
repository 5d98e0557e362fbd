use graph_runtime::lazy_graph;

lazy_graph! {
    /// Attention probabilities, with the op name misspelt.
    pub fn probs(scores: Tensor[B, H, S, S], scale: f32) -> Tensor[B, H, S, S] {
        sofmax(scores * scale, -1)
    }
}

fn main() {}
